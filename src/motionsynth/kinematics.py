"""Forward kinematics, heading (facing) frames, and the one definition of feet (`foot_joints`) and of a foot contact
(`foot_contacts`).

Numpy or torch in, the same out; torch is differentiable. Shapes carry any leading batch dims ``(...)``, usually
(B, T).
"""

from __future__ import annotations

import numpy as np
import torch

from . import rotations as R
from .errors import MotionsynthError

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


def foot_joints(skeleton, ankles: bool = False, required: bool = True) -> list[int]:
    """The feet of a skeleton — the one definition every module uses (floor alignment, foot skating, the diffusion
    model's foot loss): the leaf joint (toe) of each leg group of ``skeleton.groups`` (``left_leg``, ``right_leg``),
    sorted; with ``ankles``, also each toe's parent (the ankle): the whole foot, what foot-skating measures take. The
    moving root is never a foot. Without leg groups: `MotionsynthError` (``required``), else ``[]``."""
    root = skeleton.root
    toes = sorted(j for side in ("left_leg", "right_leg") for j in skeleton.groups.get(side, [])
                  if not skeleton.children[j] and j != root)
    feet = sorted({k for j in toes for k in (j, int(skeleton.parents[j])) if k != root}) if ankles else toes
    if not feet and required:
        raise MotionsynthError("the skeleton has no leg groups (Skeleton.groups 'left_leg', 'right_leg'): it has no "
                               "feet")
    return feet


def foot_contacts(positions, feet: list[int], fps: float | None = None, max_speed: float | None = 15.0,
                  max_height: float | None = None, floor: float | None = None):
    """Which feet touch the ground, frame by frame: (..., T, J, 3) global positions → (..., T, len(feet)) booleans.

    The one meaning of a contact in motionsynth: the foot is **still** — its speed below ``max_speed`` (file units
    per second, so ``fps`` is needed; 15 cm/s by default; the speed of frame t is taken from t-1 to t, frame 0 copies
    frame 1) — and **low** — its height (+Y) above the floor below ``max_height``; the floor is ``floor`` (a
    height) or each sequence's lowest point of the given feet over the clip. A caller leaves out a test it cannot or
    must not make by passing None: floor alignment (`postprocess.contact_points`) does not know the up axis yet and
    tests speed only; foot skating (`metrics.foot_skating`) measures the speed of contacts and tests height only.
    """
    if max_speed is None and max_height is None:
        raise ValueError("foot_contacts: give max_speed, max_height or both")
    is_np = not isinstance(positions, torch.Tensor)
    f = positions[..., list(feet), :]
    contact = None
    if max_speed is not None:
        if fps is None:
            raise ValueError("foot_contacts: max_speed (units per second) needs fps")
        vel = (f[..., 1:, :, :] - f[..., :-1, :, :]) * fps
        speed = np.sqrt((vel ** 2).sum(-1)) if is_np else torch.sqrt((vel ** 2).sum(-1))
        first = speed[..., :1, :]
        speed = np.concatenate([first, speed], -2) if is_np else torch.cat([first, speed], -2)
        contact = speed < max_speed
    if max_height is not None:
        h = f[..., 1]
        if floor is not None:
            lowest = floor if is_np else torch.as_tensor(floor, dtype=h.dtype)
        else:
            lowest = h.min(axis=(-2, -1), keepdims=True) if is_np else h.amin((-2, -1), keepdim=True)
        low = (h - lowest) < max_height
        contact = low if contact is None else contact & low
    return contact
