"""In-betweening with the Δ-interpolator (`models.delta.DeltaInterpolator`) as a `tasks.Method`: one forward pass per
window, no sampling.

The clip is encoded to features (`completion.conditioning`, with the observed root positions and headings: the root
track), cut into overlapping windows of the model's W frames (``overlap``; a clip shorter than W is padded by holding
its last frame, the padded frames unobserved, and cut back), each window completed as interpolation + the network's
residual, and the windows cross-faded (`completion.windowed_best_of_n`). Then the steps of `completion.finish`, with
the root's world path computed once for the track and the pinning: the root block integrated and pinned to the
observed root, the observed values copied back exactly. The network passes the observed entries through unchanged,
so the synthesised frames already join them: blending the observed rotations in (``pin_rotations``,
`completion.pin_rotations`, a fifth of a call's time) is off by default.

Deterministic: every sample of a call is the same completion (``seed`` changes nothing); the objective is the mean
absolute error of the normalised features on the observed entries (0 up to rounding: they are copied through).
The model serves in-betweening only: it was trained on key-frame masks alone (whole frames observed; a mask that
observes part of a frame — a joint the user's rig lacks — runs, as it does for every method).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import Options, option
from ..errors import MotionsynthError
from ..models.delta import DeltaInterpolator
from ..motion import Motion
from ..ops import blend_weights, hold_pad
from ..tasks import Completion, Mask, keep_observed
from .completion import LearnedMethod, check_fps, conditioning, pin_rotations, place_root, windowed_best_of_n
from .root import world_root

__all__ = ["DeltaMethod", "DeltaOptions"]


@dataclass
class DeltaOptions(Options):
    """The Δ-interpolator method's options (`config.Options`)."""

    overlap: int | None = option(None, "frames shared by consecutive windows of a long clip (default: W/4)")
    pin_rotations: bool = option(False, "blend the observed rotations into the synthesised frames (the network "
                                        "passes them through already)")
    batch_size: int = option(64, "windows per forward pass")

    def check(self) -> None:
        if self.batch_size < 1:
            raise MotionsynthError(f"batch_size must be at least 1, got {self.batch_size}")


class DeltaMethod(LearnedMethod):
    """A Δ-interpolator checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``delta`` family.
        options: `DeltaOptions` by name — overlap (frames shared by consecutive windows of a long clip; default
            W/4), pin_rotations (`completion.pin_rotations`), batch_size (windows per forward pass).
    """

    tasks = ("inbetween",)
    Options = DeltaOptions
    network, what = DeltaInterpolator, "Δ-interpolator"

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o = cast(DeltaOptions, self.opts)
        self.name = self.model.variant
        W = self.window
        self.overlap = W // 4 if o.overlap is None else int(o.overlap)
        if not 0 < self.overlap < W:
            raise MotionsynthError(f"overlap must be in 1..{W - 1} frames, got {self.overlap}")
        self.pin_rotations, self.batch_size = bool(o.pin_rotations), int(o.batch_size)
        self.params = {"overlap": self.overlap, "pin_rotations": self.pin_rotations, "batch_size": self.batch_size}

    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """The completion of ``motion`` under ``mask``, ``n_samples`` times (all alike)."""
        check_fps(self.ckpt, motion)
        start = time.perf_counter()
        T, W = motion.num_frames, self.window
        world = world_root(motion)  # once: the root track in, the root pinned out (`completion.finish`'s steps)
        cond = conditioning(motion, mask, W)
        pos, heading = world
        cond["track"] = hold_pad(np.stack([pos[:, 0], pos[:, 2], heading], -1).astype(np.float32), W)
        raw, objective = windowed_best_of_n(cond, W, self.overlap, 1, self.batch_size, self._solve)
        one = place_root(raw[0, :T], motion, mask, world)
        if self.pin_rotations and mask.joints.any():
            one = pin_rotations(one, motion, mask)
        one = keep_observed(one, motion, mask)
        samples = [one] + [one.copy() for _ in range(n_samples - 1)]
        timings = {"total_s": time.perf_counter() - start, "frames": float(T),
                   "windows": float(len(blend_weights(len(cond["features"]), W, self.overlap)[0]))}
        return Completion(samples, options=dict(self.params), timings=timings,
                          objective=[float(objective[0])] * n_samples)

    @torch.no_grad()
    def _solve(self, ks: np.ndarray, windows: dict) -> tuple[np.ndarray, np.ndarray]:
        """`windowed_best_of_n`'s solver: k windows (``features`` raw (k, W, D), ``mask`` (k, W, D), ``track``
        (k, W, 3)) → their completions, raw (k, 1, W, D), and objectives (k, 1)."""
        stats = self.ckpt.stats
        x = torch.as_tensor(np.asarray(stats.normalize(windows["features"]), dtype=np.float32), device=self.device)
        m = torch.as_tensor(windows["mask"], dtype=torch.float32, device=self.device)
        track = torch.as_tensor(windows["track"], dtype=torch.float32, device=self.device)
        out = self.model.sample({"observed": x, "mask": m, "track": track})
        err = ((out - x).abs() * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1.0)
        raw = stats.denormalize(out.cpu().numpy()).astype(np.float64)
        return raw[:, None], err.cpu().numpy()[:, None]
