"""File formats: BVH, the project's npz motion file, AMASS, SMPL parameters (`.npz` / `.pkl`, read safely: `io.smpl`),
glTF 2.0 binary (`.glb`: `io.gltf`). `load_motion` / `save_motion` pick by extension."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FormatError, MotionsynthError
from ..motion import Motion
from .bvh import iter_bvh, iter_bvh_members, parse_bvh, read_bvh, write_bvh
from .npz import load_npz, npz_keys, save_npz

__all__ = ["load_motion", "save_motion", "read_bvh", "parse_bvh", "iter_bvh", "iter_bvh_members", "write_bvh",
           "load_npz", "save_npz", "MOTION_SUFFIXES", "SAVE_SUFFIXES", "KEYPOINT_SUFFIXES", "check_save_suffix"]

MOTION_SUFFIXES = (".bvh", ".npz", ".pkl", ".glb")
"""What `load_motion` reads (``.pkl``: SMPL parameters only, through the restricted unpickler of `io.smpl`)."""
SAVE_SUFFIXES = (".bvh", ".npz", ".glb")
"""What `save_motion` writes (never ``.pkl``)."""


KEYPOINT_DEFAULT_FPS = 30.0
"""Frame rate of keypoint files that do not state theirs (``.npy``, ``.csv``; ``.json`` and ``.npz`` may)."""


def load_motion(path: str | os.PathLike, layout: str | None = None) -> Motion:
    """Read a motion: ``.bvh``; ``.npz`` — the project's own file, an AMASS file or other SMPL parameters (told apart
    by its arrays); ``.pkl`` — SMPL parameters (plain arrays and dicts only: `io.smpl.load_pickle`). With ``layout``
    (``h36m``, ``coco``, ``smpl24``, ``mediapipe``: `io.keypoints.LAYOUTS`), per-frame 3D keypoints (metres, +Y up;
    ``.npy``, ``.npz``, ``.json``, ``.csv``; other files ignore it) with a skeleton fitted to them
    (`fit.fit_motion`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if layout is not None and suffix in KEYPOINT_SUFFIXES:
        return _load_keypoints(path, layout)
    if suffix in KEYPOINT_ONLY_SUFFIXES:
        raise FormatError(f"{suffix} files are read as 3D keypoints: say their layout (--layout "
                          f"h36m|coco|smpl24|mediapipe)", str(path))
    if suffix not in MOTION_SUFFIXES:
        raise FormatError(f"unknown motion file type {path.suffix or '(no extension)'!r}; "
                          f"expected one of {', '.join(MOTION_SUFFIXES)}", str(path))
    if not path.exists():
        raise FormatError("no such file", str(path))
    if not path.is_file():
        raise FormatError("not a file", str(path))
    if suffix == ".bvh":
        return read_bvh(path)
    if suffix == ".glb":
        from .gltf import read_glb  # glTF 2.0 binary: a skinned, animated character (`io.gltf`)

        return read_glb(path)
    if suffix == ".pkl":
        from .smpl import read_smpl  # imported lazily: only SMPL users need it

        return read_smpl(path)
    keys = npz_keys(path)
    if "format" in keys:
        return load_npz(path)
    if "poses" in keys:
        from .amass import read_amass  # imported lazily: only AMASS users need it

        return read_amass(path)
    from .smpl import is_smpl_params, read_smpl

    if is_smpl_params(keys):
        return read_smpl(path)
    raise FormatError(f"unrecognised .npz file: neither a motionsynth motion nor AMASS / SMPL parameters "
                      f"(arrays: {', '.join(sorted(keys)[:8])})", str(path))


def save_motion(motion: Motion, path: str | os.PathLike, layout: str | None = None) -> None:
    """Write a motion as ``.bvh``, ``.npz`` or ``.glb`` (glTF 2.0, `io.gltf.write_glb`; by extension), atomically.
    With ``layout``, ``.npy`` / ``.npz`` / ``.json`` / ``.csv`` are that layout's 3D keypoints (metres, +Y up;
    `fit.motion_keypoints`, the motion retargeted to the layout's body first unless it is on it)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if layout is not None and suffix in KEYPOINT_SUFFIXES:
        _save_keypoints(motion, path, layout)
    elif suffix == ".bvh":
        write_bvh(motion, path)
    elif suffix == ".npz":
        save_npz(motion, path)
    elif suffix == ".glb":
        from .gltf import write_glb

        write_glb(motion, path)
    else:
        raise MotionsynthError(f"{path}: unknown output type {path.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(SAVE_SUFFIXES)}")


KEYPOINT_SUFFIXES = (".npy", ".npz", ".json", ".csv")
"""Files of 3D keypoints (with a ``layout``)."""
KEYPOINT_ONLY_SUFFIXES = (".npy", ".json", ".csv")
"""Suffixes that can only be keypoints (``.npz`` is a motion unless a layout is given)."""


def _load_keypoints(path: Path, layout: str) -> Motion:
    from ..fit import fit_motion
    from .keypoints import read_keypoints

    if not path.is_file():
        raise FormatError("no such file" if not path.exists() else "not a file", str(path))
    keypoints = read_keypoints(path, layout)
    return fit_motion(keypoints.positions, layout, keypoints.fps or KEYPOINT_DEFAULT_FPS, name=path.stem)


def _save_keypoints(motion: Motion, path: Path, layout: str) -> None:
    from ..fit import motion_keypoints, rest_skeleton
    from .keypoints import write_keypoints

    body = rest_skeleton(layout)
    if motion.skeleton.names != body.names:
        from ..retarget import retarget

        motion = retarget(motion, body)
    write_keypoints(path, motion_keypoints(motion, layout), layout, fps=motion.fps)


def check_save_suffix(path: str | os.PathLike, keypoints: bool = False) -> None:
    """Refuse, before any work, an output `save_motion` cannot write (``keypoints``: a layout is given, so keypoint
    files are writable too)."""
    path = Path(path)
    suffixes = SAVE_SUFFIXES + (KEYPOINT_SUFFIXES if keypoints else ())
    if path.suffix.lower() not in suffixes:
        raise MotionsynthError(f"{path}: unknown output type {path.suffix or '(no extension)'!r}; expected one of "
                               f"{', '.join(dict.fromkeys(suffixes))}" + ("" if keypoints else
                                                                          " (keypoints: with --layout)"))
