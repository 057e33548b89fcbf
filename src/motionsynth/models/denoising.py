"""What every learned denoiser shares (`prior.PriorMethod`, `meva.MEVAMethod`): the path around the model.

`denoise_motion` is that path: resample to the model's frame rate, encode, `despike` (a running median over the
input's features, so that isolated outliers — a pose estimator's spikes — do not reach a model that was not trained
on them), refine with the model (often `overlapped`: windows cross-faded with `blend_weights`), `finish` (place the
refined features in the world with `place`, optionally smooth with the Gaussian filter baseline), resample back.

The root trajectory. Models predict the root block of the features (`data.features`: height, planar velocity in the
heading frame, heading velocity). Integrating predicted velocities over a long sequence drifts, so a denoiser
usually takes the planar path and heading from the (noisy) input instead, smoothed robustly: `smooth_path` is a
running median over ``MEDIAN_FRAMES`` frames (removes isolated spikes) followed by a Gaussian.

All angles are radians, positions in file units (cm for Bandai), arrays are per frame along axis 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data.features import decode, encode
from ..kinematics import heading_angle
from ..motion import Motion

__all__ = ["MEDIAN_FRAMES", "ROOT_MODES", "world_root", "smooth_path", "integrate", "assemble", "place", "despike",
           "finish", "check_options", "blend_weights", "hold_pad", "overlapped", "denoise_motion"]

MEDIAN_FRAMES = 5
"""Running-median length of `smooth_path`: rejects outliers lasting up to two frames."""

ROOT_MODES = ("smooth", "model")


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
    h_prev = np.concatenate([heading[:1], heading[:-1]])
    c, s = np.cos(h_prev), np.sin(h_prev)
    vx, vz = vel_xz[:, 0].copy(), vel_xz[:, 1].copy()
    vx[0] = vz[0] = 0.0
    x = np.cumsum(c * vx + s * vz)
    z = np.cumsum(-s * vx + c * vz)
    return np.stack([x, np.asarray(height, dtype=np.float64), z], -1)


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


def place(refined: np.ndarray, given: Motion, mode: str = "smooth", sigma: float = 2.0) -> Motion:
    """Denoised raw features (T, D) of ``given`` (the noisy input, T frames) → Motion with a root trajectory.

    ``mode="smooth"``: planar path and heading from ``given``, `smooth_path`-ed with ``sigma``; the height is the
    model's (an absolute feature, so it does not drift). ``mode="model"``: everything integrated from the features,
    starting at ``given``'s first-frame position and heading.
    """
    if mode not in ROOT_MODES:
        raise ValueError(f"root mode must be one of {', '.join(ROOT_MODES)}, got {mode!r}")
    rot_dim = 6 * len(given.skeleton)
    root = refined[:, rot_dim:]
    world_pos, world_heading = world_root(given)
    if mode == "smooth":
        heading = smooth_path(np.unwrap(world_heading), sigma)
        pos = smooth_path(world_pos, sigma)
        pos[:, 1] = root[:, 0]
    else:
        dh = root[:, 3].copy()
        dh[0] = 0.0
        heading = world_heading[0] + np.cumsum(dh)
        pos = integrate(root[:, 0], root[:, 1:3], heading)
        pos[:, [0, 2]] += world_pos[0, [0, 2]]
    return assemble(refined[:, :rot_dim], heading, pos, given.skeleton, given)


def despike(feats: np.ndarray, frames: int) -> np.ndarray:
    """(T, D) features → (T, D): running median over ``frames`` frames per channel (1: unchanged). A median of
    ``2k + 1`` frames removes outliers lasting up to ``k`` frames and keeps steps."""
    return smooth_path(feats, 0.0, median=frames).astype(feats.dtype)


def finish(refined: np.ndarray, given: Motion, root: str = "smooth", root_sigma: float = 2.0,
           smooth_sigma: float = 0.0) -> Motion:
    """Refined raw features (T, D) of ``given`` → Motion: `place` with ``root`` / ``root_sigma``, then the Gaussian
    filter baseline (`baselines.Gaussian`, ``smooth_sigma`` frames; 0: none) over rotations and root."""
    out = place(refined, given, root, root_sigma)
    if smooth_sigma > 0:
        from ..baselines import Gaussian
        from ..tasks import denoise_mask

        out = Gaussian(smooth_sigma).complete(out, denoise_mask(out.num_frames, len(out.skeleton)))[0]
    return out


def check_options(root: str, root_sigma: float, despike_frames: int, smooth_sigma: float) -> None:
    """Raise `MotionsynthError` naming the first bad denoising option."""
    from ..errors import MotionsynthError

    if root not in ROOT_MODES:
        raise MotionsynthError(f"root must be one of {', '.join(ROOT_MODES)}, got {root!r}")
    if root_sigma < 0 or smooth_sigma < 0:
        raise MotionsynthError(f"root_sigma and smooth_sigma must be >= 0, got {root_sigma}, {smooth_sigma}")
    if despike_frames < 1 or despike_frames % 2 == 0:
        raise MotionsynthError(f"despike must be an odd number of frames (1: off), got {despike_frames}")


# ---- windows ---------------------------------------------------------------------------------------------------------
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


def hold_pad(feats: np.ndarray, length: int) -> np.ndarray:
    """(T, D) → (max(T, length), D), holding the last frame."""
    return np.concatenate([feats, np.repeat(feats[-1:], max(0, length - len(feats)), 0)])


def overlapped(feats: np.ndarray, window: int, overlap: int, batch_size: int, refine, progress: bool = False,
               desc: str = "refine (overlapping windows)") -> np.ndarray:
    """(T, D) raw features → (T, D) float64: windows of ``window`` frames overlapping by ``overlap`` (`blend_weights`;
    a short sequence is `hold_pad`-ded), ``refine``-d ``batch_size`` at a time ((k, W, D) → (k, W, D) raw features)
    and cross-faded. Memory is bounded by the batch, whatever T."""
    from tqdm import tqdm

    T, W = len(feats), window
    starts, weights = blend_weights(T, W, overlap)
    padded = hold_pad(feats, W)
    out = np.zeros((len(padded), feats.shape[1]), dtype=np.float64)
    for s in tqdm(range(0, len(starts), batch_size), desc=desc, disable=not progress, leave=False):
        batch = starts[s:s + batch_size]
        refined = refine(np.stack([padded[b:b + W] for b in batch]))
        for i, b in enumerate(batch):
            out[b:b + W] += weights[s + i, :, None] * refined[i]
    return out[:T]


# ---- the whole path --------------------------------------------------------------------------------------------------
def denoise_motion(motion: Motion, fps: float, refine, despike_frames: int = 1, root: str = "smooth",
                   root_sigma: float = 2.0, smooth_sigma: float = 0.0) -> Motion:
    """Denoise ``motion`` with ``refine`` ((T, D) raw features → (T, D) refined raw features) of a model working at
    ``fps``: resampled to it and back, `despike`-d before, `finish`-ed after. The result has ``motion``'s length,
    skeleton, fps, name, labels and per-joint translations."""
    work = motion if abs(fps - motion.fps) < 1e-6 else motion.resample(fps)
    refined = refine(despike(encode(work, dtype=np.float32), despike_frames))
    out = finish(np.asarray(refined, dtype=np.float64), work, root, root_sigma, smooth_sigma)
    if abs(out.fps - motion.fps) > 1e-6:
        out = replace(out.at_times(np.arange(motion.num_frames) / motion.fps), fps=motion.fps)
    out.translations = None if motion.translations is None else motion.translations.copy()
    return out
