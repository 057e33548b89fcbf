"""Rotation conversions, thin over `roma`.

Conventions (the whole project uses these; convert only at file boundaries):

- Quaternions are **unit, scalar-last `(x, y, z, w)`** — the order of `roma` and `scipy.spatial.transform.Rotation`.
- Rotation matrices act on column vectors: ``v_world = R @ v_local``.
- 6D is the first two **columns** of the rotation matrix (Zhou et al. 2019), stored as ``(c0x, c0y, c0z, c1x, c1y, c1z)``.
- Axis-angle is a rotation vector: axis * angle in radians.
- Euler orders follow scipy/roma: upper case (``"ZXY"``) is intrinsic — the BVH convention, where
  ``CHANNELS Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry`` — lower case is extrinsic.

Every function accepts a ``torch.Tensor`` (differentiable, any device/dtype) or a ``numpy.ndarray`` (computed in
float64 and returned as numpy) with arbitrary leading batch dimensions ``(...)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


class _LazyRoma:
    """`roma` imported on first use: it pulls in torch's compiler stack (seconds), which the CLI's start-up and
    numpy-only paths do not need."""

    def __getattr__(self, name):
        import roma as module

        globals()["roma"] = module
        return getattr(module, name)


roma = _LazyRoma()

__all__ = [
    "quat_identity", "quat_normalize", "quat_mul", "quat_inv", "quat_apply", "quat_to_matrix", "matrix_to_quat",
    "quat_to_axis_angle", "axis_angle_to_quat", "matrix_to_6d", "sixd_to_matrix", "quat_to_6d", "sixd_to_quat",
    "euler_to_quat", "quat_to_euler", "slerp", "quat_continuous", "quat_twist_angle", "quat_about_axis",
    "yaw_matrix", "wrap_angle",
]


def _numpy_or_torch(fn):
    """Let a torch implementation take and return numpy arrays too (computed in float64)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any(isinstance(a, np.ndarray) for a in args):
            targs = [torch.from_numpy(np.array(a, dtype=np.float64)) if isinstance(a, np.ndarray) else a for a in args]
            out = fn(*targs, **kwargs)
            return out.numpy() if isinstance(out, torch.Tensor) else out
        return fn(*args, **kwargs)

    return wrapper


def quat_identity(shape: tuple[int, ...] = (), dtype=np.float64) -> np.ndarray:
    """Identity quaternions of shape ``(*shape, 4)`` (numpy)."""
    q = np.zeros((*shape, 4), dtype=dtype)
    q[..., 3] = 1
    return q


@_numpy_or_torch
def quat_normalize(q):
    """(..., 4) → (..., 4) unit quaternions."""
    return roma.quat_normalize(q)


@_numpy_or_torch
def quat_mul(a, b):
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``). Shapes broadcast, (..., 4)."""
    a, b = torch.broadcast_tensors(a, b)
    return roma.quat_product(a, b)


@_numpy_or_torch
def quat_inv(q):
    """Inverse of unit quaternions (the conjugate), (..., 4)."""
    return roma.quat_conjugation(q)


@_numpy_or_torch
def quat_apply(q, v):
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4); shapes broadcast."""
    q, v = torch.broadcast_tensors(q, torch.cat([v, torch.zeros_like(v[..., :1])], dim=-1))
    return roma.quat_action(q, v[..., :3], is_normalized=True)


@_numpy_or_torch
def quat_to_matrix(q):
    """(..., 4) unit quaternions → (..., 3, 3) rotation matrices."""
    return roma.unitquat_to_rotmat(q)


@_numpy_or_torch
def matrix_to_quat(m):
    """(..., 3, 3) rotation matrices → (..., 4) unit quaternions (sign chosen with w ≥ 0)."""
    q = roma.rotmat_to_unitquat(m)
    return torch.where(q[..., 3:] < 0, -q, q)


@_numpy_or_torch
def quat_to_axis_angle(q):
    """(..., 4) → (..., 3) rotation vectors with angle in [0, π]."""
    return roma.unitquat_to_rotvec(q, shortest_arc=True)


@_numpy_or_torch
def axis_angle_to_quat(v):
    """(..., 3) rotation vectors → (..., 4) unit quaternions."""
    return roma.rotvec_to_unitquat(v)


@_numpy_or_torch
def matrix_to_6d(m):
    """(..., 3, 3) → (..., 6): the first two columns, column-major."""
    return m[..., :, :2].transpose(-1, -2).reshape(*m.shape[:-2], 6)


@_numpy_or_torch
def sixd_to_matrix(d6):
    """(..., 6) → (..., 3, 3) by Gram–Schmidt; any non-degenerate input maps to a proper rotation."""
    cols = d6.reshape(*d6.shape[:-1], 2, 3).transpose(-1, -2)
    return roma.special_gramschmidt(cols)


def quat_to_6d(q):
    """(..., 4) → (..., 6)."""
    return matrix_to_6d(quat_to_matrix(q))


def sixd_to_quat(d6):
    """(..., 6) → (..., 4)."""
    return matrix_to_quat(sixd_to_matrix(d6))


def euler_to_quat(angles, order: str, degrees: bool = False):
    """(..., 3) Euler angles, ``angles[..., i]`` about axis ``order[i]`` → (..., 4).

    ``order`` is three letters; upper case is intrinsic (BVH), lower case extrinsic.
    """
    if isinstance(angles, np.ndarray):
        return _euler_to_quat_numpy(np.asarray(angles, dtype=np.float64), order, degrees)
    return roma.euler_to_unitquat(order, angles, degrees=degrees)


def _euler_to_quat_numpy(angles: np.ndarray, order: str, degrees: bool) -> np.ndarray:
    """Numpy path of `euler_to_quat`: products of per-axis half-angle quaternions (BVH reading's hot spot)."""
    half = (np.deg2rad(angles) if degrees else angles) / 2
    axis_quats = []
    for i, letter in enumerate(order):
        q = np.zeros((*angles.shape[:-1], 4))
        q[..., "xyz".index(letter.lower())] = np.sin(half[..., i])
        q[..., 3] = np.cos(half[..., i])
        axis_quats.append(q)
    if order.islower():  # extrinsic: the first axis is applied first, in the fixed frame
        axis_quats = axis_quats[::-1]
    out = axis_quats[0]
    for q in axis_quats[1:]:
        out = _quat_mul_numpy(out, q)
    return out


def _quat_mul_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_to_euler(q, order: str, degrees: bool = False):
    """(..., 4) → (..., 3) Euler angles in ``order`` (see `euler_to_quat`)."""
    if isinstance(q, np.ndarray):
        return quat_to_euler(torch.from_numpy(np.array(q, dtype=np.float64)), order, degrees).numpy()
    angles = roma.unitquat_to_euler(order, q, degrees=degrees)
    return torch.stack(list(angles), dim=-1) if isinstance(angles, (list, tuple)) else angles


@_numpy_or_torch
def slerp(q0, q1, t):
    """Spherical linear interpolation along the shortest arc.

    q0, q1: (..., 4); t: broadcastable to (...) — 0 gives q0, 1 gives q1.
    """
    q0, q1 = torch.broadcast_tensors(q0, q1)
    t = torch.as_tensor(t, dtype=q0.dtype, device=q0.device)
    delta = roma.unitquat_to_rotvec(roma.quat_product(roma.quat_conjugation(q0), q1), shortest_arc=True)
    return roma.quat_product(q0, roma.rotvec_to_unitquat(delta * t[..., None]))


@_numpy_or_torch
def quat_continuous(q, dim: int = 0):
    """Flip signs along ``dim`` (time) so consecutive quaternions have non-negative dot products. Same shape."""
    q = q.movedim(dim, 0)
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(q.dtype), dim=0)
    q = torch.cat([q[:1], q[1:] * flips[..., None]], dim=0)
    return q.movedim(0, dim)


@_numpy_or_torch
def quat_twist_angle(q, axis):
    """Angle (radians, in (-π, π]) of the twist of ``q`` about the unit ``axis`` (3,) — the swing–twist split.

    For a rotation about ``axis`` alone this is its angle. Used to find a character's heading about the up axis.
    """
    axis = axis.to(q.dtype)
    angle = 2 * torch.atan2((q[..., :3] * axis).sum(-1), q[..., 3])
    return wrap_angle(angle)


@_numpy_or_torch
def quat_about_axis(angle, axis):
    """Quaternions rotating by ``angle`` (...) radians about the unit ``axis`` (3,) → (..., 4)."""
    axis = axis.to(angle.dtype)
    half = angle[..., None] / 2
    return torch.cat([torch.sin(half) * axis, torch.cos(half)], dim=-1)


@_numpy_or_torch
def yaw_matrix(angle):
    """(...) angles (radians) → (..., 3, 3) rotation matrices about +Y, the up axis (a heading turn)."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([torch.stack([c, zero, s], -1), torch.stack([zero, one, zero], -1),
                        torch.stack([-s, zero, c], -1)], -2)


@_numpy_or_torch
def wrap_angle(angle):
    """Angles (radians) wrapped to (-π, π]."""
    return torch.atan2(torch.sin(angle), torch.cos(angle))
