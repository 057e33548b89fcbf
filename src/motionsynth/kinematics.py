"""Forward kinematics, heading (facing) frames and foot contacts.

Numpy or torch in, the same out; torch is differentiable. Shapes carry any leading batch dims ``(...)``, usually
(B, T).
"""

from __future__ import annotations

import numpy as np
import torch

from . import rotations as R

UP = np.array([0.0, 1.0, 0.0])
"""The project's up axis (+Y)."""


def fk(local_rotations, local_translations, parents):
    """Local → global joint transforms.

    Args:
        local_rotations: (..., J, 4) quaternions (x, y, z, w), or (..., J, 3, 3) matrices.
        local_translations: (..., J, 3) joint translations in the parent's frame (rest offsets, plus the root's
            position at the moving root). Broadcasts against the rotations' batch dims.
        parents: (J,) parent indices in topological order, -1 for joint 0.
    Returns:
        (global_rotations, global_positions): (..., J, 4) (or (..., J, 3, 3) if matrices came in) and (..., J, 3).
    """
    is_quat = local_rotations.shape[-1] == 4
    mats = R.quat_to_matrix(local_rotations) if is_quat else local_rotations
    if isinstance(mats, np.ndarray):
        local_translations = np.asarray(local_translations, dtype=mats.dtype)
        batch = np.broadcast_shapes(mats.shape[:-3], local_translations.shape[:-2])
        mats = np.broadcast_to(mats, (*batch, *mats.shape[-3:]))
        trans = np.broadcast_to(local_translations, (*batch, *local_translations.shape[-2:]))
        g_rot, g_pos = np.empty_like(mats), np.empty(trans.shape, dtype=mats.dtype)
        for j, p in enumerate(parents):
            if p < 0:
                g_rot[..., j, :, :], g_pos[..., j, :] = mats[..., j, :, :], trans[..., j, :]
            else:
                g_rot[..., j, :, :] = g_rot[..., p, :, :] @ mats[..., j, :, :]
                g_pos[..., j, :] = g_pos[..., p, :] + np.einsum("...ik,...k->...i", g_rot[..., p, :, :],
                                                                 trans[..., j, :])
    else:
        local_translations = torch.as_tensor(local_translations, dtype=mats.dtype, device=mats.device)
        rots, poss = [], []
        for j, p in enumerate(parents):
            if p < 0:
                rots.append(mats[..., j, :, :])
                poss.append(local_translations[..., j, :].expand(*mats.shape[:-3], 3))
            else:
                rots.append(rots[p] @ mats[..., j, :, :])
                poss.append(poss[p] + (rots[p] @ local_translations[..., j, :, None])[..., 0])
        g_rot, g_pos = torch.stack(rots, dim=-3), torch.stack(poss, dim=-2)
    return (R.matrix_to_quat(g_rot) if is_quat else g_rot), g_pos


def heading_angle(root_rotation):
    """(..., 4) → (...) angle (radians) of the rotation's twist about +Y: the character's heading.

    The zero heading is whatever the rest pose faces; only differences matter to the features built on it.
    """
    axis = torch.tensor(UP) if isinstance(root_rotation, torch.Tensor) else UP
    return R.quat_twist_angle(root_rotation, axis)


def heading_quat(angle):
    """(...) heading angles → (..., 4) rotations about +Y."""
    axis = torch.tensor(UP) if isinstance(angle, torch.Tensor) else UP
    return R.quat_about_axis(angle, axis)


def foot_contacts(positions, feet: list[int], fps: float, max_speed: float = 15.0, max_height: float | None = None):
    """(..., T, J, 3) global positions → (..., T, len(feet)) booleans: a foot is in contact when its speed is below
    ``max_speed`` (units/s; 15 cm/s by default) and, if given, its height above the clip's lowest foot point is below
    ``max_height``. The speed of frame t is taken between t-1 and t (frame 0 copies frame 1)."""
    xp = torch if isinstance(positions, torch.Tensor) else np
    f = positions[..., feet, :]
    vel = (f[..., 1:, :, :] - f[..., :-1, :, :]) * fps
    speed = xp.sqrt((vel ** 2).sum(-1))
    speed = xp.concatenate([speed[..., :1, :], speed], -2) if xp is np else torch.cat([speed[..., :1, :], speed], -2)
    contact = speed < max_speed
    if max_height is not None:
        h = f[..., 1]
        lowest = h.min(-2, keepdims=True) if xp is np else h.amin(-2, keepdim=True)
        contact = contact & (h - lowest < max_height)
    return contact
