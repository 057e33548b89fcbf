"""The learning representation: a motion as a (T, D) array of per-frame features, and back.

Layout of one frame (``D = 6 * J + ROOT_DIM``):

- ``[0, 6J)`` — `rot6d_slice`: every joint's local rotation in 6D (`rotations.quat_to_6d`), joint-major
  (joint j at ``6j:6j+6``). The moving root's entry is its **global** rotation with the heading removed,
  ``heading_quat(-h) * q_root_global``, so the features do not depend on where the character faces. With static
  identity ancestors above the root (Bandai's ``joint_Root``) or the root at joint 0, the global rotation is the local
  one, i.e. the entry is ``heading_quat(-h) * q_root``.
- ``[6J, 6J + 4)`` — `root_slice`: the root block
    0. root height: y (up) of the root's world position (file units, cm);
    1–2. planar velocity (x, z): ``p_t - p_{t-1}`` of the root's world position, rotated into the heading frame of
       frame **t-1** (units per frame; 0 at t = 0);
    3. heading velocity ``h_t - h_{t-1}`` wrapped to (-π, π] (radians per frame; 0 at t = 0).

The heading ``h`` is `kinematics.heading_angle` of the root's global rotation (its twist about +Y). The root's world
transform is found through its ancestors' local rotations (read from the features, normally static) and the
skeleton's rest **offsets**: per-joint animated translations (`Motion.translations`) are not encoded — decoding gives
the motion as if ``translations`` were None.

Decoding integrates the root block from an origin ``(x, z, heading)`` of frame 0 (`origin`); the canonical origin is
(0, 0, 0). Values at t = 0 of the velocity channels are ignored by the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, cast

import numpy as np
import torch

from .. import rotations as R
from ..errors import FormatError, MotionsynthError
from ..io.npz import NPY_ERRORS
from ..kinematics import heading_angle
from ..motion import Motion
from ..skeleton import Skeleton

__all__ = ["ROOT_DIM", "ROOT_HEIGHT", "ROOT_VELOCITY", "ROOT_TURN", "STD_FLOOR", "constant_channels", "feature_dim",
           "rot6d_slice", "root_slice", "feature_mask", "encode", "origin", "decode", "decode_torch",
           "integrate_planar", "root_track", "FeatureStats"]

ROOT_DIM = 4
"""Root block size: height, planar velocity (x, z) in the heading frame, heading velocity."""
ROOT_HEIGHT, ROOT_VELOCITY, ROOT_TURN = 0, slice(1, 3), 3
"""Columns of the root block (index into ``features[..., root_slice(skeleton)]``)."""

STD_FLOOR = 1e-4
"""Smallest standard deviation `FeatureStats` divides by (constant channels such as a static joint's 6D)."""


def integrate_planar(velocity, heading):
    """Planar root velocities (..., T, 2) (x, z in the heading frame of the previous frame; frame 0's ignored) and
    headings (..., T) (radians) → planar positions x, z, each (..., T), from the origin. numpy or torch alike."""
    xp = torch if isinstance(velocity, torch.Tensor) else np
    h_prev = xp.concatenate([heading[..., :1], heading[..., :-1]], -1)
    c, s = xp.cos(h_prev), xp.sin(h_prev)
    zero = velocity[..., :1, :] * 0
    v = xp.concatenate([zero, velocity[..., 1:, :]], -2)
    x = xp.cumsum(c * v[..., 0] + s * v[..., 1], -1)
    z = xp.cumsum(-s * v[..., 0] + c * v[..., 1], -1)
    return x, z


def root_track(root, heading0: float = 0.0):
    """Root blocks (..., T, ROOT_DIM) → (..., T, 3): planar position x, z (file units, from the origin) and heading
    (radians, from ``heading0`` at frame 0), integrating the velocities (frame 0's ignored). numpy or torch alike."""
    xp = torch if isinstance(root, torch.Tensor) else np
    turn = root[..., ROOT_TURN]
    turn = xp.concatenate([turn[..., :1] * 0, turn[..., 1:]], -1)
    heading = heading0 + xp.cumsum(turn, -1)
    x, z = integrate_planar(root[..., ROOT_VELOCITY], heading)
    return xp.stack([x, z, heading], -1)


def feature_dim(skeleton: Skeleton) -> int:
    """D = 6 * J + ROOT_DIM."""
    return 6 * len(skeleton) + ROOT_DIM


def rot6d_slice(skeleton: Skeleton) -> slice:
    """The feature columns holding the J joints' 6D rotations (reshape to (..., J, 6))."""
    return slice(0, 6 * len(skeleton))


def root_slice(skeleton: Skeleton) -> slice:
    """The feature columns of the root block (height, vel_x, vel_z, heading velocity)."""
    return slice(6 * len(skeleton), 6 * len(skeleton) + ROOT_DIM)


def feature_mask(joints, root, skeleton: Skeleton):
    """Which feature columns a mask observes: observed joints (..., T, J) and root positions (..., T), bool, numpy
    or torch → (..., T, D) bool of the same kind.

    A joint's six 6D columns where its rotation is observed. Root block: the height where the root position is
    observed; the planar velocity at t where the root position is observed at t and t - 1 (at t = 0 where it is at
    0); the heading velocity likewise where the moving root's rotation is observed at both frames.
    """
    if isinstance(joints, np.ndarray):
        out = feature_mask(torch.from_numpy(np.asarray(joints, dtype=bool)),
                           torch.from_numpy(np.asarray(root, dtype=bool)), skeleton)
        return out.numpy()
    both = lambda x: x & torch.cat([x[..., :1], x[..., :-1]], -1)
    block = torch.zeros(*root.shape, ROOT_DIM, dtype=torch.bool, device=root.device)
    block[..., ROOT_HEIGHT] = root
    block[..., ROOT_VELOCITY] = both(root)[..., None]
    block[..., ROOT_TURN] = both(joints[..., skeleton.root])
    return torch.cat([joints.repeat_interleave(6, -1), block], -1)  # rot6d_slice, then root_slice


# ---- helpers (torch) -----------------------------------------------------------------------------------------------
def _parent_frame(mats: torch.Tensor, skeleton: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotation (..., 3, 3) and position (..., 3) of the moving root's parent frame, from the ancestors'
    local rotations ``mats`` (..., J, 3, 3) and rest offsets (identity and zero when the root is joint 0)."""
    batch = mats.shape[:-3]
    rot = torch.eye(3, dtype=mats.dtype, device=mats.device).expand(*batch, 3, 3)
    pos = torch.zeros(*batch, 3, dtype=mats.dtype, device=mats.device)
    offsets = torch.as_tensor(skeleton.offsets, dtype=mats.dtype, device=mats.device)
    for a in reversed(skeleton.ancestors(skeleton.root)):  # joint 0 first
        pos = pos + (rot @ offsets[a, :, None])[..., 0]
        rot = rot @ mats[..., a, :, :]
    return rot, pos


def _root_world(motion: Motion) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(local rotation matrices (T, J, 3, 3), root world rotation (T, 3, 3), root world position (T, 3)), float64."""
    mats = R.quat_to_matrix(torch.from_numpy(np.array(motion.rotations, dtype=np.float64)))
    p_rot, p_pos = _parent_frame(mats, motion.skeleton)
    g_rot = p_rot @ mats[:, motion.skeleton.root]
    g_pos = p_pos + (p_rot @ torch.from_numpy(motion.root_positions)[..., None])[..., 0]
    return mats, g_rot, g_pos


# ---- encode --------------------------------------------------------------------------------------------------------
def encode(motion: Motion, dtype=np.float32) -> np.ndarray:
    """Motion → (T, D) features (see the module docstring). Computed in float64, returned as ``dtype``."""
    sk, r = motion.skeleton, motion.skeleton.root
    mats, g_rot, g_pos = _root_world(motion)
    h = heading_angle(R.matrix_to_quat(g_rot))
    sixd = R.matrix_to_6d(mats).clone()
    sixd[:, r] = R.matrix_to_6d(R.yaw_matrix(-h) @ g_rot)
    T = motion.num_frames
    vel = torch.zeros(T, 3, dtype=torch.float64)
    vel[1:] = (R.yaw_matrix(-h[:-1]) @ (g_pos[1:] - g_pos[:-1])[..., None])[..., 0]
    dh = torch.zeros(T, dtype=torch.float64)
    dh[1:] = R.wrap_angle(h[1:] - h[:-1])
    root = torch.stack([g_pos[:, 1], vel[:, 0], vel[:, 2], dh], -1)
    out = torch.cat([sixd.reshape(T, 6 * len(sk)), root], -1)
    return out.numpy().astype(dtype, copy=False)


def origin(motion: Motion) -> np.ndarray:
    """(3,) ``(x, z, heading)`` of the root at frame 0: what `decode` needs to put the motion back in place."""
    _, g_rot, g_pos = _root_world(motion[:1])
    h = heading_angle(R.matrix_to_quat(g_rot))[0]
    return np.array([float(g_pos[0, 0]), float(g_pos[0, 2]), float(h)])


# ---- decode --------------------------------------------------------------------------------------------------------
def _decode(features: torch.Tensor, skeleton: Skeleton, origin_xzh: torch.Tensor | None):
    J, r = len(skeleton), skeleton.root
    if features.shape[-1] != feature_dim(skeleton):
        raise MotionsynthError(f"features have {features.shape[-1]} channels but the skeleton ({J} joints) needs "
                               f"{feature_dim(skeleton)}")
    mats = R.sixd_to_matrix(features[..., rot6d_slice(skeleton)].reshape(*features.shape[:-1], J, 6))
    root = features[..., root_slice(skeleton)]
    height, vel_x, vel_z, dh = root.unbind(-1)
    first = torch.zeros(features.shape[-2], dtype=features.dtype, device=features.device)
    first[0] = 1.0
    later = 1.0 - first  # frame 0's velocities are ignored
    x0: float | torch.Tensor
    z0: float | torch.Tensor
    h0: float | torch.Tensor
    x0 = z0 = h0 = 0.0
    if origin_xzh is not None:
        x0, z0, h0 = origin_xzh.to(features.dtype).unbind(-1)
    h = h0 + torch.cumsum(dh * later, -1)
    h_prev = torch.cat([h[..., :1], h[..., :-1]], -1)
    vel = torch.stack([vel_x * later, torch.zeros_like(vel_x), vel_z * later], -1)
    step = (R.yaw_matrix(h_prev) @ vel[..., None])[..., 0]
    xz = torch.cumsum(step, -2)
    pos = torch.stack([xz[..., 0] + x0, height, xz[..., 2] + z0], -1)
    g_rot = R.yaw_matrix(h) @ mats[..., r, :, :]
    p_rot, p_pos = _parent_frame(mats, skeleton)
    root_rot = p_rot.transpose(-1, -2) @ g_rot
    root_pos = (p_rot.transpose(-1, -2) @ (pos - p_pos)[..., None])[..., 0]
    mats = torch.cat([mats[..., :r, :, :], root_rot[..., None, :, :], mats[..., r + 1:, :, :]], -3)
    return mats, root_pos


def decode_torch(features: torch.Tensor, skeleton: Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable decoding at the canonical origin (x = z = 0, heading 0 at frame 0), for model losses.

    Args:
        features: (..., T, D) tensor.
    Returns:
        (local rotation matrices (..., T, J, 3, 3), root positions (..., T, 3)) — the root position is the root's
        local translation, as in `Motion.root_positions`; pass both (with the skeleton offsets) to `kinematics.fk`.
    """
    return _decode(features, skeleton, None)


def decode(features: np.ndarray, skeleton: Skeleton, fps: float, origin: np.ndarray | None = None,
           labels: dict | None = None, name: str = "") -> Motion:
    """(T, D) features → Motion, starting at ``origin`` = (x, z, heading) of frame 0 (None: 0, 0, 0).

    Rotations are made sign-continuous over time.
    """
    f = torch.from_numpy(np.array(features, dtype=np.float64))
    if f.ndim != 2:
        raise MotionsynthError(f"decode expects (T, D) features, got shape {tuple(f.shape)}")
    o = None if origin is None else torch.from_numpy(np.array(origin, dtype=np.float64).reshape(3))
    mats, root_pos = _decode(f, skeleton, o)
    quats = R.quat_continuous(R.matrix_to_quat(mats), dim=0)
    return Motion(skeleton, quats.numpy(), root_pos.numpy(), fps, labels=dict(labels or {}), name=name)


# ---- normalisation -------------------------------------------------------------------------------------------------
def constant_channels(std):
    """(D,) standard deviations (numpy or torch) → (D,) bool: at the floor ``STD_FLOOR``, i.e. constant in the data
    the statistics came from."""
    return std <= STD_FLOOR * 1.0001


@dataclass(eq=False)
class FeatureStats:
    """Per-channel mean and standard deviation of features, for normalisation.

    Attributes:
        mean: (D,) float32.
        std: (D,) float32, floored at ``STD_FLOOR`` on construction so constant channels divide safely.
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self):
        self.mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        self.std = np.maximum(np.asarray(self.std, dtype=np.float32).reshape(-1), np.float32(STD_FLOOR))
        if self.mean.shape != self.std.shape:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} differ in shape")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()):
            raise ValueError("feature statistics contain NaN or infinity")

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def _like(self, x):
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(self.mean, device=x.device).to(x.dtype),
                    torch.as_tensor(self.std, device=x.device).to(x.dtype))
        dt = x.dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else np.float32
        return self.mean.astype(dt), self.std.astype(dt)

    @property
    def constant(self) -> np.ndarray:
        """(D,) bool: channels constant over the data the statistics came from (`constant_channels`)."""
        return constant_channels(self.std)

    def normalize(self, x):
        """(..., D) numpy array or tensor → (x - mean) / std, same type, dtype and device.

        Channels constant in the statistics' data (a static joint's rotation, a hinge joint's fixed 6D components)
        normalise to 0 whatever their value: they carry no information, and a noisy estimate of them divided by the
        floored std would be amplified ~10⁴× (measured: HM-VAE refinement of 3 cm jitter gave 36 cm without this).
        """
        mean, std = self._like(x)
        out = (x - mean) / std
        keep = ~self.constant
        if isinstance(x, torch.Tensor):
            return out * torch.as_tensor(keep, device=x.device).to(out.dtype)
        return out * keep.astype(out.dtype)

    def denormalize(self, x):
        """Inverse of `normalize`."""
        mean, std = self._like(x)
        return x * std + mean

    @classmethod
    def from_arrays(cls, arrays: Iterable[np.ndarray]) -> FeatureStats:
        """Statistics over all rows of a stream of (T, D) arrays (population std), merged chunk by chunk in float64
        (Chan et al.'s parallel update), so only one array is in memory at a time."""
        n, mean, m2 = 0, None, None
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            if a.ndim != 2:
                raise ValueError(f"expected (T, D) arrays, got shape {a.shape}")
            if a.shape[0] == 0:
                continue
            if mean is not None and a.shape[1] != mean.shape[0]:
                raise ValueError(f"arrays disagree on D: {a.shape[1]} vs {mean.shape[0]}")
            k, a_mean = a.shape[0], a.mean(0)
            a_m2 = ((a - a_mean) ** 2).sum(0)
            if mean is None:
                n, mean, m2 = k, a_mean, a_m2
                continue
            delta, total = a_mean - mean, n + k
            mean = mean + delta * (k / total)
            m2 = m2 + a_m2 + delta ** 2 * (n * k / total)
            n = total
        if mean is None:
            raise MotionsynthError("cannot compute feature statistics from no data")
        return cls(mean=mean, std=np.sqrt(cast(np.ndarray, m2) / n))  # set with mean

    def save(self, path: str | Path) -> None:
        """Write ``mean`` and ``std`` to an .npz file (atomically)."""
        from ..io.atomic import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Read statistics written by `save` (no pickles)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if "mean" not in z or "std" not in z:
                    raise FormatError(f"feature statistics need 'mean' and 'std', found {sorted(z.files)}", str(path))
                if not (np.asarray(z["std"], dtype=np.float64) >= 0).all():
                    raise FormatError("'std' holds negative values", str(path))
                return cls(mean=z["mean"], std=z["std"])
        except FormatError:
            raise
        except NPY_ERRORS as e:
            raise FormatError(f"not a feature statistics file ({e})", str(path)) from None
