"""Every task with a motion diffusion model (`models.diffusion.MotionDiffusion`) as a `tasks.Method`: sampling
with the observation inpainted.

A window of the model's W frames is encoded to normalised features and sampled by DDIM (``sampler="ddim"``,
``steps`` evenly spaced steps, ``eta``) or ancestral DDPM (``"ddpm"``, every one of the model's T steps) from
`motionsynth.diffusion`. The observed entries (`completion.feature_mask` of the `tasks.Mask`) reach the sample one
of two ways, or both (``inpaint``):

- ``"impose"`` — re-imposed at every step at the sample's noise level (`diffusion.impose`, RePaint without
  resampling), with any network;
- ``"condition"`` — given to a network trained on masked observations (``model.condition_on_observed``).

The default is ``"condition"`` for such a network (chosen on the validation split: re-imposing as well made
in-betweening worse, docs/BENCHMARKS.md), ``"impose"`` otherwise. Labels (``{"content": "walk"}``, checked
against the checkpoint's vocabulary, `tasks.check_label`) condition the sample with classifier-free guidance of
scale ``guidance`` (`diffusion.cfg`: (1 + w) f(c) − w f(∅); w = 0 is the plain conditional model; without a label the
model is sampled unconditionally, one call per step).

Denoising (``mask.noisy``) is SDEdit: the noisy input's features noised to step ``denoise_level`` × T and sampled
back, each window independently, cross-faded; the root's planar path and heading come from the input, smoothed
(`denoising.finish`, ``root="smooth"``).

Lengths. A clip shorter than W is padded to W by holding its last frame (the padded frames unobserved) and cut back.
A longer clip goes one of two ways (``long``):

- ``"continue"`` — window after window (starting W − ``overlap`` frames later), the frames already made are
  observed in the next window, so its seam is inpainted and the sample continues the motion; over those frames the
  made motion is cross-faded into the new sample (inpainting alone left a jump where the new frames began: 1.2–16 ×
  the clip's acceleration there, docs/BENCHMARKS.md). The ``n_samples`` chains run in one batch.
- ``"windows"`` — `completion.windowed_best_of_n`: overlapping windows sampled independently (all in one batch) and
  cross-faded.

``"auto"`` (default) continues for generation and prediction (nothing observed after the first unobserved frame),
and uses independent windows otherwise, where each window holds observations of its own.

Then `completion.finish`: the root block integrated and pinned to the observed root, the observed rotations blended
in (``pin_rotations``) and copied back exactly. The objective of a sample is the mean absolute error of its
normalised features on the observed entries before they are copied back (0 with ``"impose"``); for denoising, the
distance to the noisy input. ``seed=None`` means seed 0 (repeatable); the ``n_samples`` samples differ.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import Options, option
from ..diffusion import cfg, ddim_sample, ddpm_sample, impose, sdedit_start
from ..errors import MotionsynthError
from ..models.diffusion import MotionDiffusion
from ..motion import Motion
from ..ops import blend_weights
from ..tasks import Completion, Mask
from . import denoising
from .completion import LearnedMethod, check_fps, conditioning, finish, label_tensors, long_mode, windowed_best_of_n

__all__ = ["DiffusionMethod", "DiffusionOptions", "SAMPLERS", "INPAINT_MODES", "LONG_MODES"]

SAMPLERS = ("ddim", "ddpm")
INPAINT_MODES = ("impose", "condition", "both")
LONG_MODES = ("auto", "continue", "windows")


@dataclass
class DiffusionOptions(Options):
    """The diffusion method's options (`config.Options`)."""

    sampler: str = option("ddim", "ddim (steps evenly spaced steps) or ddpm (every one of the model's T steps)",
                          SAMPLERS)
    steps: int | None = option(None, "DDIM steps, 1 … T (default: 50, or T if smaller; DDPM runs all T)")
    eta: float = option(0.0, "DDIM's eta (0: deterministic given x_T; 1: DDPM-like noise)")
    guidance: float = option(0.5, "classifier-free guidance scale w >= 0 when a label is given (MDM's s = 1 + w)")
    inpaint: str | None = option(None, "how the observation reaches the sample: impose (re-imposed at every step), "
                                       "condition (a network trained on masked observations) or both (default: "
                                       "condition for such a network, else impose)", INPAINT_MODES)
    denoise_level: float = option(0.2, "SDEdit's noise level for denoising, a fraction of T in (0, 1]")
    clip: float | None = option(None, "clamp x0 to [-clip, clip] (normalised units) at every step (default: none)")
    overlap: int | None = option(None, "frames shared by consecutive windows of a long clip (default: W/4)")
    long: str = option("auto", "a clip longer than the window: continue window after window, independent windows, or "
                               "auto (continue for generation and prediction)", LONG_MODES)
    pin_rotations: bool = option(True, "blend the observed rotations into the synthesised frames")
    root_sigma: float = option(2.0, "Gaussian sigma (frames) of the input's root path when denoising")
    batch_size: int = option(64, "windows x samples per sampling batch")

    def check(self) -> None:
        for ok, message in [(self.eta >= 0, f"eta must be >= 0, got {self.eta}"),
                            (self.guidance >= 0, f"guidance scale must be >= 0, got {self.guidance}"),
                            (0 < self.denoise_level <= 1, f"denoise_level must be in (0, 1], got {self.denoise_level}"),
                            (self.clip is None or self.clip > 0, f"clip must be > 0 or None, got {self.clip}"),
                            (self.root_sigma >= 0, f"root_sigma must be >= 0, got {self.root_sigma}"),
                            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")]:
            if not ok:
                raise MotionsynthError(message)


class DiffusionMethod(LearnedMethod):
    """A diffusion checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``diffusion`` family.
        options: `DiffusionOptions` by name — sampler (``"ddim"`` or ``"ddpm"``), steps (DDIM steps, 1 … T; None:
            50, or T if smaller; DDPM runs all T), eta (DDIM's η: 0 deterministic given x_T, 1 DDPM-like noise),
            guidance (classifier-free guidance scale w ≥ 0 when a label is given, MDM's s = 1 + w, its 2.5 is
            w = 1.5; 0.5, chosen on the validation split: the lowest FID among the scales whose samples are
            recognised at ≥ 0.9 × the real accuracy, docs/BENCHMARKS.md, scripts/diffusion_bench.py guidance),
            inpaint (``"impose"``, ``"condition"`` or ``"both"``; None: ``"condition"`` for a network conditioned on
            the observation, else ``"impose"``), denoise_level (SDEdit's noise level for denoising, a fraction of T
            in (0, 1]), clip (clamp x̂0 to [−clip, clip] in normalised units at every step; None: no clamp), overlap
            (frames shared by consecutive windows of a long clip; default W/4), long (``"auto"``, ``"continue"`` or
            ``"windows"``, module docstring), pin_rotations (`completion.pin_rotations`), root_sigma (Gaussian sigma
            in frames of the input's root path when denoising), batch_size (windows × samples per sampling batch).
    """

    tasks = ("inbetween", "complete", "predict", "denoise", "generate")
    Options = DiffusionOptions
    network, what = MotionDiffusion, "diffusion"

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o, model = cast(DiffusionOptions, self.opts), self.model
        self.name = model.variant
        W = self.window
        self.T = T = int(model.config.T)
        self.overlap = W // 4 if o.overlap is None else int(o.overlap)
        steps = min(50, T) if o.steps is None else o.steps
        conditioned = bool(model.config.condition_on_observed)
        inpaint = ("condition" if conditioned else "impose") if o.inpaint is None else o.inpaint
        checks = [(isinstance(steps, int) and 1 <= steps <= T, f"steps must be in 1 … {T} (the model's T), got {steps}"),
                  (inpaint == "impose" or conditioned, f"inpaint={inpaint!r} needs a network trained on masked "
                                                       f"observations (model.condition_on_observed); this one is "
                                                       f"not: use inpaint=impose"),
                  (0 < self.overlap < W, f"overlap must be in 1..{W - 1} frames, got {self.overlap}")]
        for ok, message in checks:
            if not ok:
                raise MotionsynthError(message)
        sampler = o.sampler
        self.sampler, self.steps, self.eta, self.guidance = sampler, int(steps), float(o.eta), float(o.guidance)
        self.inpaint, self.denoise_level, self.clip, self.long = inpaint, float(o.denoise_level), o.clip, o.long
        self.pin_rotations, self.root_sigma = bool(o.pin_rotations), float(o.root_sigma)
        self.batch_size = int(o.batch_size)
        self.params = {"sampler": sampler, "steps": self.steps if sampler == "ddim" else T, "eta": self.eta,
                       "guidance": self.guidance, "inpaint": inpaint, "denoise_level": self.denoise_level,
                       "clip": o.clip, "overlap": self.overlap, "long": self.long, "pin_rotations": self.pin_rotations,
                       "batch_size": self.batch_size}
        self.vocabulary = self.label_vocabulary()

    # ---- the Method ----------------------------------------------------------------------------------------------
    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """``n_samples`` completions of ``motion`` under ``mask`` (best reproduction of the observation first)."""
        check_fps(self.ckpt, motion)
        start = time.perf_counter()
        T, W, n = motion.num_frames, self.window, n_samples
        cond: dict[str, Any] = conditioning(motion, mask, W)
        cond["label"] = self._labels(label)
        gen = torch.Generator(device=self.device).manual_seed(0 if seed is None else int(seed))
        if mask.noisy:
            mode = "denoise"
            raw, objective = windowed_best_of_n(cond, W, self.overlap, n, self._per_batch(n),
                                                lambda ks, w: self._sdedit(w, n, gen))
            samples = [denoising.finish(r[:T], motion, "smooth", self.root_sigma) for r in raw]
        else:
            mode = long_mode(mask, self.long) if T > W else "windows"
            if mode == "continue":
                raw, objective = self._continue(cond, n, gen)
            else:
                raw, objective = windowed_best_of_n(cond, W, self.overlap, n, self._per_batch(n),
                                                    lambda ks, w: self._solve(w, n, gen))
            samples = finish(raw[:, :T], motion, mask, self.pin_rotations)
        timings = {"total_s": time.perf_counter() - start, "frames": float(T),
                   "windows": float(len(blend_weights(len(cond["features"]), W, self.overlap)[0]))}
        return Completion(samples, options={**self.params, "long": mode}, timings=timings,
                          objective=[float(o) for o in objective])

    def _per_batch(self, n: int) -> int:
        return max(1, self.batch_size // n)

    def _labels(self, label: dict | None) -> dict | None:
        """The label (checked) → {kind: (1,) long} over the model's label kinds, or None."""
        if not label:
            return None
        idx = label_tensors(label, self.vocabulary, self.device)
        try:
            self.model.label_index(idx, 1)
        except ValueError as e:
            raise MotionsynthError(f"{self.ckpt.path or 'checkpoint'}: {e}") from None
        return idx

    # ---- sampling ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: dict, gen: torch.Generator, start: int | None = None) -> torch.Tensor:
        """Normalised windows ``cond["observed"]`` (B, W, D), observed where ``cond["mask"]`` (B, W, D) bool is set
        (or, with ``start``, noisy windows to SDEdit from step ``start``), and ``cond["label"]`` (`_labels`, or None)
        → (B, W, D) normalised samples, ``batch_size`` at a time."""
        known, fmask, out = cond["observed"], cond["mask"], []
        for i in range(0, len(known), self.batch_size):
            part = slice(i, i + self.batch_size)
            out.append(self._sample({**cond, "observed": known[part], "mask": fmask[part]}, gen, start))
        return torch.cat(out)

    def _sample(self, cond: dict, gen, start):
        model, schedule, c = self.model, self.model.schedule, self.model.config
        known, fmask, labels = cond["observed"], cond["mask"], cond.get("label")
        observed = {}  # what the network reads of the observation
        if start is None and self.inpaint in ("condition", "both"):
            observed = {"observed": known, "mask": fmask.float()}

        def f(x, t, lab):
            return model(x, t, {"label": lab, **observed})

        def both(x, t):  # conditional and unconditional in one batch of 2B
            B = len(x)
            lab = {k: torch.cat([v.expand(B), v.new_full((B,), -1)]) for k, v in labels.items()}
            return model(torch.cat([x, x]), torch.cat([t, t]),
                         {"label": lab, **{k: torch.cat([v, v]) for k, v in observed.items()}}).chunk(2)

        denoise = cfg(f, labels, self.guidance, both) if labels else (lambda x, t: f(x, t, None))
        hook = None
        if start is None and self.inpaint in ("impose", "both") and bool(fmask.any()):
            hook = impose(schedule, known, fmask, gen)
        kw = dict(prediction=c.prediction, clip=self.clip, generator=gen, inpaint=hook, device=self.device)
        init = None if start is None else sdedit_start(schedule, known, start, gen)
        shape = None if init is not None else tuple(known.shape)
        if self.sampler == "ddpm":
            return ddpm_sample(schedule, denoise, shape, start=init, **kw)
        steps = self.steps if start is None else max(1, min(start + 1, math.ceil(self.steps * (start + 1) / self.T)))
        return ddim_sample(schedule, denoise, shape, steps=steps, eta=self.eta, start=init, **kw)

    def _run(self, cond: dict, gen, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Windows of the conditioning (``features`` raw (N, W, D), ``mask`` (N, W, D), ``label``) → raw samples
        (N, W, D) float64 and objectives (N,): mean absolute error of the normalised samples on the observed entries
        (all entries for SDEdit)."""
        stats = self.ckpt.stats
        x = torch.as_tensor(np.asarray(stats.normalize(cond["features"]), dtype=np.float32), device=self.device)
        m = torch.as_tensor(cond["mask"], dtype=torch.bool, device=self.device)
        out = self.sample({"observed": x, "mask": m, "label": cond.get("label")}, gen, start)
        w = m.float()
        err = ((out - x).abs() * w).sum((1, 2)) / w.sum((1, 2)).clamp_min(1.0)
        return stats.denormalize(out.cpu().numpy()).astype(np.float64), err.cpu().numpy()

    def _solve(self, windows: dict, n: int, gen) -> tuple[np.ndarray, np.ndarray]:
        """`windowed_best_of_n`'s solver: k windows of the conditioning → n samples each (k, n, W, D) and objectives
        (k, n)."""
        feats = windows["features"]
        k = len(feats)
        raw, err = self._run({"features": np.repeat(feats, n, 0), "mask": np.repeat(windows["mask"], n, 0),
                              "label": windows["label"]}, gen)
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _sdedit(self, windows: dict, n: int, gen) -> tuple[np.ndarray, np.ndarray]:
        """Denoising's solver: k noisy windows → n SDEdit samples each (k, n, W, D), distances to the input (k, n)."""
        feats = windows["features"]
        k = len(feats)
        t0 = max(0, min(self.T - 1, round(self.denoise_level * self.T) - 1))
        everything = np.ones((k * n, *feats.shape[1:]), bool)
        raw, err = self._run({"features": np.repeat(feats, n, 0), "mask": everything, "label": windows["label"]}, gen,
                             start=t0)
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _continue(self, cond: dict, n: int, gen) -> tuple[np.ndarray, np.ndarray]:
        """Window after window, the frames made so far observed (the seam inpainted) and kept; n chains in one
        batch, sorted by their mean objective (best first). Returns raw (n, T', D) and objectives (n,)."""
        feats, fmask = cond["features"], cond["mask"]
        T, W = len(feats), self.window
        starts, _ = blend_weights(T, W, self.overlap)
        made = np.repeat(feats[None].astype(np.float64), n, 0)
        objective, end = np.zeros(n), 0
        for s in starts:
            held = max(0, end - s)  # frames of this window already made: observed
            x = made[:, s:s + W].copy()
            m = np.repeat(fmask[None, s:s + W], n, 0)
            m[:, :held] = True
            raw, err = self._run({"features": x.astype(np.float32), "mask": m, "label": cond["label"]}, gen)
            own = fmask[s:s + W]  # the objective counts the mask's own observations only
            if own.any():
                stats = self.ckpt.stats
                diff = np.abs(stats.normalize(raw) - stats.normalize(feats[None, s:s + W])) * own
                err = diff.sum((1, 2)) / own.sum()
            objective += err
            if held:  # cross-fade the held frames into the new sample, which continues them (its own seam is smooth)
                w = (np.arange(1, held + 1) / (held + 1))[None, :, None]
                made[:, s:s + held] = (1 - w) * made[:, s:s + held] + w * raw[:, :held]
            made[:, s + held:s + W] = raw[:, held:]
            end = s + W
        objective /= len(starts)
        order = np.argsort(objective, kind="stable")
        return made[order], objective[order]
