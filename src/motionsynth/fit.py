"""Fit a skeleton and its motion to per-frame 3D keypoints, and give the keypoints back from a motion.

`fit_motion` turns (T, K, 3) positions of a layout (`io.keypoints.LAYOUTS`: metres, +Y up) into a `Motion` on a
skeleton built for them, so that every task can run on pose-estimator output; `motion_keypoints` is its inverse.

The fitted skeleton (the layout's `JointSpec` tree; SMPL-style names: ``pelvis``, ``left_hip`` …, ``head_top``):

- **Rest pose**: the canonical T-pose of the layout's ``template`` (+Y up, facing +Z, the subject's left on +X, as
  SMPL's rest pose); all rest rotations are the identity. The root's offset stands the rest pose on y = 0.
- **Bone lengths**: the bone a joint aims along (``aim`` = the child's points, no ``origin``) gets the **median
  over frames** of
  the observed per-frame length, along the template's direction — robust to spikes and to per-frame length noise.
- **Other offsets** (a branching joint's other children — the hips under the pelvis, the shoulders under the chest —
  and points the tree does not aim at: eyes, ears, heel, finger tips): the **per-coordinate median over frames** of
  the observed offset expressed in the parent's fitted frame, so that rigid parts come back exactly.
- **Symmetric** (default): each left/right pair of offsets is averaged (the right mirrored by x → −x), centre
  joints' offsets get x = 0 — a symmetric rig whatever the estimator's left/right bias.

Per frame (vectorised over frames, one pass over the joints in topological order), each joint's local rotation:

- with a ``twist`` direction: the rotation taking the rest frame (aim, twist) onto the observed one (both
  orthonormalised by Gram–Schmidt on the aim), relative to the parent's fitted rotation; frames where the two
  directions are within `MIN_TWIST_SIN` of parallel (or a direction vanishes) fall back to —
- without one: the minimal rotation taking the rest bone direction onto the observed one in the parent's frame
  (the parent's twist carried on);
- a leaf: the identity (it turns with its parent).

A joint whose aim has an ``origin`` (the chest, framed by the spine below it) is rotated so that its frame follows
that bone and its twist direction; motions that bend it away from that bone are not observable from the points.
Root position = the observed pelvis (the root joint's points). Units: positions in metres in and out; the motion is
in centimetres, the project's unit. Quaternions (x, y, z, w), through `motionsynth.rotations`.

For data whose bone lengths are constant (a motion's own forward kinematics) the fit is exact: `motion_keypoints`
returns the input to floating-point precision, and joints with a twist direction get their rotations back.
"""

from __future__ import annotations

import numpy as np

from . import limits
from . import rotations as R
from .errors import InvalidMotionError, SkeletonMismatchError
from .io.keypoints import Layout, get_layout
from .kinematics import fk
from .motion import Motion
from .skeleton import Skeleton

__all__ = ["fit_motion", "motion_keypoints", "rest_skeleton", "MIN_TWIST_SIN"]

MIN_TWIST_SIN = 0.05
"""A twist direction within asin(0.05) ≈ 3° of the bone (or of zero length) does not fix the twist that frame."""
_EPS = 1e-9
_MIRROR = np.array([-1.0, 1.0, 1.0])


def fit_motion(positions: np.ndarray, layout: str | Layout, fps: float, name: str = "",
               symmetric: bool = True) -> Motion:
    """(T, K, 3) keypoints of ``layout`` in metres, +Y up → a `Motion` (cm) on a skeleton fitted to them.

    See the module docstring for the skeleton and the rotations. Raises `InvalidMotionError` for positions of the
    wrong shape or with non-finite values (read files with `io.keypoints.read_keypoints`, which fills short gaps),
    `limits.LimitError` for too many frames.
    """
    lay = get_layout(layout)
    x = _checked(positions, lay)
    joints = _joint_positions(x, lay)
    glob, local = _rotations(x, joints, lay)
    offsets = _offsets(x, joints, glob, lay)
    if symmetric:
        offsets = _symmetrise(offsets, lay)
    skeleton = _skeleton(offsets, lay)
    return Motion(skeleton, R.quat_continuous(local, dim=0), joints[:, 0] * 100.0, fps, name=name)


def motion_keypoints(motion: Motion, layout: str | Layout) -> np.ndarray:
    """The keypoints (T, K, 3), metres, +Y up, of ``layout`` for a motion on that layout's fitted skeleton (by joint
    names: every point is one joint; `SkeletonMismatchError` naming the joints missing)."""
    lay = get_layout(layout)
    names = [lay.joints[j].name for j in lay.point_joints]
    if missing := [n for n in names if n not in motion.skeleton.names]:
        raise SkeletonMismatchError(f"the motion's skeleton lacks the joints of layout {lay.name!r}: {missing}; "
                                    f"fit it with fit_motion (or retarget it) first")
    index = [motion.skeleton.index(n) for n in names]
    return motion.global_positions()[:, index] / 100.0


def rest_skeleton(layout: str | Layout) -> Skeleton:
    """The skeleton fitted to the layout's own template (its canonical T-pose body, cm)."""
    lay = get_layout(layout)
    return fit_motion(lay.template[None], lay, 30.0).skeleton


# ---- steps ------------------------------------------------------------------------------------------------------
def _checked(positions: np.ndarray, lay: Layout) -> np.ndarray:
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (lay.num_points, 3) or len(x) == 0:
        raise InvalidMotionError(f"keypoints of layout {lay.name!r} must be (frames ≥ 1, {lay.num_points}, 3), "
                                 f"got {x.shape}")
    limits.check_joint_frames(len(x), len(lay.joints), "the keypoints")
    if not np.isfinite(x).all():
        t, k = np.nonzero(~np.isfinite(x).all(-1))
        raise InvalidMotionError(f"keypoints hold NaN or infinite values ({len(np.unique(t))} frames, first at "
                                 f"frame {t[0]}, point {lay.points[k[0]]!r}); fill or drop them first")
    return x


def _mean(x: np.ndarray, lay: Layout, points: tuple[str, ...]) -> np.ndarray:
    """(..., K, 3) → (..., 3): the mean of the named points."""
    return x[..., lay.indices(points), :].mean(-2)


def _joint_positions(x: np.ndarray, lay: Layout) -> np.ndarray:
    """(..., K, 3) keypoints → (..., J, 3) joint positions (each the mean of its points)."""
    return np.stack([_mean(x, lay, j.points) for j in lay.joints], -2)


def _rotations(x: np.ndarray, joints: np.ndarray, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Global and local rotations (T, J, 4) of every joint, parents first (see the module docstring)."""
    T, J = len(x), len(lay.joints)
    rest_x, rest_joints = lay.template, _joint_positions(lay.template, lay)
    glob, local = R.quat_identity((T, J)), R.quat_identity((T, J))
    for j, (spec, p) in enumerate(zip(lay.joints, lay.parents)):
        parent = glob[:, p] if p >= 0 else R.quat_identity((T,))
        if spec.aim:
            rest_aim = _mean(rest_x, lay, spec.aim) - (_mean(rest_x, lay, spec.origin) if spec.origin else rest_joints[j])
            aim = _mean(x, lay, spec.aim) - (_mean(x, lay, spec.origin) if spec.origin else joints[:, j])
            local[:, j] = _min_rotation(rest_aim, R.quat_apply(R.quat_inv(parent), aim))
            if spec.twist is not None:
                rest_twist = _mean(rest_x, lay, spec.twist[0]) - _mean(rest_x, lay, spec.twist[1])
                twist = _mean(x, lay, spec.twist[0]) - _mean(x, lay, spec.twist[1])
                frame, ok = _frame_rotation(rest_aim, rest_twist, aim, twist)
                local[ok, j] = R.quat_mul(R.quat_inv(parent[ok]), frame[ok])
        glob[:, j] = R.quat_mul(parent, local[:, j])
    return glob, local


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction ``a`` (3,) onto each direction ``b`` (T, 3) → (T, 4); the identity
    where ``b`` vanishes, a half turn about an axis perpendicular to ``a`` where ``b`` is opposite."""
    a = a / np.linalg.norm(a)
    cross, dot = np.cross(a, b), b @ a
    s, n = np.linalg.norm(cross, axis=-1), np.linalg.norm(b, axis=-1)
    angle = np.where(n > _EPS, np.arctan2(s, dot), 0.0)
    axis = np.where((s > _EPS * np.maximum(n, 1.0))[:, None], cross / np.maximum(s, _EPS)[:, None], _perpendicular(a))
    return R.axis_angle_to_quat(axis * angle[:, None])


def _perpendicular(a: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to the unit vector ``a`` (3,)."""
    c = np.cross(a, np.eye(3)[np.argmin(np.abs(a))])
    return c / np.linalg.norm(c)


def _frame_rotation(rest_aim: np.ndarray, rest_twist: np.ndarray, aim: np.ndarray,
                    twist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The global rotation (T, 4) taking the rest frame (aim, twist) onto each observed one, and (T,) where the
    observed pair fixes a frame (neither vanishes nor are they within `MIN_TWIST_SIN` of parallel)."""
    sin = np.linalg.norm(np.cross(aim, twist), axis=-1)
    ok = sin > MIN_TWIST_SIN * np.linalg.norm(aim, axis=-1) * np.linalg.norm(twist, axis=-1) + _EPS
    pair = np.where(ok[:, None], np.concatenate([aim, twist], -1), np.concatenate([rest_aim, rest_twist]))
    observed = R.sixd_to_matrix(pair)
    rest = R.sixd_to_matrix(np.concatenate([rest_aim, rest_twist]))
    return R.matrix_to_quat(observed @ rest.T), ok


def _offsets(x: np.ndarray, joints: np.ndarray, glob: np.ndarray, lay: Layout) -> np.ndarray:
    """(J, 3) rest offsets in metres (the root's is filled in by `_skeleton`): median lengths along the template's
    directions for aimed-at children, medians in the parent's frame for the others."""
    rest_joints = _joint_positions(lay.template, lay)
    offsets = np.zeros((len(lay.joints), 3))
    for c, (spec, p) in enumerate(zip(lay.joints, lay.parents)):
        if p < 0:
            continue
        seen = joints[:, c] - joints[:, p]
        if lay.joints[p].aim == spec.points and not lay.joints[p].origin:
            direction = rest_joints[c] - rest_joints[p]
            offsets[c] = np.median(np.linalg.norm(seen, axis=-1)) * direction / np.linalg.norm(direction)
        else:
            offsets[c] = np.median(R.quat_apply(R.quat_inv(glob[:, p]), seen), axis=0)
    return offsets


def _symmetrise(offsets: np.ndarray, lay: Layout) -> np.ndarray:
    """Average each offset with its mirror joint's, mirrored (x → −x); centre joints get x = 0."""
    mirror = Skeleton(lay.joint_names, np.array(lay.parents), offsets).symmetry
    out = (offsets + offsets[mirror] * _MIRROR) / 2
    out[0] = offsets[0]
    return out


def _skeleton(offsets: np.ndarray, lay: Layout) -> Skeleton:
    """The fitted skeleton in cm; the root offset stands the rest pose on y = 0 (it is replaced by the motion's
    root positions when animated)."""
    _, rest = fk(R.quat_identity((len(offsets),)), offsets, np.array(lay.parents))
    offsets = offsets.copy()
    offsets[0] = [0.0, -rest[:, 1].min(), 0.0]
    return Skeleton(lay.joint_names, np.array(lay.parents), offsets * 100.0, root=0)
