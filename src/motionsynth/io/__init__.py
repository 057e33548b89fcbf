"""File formats: BVH, the project's npz motion file, AMASS. `load_motion` / `save_motion` pick by extension."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FormatError, MotionsynthError
from ..motion import Motion
from .bvh import iter_bvh, iter_bvh_members, parse_bvh, read_bvh, write_bvh
from .npz import load_npz, npz_keys, save_npz

__all__ = ["load_motion", "save_motion", "read_bvh", "parse_bvh", "iter_bvh", "iter_bvh_members", "write_bvh",
           "load_npz", "save_npz", "MOTION_SUFFIXES"]

MOTION_SUFFIXES = (".bvh", ".npz")


def load_motion(path: str | os.PathLike) -> Motion:
    """Read a motion: ``.bvh``, or ``.npz`` — the project's own file or an AMASS file (told apart by its arrays)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MOTION_SUFFIXES:
        raise FormatError(f"unknown motion file type {path.suffix or '(no extension)'!r}; "
                          f"expected one of {', '.join(MOTION_SUFFIXES)}", str(path))
    if not path.exists():
        raise FormatError("no such file", str(path))
    if not path.is_file():
        raise FormatError("not a file", str(path))
    if suffix == ".bvh":
        return read_bvh(path)
    keys = npz_keys(path)
    if "format" in keys:
        return load_npz(path)
    if "poses" in keys:
        from .amass import read_amass  # imported lazily: only AMASS users need it

        return read_amass(path)
    raise FormatError(f"unrecognised .npz file: neither a motionsynth motion nor AMASS "
                      f"(arrays: {', '.join(sorted(keys)[:8])})", str(path))


def save_motion(motion: Motion, path: str | os.PathLike) -> None:
    """Write a motion as ``.bvh`` or ``.npz`` (by extension), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        write_bvh(motion, path)
    elif suffix == ".npz":
        save_npz(motion, path)
    else:
        raise MotionsynthError(f"{path}: unknown output type {path.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(MOTION_SUFFIXES)}")
