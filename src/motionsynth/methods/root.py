"""The root trajectory of a completed or denoised motion: from the features' root block (height, planar velocity in
the heading frame, heading velocity; `data.features`) to world positions and headings, and back into a `Motion`.

Angles are radians, positions in file units (cm for Bandai), arrays are per frame along axis 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data.features import ROOT_HEIGHT, decode, integrate_planar, root_track
from ..kinematics import heading_angle
from ..motion import Motion

__all__ = ["MEDIAN_FRAMES", "world_root", "smooth_path", "integrate", "root_path", "assemble"]

MEDIAN_FRAMES = 5
"""Running-median length of `smooth_path`: rejects outliers lasting up to two frames."""


def world_root(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """World position (T, 3) and heading (T,) of the moving root, as the features define them (rest offsets)."""
    rest = replace(motion, translations=None)
    r = motion.skeleton.root
    return rest.global_positions()[:, r], np.asarray(heading_angle(rest.global_rotations()[:, r]), dtype=np.float64)


def smooth_path(x: np.ndarray, sigma: float, median: int = MEDIAN_FRAMES) -> np.ndarray:
    """(T, ...) → (T, ...): running median over ``median`` frames, then a Gaussian of ``sigma`` frames (edges held).
    ``sigma <= 0`` and ``median <= 1`` skip the respective step. Unwrap angles before smoothing them."""
    from scipy.ndimage import gaussian_filter1d, median_filter

    out = np.asarray(x, dtype=np.float64)
    if median > 1:
        out = median_filter(out, size=(median,) + (1,) * (out.ndim - 1), mode="nearest")
    return gaussian_filter1d(out, sigma, axis=0, mode="nearest") if sigma > 0 else out.copy()


def integrate(height: np.ndarray, vel_xz: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """Root block → world root positions (T, 3) from x = z = 0: planar velocities (in the heading frame of the
    previous frame, frame 0's ignored) rotated by ``heading`` and summed; height as given."""
    x, z = integrate_planar(vel_xz, heading)
    return np.stack([x, np.asarray(height, dtype=np.float64), z], -1)


def root_path(root: np.ndarray, heading0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A root block (T, ROOT_DIM) → world positions (T, 3) from x = z = 0 and headings (T,) from ``heading0``,
    integrating its velocities (frame 0's ignored; `features.root_track`)."""
    track = root_track(root, heading0)
    return np.stack([track[:, 0], root[:, ROOT_HEIGHT], track[:, 1]], -1), track[:, 2]


def assemble(rot6d: np.ndarray, heading: np.ndarray, pos: np.ndarray, skeleton, like: Motion) -> Motion:
    """6D rotations (T, 6J) (root heading-removed), root heading (T,) and world position (T, 3) → Motion, through
    the feature layout (`features.decode`), with ``like``'s fps, name, labels and translations."""
    T = len(heading)
    d = pos[1:] - pos[:-1]
    c, s = np.cos(heading[:-1]), np.sin(heading[:-1])
    root = np.zeros((T, 4))
    root[:, 0] = pos[:, 1]
    root[1:, 1] = c * d[:, 0] - s * d[:, 2]
    root[1:, 2] = s * d[:, 0] + c * d[:, 2]
    root[1:, 3] = np.diff(heading)
    feats = np.concatenate([rot6d, root], -1)
    out = decode(feats, skeleton, like.fps, origin=np.array([pos[0, 0], pos[0, 2], heading[0]]),
                 labels=like.labels, name=like.name)
    out.translations = None if like.translations is None else like.translations.copy()
    return out
