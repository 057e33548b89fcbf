"""SMPL parameter files beyond AMASS's ``poses`` layout (video pose estimators, smplx, AMASS SMPL-X keys), ``.pkl``
read safely, and SMPL parameters written back as an AMASS-style ``.npz``.

**Reading** (`read_smpl`; `io.load_motion` sends every ``.pkl`` here, and every ``.npz`` that is neither the
project's motion file nor an AMASS ``poses`` file). One person's sequence of T frames, as a dict of arrays (float32
or float64), in one of these layouts — the first that fits wins:

- AMASS SMPL-X keys: ``root_orient`` (T, 3) + ``pose_body`` (T, 63) axis-angles, ``trans`` (T, 3); ``pose_hand``,
  ``pose_jaw``, ``pose_eye`` are ignored. World: **Z up** (as AMASS).
- smplx / estimator keys: ``global_orient`` (T, 3), (T, 1, 3), (T, 3, 3) or (T, 1, 3, 3) + ``body_pose`` (T, 69),
  (T, 63), (T, 23, 3), (T, 21, 3), (T, 23, 3, 3) or (T, 21, 3, 3) (axis-angles or rotation matrices), ``transl`` or
  ``trans`` (T, 3). World: the **camera** frame (X right, Y down, Z forward).
- VIBE / PARE / WHAM keys: ``pose`` (T, 72) (SMPL; also (T, 66), (T, 156), (T, 165), (T, 24, 3), (T, 22, 3) or
  (T, 24, 3, 3)), ``trans`` / ``transl`` (T, 3) when present. World: the **camera** frame. (WHAM's ``pose_world`` /
  ``trans_world`` are not read.)
- ``poses`` (T, 72 / 156 / 165) + ``trans``: the AMASS layout (Z up) inside a ``.pkl``.

Every array may carry a leading person dimension of 1 ((1, T, …)); a single frame may lack the frame dimension.
Several people are refused with a message saying how many: a leading person dimension above 1, or a file holding
one dict per tracked person (VIBE / PARE / WHAM write ``{track_id: {...}}``) with more than one track — one track
alone is read. Only the 22 SMPL body joints are kept (hands, jaw, eyes dropped); weak-perspective camera parameters
(``cam``, ``pred_cam``, ``orig_cam``) are not a translation and are ignored: without ``transl`` / ``trans`` the
pelvis stays at the rest pelvis (``trans`` = 0). The frame rate is ``fps`` / ``mocap_framerate`` /
``mocap_frame_rate`` / ``frame_rate`` when the file has one, else the ``fps`` argument (default 30, a video's).

Conversion: `amass.smpl_to_motion`, the one helper of every SMPL reader — the file's world (``axes``: by layout as
above, or given) is rotated to the project's +Y up (camera: Rx(180°), (x, y, z) → (x, -y, -z), so a person facing
the camera faces +Z; Z up: Rx(-90°)), metres → centimetres, pelvis = ``trans`` + rest pelvis, the 22-joint
`amass.smpl_skeleton`. Rotation matrices must be rotations (orthonormal within 1e-3, determinant +1).

**Safety of ``.pkl``.** A pickle can run any code when loaded, so ``.pkl`` files are read by `load_pickle`, a
restricted unpickler whose ``find_class`` allows only what numpy arrays and plain containers need — numpy's
``_reconstruct``, ``ndarray``, ``dtype``, ``scalar`` and ``_frombuffer`` (protocol 5) (``numpy.core`` and numpy 2's
``numpy._core`` spellings),
``_codecs.encode`` (bytes in protocol-2 pickles), ``collections.OrderedDict``, ``set`` and ``frozenset`` — and
refuses every other global
(``os.system``, ``chumpy.ch.Ch``, torch tensors, joblib's array wrapper…) with a `FormatError` naming it, before
anything is called. Python 2 pickles are read (``encoding="latin1"``, as numpy needs). Sizes: the file may not be
larger than a motion of `limits.max_joint_frames()` joint-frames (56 bytes each; at least 16 MiB), nor hold more
opcodes than that many (each makes at most one small object), nor ask ``_reconstruct`` for a larger array; the
frames × joints of the pose are checked (`limits.check_joint_frames`) before any motion is built. An ``.npz`` is
read with ``allow_pickle=False`` after its array headers are checked (`npz.array_headers`).

**Writing** (`write_smpl`): an AMASS-style ``.npz`` that `amass.read_amass` (and so `io.load_motion`) reads back —
``poses`` (T, 72) SMPL axis-angles (the 22 body joints, then zeros for SMPL's two hand joints: ``global_orient =
poses[:, :3]``, ``body_pose = poses[:, 3:]`` feed ``smplx.create(model_type="smpl")`` as they are; SMPL-H / SMPL-X
tools take ``poses[:, 3:66]``), the same as AMASS SMPL-X keys ``root_orient`` (T, 3) and ``pose_body`` (T, 63),
``trans`` (T, 3) metres in AMASS's Z-up world (pelvis − rest pelvis), ``betas`` zeros (10,) (SMPL's shape space;
the neutral body), ``gender`` ``"neutral"``, ``surface_model_type`` ``"smpl"``, ``mocap_framerate`` and
``mocap_frame_rate`` (both spellings). A motion on another skeleton is first retargeted to the SMPL body
(`motionsynth.retarget.retarget`).
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import pickletools
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from .. import rotations as R
from ..errors import FormatError, MotionsynthError
from ..motion import Motion
from . import amass as _amass
from .amass import SMPL_AXES, SMPL_BODY_NAMES, is_smpl_body, motion_to_smpl, npz_array, smpl_skeleton, smpl_to_motion
from .atomic import atomic_open
from .npz import _BYTES_PER_JOINT_FRAME, _MIN_ARRAY_BYTES, NPY_ERRORS, array_headers, check_array_bytes

__all__ = ["read_smpl", "write_smpl", "load_pickle", "is_smpl_params", "SMPL_PARAM_KEYS", "DEFAULT_VIDEO_FPS"]

DEFAULT_VIDEO_FPS = 30.0
"""Frame rate assumed for a parameter file that does not say its own (estimators run on video)."""

SMPL_PARAM_KEYS = ("root_orient", "pose_body", "global_orient", "body_pose", "pose", "poses")
"""Arrays whose presence makes a dict (or ``.npz``) an SMPL parameter file."""

_TRANS_KEYS = ("transl", "trans")
_FPS_KEYS = ("fps", "mocap_framerate", "mocap_frame_rate", "frame_rate")
_USED = SMPL_PARAM_KEYS + _TRANS_KEYS + _FPS_KEYS + ("betas", "gender")
"""The arrays read from an ``.npz``; others are never loaded."""
_NUM_BODY = len(SMPL_BODY_NAMES)
_ROTMAT_TOLERANCE = 1e-3

_MAT = ((3, 3),)
_POSE_TAILS = [(24, 3, 3), (24, 3), (22, 3), (72,), (66,), (156,), (165,)]
_TAILS: dict[str, list[tuple[int, ...]]] = {
    "pose": _POSE_TAILS,
    "poses": [(72,), (156,), (165,), (66,)],
    "body_pose": [(23, 3, 3), (21, 3, 3), (23, 3), (21, 3), (69,), (63,)],
    "pose_body": [(21, 3), (63,)],
    "global_orient": [(1, 3, 3), (3, 3), (1, 3), (3,)],
    "root_orient": [(1, 3), (3,)],
    "transl": [(1, 3), (3,)],
    "trans": [(1, 3), (3,)],
}
"""Shapes of one frame of each array (rotation matrices first, so that (T, 3, 3) reads as matrices)."""

_SCHEMES = (  # (root key, body key or None, translation keys, world axes, body model type)
    ("root_orient", "pose_body", ("trans",), "z-up", "smplx"),
    ("global_orient", "body_pose", _TRANS_KEYS, "camera", "smpl"),
    ("pose", None, ("trans", "transl"), "camera", "smpl"),
    ("poses", None, ("trans",), "z-up", "smpl"),
)


def is_smpl_params(keys) -> bool:
    """Whether arrays named ``keys`` hold SMPL parameters in a layout `read_smpl` knows (any of `SMPL_PARAM_KEYS`)."""
    return any(isinstance(k, str) and k in SMPL_PARAM_KEYS for k in keys)


# ---- the restricted unpickler ---------------------------------------------------------------------------------------
class _NdarrayType:
    """Stands for ``numpy.ndarray`` in a pickle: numpy's ``_reconstruct`` takes it, nothing may call it (calling
    ``numpy.ndarray(shape)`` would allocate an array of any size)."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayType()
_REAL_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5: an array over the pickle's own bytes (bounded by them)


def _byte_budget() -> int:
    """The most bytes one array (or one pickle file) may need: a motion of the joint-frame limit (as `npz`)."""
    return max(_BYTES_PER_JOINT_FRAME * limits.max_joint_frames(), _MIN_ARRAY_BYTES)


def _reconstruct(subtype, shape, dtype):
    """numpy's ``_reconstruct`` for plain ``ndarray`` only, refusing an empty array larger than the byte budget
    (the real data then comes from the pickle's bytes, which numpy checks against the shape)."""
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError(f"_reconstruct of {subtype!r}: only numpy.ndarray is read")
    dt = np.dtype(dtype)
    nbytes = math.prod(int(n) for n in shape) * dt.itemsize
    if nbytes > _byte_budget():
        raise limits.LimitError(f"an array of shape {tuple(shape)} of {dt} needs {nbytes:,} bytes, more than "
                                f"{_byte_budget():,}")
    return _REAL_RECONSTRUCT(np.ndarray, shape, dt)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,  # sets in protocols 0-3
    ("__builtin__", "set"): set, ("__builtin__", "frozenset"): frozenset,  # … as Python 2 spells them
}
"""The only globals a ``.pkl`` may name: what numpy arrays, numpy scalars and plain containers need."""


_HINTS = {
    "joblib": "this is a joblib.dump file (joblib wraps its arrays): re-save the results with pickle.dump or np.savez "
              "where you trust the file",
    "torch": "it holds torch tensors: save them as numpy arrays (tensor.numpy())",
    "chumpy": "it holds chumpy objects (an SMPL model file?), not a motion's parameters",
}
"""What to do, by the top-level module of the refused global."""


class _PlainUnpickler(pickle.Unpickler):
    """A `pickle.Unpickler` whose ``find_class`` hands out `_ALLOWED` only and refuses everything else."""

    def __init__(self, file, where: str):
        super().__init__(file, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        obj = _ALLOWED.get((module, name))
        if obj is None:
            hint = next((h for prefix, h in _HINTS.items() if module.split(".")[0] == prefix),
                        "save the parameters as numpy arrays (np.savez, or a dict of arrays)")
            raise FormatError(f"refuses {module}.{name}: a .pkl is read only when it holds plain arrays, numbers, "
                              f"text, lists and dicts (nothing else is loaded, as loading it could run code); "
                              f"{hint}", self.where)
        return obj

    def persistent_load(self, pid):
        raise FormatError("refuses a persistent id: a .pkl is read only when it holds plain arrays, numbers, text, "
                          "lists and dicts", self.where)


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a ``.pkl`` holding only numpy arrays / scalars, numbers, text, bytes, lists, tuples, sets and dicts.

    Anything else — any class or function other than numpy's array machinery (see the module docstring) — is refused
    when the pickle names it, before it could be called.

    Raises:
        FormatError: naming the file: a refused global (``"… refuses os.system …"``), not a pickle, truncated or
            damaged.
        limits.LimitError: a file larger than a motion of `limits.max_joint_frames()` joint-frames (56 bytes each;
            at least 16 MiB), more opcodes than that many joint-frames, or an array beyond that many bytes.
    """
    path = Path(path)
    where = str(path)
    try:
        size = path.stat().st_size
        if size > _byte_budget():
            raise limits.LimitError(f"{where}: {size:,} bytes, more than {_byte_budget():,} (a motion of the "
                                    f"joint-frame limit, {limits.max_joint_frames():,} x {_BYTES_PER_JOINT_FRAME} "
                                    f"bytes, or 16 MiB); raise the limit ({limits.ENV_VAR}=N, or motionsynth "
                                    f"--max-joint-frames N …)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError("no such file", where) from None
    except IsADirectoryError:
        raise FormatError("not a file", where) from None
    _check_opcodes(data, where)
    try:
        return _PlainUnpickler(io.BytesIO(data), where).load()
    except (FormatError, limits.LimitError):
        raise
    except RecursionError:
        raise FormatError("not a readable pickle (nested too deeply)", where) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, ImportError, MemoryError, UnicodeError) as e:
        raise FormatError(f"not a readable pickle of plain arrays ({type(e).__name__}: {e})", where) from None


def _check_opcodes(data: bytes, where: str) -> None:
    """`limits.LimitError` when the pickle has more opcodes than `limits.max_joint_frames()`; `FormatError` when it
    is not a pickle at all. A linear scan that makes no objects (bounds what loading may allocate)."""
    limit = limits.max_joint_frames()
    n = 0
    try:
        for _ in pickletools.genops(data):
            n += 1
            if n > limit:
                raise limits.LimitError(f"{where}: more than {limit:,} pickle opcodes (the joint-frame limit); raise "
                                        f"the limit ({limits.ENV_VAR}=N, or motionsynth --max-joint-frames N …)")
    except limits.LimitError:
        raise
    except (ValueError, EOFError, UnicodeError, OverflowError) as e:
        raise FormatError(f"not a readable pickle ({e})", where) from None
    if n == 0:
        raise FormatError("not a readable pickle (empty)", where)


# ---- layouts ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """Where a file keeps its parameters: the keys used, the shape of one frame of each, the frame count."""

    root: str
    body: str | None
    trans: str | None
    axes: str
    model_type: str
    frames: int
    tails: dict[str, tuple[int, ...]]
    joints: int


def _split(shape: tuple[int, ...], key: str, frames: int | None, where: str) -> tuple[tuple[int, ...], int]:
    """(one frame's shape, T) of array ``key`` of ``shape``: (T, *frame), (1, T, *frame) or, for one frame, ``frame``.

    ``frames`` is T when known (from the pose); `FormatError` when the shape fits none, or says several people."""
    tails = _TAILS[key]
    for tail in tails:
        n = len(tail)
        if len(shape) < n or tuple(shape[len(shape) - n:]) != tail:
            continue
        lead = tuple(shape[: len(shape) - n])
        if len(lead) == 2 and lead[0] != 1 and (frames is None or lead[1] == frames):
            raise FormatError(f"'{key}' of shape {shape} holds {lead[0]} people ({lead[0]} x {lead[1]} frames); "
                              f"one person's sequence is read: save each person alone", where)
        if frames is None:
            if len(lead) <= 2 and (len(lead) < 2 or lead[0] == 1):
                return tail, (lead[-1] if lead else 1)
        elif lead in ((frames,), (1, frames)) or (frames == 1 and lead == ()):
            return tail, frames
    per_frame = " or ".join(f"(T, {', '.join(map(str, t))})" for t in tails)
    expected = f"({frames} frames like the pose)" if frames is not None else ""
    raise FormatError(f"'{key}' must be {per_frame} {expected}, got shape {shape}".replace("  ", " "), where)


def _layout(shapes: Mapping[str, tuple[int, ...]], where: str) -> _Layout:
    """The layout of a file with arrays of ``shapes`` (see the module docstring); sizes only, no values."""
    for root, body, trans_keys, axes, model_type in _SCHEMES:
        if root not in shapes or (body is not None and body not in shapes):
            continue
        main = body or root
        main_tail, T = _split(shapes[main], main, None, where)
        tails = {main: main_tail}
        if body is not None:
            tails[root] = _split(shapes[root], root, T, where)[0]
        trans = next((k for k in trans_keys if k in shapes), None)
        if trans is not None:
            tails[trans] = _split(shapes[trans], trans, T, where)[0]
        joints = math.prod(main_tail) // (9 if main_tail[-2:] == (3, 3) else 3) + (body is not None)
        return _Layout(root, body, trans, axes, model_type, T, tails, joints)
    for body, root in (("body_pose", "global_orient"), ("pose_body", "root_orient")):
        if body in shapes and root not in shapes:
            raise FormatError(f"has '{body}' but no '{root}' (the pelvis's orientation)", where)
    raise FormatError(f"no SMPL parameters: expected 'pose', 'global_orient' + 'body_pose', 'root_orient' + "
                      f"'pose_body' or 'poses' (has {', '.join(sorted(map(str, shapes))[:12]) or 'nothing'})", where)


def _person(obj: Any, where: str) -> dict:
    """The one person's dict of parameters in an unpickled object: the dict itself, or its only track."""
    if isinstance(obj, Mapping):
        if is_smpl_params(obj.keys()):
            return dict(obj)
        people = [(k, v) for k, v in obj.items() if isinstance(v, Mapping) and is_smpl_params(v.keys())]
    elif isinstance(obj, (list, tuple)):
        people = [(i, v) for i, v in enumerate(obj) if isinstance(v, Mapping) and is_smpl_params(v.keys())]
    else:
        raise FormatError(f"holds a {type(obj).__name__}, not a dict of SMPL parameters", where)
    if len(people) == 1:
        return dict(people[0][1])
    if not people:
        keys = list(obj.keys()) if isinstance(obj, Mapping) else []
        raise FormatError(f"no SMPL parameters: expected a dict with 'pose', 'global_orient' + 'body_pose', "
                          f"'root_orient' + 'pose_body' or 'poses' (or one such dict per person; top-level "
                          f"{'keys: ' + ', '.join(map(str, keys[:12])) if keys else type(obj).__name__})", where)
    ids = ", ".join(repr(k) for k, _ in people[:10]) + (", …" if len(people) > 10 else "")
    raise FormatError(f"holds {len(people)} people (tracks {ids}); one person's sequence is read: save the track "
                      f"wanted alone (e.g. joblib.dump / pickle.dump of results[{people[0][0]!r}])", where)


# ---- reading ----------------------------------------------------------------------------------------------------------
def read_smpl(path: str | os.PathLike, *, axes: str | None = None, fps: float | None = None,
              body_model_dir: str | os.PathLike | None = None) -> Motion:
    """Read SMPL parameters (``.pkl`` or ``.npz``, the layouts of the module docstring) into a `Motion` on the
    22-joint SMPL body (`amass.smpl_skeleton`; +Y up, cm).

    Args:
        path: the file.
        axes: the file's world axes (``"camera"``, ``"z-up"`` or ``"y-up"``, see `amass.SMPL_AXES`); default by
            layout: Z up for AMASS keys (``root_orient`` / ``poses``), the camera frame for estimator keys.
        fps: the frame rate when the file has none (default `DEFAULT_VIDEO_FPS`); the file's own wins.
        body_model_dir: as `amass.read_amass`: exact bone lengths from the file's ``betas`` (their mean over frames)
            with ``smplx`` installed; otherwise the built-in neutral skeleton.
    Raises:
        FormatError (naming the file and the array): a ``.pkl`` naming anything but plain arrays and containers
            (`load_pickle`), several people, no known layout, wrong shapes, non-numbers, NaN / infinite values,
            axis-angles beyond ±1e4 rad or translations beyond ±1e6 m, matrices that are not rotations, a frame
            rate that is not one finite positive number.
        limits.LimitError: frames × joints of the pose beyond `limits.max_joint_frames()` (from the ``.npz``
            headers before any array is read; for a ``.pkl`` from the loaded arrays' shapes), or a ``.pkl`` too large
            (`load_pickle`).
    """
    path = Path(path)
    where = str(path)
    if axes is not None and axes not in SMPL_AXES:
        raise MotionsynthError(f"unknown SMPL axes {axes!r}; expected one of {', '.join(SMPL_AXES)}")
    if path.suffix.lower() == ".pkl":
        record = _person(load_pickle(path), where)
        arrays = {k: _as_array(v, k, where) for k, v in record.items() if k in _USED}
        layout = _layout({k: a.shape for k, a in arrays.items() if k in _TAILS}, where)
        limits.check_joint_frames(layout.frames, layout.joints, f"{where}: '{layout.body or layout.root}'")
        data = {k: _numbers(arrays[k], k, where) for k in layout.tails}
        extra = {k: arrays[k] for k in (*_FPS_KEYS, "betas", "gender") if k in arrays}
    else:
        headers = array_headers(path, _USED)
        layout = _layout({k: h.shape for k, h in headers.items()}, where)
        limits.check_joint_frames(layout.frames, layout.joints, f"{where}: '{layout.body or layout.root}'")
        check_array_bytes(headers, where)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: _numbers(npz_array(z, k, where), k, where) for k in layout.tails}
                extra = {k: npz_array(z, k, where) for k in (*_FPS_KEYS, "betas", "gender") if k in z.files}
        except FormatError:
            raise
        except NPY_ERRORS as e:
            raise FormatError(f"not a readable .npz file ({e})", where) from None

    T = layout.frames
    rotations = _to_quats(data[layout.root], layout.tails[layout.root], layout.root, T, where)
    if layout.body is not None:
        body = _to_quats(data[layout.body], layout.tails[layout.body], layout.body, T, where)
        rotations = np.concatenate([rotations[:, :1], body[:, : _NUM_BODY - 1]], axis=1)
    else:
        rotations = rotations[:, :_NUM_BODY]
    if layout.trans is None:
        trans = np.zeros((T, 3))
    else:
        trans = data[layout.trans].reshape(T, 3)
        _check_values(trans, layout.trans, _amass._MAX_TRANS, "m", where)
    rate = _frame_rate(extra, fps, where)
    rest = None
    if body_model_dir is not None:
        betas = _numbers(extra["betas"], "betas", where) if "betas" in extra else np.zeros((1, 10))
        betas = betas.reshape(-1, betas.shape[-1]).mean(0) if betas.size else np.zeros(10)
        if not np.isfinite(betas).all():
            raise FormatError("'betas' has NaN or infinite values", where)
        gender = _text(extra["gender"]) if "gender" in extra else "neutral"
        rest = _amass._rest_joints_from_model(body_model_dir, layout.model_type, gender, betas)
    return smpl_to_motion(rotations, trans, rate, axes=axes or layout.axes, rest_joints=rest, name=path.stem,
                          where=where)


def _to_quats(a: np.ndarray, tail: tuple[int, ...], key: str, T: int, where: str) -> np.ndarray:
    """(T, K, 4) quaternions from array ``key`` of T frames of ``tail`` (rotation matrices or axis-angles)."""
    if tail[-2:] == (3, 3):
        m = a.reshape(T, -1, 3, 3)
        _check_values(m, key, None, "", where)
        err = np.abs(m @ np.swapaxes(m, -1, -2) - np.eye(3)).reshape(T, -1).max(1)
        det = np.linalg.det(m).reshape(T, -1).min(1)
        bad = np.flatnonzero((err > _ROTMAT_TOLERANCE) | (det <= 0))
        if len(bad):
            raise FormatError(f"'{key}' holds matrices that are not rotations (first at frame {int(bad[0])}: "
                              f"|M Mᵀ - I| = {err[bad[0]]:.3g}, det {det[bad[0]]:.3g})", where)
        return R.matrix_to_quat(m)
    v = a.reshape(T, -1, 3)
    _check_values(v, key, _amass._MAX_ANGLE, "rad", where)
    return R.axis_angle_to_quat(v)


def _check_values(a: np.ndarray, key: str, limit: float | None, unit: str, where: str) -> None:
    """`FormatError` for NaN / infinite values, or values beyond ±``limit``, naming the first frame."""
    flat = a.reshape(len(a), -1)
    if not np.isfinite(flat).all():
        bad = int(np.flatnonzero(~np.isfinite(flat).all(1))[0])
        raise FormatError(f"'{key}' has NaN or infinite values (first at frame {bad})", where)
    if limit is not None and flat.size and np.abs(flat).max() > limit:
        bad = int(np.flatnonzero((np.abs(flat) > limit).any(1))[0])
        raise FormatError(f"'{key}' has values beyond ±{limit:g} {unit}, which are not a pose (first at frame {bad}, "
                          f"largest {np.abs(flat).max():.3g})", where)


def _frame_rate(extra: dict, default: float | None, where: str) -> float:
    key = next((k for k in _FPS_KEYS if k in extra), None)
    if key is None:
        rate = DEFAULT_VIDEO_FPS if default is None else float(default)
        what = "fps"
    else:
        a = _numbers(extra[key], key, where)
        if a.size != 1:
            raise FormatError(f"'{key}' must be one number, got shape {a.shape}", where)
        rate, what = float(a.reshape(-1)[0]), f"'{key}'"
    if not (math.isfinite(rate) and rate > 0 and math.isfinite(1.0 / rate)):
        raise FormatError(f"{what} must be a positive frame rate, got {rate}", where)
    return rate


def _as_array(v: Any, key: str, where: str) -> np.ndarray:
    """An unpickled value as an array (lists of numbers alike); `FormatError` naming ``key`` for ragged lists."""
    try:
        return np.asarray(v)
    except (ValueError, TypeError) as e:
        raise FormatError(f"'{key}' is not an array ({e})", where) from None


def _numbers(a: np.ndarray, key: str, where: str) -> np.ndarray:
    """``a`` as float64; `FormatError` naming ``key`` unless it holds (real) numbers."""
    if a.dtype.kind not in "iuf":
        raise FormatError(f"'{key}' must hold numbers, got {a.dtype} values of shape {a.shape}", where)
    return np.asarray(a, dtype=np.float64)


def _text(a: np.ndarray) -> str:
    """A text value (``gender``); "neutral" when it is not one."""
    if a.dtype.kind not in "US" or a.size != 1:
        return "neutral"
    v = a.reshape(-1)[0].item()
    return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)


# ---- writing ----------------------------------------------------------------------------------------------------------
def write_smpl(motion: Motion, path: str | os.PathLike) -> None:
    """Write ``motion`` as SMPL parameters: an AMASS-style ``.npz`` (the arrays of the module docstring), atomically.

    The exact inverse of `amass.read_amass` for a motion on the SMPL body: ``trans`` = C⁻¹ · root / 100 − rest
    pelvis (the skeleton's root offset / 100), so reading the file back (with the same rest joints) gives the same
    positions and rotations. ``betas`` are zeros: a body model shows the neutral body, whatever bone lengths the
    motion's skeleton has.

    Raises:
        MotionsynthError: ``path`` does not end in ``.npz``; the motion has per-joint translations (SMPL has none);
            it is on another skeleton and retargeting it (`motionsynth.retarget`) fails.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise MotionsynthError(f"{path}: SMPL parameters are written as .npz, not {path.suffix or '(no extension)'!r}")
    if not is_smpl_body(motion.skeleton):
        motion = _retarget_to_smpl(motion)
    if motion.translations is not None:
        raise MotionsynthError(f"motion {motion.name!r} animates joint translations, which SMPL parameters cannot "
                               f"hold (only the pelvis moves)")
    pose, trans = motion_to_smpl(motion, axes="z-up")
    T = motion.num_frames
    poses = np.concatenate([pose.reshape(T, 3 * _NUM_BODY), np.zeros((T, 6))], axis=1)
    rate = np.array(float(motion.fps))
    arrays = {"poses": poses, "trans": trans, "root_orient": poses[:, :3].copy(), "pose_body": poses[:, 3:66].copy(),
              "betas": np.zeros(10), "gender": np.array("neutral"), "surface_model_type": np.array("smpl"),
              "mocap_framerate": rate, "mocap_frame_rate": rate}
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def _retarget_to_smpl(motion: Motion) -> Motion:
    """``motion`` moved onto the SMPL body by `motionsynth.retarget.retarget`, or a `MotionsynthError` saying why
    it cannot be."""
    what = f"motion {motion.name!r} is on a {len(motion.skeleton)}-joint skeleton, not the 22-joint SMPL body"
    from ..retarget import retarget

    try:
        return retarget(motion, smpl_skeleton())
    except MotionsynthError as e:
        raise MotionsynthError(f"{what}; retargeting it failed: {e}") from None
