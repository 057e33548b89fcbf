"""What every learned denoiser shares (`prior.PriorMethod`, `meva.MEVAMethod`): the path around the model.

`denoise_motion` is that path: resample to the model's frame rate, encode, `despike` (a running median over the
input's features, so that isolated outliers — a pose estimator's spikes — do not reach a model that was not trained
on them), refine with the model (often `overlapped`: windows cross-faded with `ops.blend_weights`), `finish` (place the
refined features in the world with `place`, optionally smooth with the Gaussian filter baseline), resample back.

The root trajectory. Models predict the root block of the features (`data.features`: height, planar velocity in the
heading frame, heading velocity). Integrating predicted velocities over a long sequence drifts, so a denoiser
usually takes the planar path and heading from the (noisy) input instead, smoothed robustly: `root.smooth_path` is a
running median over ``root.MEDIAN_FRAMES`` frames (removes isolated spikes) followed by a Gaussian.

All angles are radians, positions in file units (cm for Bandai), arrays are per frame along axis 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..data.features import ROOT_HEIGHT, encode, root_slice, rot6d_slice
from ..errors import MotionsynthError
from ..motion import Motion
from ..ops import blend_weights, crossfade, hold_pad
from ..tasks import denoise_mask
from .baselines import Gaussian
from .root import MEDIAN_FRAMES, assemble, root_path, smooth_path, world_root

__all__ = ["ROOT_MODES", "place", "despike", "finish", "check_options", "overlapped", "denoise_motion", "at_fps"]

ROOT_MODES = ("smooth", "model")


def place(refined: np.ndarray, given: Motion, mode: str = "smooth", sigma: float = 2.0,
          median: int = MEDIAN_FRAMES) -> Motion:
    """Denoised raw features (T, D) of ``given`` (the noisy input, T frames) → Motion with a root trajectory.

    ``mode="smooth"``: planar path and heading from ``given``, `smooth_path`-ed with ``sigma`` after a running median
    of ``median`` frames (``sigma=0, median=1``: ``given``'s path as it is); the height is the model's (an absolute
    feature, so it does not drift). ``mode="model"``: everything integrated from the features, starting at
    ``given``'s first-frame position and heading.
    """
    if mode not in ROOT_MODES:
        raise ValueError(f"root mode must be one of {', '.join(ROOT_MODES)}, got {mode!r}")
    root = refined[:, root_slice(given.skeleton)]
    world_pos, world_heading = world_root(given)
    if mode == "smooth":
        heading = smooth_path(np.unwrap(world_heading), sigma, median)
        pos = smooth_path(world_pos, sigma, median)
        pos[:, 1] = root[:, ROOT_HEIGHT]
    else:
        pos, heading = root_path(root, world_heading[0])
        pos[:, [0, 2]] += world_pos[0, [0, 2]]
    return assemble(refined[:, rot6d_slice(given.skeleton)], heading, pos, given.skeleton, given)


def despike(feats: np.ndarray, frames: int) -> np.ndarray:
    """(T, D) features → (T, D): running median over ``frames`` frames per channel (1: unchanged). A median of
    ``2k + 1`` frames removes outliers lasting up to ``k`` frames and keeps steps."""
    return smooth_path(feats, 0.0, median=frames).astype(feats.dtype)


def finish(refined: np.ndarray, given: Motion, root: str = "smooth", root_sigma: float = 2.0,
           smooth_sigma: float = 0.0, median: int = MEDIAN_FRAMES) -> Motion:
    """Refined raw features (T, D) of ``given`` → Motion: `place` with ``root`` / ``root_sigma`` / ``median``, then
    the Gaussian filter baseline (`baselines.Gaussian`, ``smooth_sigma`` frames; 0: none) over rotations and root."""
    out = place(refined, given, root, root_sigma, median)
    if smooth_sigma > 0:
        out = Gaussian(smooth_sigma).complete(out, denoise_mask(out.num_frames, len(out.skeleton)))[0]
    return out


def check_options(root: str, root_sigma: float, despike_frames: int, smooth_sigma: float) -> None:
    """Raise `MotionsynthError` naming the first bad denoising option."""
    if root not in ROOT_MODES:
        raise MotionsynthError(f"root must be one of {', '.join(ROOT_MODES)}, got {root!r}")
    if root_sigma < 0 or smooth_sigma < 0:
        raise MotionsynthError(f"root_sigma and smooth_sigma must be >= 0, got {root_sigma}, {smooth_sigma}")
    if despike_frames < 1 or despike_frames % 2 == 0:
        raise MotionsynthError(f"despike must be an odd number of frames (1: off), got {despike_frames}")


def overlapped(feats: np.ndarray, window: int, overlap: int, batch_size: int, refine, progress: bool = False,
               desc: str = "refine (overlapping windows)", dim: int | None = None) -> np.ndarray:
    """(T, C) raw features → (T, ``dim``) float64 (default: C): windows of ``window`` frames overlapping by
    ``overlap`` (`ops.blend_weights`; a short sequence is `ops.hold_pad`-ded), ``refine``-d ``batch_size`` at a time
    ((k, W, C) → (k, W, dim) raw features) and cross-faded. Memory is bounded by the batch, whatever T."""
    from ..progress import bar

    T, W = len(feats), window
    starts, weights = blend_weights(T, W, overlap)
    padded = hold_pad(feats, W)
    out = np.zeros((len(padded), feats.shape[1] if dim is None else dim), dtype=np.float64)
    for s in bar(range(0, len(starts), batch_size), progress, desc):
        batch = starts[s:s + batch_size]
        crossfade(out, refine(np.stack([padded[b:b + W] for b in batch])), batch, weights[s:s + batch_size])
    return out[:T]


# ---- the whole path --------------------------------------------------------------------------------------------------
def denoise_motion(motion: Motion, fps: float, refine, despike_frames: int = 1, root: str = "smooth",
                   root_sigma: float = 2.0, smooth_sigma: float = 0.0) -> Motion:
    """Denoise ``motion`` with ``refine`` ((T, D) raw features → (T, D) refined raw features) of a model working at
    ``fps``: resampled to it and back, `despike`-d before, `finish`-ed after. The result has ``motion``'s length,
    skeleton, fps, name, labels and per-joint translations."""
    def run(work: Motion) -> Motion:
        refined = refine(despike(encode(work, dtype=np.float32), despike_frames))
        return finish(np.asarray(refined, dtype=np.float64), work, root, root_sigma, smooth_sigma)

    return at_fps(motion, fps, run)


def at_fps(motion: Motion, fps: float, run) -> Motion:
    """``run`` (Motion → Motion of the same length) applied to ``motion`` resampled to ``fps``, and the result
    resampled back: ``motion``'s length and fps, and its per-joint translations."""
    work = motion if abs(fps - motion.fps) < 1e-6 else motion.resample(fps)
    out = run(work)
    if abs(out.fps - motion.fps) > 1e-6:
        out = replace(out.at_times(np.arange(motion.num_frames) / motion.fps), fps=motion.fps)
    out.translations = None if motion.translations is None else motion.translations.copy()
    return out
