"""AMASS ``.npz`` reader: SMPL / SMPL-H / SMPL-X pose sequences → `Motion` on the 22-joint SMPL body.

An AMASS file holds ``poses`` (T, 3·K) axis-angle rotations per joint in SMPL order (K = 24 for SMPL, 52 for SMPL-H,
55 for SMPL-X; the first 22 joints are the body, the rest hands / jaw / eyes and are dropped), ``trans`` (T, 3) in
metres, ``mocap_framerate`` (SMPL-H) or ``mocap_frame_rate`` (SMPL-X), ``betas`` and optionally ``gender``.

Conversion to the project's conventions:

- **Axes.** AMASS worlds are Z up; the project is +Y up. Every world quantity is rotated by the fixed rotation
  ``C = Rx(-90°)`` — ``(x, y, z) → (x, z, -y)`` — i.e. the root (pelvis) rotation becomes ``C · R_root`` and the root
  position ``C · p``. SMPL's own body frame is already Y up and faces +Z (left is +X), so with an upright AMASS
  pelvis (``R_root ≈ Rx(+90°)``) the converted root rotation is about the identity. The one helper that does this
  for every SMPL layout is `smpl_to_motion` (its inverse `motion_to_smpl`), with the world's axes named by
  `SMPL_AXES`: ``"z-up"`` (AMASS), ``"camera"`` (a video estimator's camera frame: X right, Y down, Z forward;
  ``C = Rx(180°)``, ``(x, y, z) → (x, -y, -z)``) or ``"y-up"`` (already the project's axes; ``C`` = identity).
- **Units.** Metres → centimetres (× 100).
- **Root position.** SMPL places the pelvis at ``trans + J_pelvis`` (the rest pelvis joint is added *without* the
  root rotation), so ``root_positions = 100 · C · (trans + J_pelvis)``.
- **Skeleton.** ``offsets[j] = 100 · (J_j − J_parent(j))`` of the rest joints J, in the SMPL body frame; the root's
  offset is the rest pelvis position. Local joint rotations are the file's axis-angles unchanged (SMPL's rest pose is
  the identity).

Rest joints: exact ones need the SMPL body model, so with ``body_model_dir`` and the optional ``smplx`` package
(``pip install motionsynth[smpl]``) they are computed from the file's ``betas`` (``J = J_regressor · (v_template +
shapedirs · betas)``). Otherwise a built-in table is used: the neutral SMPL template's joints, **approximate** values
(rounded to ~1 mm) of the SMPL neutral model's regressed rest joints — fine for learning and viewing, but bone lengths
then ignore the subject's shape.

Size: the headers of the arrays read are checked before any is loaded (`npz.array_headers`, shared with the project's
npz reader): ``poses`` (T, 3·K) may hold at most `limits.max_joint_frames()` frames × K joints (the file's joints,
hands included, since the whole array is read), so a small compressed file of millions of frames is refused with
`limits.LimitError` instead of taking gigabytes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .. import limits
from .. import rotations as R
from ..errors import FormatError, InvalidMotionError
from ..motion import Motion
from ..skeleton import Skeleton
from .npz import NPY_ERRORS, array_headers, check_array_bytes

__all__ = ["SMPL_BODY_NAMES", "SMPL_BODY_PARENTS", "SMPL_NEUTRAL_REST_JOINTS", "Z_UP_TO_Y_UP", "SMPL_AXES",
           "smpl_skeleton", "is_smpl_body", "smpl_to_motion", "motion_to_smpl", "read_amass"]

SMPL_BODY_NAMES = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle", "right_ankle",
    "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
]
"""The 22 SMPL body joints in SMPL order (already topological: every parent index is smaller than its child's)."""

SMPL_BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
"""Parents of `SMPL_BODY_NAMES` (SMPL's ``kintree_table`` restricted to the body)."""

SMPL_NEUTRAL_REST_JOINTS = np.array([
    [-0.0018, -0.2233, 0.0282],  # pelvis
    [0.0695, -0.3127, 0.0236],  # left_hip
    [-0.0678, -0.3132, 0.0212],  # right_hip
    [-0.0043, -0.1144, 0.0015],  # spine1
    [0.1022, -0.6890, 0.0169],  # left_knee
    [-0.1079, -0.6961, 0.0150],  # right_knee
    [0.0012, 0.0208, 0.0026],  # spine2
    [0.0885, -1.0875, -0.0267],  # left_ankle
    [-0.0919, -1.0948, -0.0273],  # right_ankle
    [0.0023, 0.0737, 0.0280],  # spine3
    [0.1148, -1.1437, 0.0925],  # left_foot
    [-0.1176, -1.1430, 0.0961],  # right_foot
    [-0.0003, 0.2874, -0.0154],  # neck
    [0.0814, 0.1956, -0.0055],  # left_collar
    [-0.0791, 0.1923, -0.0109],  # right_collar
    [0.0046, 0.3528, 0.0355],  # head
    [0.1724, 0.2260, -0.0156],  # left_shoulder
    [-0.1752, 0.2255, -0.0196],  # right_shoulder
    [0.4324, 0.2131, -0.0426],  # left_elbow
    [-0.4289, 0.2118, -0.0411],  # right_elbow
    [0.6872, 0.2220, -0.0433],  # left_wrist
    [-0.6896, 0.2204, -0.0475],  # right_wrist
])
"""(22, 3) approximate rest joint positions (metres, SMPL body frame: Y up, facing +Z) of the neutral SMPL model."""

Z_UP_TO_Y_UP = R.axis_angle_to_quat(np.array([-np.pi / 2, 0.0, 0.0]))
"""Quaternion of Rx(-90°): maps AMASS's Z-up world to the project's Y-up world, (x, y, z) → (x, z, -y)."""

SMPL_AXES = {
    "z-up": Z_UP_TO_Y_UP,
    "camera": R.axis_angle_to_quat(np.array([np.pi, 0.0, 0.0])),
    "y-up": R.quat_identity(),
}
"""World axes of SMPL parameters → the quaternion taking that world to the project's (+Y up): ``"z-up"`` (AMASS,
Rx(-90°)), ``"camera"`` (video estimators: X right, Y down, Z forward; Rx(180°), (x, y, z) → (x, -y, -z)),
``"y-up"`` (identity)."""

_WIDTHS = {66: "smpl-body", 72: "smpl", 156: "smplh", 165: "smplx"}
_USED = ("poses", "trans", "mocap_framerate", "mocap_frame_rate", "betas", "gender")
"""The arrays read; others (``dmpls``, ``marker_data``…, possibly object arrays) are never loaded."""
_MAX_ANGLE = 1e4
"""Largest accepted axis-angle component (radians): real data stays within a few π; beyond this a file is garbage
(×1e300 values would otherwise turn into NaN quaternions)."""
_MAX_TRANS = 1e6
"""Largest accepted ``trans`` component (metres)."""
_NUM_BODY = len(SMPL_BODY_NAMES)


def smpl_skeleton(rest_joints: np.ndarray | None = None) -> Skeleton:
    """The 22-joint SMPL body skeleton in cm from rest joints (22, 3) in metres (default: the built-in neutral
    table). Root = pelvis (joint 0); channels: root positions + ZYX rotations, others ZYX rotations."""
    joints = SMPL_NEUTRAL_REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    parents = np.array(SMPL_BODY_PARENTS)
    offsets = joints.copy()
    offsets[1:] = joints[1:] - joints[parents[1:]]
    return Skeleton(SMPL_BODY_NAMES, parents, offsets * 100.0, root=0)


def is_smpl_body(skeleton: Skeleton) -> bool:
    """Whether ``skeleton`` is the 22-joint SMPL body — the joints of `SMPL_BODY_NAMES` with the parents of
    `SMPL_BODY_PARENTS`, root = pelvis, in any order (a BVH file lists them depth first) and whatever its bone
    lengths: what `motion_to_smpl` converts without retargeting."""
    return _smpl_order(skeleton) is not None


def _smpl_order(skeleton: Skeleton) -> list[int] | None:
    """The skeleton's index of each SMPL body joint, in SMPL order; None unless it is the SMPL body."""
    names = list(skeleton.names)
    if len(names) != _NUM_BODY or set(names) != set(SMPL_BODY_NAMES):
        return None
    order = [names.index(n) for n in SMPL_BODY_NAMES]
    parents = np.asarray(skeleton.parents)
    for j, p in zip(order, SMPL_BODY_PARENTS):
        if (p < 0) != (parents[j] < 0) or (p >= 0 and parents[j] != order[p]):
            return None
    return order if skeleton.root == order[0] else None


def smpl_to_motion(rotations: np.ndarray, trans: np.ndarray, fps: float, *, axes: str = "z-up",
                   rest_joints: np.ndarray | None = None, name: str = "", where: str | None = None) -> Motion:
    """SMPL body parameters → a `Motion` on `smpl_skeleton` (+Y up, cm): the one conversion every SMPL reader uses.

    Args:
        rotations: (T, 22, 4) quaternions (x, y, z, w): the SMPL body joints' local rotations, joint 0 (pelvis) the
            global orientation in the file's world.
        trans: (T, 3) SMPL ``trans`` / ``transl`` in metres, in the file's world (pelvis = ``trans`` + rest pelvis).
        fps: frames per second.
        axes: the file's world axes, a key of `SMPL_AXES`.
        rest_joints: (22, 3) rest joints in metres (default: the built-in neutral table).
        where: the file, named by a `FormatError` when the values cannot make a motion.
    Returns:
        The motion: root rotation ``C · R_root``, root positions ``100 · C · (trans + J_pelvis)``, other joints
        unchanged (``C`` = ``SMPL_AXES[axes]``); quaternion signs made continuous over time.
    """
    rest = SMPL_NEUTRAL_REST_JOINTS if rest_joints is None else np.asarray(rest_joints, dtype=np.float64)
    C = SMPL_AXES[axes]
    rotations = np.array(rotations, dtype=np.float64)
    rotations[:, 0] = R.quat_mul(C, rotations[:, 0])
    root_positions = R.quat_apply(C, np.asarray(trans, dtype=np.float64) + rest[0]) * 100.0
    try:
        return Motion(smpl_skeleton(rest), R.quat_continuous(rotations, dim=0), root_positions, fps, name=name)
    except InvalidMotionError as e:  # values the readers' bounds let through but the conversion could not use
        raise FormatError(f"{str(e).removeprefix(f'motion {name!r}: ')} after conversion", where) from None


def motion_to_smpl(motion: Motion, axes: str = "z-up") -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `smpl_to_motion` for a motion on the SMPL body (`is_smpl_body`, joints in any order; cm, +Y up).

    Returns:
        ``(pose, trans)``: pose (T, 22, 3) axis-angle rotations (radians, angles in [0, π]) of the SMPL body joints,
        joint 0 the global orientation in the ``axes`` world; trans (T, 3) metres in that world,
        ``C⁻¹ · root_positions / 100 − J_pelvis`` with ``J_pelvis`` the skeleton's root offset / 100 (its rest pelvis).
    Raises:
        ValueError: the motion is not on the SMPL body.
    """
    order = _smpl_order(motion.skeleton)
    if order is None:
        raise ValueError(f"motion {motion.name!r} is not on the 22-joint SMPL body")
    C_inv = R.quat_inv(SMPL_AXES[axes])
    rotations = np.array(motion.rotations[:, order], dtype=np.float64)
    rotations[:, 0] = R.quat_mul(C_inv, rotations[:, 0])
    pose = R.quat_to_axis_angle(R.quat_normalize(rotations))
    trans = R.quat_apply(C_inv, motion.root_positions / 100.0) - motion.skeleton.offsets[order[0]] / 100.0
    return pose, trans


def _rest_joints_from_model(body_model_dir: str | os.PathLike, model_type: str, gender: str,
                            betas: np.ndarray) -> np.ndarray | None:
    """(22, 3) rest joints (metres) for ``betas`` via ``smplx`` (imported lazily; optional dependency), or None
    with a warning when ``smplx`` is not installed."""
    try:
        import smplx
    except ImportError:
        warnings.warn("body_model_dir given but the optional 'smplx' package is not installed "
                      "(pip install motionsynth[smpl]); using the built-in approximate neutral SMPL skeleton",
                      stacklevel=3)
        return None
    import torch

    model_type = {"smpl-body": "smpl"}.get(model_type, model_type)
    try:
        model = smplx.create(str(body_model_dir), model_type=model_type, gender=gender, num_betas=len(betas))
    except Exception as e:  # smplx raises assorted errors for missing/invalid model files
        raise FormatError(f"cannot load the {model_type} {gender} body model from {body_model_dir}: {e}") from None
    with torch.no_grad():
        shapedirs = torch.as_tensor(model.shapedirs)
        nb = min(len(betas), shapedirs.shape[-1])
        b = torch.as_tensor(betas[:nb], dtype=shapedirs.dtype)
        v = torch.as_tensor(model.v_template) + torch.einsum("vcb,b->vc", shapedirs[..., :nb], b)
        joints = torch.as_tensor(model.J_regressor).to(v.dtype) @ v
    return joints[:_NUM_BODY].double().numpy()


def read_amass(path: str | os.PathLike, body_model_dir: str | os.PathLike | None = None) -> Motion:
    """Read an AMASS .npz into a Motion on the 22-joint SMPL body (Y up, cm; see the module docstring).

    Args:
        path: the .npz file.
        body_model_dir: folder of SMPL/SMPL-H/SMPL-X model files (as ``smplx.create`` expects). When given and
            ``smplx`` is installed, bone lengths follow the file's ``betas``; otherwise (with a warning when the folder
            was given but ``smplx`` is missing) the built-in neutral skeleton.
    Raises:
        FormatError (naming the file and the array): not an npz, missing keys, arrays that would need unpickling
            (``np.load`` runs with ``allow_pickle=False``; only the arrays used are read), text or other non-numbers
            where numbers belong, wrong ``poses`` width or ``trans`` shape, a frame rate that is not one finite
            positive number, NaN / infinite values or values beyond ±1e4 rad (``poses``) / ±1e6 m (``trans``), or
            values that convert to NaN; array headers that disagree with the bytes held (see `npz.array_header`).
        limits.LimitError: ``poses`` (T, 3·K) of more than `limits.max_joint_frames()` frames × K joints (the file's
            joint count, hands included: the whole array is read), checked from the headers before any array is read.
    """
    path = Path(path)
    where = str(path)
    _check_size(array_headers(path, _USED), where)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            data = {k: npz_array(z, k, where) for k in keys if k in _USED}
    except FormatError:
        raise
    except FileNotFoundError:
        raise FormatError("no such file", where) from None
    except NPY_ERRORS as e:
        raise FormatError(f"not a readable .npz file ({e})", where) from None
    for key in ("poses", "trans"):
        if key not in data:
            raise FormatError(f"AMASS file lacks '{key}' (has {sorted(keys)})", where)
    rate_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in data), None)
    if rate_key is None:
        raise FormatError(f"AMASS file lacks 'mocap_framerate' / 'mocap_frame_rate' (has {sorted(keys)})", where)
    poses = _numbers(data, "poses", where)
    trans = _numbers(data, "trans", where)
    if poses.ndim != 2 or poses.shape[1] not in _WIDTHS:
        raise FormatError(f"'poses' must be (T, 72) SMPL, (T, 156) SMPL-H or (T, 165) SMPL-X, got {poses.shape}",
                          where)
    if trans.shape != (poses.shape[0], 3):
        raise FormatError(f"'trans' must be ({poses.shape[0]}, 3) to match 'poses', got {trans.shape}", where)
    if poses.shape[0] == 0:
        raise FormatError("AMASS file has no frames", where)
    rate = _numbers(data, rate_key, where)
    if rate.size != 1:
        raise FormatError(f"'{rate_key}' must be one number, got shape {rate.shape}", where)
    fps = float(rate.reshape(-1)[0])
    if not (np.isfinite(fps) and fps > 0 and np.isfinite(1.0 / fps)):
        raise FormatError(f"'{rate_key}' must be a positive frame rate, got {fps}", where)
    for key, arr, limit, unit in (("poses", poses, _MAX_ANGLE, "rad"), ("trans", trans, _MAX_TRANS, "m")):
        if not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr).reshape(len(arr), -1).all(1))[0])
            raise FormatError(f"'{key}' has NaN or infinite values (first at frame {bad})", where)
        if np.abs(arr).max() > limit:
            bad = int(np.flatnonzero((np.abs(arr) > limit).reshape(len(arr), -1).any(1))[0])
            raise FormatError(f"'{key}' has values beyond ±{limit:g} {unit}, which are not motion capture "
                              f"(first at frame {bad}, largest {np.abs(arr).max():.3g})", where)

    rest = SMPL_NEUTRAL_REST_JOINTS
    if body_model_dir is not None:
        betas = _numbers(data, "betas", where).reshape(-1) if "betas" in data else np.zeros(10)
        if not np.isfinite(betas).all():
            raise FormatError("'betas' has NaN or infinite values", where)
        gender = _text(data["gender"], "gender", where) if "gender" in data else "neutral"
        exact = _rest_joints_from_model(body_model_dir, _WIDTHS[poses.shape[1]], gender, betas)
        rest = rest if exact is None else exact
    T = poses.shape[0]
    rotations = R.axis_angle_to_quat(poses[:, : 3 * _NUM_BODY].reshape(T, _NUM_BODY, 3))
    return smpl_to_motion(rotations, trans, fps, axes="z-up", rest_joints=rest, name=path.stem, where=where)


def _check_size(headers: dict, where: str) -> None:
    """`limits.LimitError` when the header of ``poses`` (T, 3·K) claims more than the limit's T × K joint-frames, or
    any array read more bytes than a motion of the limit (`npz.check_array_bytes`)."""
    poses = headers.get("poses")
    if poses is not None and len(poses.shape) == 2:
        frames, width = poses.shape
        limits.check_joint_frames(frames, max(1, width // 3), f"{where}: 'poses'")
    check_array_bytes(headers, where)


def npz_array(z, key: str, where: str) -> np.ndarray:
    """Array ``key`` of an npz opened with ``allow_pickle=False``; `FormatError` naming it when unreadable."""
    try:
        return z[key]
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise FormatError(f"'{key}' holds pickled Python objects, which are never loaded", where) from None
        raise FormatError(f"'{key}' is not a readable array ({e})", where) from None
    except NPY_ERRORS as e:
        raise FormatError(f"'{key}' is damaged ({type(e).__name__}: {e})", where) from None


def _numbers(data: dict, key: str, where: str) -> np.ndarray:
    """``data[key]`` as float64; `FormatError` naming the key unless it holds (real) numbers."""
    a = data[key]
    if a.dtype.kind not in "iuf":
        raise FormatError(f"'{key}' must hold numbers, got {a.dtype} values of shape {a.shape}", where)
    return np.asarray(a, dtype=np.float64)


def _text(a: np.ndarray, key: str, where: str) -> str:
    """One text value (str or bytes array), e.g. ``gender``."""
    if a.dtype.kind not in "US" or a.size != 1:
        raise FormatError(f"'{key}' must be one text value, got {a.dtype} values of shape {a.shape}", where)
    v = a.reshape(-1)[0].item()
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
