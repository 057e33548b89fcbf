"""MEVA as a task method: the trained estimator (`models.meva.MEVA`) denoising motions of any length."""

from __future__ import annotations

import time

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..errors import MotionsynthError
from ..models.meva import MEVA
from ..motion import Motion
from ..tasks import Completion, Mask, check_label
from .completion import attach
from .denoising import check_options, denoise_motion, overlapped

__all__ = ["MEVAMethod"]


class MEVAMethod:
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
    needs_fit = False

    def __init__(self, checkpoint: Checkpoint, overlap: int | None = None, batch_size: int = 32,
                 root: str = "smooth", root_sigma: float = 6.0, despike: int = 1, smooth_sigma: float = 1.5,
                 progress: bool = False):
        attach(self, checkpoint, MEVA, "MEVA")
        self.window = int(self.model.config.window)
        self.overlap = self.window // 2 if overlap is None else int(overlap)
        if not 0 <= self.overlap < self.window:
            raise MotionsynthError(f"overlap must be in 0..{self.window - 1} frames, got {self.overlap}")
        if batch_size < 1:
            raise MotionsynthError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size, self.progress = int(batch_size), bool(progress)
        check_options(root, root_sigma, despike, smooth_sigma)
        self.params = {"root": root, "root_sigma": float(root_sigma), "despike": int(despike),
                       "smooth_sigma": float(smooth_sigma)}  # the denoising options, recorded by the benchmark

    def fit(self, motions) -> MEVAMethod:
        """Nothing to fit (``needs_fit`` is False): MEVA learned everything in training."""
        return self

    def complete(self, motion: Motion, mask: Mask, label=None, n_samples: int = 1, seed: int | None = None
                 ) -> Completion:
        """Denoise ``motion`` (``mask.noisy`` must be set: MEVA cleans an estimate, it does not fill gaps)."""
        mask.check(motion)
        check_label(label, None, "MEVA")
        if not mask.noisy:
            raise MotionsynthError("MEVA denoises a noisy estimate (a mask with noisy=True, e.g. denoise_mask); it "
                                   "cannot fill in missing frames or joints")
        self.ckpt.check_skeleton(motion.skeleton)
        if n_samples < 1:
            raise MotionsynthError(f"n_samples must be at least 1, got {n_samples}")
        start = time.perf_counter()
        out = self.denoise(motion)
        return Completion([out] + [out.copy() for _ in range(n_samples - 1)], options={"overlap": self.overlap, "batch_size": self.batch_size,
                                                                    **self.params},
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
