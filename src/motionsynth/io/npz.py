"""The project's own motion file: an uncompressed ``.npz`` readable with ``np.load(allow_pickle=False)``.

Arrays (no pickled objects, so loading a file cannot run code):

- ``format``: the string ``"motionsynth.motion"``; ``version``: 1.
- ``skeleton``: `Skeleton.to_json` text.
- ``rotations`` (T, J, 4) float64 quaternions (x, y, z, w); ``root_positions`` (T, 3);
  ``translations`` (T, J, 3), present only when the motion has them.
- ``fps`` (scalar), ``labels`` (JSON text), ``name`` (text).
"""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import FormatError, InvalidMotionError
from ..motion import Motion
from ..skeleton import POSITION_CHANNELS, ROTATION_CHANNELS, Skeleton
from .atomic import atomic_open

__all__ = ["save_npz", "load_npz", "FORMAT_TAG"]

FORMAT_TAG = "motionsynth.motion"
VERSION = 1
_REQUIRED = ("format", "skeleton", "rotations", "root_positions", "fps")
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
    arrays = {
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


def load_npz(path: str | os.PathLike) -> Motion:
    """Read a motion written by `save_npz`. Other ``.npz`` files (AMASS included) raise `FormatError`.

    Every array is checked before use, and anything malformed raises `FormatError` naming the file and the array:
    arrays that would need unpickling (never loaded), wrong types (text where numbers belong and vice versa), wrong
    shapes, a skeleton that is not valid JSON of a skeleton, NaN or infinite values, zero-norm quaternions, an fps
    that is not finite and positive, labels that are not a JSON object.
    """
    path = Path(path)
    keys = npz_keys(path)
    if "format" not in keys:
        hint = " — it looks like an AMASS file, read it with load_motion or read_amass" if "poses" in keys else ""
        raise FormatError(f"not a motionsynth motion file (arrays: {', '.join(sorted(keys)[:8])}){hint}", str(path))
    where = str(path)
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
