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
import zipfile
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..motion import Motion
from ..skeleton import Skeleton
from .atomic import atomic_open

__all__ = ["save_npz", "load_npz", "FORMAT_TAG"]

FORMAT_TAG = "motionsynth.motion"
VERSION = 1
_REQUIRED = ("format", "skeleton", "rotations", "root_positions", "fps")


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
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise FormatError(f"not a valid .npz file ({e})", str(path)) from None


def load_npz(path: str | os.PathLike) -> Motion:
    """Read a motion written by `save_npz`. Other ``.npz`` files (AMASS included) raise `FormatError`."""
    path = Path(path)
    keys = npz_keys(path)
    if "format" not in keys:
        hint = " — it looks like an AMASS file, read it with load_motion or read_amass" if "poses" in keys else ""
        raise FormatError(f"not a motionsynth motion file (arrays: {', '.join(sorted(keys)[:8])}){hint}", str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT_TAG:
                raise FormatError(f"not a motionsynth motion file (format {str(z['format'])!r})", str(path))
            missing = [k for k in _REQUIRED if k not in z.files]
            if missing:
                raise FormatError(f"motion file lacks {missing}", str(path))
            version = int(z["version"]) if "version" in z.files else VERSION
            if version > VERSION:
                raise FormatError(f"motion file version {version} is newer than this motionsynth reads ({VERSION})",
                                  str(path))
            return Motion(
                skeleton=Skeleton.from_json(str(z["skeleton"])),
                rotations=z["rotations"], root_positions=z["root_positions"], fps=float(z["fps"]),
                translations=z["translations"] if "translations" in z.files else None,
                labels=json.loads(str(z["labels"])) if "labels" in z.files else {},
                name=str(z["name"]) if "name" in z.files else path.stem,
            )
    except FormatError:
        raise
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as e:
        raise FormatError(f"corrupt motion file ({e})", str(path)) from None
