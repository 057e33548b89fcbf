"""Denoising with the Δ-denoiser (`models.delta_denoise.DeltaDenoiser`) as a `tasks.Method`: the checkpoint's
smoothing filter, then one forward pass per window adding the network's residual.

The motion (resampled to the model's frame rate and back, `denoising.at_fps`) is filtered once as a whole with the
checkpoint's filter settings (`postprocess.smooth_motion`), both it and the noisy input are encoded to features, cut
into windows of the model's W frames overlapping by ``overlap`` and cross-faded (`denoising.overlapped`). The root's
planar path and heading are the filtered motion's; rotations and root height the network's (`denoising.place`).
``residual_sigma`` smooths the network's residual in time (a Gaussian, frames): the network corrects each frame on its
own, and part of what it adds is jitter; the filter's output under it is smooth already. ``smooth_sigma`` runs the
Gaussian filter baseline over the result (`denoising.finish`), as MEVA's option of that name does. The defaults
(0 and 0.5) were chosen on the validation split for the shipped model (``gaussian`` noise: the lowest MPJPE among
settings at most as jerky as the tuned `smooth` filter, ``scripts/tune_method.py``); for a model trained on ``mixed``
noise the same rule chose 2 and 1, for ``spikes`` 0 and 0 (docs/BENCHMARKS.md).
Deterministic: every sample of a call is the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from ..checkpoint import Checkpoint
from ..config import Options, option
from ..data.features import encode
from ..errors import MotionsynthError
from ..models.delta_denoise import DeltaDenoiser
from ..motion import Motion
from ..tasks import Completion, Mask
from .completion import LearnedMethod
from .denoising import at_fps, finish, overlapped

__all__ = ["DeltaDenoiseMethod", "DeltaDenoiseOptions"]


@dataclass
class DeltaDenoiseOptions(Options):
    """The Δ-denoiser method's options (`config.Options`)."""

    overlap: int | None = option(None, "frames shared by consecutive windows (default: W/2)")
    batch_size: int = option(32, "windows per forward pass")
    residual_sigma: float = option(0.0, "Gaussian over the network's residual in time, sigma in frames (0: off)")
    smooth_sigma: float = option(0.5, "Gaussian filter over the result, sigma in frames (0: off)")

    def check(self) -> None:
        if self.batch_size < 1:
            raise MotionsynthError(f"batch_size must be at least 1, got {self.batch_size}")
        if min(self.residual_sigma, self.smooth_sigma) < 0:
            raise MotionsynthError(f"residual_sigma and smooth_sigma must be >= 0, got {self.residual_sigma}, "
                                   f"{self.smooth_sigma}")


class DeltaDenoiseMethod(LearnedMethod):
    """A Δ-denoiser checkpoint as a `tasks.Method`: denoises (``mask.noisy``) motions of any length (see the module
    docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``delta-denoise`` family.
        options: `DeltaDenoiseOptions` by name — overlap (frames shared by consecutive windows; default W/2),
            batch_size (windows per forward pass), residual_sigma (Gaussian over the residual, frames; 0: off),
            smooth_sigma (Gaussian over the result, frames; 0: off).
    """

    name = "delta-denoise"
    tasks = ("denoise",)
    Options = DeltaDenoiseOptions
    network, what = DeltaDenoiser, "Δ-denoiser"

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o = cast(DeltaDenoiseOptions, self.opts)
        self.overlap = self.window // 2 if o.overlap is None else int(o.overlap)
        if not 0 <= self.overlap < self.window:
            raise MotionsynthError(f"overlap must be in 0..{self.window - 1} frames, got {self.overlap}")
        self.batch_size, self.residual_sigma = int(o.batch_size), float(o.residual_sigma)
        self.smooth_sigma = float(o.smooth_sigma)
        c = self.model.config
        self.params = {"overlap": self.overlap, "batch_size": self.batch_size, "residual_sigma": self.residual_sigma,
                       "smooth_sigma": self.smooth_sigma, "filter_weight": c.filter_weight,
                       "filter_iters": c.filter_iters, "filter_norm": c.filter_norm}

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """Denoise ``motion`` (``mask.noisy``: the whole clip is a noisy estimate)."""
        start = time.perf_counter()
        out = self.denoise(motion)
        return Completion([out] + [out.copy() for _ in range(n_samples - 1)], options=dict(self.params),
                          timings={"total_s": time.perf_counter() - start, "frames": float(motion.num_frames)})

    @torch.no_grad()
    def denoise(self, motion: Motion) -> Motion:
        """The denoised motion: same length, skeleton and fps as ``motion``."""
        return at_fps(motion, float(self.ckpt.fps or motion.fps), self._denoise)

    def _denoise(self, work: Motion) -> Motion:
        filtered = self.model.filter([work])[0]
        both = np.concatenate([encode(work, dtype=np.float32), encode(filtered, dtype=np.float32)], -1)
        refined = overlapped(both, self.window, self.overlap, self.batch_size, self._forward, self.progress,
                             dim=self.model.dim)
        if self.residual_sigma > 0:  # the filter's output is smooth already: what jitters is the residual
            base = both[:, self.model.dim:]
            refined = base + gaussian_filter1d(refined - base, self.residual_sigma, axis=0, mode="nearest")
        return finish(refined, filtered, "smooth", root_sigma=0.0, smooth_sigma=self.smooth_sigma, median=1)

    def _forward(self, both: np.ndarray) -> np.ndarray:
        """(k, W, 2D) raw windows (noisy, filtered) → (k, W, D) denoised raw windows."""
        stats, D = self.ckpt.stats, self.model.dim
        x = torch.as_tensor(np.asarray(stats.normalize(both.reshape(*both.shape[:2], 2, D)), dtype=np.float32),
                            device=self.device)
        out = self.model({"noisy": x[:, :, 0], "filtered": x[:, :, 1]})
        return stats.denormalize(out.cpu().numpy()).astype(np.float64)
