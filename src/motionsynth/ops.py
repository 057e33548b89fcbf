"""Motion-level operations in one place: pad, concatenate, cut into overlapping windows and cross-fade them back.

Array functions work on anything with time on axis 0 (features (T, D), rotations (T, J, 4), …); `Motion` functions
keep the skeleton, fps, name and labels of their input. Used by the task methods (windowed completion, the
denoisers), the commands (prediction pads its input, generation starts from `rest_motion`) and the scripts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import limits
from . import rotations as R
from .errors import MotionsynthError
from .motion import Motion
from .skeleton import Skeleton

__all__ = ["hold_pad", "pad", "concat", "rest_motion", "blend_weights", "crossfade"]


def hold_pad(x: np.ndarray, length: int) -> np.ndarray:
    """(T, ...) → (max(T, length), ...), holding the last frame."""
    return np.concatenate([x, np.repeat(x[-1:], max(0, length - len(x)), 0)])


def pad(motion: Motion, frames: int) -> Motion:
    """``motion`` lengthened to ``frames`` frames (at least its own) by holding its last frame. `limits.LimitError`
    when ``frames`` × joints exceeds the joint-frame limit."""
    limits.check_joint_frames(frames, len(motion.skeleton), f"motion {motion.name!r} padded to {frames:,} frames")
    return replace(motion, rotations=hold_pad(motion.rotations, frames),
                   root_positions=hold_pad(motion.root_positions, frames),
                   translations=None if motion.translations is None else hold_pad(motion.translations, frames),
                   labels=dict(motion.labels))


def concat(motions: list[Motion]) -> Motion:
    """Motions of one skeleton and frame rate, one after another (values as they are: no re-rooting); the first
    one's name and labels."""
    if not motions:
        raise MotionsynthError("concat needs at least one motion")
    first = motions[0]
    for m in motions[1:]:
        first.skeleton.check_compatible(m.skeleton, what=f"motion {m.name or ''}".strip())
        if abs(m.fps - first.fps) > 1e-6:
            raise MotionsynthError(f"cannot concatenate motions at {first.fps:g} and {m.fps:g} fps; resample first")
    has_t = [m.translations is not None for m in motions]
    if any(has_t) and not all(has_t):
        raise MotionsynthError("cannot concatenate motions with and without per-joint translations")
    return replace(first, rotations=np.concatenate([m.rotations for m in motions]),
                   root_positions=np.concatenate([m.root_positions for m in motions]),
                   translations=np.concatenate([m.translations for m in motions]) if all(has_t) else None,
                   labels=dict(first.labels))


def rest_motion(skeleton: Skeleton, frames: int, fps: float, name: str = "") -> Motion:
    """``frames`` frames of the rest pose (identity rotations, the root at its rest offset): the input of a task
    that observes nothing (generation)."""
    if frames < 1:
        raise MotionsynthError(f"frames must be positive, got {frames}")
    J = len(skeleton)
    limits.check_joint_frames(frames, J, f"a motion of {frames:,} frames")
    rotations = np.broadcast_to(R.quat_identity(), (frames, J, 4)).copy()
    root = np.repeat(np.asarray(skeleton.offsets[skeleton.root], dtype=np.float64)[None], frames, 0)
    return Motion(skeleton, rotations, root, float(fps), name=name)


def blend_weights(num_frames: int, window: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows covering ``num_frames`` frames and their cross-fade weights.

    Windows of ``window`` frames start every ``window - overlap`` frames; the last one is moved back to end at the
    last frame (a sequence shorter than a window gets one window, padded by the caller). Each window's raw weight
    ramps linearly over its first and last ``overlap`` frames (``(t + 1) / (overlap + 1)``), except at the sequence's
    ends; the weights are then divided by their sum at each frame, so that they sum to one at every frame and two
    windows overlapping by exactly ``overlap`` frames cross-fade linearly.

    Returns:
        starts (K,) int64 and weights (K, window) float64; frames ``starts[k] + t >= num_frames`` have weight 0.
    """
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window {window}, overlap {overlap}")
    if num_frames <= window:
        starts = np.zeros(1, dtype=np.int64)
    else:
        hop = window - overlap
        starts = np.arange(0, num_frames - window, hop, dtype=np.int64)
        starts = np.append(starts, num_frames - window)
    t = np.arange(window, dtype=np.float64)
    ramp = np.minimum(1.0, np.minimum(t + 1, window - t) / (overlap + 1))
    weights = np.repeat(ramp[None], len(starts), 0)
    weights[0, : window // 2] = 1.0  # no fade-in at the sequence's start, no fade-out at its end
    weights[-1, window // 2:] = 1.0
    frames = starts[:, None] + t[None].astype(np.int64)
    weights[frames >= num_frames] = 0.0
    total = np.zeros(max(num_frames, window))
    np.add.at(total, frames, weights)
    return starts, weights / np.where(total > 0, total, 1.0)[frames]


def crossfade(out: np.ndarray, windows: np.ndarray, starts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Add windows (k, W, ...) into ``out`` (T', ...) in place at ``starts`` (k,), each frame times its weight
    ``weights`` (k, W) (from `blend_weights`); returns ``out``. Call it batch by batch: memory stays bounded."""
    for window, start, weight in zip(windows, starts, weights):
        out[start:start + len(weight)] += weight.reshape(-1, *([1] * (window.ndim - 1))) * window
    return out
