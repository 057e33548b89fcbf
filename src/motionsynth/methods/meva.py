"""MEVA as a task method: the trained estimator (`models.meva.MEVA`) denoising motions of any length."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import Options, option
from ..errors import MotionsynthError
from ..models.meva import MEVA
from ..motion import Motion
from ..tasks import Completion, Mask
from .completion import LearnedMethod
from .denoising import ROOT_MODES, check_options, denoise_motion, overlapped

__all__ = ["MEVAMethod", "MEVAOptions"]


@dataclass
class MEVAOptions(Options):
    """The MEVA method's options (`config.Options`); the denoising ones are `denoising.check_options`'."""

    overlap: int | None = option(None, "frames shared by consecutive windows (default: W/2)")
    batch_size: int = option(32, "windows per forward pass")
    root: str = option("smooth", "root trajectory: smooth (the input's path and heading, smoothed; the model's "
                                 "height) or model (integrated from the model's root velocities)", ROOT_MODES)
    root_sigma: float = option(6.0, "Gaussian sigma in frames of root=smooth (after a 5-frame running median)")
    despike: int = option(1, "running median over the input, frames (odd; 1: off)")
    smooth_sigma: float = option(1.5, "Gaussian filter over the result, sigma in frames (0: off)")

    def check(self) -> None:
        if self.batch_size < 1:
            raise MotionsynthError(f"batch_size must be at least 1, got {self.batch_size}")
        check_options(self.root, self.root_sigma, self.despike, self.smooth_sigma)


class MEVAMethod(LearnedMethod):
    """A trained MEVA checkpoint as a `tasks.Method`: denoises (``mask.noisy``) motions of any length.

    The motion is encoded to features, cut into windows of the model's W frames overlapping by ``overlap`` frames
    (default W / 2), processed ``batch_size`` windows at a time (memory is bounded whatever the length) and
    cross-faded (`denoising.overlapped`), then placed in the world (`denoising.denoise_motion`). Motions at another
    frame rate than the model's are resampled to it and back. The result has the input's skeleton, fps, name,
    labels and per-joint translations. MEVA is deterministic: the ``n_samples`` results are identical.

    The root trajectory (`denoising.place`): ``root="smooth"`` (default) takes the planar path and heading from the
    input, robustly smoothed (5-frame running median, then a Gaussian of ``root_sigma`` frames), and the height from
    MEVA; ``root="model"`` integrates MEVA's root velocities from the input's first frame (drifts over long clips).
    ``despike`` (odd, frames) runs a running median over the input features first (1: off; `denoising.despike`);
    ``smooth_sigma > 0`` runs the Gaussian filter baseline (sigma in frames) over the result: MRR adds back detail
    frame by frame, and some of it is jitter (`denoising.finish`). The defaults were chosen on the validation split
    for the ``mixed`` noise model: the lowest MPJPE among settings at most as jerky as the best tuned filter
    (docs/BENCHMARKS.md, ``scripts/tune_method.py``). ``progress``: a progress bar over the window batches.
    """

    name = "meva"
    tasks = ("denoise",)
    Options = MEVAOptions
    network, what = MEVA, "MEVA"

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o = cast(MEVAOptions, self.opts)
        self.overlap = self.window // 2 if o.overlap is None else int(o.overlap)
        if not 0 <= self.overlap < self.window:
            raise MotionsynthError(f"overlap must be in 0..{self.window - 1} frames, got {self.overlap}")
        self.batch_size = int(o.batch_size)
        self.params = {"root": o.root, "root_sigma": float(o.root_sigma), "despike": int(o.despike),
                       "smooth_sigma": float(o.smooth_sigma)}  # the denoising options, recorded by the benchmark

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """Denoise ``motion`` (``mask.noisy``: MEVA cleans an estimate, it does not fill gaps)."""
        start = time.perf_counter()
        out = self.denoise(motion)
        return Completion([out] + [out.copy() for _ in range(n_samples - 1)],
                          options={"overlap": self.overlap, "batch_size": self.batch_size, **self.params},
                          timings={"total_s": time.perf_counter() - start, "frames": float(motion.num_frames)})

    @torch.no_grad()
    def denoise(self, motion: Motion) -> Motion:
        """The refined motion, same length, skeleton and fps as ``motion``."""
        p = self.params
        return denoise_motion(motion, float(self.ckpt.fps or motion.fps), self._refine, p["despike"], p["root"],
                              p["root_sigma"], p["smooth_sigma"])

    def _refine(self, feats: np.ndarray) -> np.ndarray:
        """(T, D) raw features → (T, D) refined raw features, window batch by window batch."""
        return overlapped(feats, self.window, self.overlap, self.batch_size, self._forward, self.progress)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """(k, W, D) raw windows → (k, W, D) refined raw windows."""
        stats, model = self.ckpt.stats, self.model
        xn = torch.from_numpy(np.asarray(stats.normalize(x), dtype=np.float32)).to(model.feat_mean.device)
        return stats.denormalize(model(xn)[1].cpu().numpy()).astype(np.float64)
