"""The project's own motion file: an uncompressed ``.npz`` readable with ``np.load(allow_pickle=False)``.

Arrays (no pickled objects, so loading a file cannot run code):

- ``format``: the string ``"motionsynth.motion"``; ``version``: 1.
- ``skeleton``: `Skeleton.to_json` text.
- ``rotations`` (T, J, 4) float64 quaternions (x, y, z, w); ``root_positions`` (T, 3);
  ``translations`` (T, J, 3), present only when the motion has them.
- ``fps`` (scalar), ``labels`` (JSON text), ``name`` (text).

Before any array is read, the header of each (`array_header`: shape and dtype, read from the zip member) is checked:
a member that is not a ``.npy`` array, holds Python objects, or whose header disagrees with the bytes it holds is
damaged (`FormatError`); ``rotations`` / ``translations`` of more frames × joints than `limits.max_joint_frames()`,
or any array larger than a motion of that many joint-frames (56 bytes each; at least 16 MiB), is refused with `limits.LimitError` —
so a small file whose header claims 10^13 frames allocates nothing. The AMASS reader shares these checks.
"""

from __future__ import annotations

import json
import math
import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..errors import FormatError, InvalidMotionError
from ..motion import Motion
from ..skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton
from .atomic import atomic_open

__all__ = ["save_npz", "load_npz", "FORMAT_TAG", "ArrayHeader", "array_header", "array_headers", "check_array_bytes"]

FORMAT_TAG = "motionsynth.motion"
VERSION = 1
_REQUIRED = ("format", "skeleton", "rotations", "root_positions", "fps")
_KEYS = _REQUIRED + ("version", "translations", "labels", "name")  # the arrays read; others are never loaded
_BYTES_PER_JOINT_FRAME = 56  # what a parsed motion holds per joint-frame: no array may be larger than such a motion
_MIN_ARRAY_BYTES = 16 * 2**20  # … or than this (a small limit must not refuse the skeleton's text)
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
_CHANNELS = set(POSITION_CHANNELS + ROTATION_CHANNELS)

NPY_ERRORS = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
              tokenize.TokenError, SyntaxError, OverflowError)
"""What numpy and zipfile raise on a damaged ``.npy`` / ``.npz`` (bad zip directory, CRC, compression or version,
a header numpy cannot parse, a truncated array): readers turn them into `FormatError`."""


def _json_default(x):
    """JSON for numpy scalars / arrays that end up in labels."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"label value {x!r} is not JSON-serialisable")


def save_npz(motion: Motion, path: str | os.PathLike) -> None:
    """Write ``motion`` to ``path`` (``.npz``) atomically."""
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT_TAG), "version": np.array(VERSION),
        "skeleton": np.array(motion.skeleton.to_json()),
        "rotations": np.asarray(motion.rotations, dtype=np.float64),
        "root_positions": np.asarray(motion.root_positions, dtype=np.float64),
        "fps": np.array(float(motion.fps)),
        "labels": np.array(json.dumps(motion.labels, default=_json_default)),
        "name": np.array(motion.name),
    }
    if motion.translations is not None:
        arrays["translations"] = np.asarray(motion.translations, dtype=np.float64)
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def npz_keys(path: str | os.PathLike) -> list[str]:
    """The array names in an ``.npz`` file; `FormatError` if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z.files)
    except FileNotFoundError:
        raise FormatError("no such file", str(path)) from None
    except NPY_ERRORS as e:
        raise FormatError(f"not a valid .npz file ({e})", str(path)) from None


# ---- array headers, read before any array ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayHeader:
    """What a ``.npy`` header says, read without loading the array."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        """The bytes the array needs (a Python int: no overflow whatever the header claims)."""
        return math.prod(self.shape) * self.dtype.itemsize


def array_header(z: zipfile.ZipFile, member: str, where: str) -> ArrayHeader:
    """The header of the ``.npy`` member ``member`` of the open zip ``z``, checked against the member's size.

    Raises `FormatError` naming ``where`` (the file) and the array when the member is not a ``.npy`` array of format
    1.0 or 2.0, holds Python objects (never loaded), has negative dimensions, or holds another number of bytes than
    its shape and dtype need (a crafted or truncated header). Reads a few hundred bytes, allocates no array.
    """
    key = member.removesuffix(".npy")
    try:
        info = z.getinfo(member)
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in _HEADER_READERS:
                raise FormatError(f"'{key}' has .npy format version {version}, which is not read (1.0 or 2.0)", where)
            shape, _, dtype = _HEADER_READERS[version](f)
            data_bytes = info.file_size - f.tell()
    except FormatError:
        raise
    except (*NPY_ERRORS, RuntimeError) as e:  # RuntimeError: an encrypted member
        raise FormatError(f"'{key}' is damaged ({type(e).__name__}: {e})", where) from None
    header = ArrayHeader(tuple(shape), dtype)
    if dtype.hasobject:
        raise FormatError(f"'{key}' holds pickled Python objects, which are never loaded (only plain arrays are "
                          f"read)", where)
    if any(n < 0 for n in header.shape) or header.nbytes != data_bytes:
        raise FormatError(f"'{key}' is damaged: its header claims shape {header.shape} of {dtype} "
                          f"({header.nbytes:,} bytes) but it holds {data_bytes:,} bytes", where)
    return header


def array_headers(path: str | os.PathLike, keys: tuple[str, ...]) -> dict[str, ArrayHeader]:
    """The checked headers (`array_header`) of the arrays ``keys`` of the ``.npz`` at ``path`` (those present; an
    array ``k`` is the member ``k.npy`` or ``k``, as `np.load` names them)."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            members = {m.removesuffix(".npy"): m for m in z.namelist()}  # the last of a repeated name, as np.load
            headers = {k: array_header(z, members[k], where) for k in keys if k in members}
    except FileNotFoundError:
        raise FormatError("no such file", where) from None
    except FormatError:
        raise
    except NPY_ERRORS as e:
        raise FormatError(f"not a valid .npz file ({e})", where) from None
    return headers


def check_array_bytes(headers: dict[str, ArrayHeader], where: str) -> None:
    """`limits.LimitError` when an array needs more bytes than a motion of `limits.max_joint_frames()` joint-frames
    (56 bytes each; at least 16 MiB): what bounds the arrays that are not frames × joints (text, scalars, a
    malformed shape)."""
    budget = max(_BYTES_PER_JOINT_FRAME * limits.max_joint_frames(), _MIN_ARRAY_BYTES)
    for key, header in headers.items():
        if header.nbytes > budget:
            raise limits.LimitError(
                f"{where}: '{key}' needs {header.nbytes:,} bytes (shape {header.shape} of {header.dtype}), more than "
                f"{budget:,} (a motion of the joint-frame limit, {limits.max_joint_frames():,} x "
                f"{_BYTES_PER_JOINT_FRAME} bytes, or 16 MiB); raise the limit ({limits.ENV_VAR}=N, or motionsynth "
                f"--max-joint-frames N …)")


def _check_motion_size(headers: dict[str, ArrayHeader], where: str) -> None:
    """`limits.LimitError` when ``rotations`` (T, J, 4) or ``translations`` (T, J, 3) exceed the joint-frame limit,
    or any array the byte bound (`check_array_bytes`)."""
    for key in ("rotations", "translations"):
        if key in headers and len(headers[key].shape) == 3:
            frames, joints, _ = headers[key].shape
            limits.check_joint_frames(frames, joints, f"{where}: '{key}'")
    check_array_bytes(headers, where)


def load_npz(path: str | os.PathLike) -> Motion:
    """Read a motion written by `save_npz`. Other ``.npz`` files (AMASS included) raise `FormatError`.

    Every array's header is checked before any array is read (see the module docstring: `limits.LimitError` for a
    motion over the joint-frame limit), and anything malformed raises `FormatError` naming the file and the array:
    arrays that would need unpickling (never loaded), headers that disagree with the bytes held, wrong types (text where numbers belong and vice versa), wrong
    shapes, a skeleton that is not valid JSON of a skeleton, NaN or infinite values, zero-norm quaternions, an fps
    that is not finite and positive, labels that are not a JSON object.
    """
    path = Path(path)
    keys = npz_keys(path)
    if "format" not in keys:
        hint = " — it looks like an AMASS file, read it with load_motion or read_amass" if "poses" in keys else ""
        raise FormatError(f"not a motionsynth motion file (arrays: {', '.join(sorted(keys)[:8])}){hint}", str(path))
    where = str(path)
    _check_motion_size(array_headers(path, _KEYS), where)
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = _text(z, "format", where)
            if fmt != FORMAT_TAG:
                raise FormatError(f"not a motionsynth motion file (format {fmt[:40]!r})", where)
            missing = [k for k in _REQUIRED if k not in z.files]
            if missing:
                raise FormatError(f"motion file lacks {missing}", where)
            version = _integer(z, "version", where) if "version" in z.files else VERSION
            if version > VERSION:
                raise FormatError(f"motion file version {version} is newer than this motionsynth reads ({VERSION})",
                                  where)
            skeleton = _skeleton(_text(z, "skeleton", where), where)
            J = len(skeleton)
            rotations = _floats(z, "rotations", where, (None, J, 4), f"(T, {J}, 4) for the {J}-joint skeleton")
            T = len(rotations)
            root_positions = _floats(z, "root_positions", where, (T, 3), f"({T}, 3) like 'rotations'")
            translations = (_floats(z, "translations", where, (T, J, 3), f"({T}, {J}, 3) like 'rotations'")
                            if "translations" in z.files else None)
            fps = _number(z, "fps", where)
            labels = {}
            if "labels" in z.files:
                try:
                    labels = json.loads(_text(z, "labels", where))
                except ValueError as e:
                    raise FormatError(f"'labels' is not valid JSON ({e})", where) from None
                if not isinstance(labels, dict):
                    raise FormatError(f"'labels' must be a JSON object, got {type(labels).__name__}", where)
            name = _text(z, "name", where) if "name" in z.files else path.stem
    except FormatError:
        raise
    except (*NPY_ERRORS, TypeError) as e:
        raise FormatError(f"corrupt motion file ({e})", where) from None
    try:
        motion = Motion(skeleton=skeleton, rotations=rotations, root_positions=root_positions, fps=fps,
                        translations=translations, labels=labels)
    except InvalidMotionError as e:  # NaN / inf values, zero quaternions, fps not finite and positive
        raise FormatError(str(e).removeprefix("motion: "), where) from None
    motion.name = name
    return motion


# ---- checked access to the arrays of an open .npz --------------------------------------------------------------
def _get(z, key: str, where: str) -> np.ndarray:
    """Array ``key`` of an npz opened with ``allow_pickle=False``; `FormatError` naming it when it cannot be read."""
    try:
        return z[key]
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise FormatError(f"'{key}' holds pickled Python objects, which are never loaded (a motion file "
                              f"holds plain arrays only)", where) from None
        raise FormatError(f"'{key}' is not a readable array ({e})", where) from None
    except NPY_ERRORS as e:
        raise FormatError(f"'{key}' is damaged ({type(e).__name__}: {e})", where) from None


def _text(z, key: str, where: str) -> str:
    a = _get(z, key, where)
    if a.dtype.kind not in "US" or a.size != 1:
        raise FormatError(f"'{key}' must be one text value, got a {a.dtype} array of shape {a.shape}", where)
    v = a.reshape(-1)[0].item()
    if isinstance(v, bytes):
        try:
            v = v.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"'{key}' is not UTF-8 text", where) from None
    return str(v)


def _number(z, key: str, where: str) -> float:
    a = _get(z, key, where)
    if a.dtype.kind not in "iuf" or a.size != 1:
        raise FormatError(f"'{key}' must be one number, got a {a.dtype} array of shape {a.shape}", where)
    return float(a.reshape(-1)[0])


def _integer(z, key: str, where: str) -> int:
    x = _number(z, key, where)
    if not (np.isfinite(x) and x == int(x)):
        raise FormatError(f"'{key}' must be a whole number, got {x}", where)
    return int(x)


def _floats(z, key: str, where: str, shape: tuple, expected: str) -> np.ndarray:
    """A numeric array of ``shape`` (None: any length) as float64."""
    a = _get(z, key, where)
    if a.dtype.kind not in "iuf":
        raise FormatError(f"'{key}' must hold numbers, got {a.dtype} values", where)
    if a.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        raise FormatError(f"'{key}' must be {expected}, got shape {a.shape}", where)
    return np.asarray(a, dtype=np.float64)


def _skeleton(text: str, where: str) -> Skeleton:
    """The skeleton from its JSON text, checked: valid structure, finite offsets, known channel names."""
    try:
        skeleton = Skeleton.from_json(text)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError) as e:
        raise FormatError(f"'skeleton' is not a valid skeleton ({type(e).__name__}: {e})", where) from None
    if not (np.isfinite(skeleton.offsets).all() and all(np.isfinite(v).all() for v in skeleton.end_sites.values())):
        raise FormatError("'skeleton' has NaN or infinite offsets", where)
    if any(not 0 <= k < len(skeleton) for k in skeleton.end_sites):
        raise FormatError("'skeleton' has an end site on a joint that does not exist", where)
    J = len(skeleton)
    sym = skeleton.symmetry_override
    if sym is not None and (not isinstance(sym, list) or len(sym) != J
                            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < J for i in sym)):
        raise FormatError(f"'skeleton' symmetry_override must list {J} joint indices", where)
    groups = skeleton.groups_override
    if groups is not None and (not isinstance(groups, dict) or any(
            not isinstance(v, list) or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < J
                                           for i in v) for v in groups.values())):
        raise FormatError("'skeleton' groups_override must map group names to lists of joint indices", where)
    for name, channels in zip(skeleton.names, skeleton.channels):
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise FormatError(f"'skeleton' has an invalid joint name {name!r}", where)
        if any(c not in _CHANNELS for c in channels) or len(set(channels)) != len(channels):
            raise FormatError(f"'skeleton' joint {name!r} has invalid channels {list(channels)}", where)
    return skeleton
