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

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.features import encode
from ..diffusion import cfg, ddim_sample, ddpm_sample, impose, sdedit_start
from ..errors import MotionsynthError
from ..models.diffusion import MotionDiffusion
from ..motion import Motion
from ..ops import blend_weights, hold_pad
from ..tasks import Completion, Mask, check_label
from . import denoising
from .completion import attach, check_fps, feature_mask, finish, long_mode, windowed_best_of_n

__all__ = ["DiffusionMethod", "SAMPLERS", "INPAINT_MODES", "LONG_MODES"]

SAMPLERS = ("ddim", "ddpm")
INPAINT_MODES = ("impose", "condition", "both")
LONG_MODES = ("auto", "continue", "windows")


class DiffusionMethod:
    """A diffusion checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``diffusion`` family.
        sampler: ``"ddim"`` or ``"ddpm"``.
        steps: DDIM steps, 1 … T (None: 50, or T if smaller; DDPM runs all T).
        eta: DDIM's η (0: deterministic given x_T; 1: DDPM-like noise).
        guidance: classifier-free guidance scale w ≥ 0 when a label is given (MDM's s = 1 + w; its 2.5 is w = 1.5).
            0.5, chosen on the validation split: the lowest FID among the scales whose samples are recognised at
            ≥ 0.9 × the real accuracy (docs/BENCHMARKS.md, scripts/diffusion_bench.py guidance).
        inpaint: ``"impose"``, ``"condition"`` or ``"both"`` (None: ``"condition"`` for a network conditioned on the
            observation, else ``"impose"``).
        denoise_level: SDEdit's noise level for denoising, a fraction of T in (0, 1].
        clip: clamp x̂0 to [−clip, clip] (normalised units) at every step (None: no clamp).
        overlap: frames shared by consecutive windows of a long clip (default W/4).
        long: ``"auto"``, ``"continue"`` or ``"windows"`` (module docstring).
        pin_rotations: blend the observed rotations into the synthesised frames (`completion.pin_rotations`).
        root_sigma: Gaussian sigma (frames) of the input's root path when denoising.
        batch_size: windows × samples per sampling batch.
        progress: taken for the commands' sake.
    """

    needs_fit = False

    def __init__(self, checkpoint: Checkpoint, *, sampler: str = "ddim", steps: int | None = None, eta: float = 0.0,
                 guidance: float = 0.5, inpaint: str | None = None, denoise_level: float = 0.2,
                 clip: float | None = None, overlap: int | None = None, long: str = "auto",
                 pin_rotations: bool = True, root_sigma: float = 2.0, batch_size: int = 64, progress: bool = False):
        attach(self, checkpoint, MotionDiffusion, "diffusion")
        model = self.model
        self.name = model.variant
        self.window = W = int(model.config.window)
        self.T = T = int(model.config.T)
        self.overlap = W // 4 if overlap is None else int(overlap)
        steps = min(50, T) if steps is None else steps
        conditioned = bool(model.config.condition_on_observed)
        inpaint = ("condition" if conditioned else "impose") if inpaint is None else inpaint
        checks = [(sampler in SAMPLERS, f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}"),
                  (isinstance(steps, int) and 1 <= steps <= T, f"steps must be in 1 … {T} (the model's T), got {steps}"),
                  (eta >= 0, f"eta must be >= 0, got {eta}"),
                  (guidance >= 0, f"guidance scale must be >= 0, got {guidance}"),
                  (inpaint in INPAINT_MODES, f"inpaint must be one of {', '.join(INPAINT_MODES)}, got {inpaint!r}"),
                  (inpaint == "impose" or conditioned, f"inpaint={inpaint!r} needs a network trained on masked "
                                                       f"observations (model.condition_on_observed); this one is "
                                                       f"not: use inpaint=impose"),
                  (0 < denoise_level <= 1, f"denoise_level must be in (0, 1], got {denoise_level}"),
                  (clip is None or clip > 0, f"clip must be > 0 or None, got {clip}"),
                  (0 < self.overlap < W, f"overlap must be in 1..{W - 1} frames, got {self.overlap}"),
                  (long in LONG_MODES, f"long must be one of {', '.join(LONG_MODES)}, got {long!r}"),
                  (root_sigma >= 0, f"root_sigma must be >= 0, got {root_sigma}"),
                  (batch_size >= 1, f"batch_size must be at least 1, got {batch_size}")]
        for ok, message in checks:
            if not ok:
                raise MotionsynthError(message)
        self.sampler, self.steps, self.eta, self.guidance = sampler, int(steps), float(eta), float(guidance)
        self.inpaint, self.denoise_level, self.clip, self.long = inpaint, float(denoise_level), clip, long
        self.pin_rotations, self.root_sigma, self.batch_size = bool(pin_rotations), float(root_sigma), int(batch_size)
        self.params = {"sampler": sampler, "steps": self.steps if sampler == "ddim" else T, "eta": self.eta,
                       "guidance": self.guidance, "inpaint": inpaint, "denoise_level": self.denoise_level,
                       "clip": clip, "overlap": self.overlap, "long": long, "pin_rotations": self.pin_rotations,
                       "batch_size": self.batch_size}
        self.vocabulary = {k: list(checkpoint.labels[k]) for k in model.config.label_kinds
                           if k in checkpoint.labels}
        self.device = model.feat_mean.device

    def fit(self, motions) -> DiffusionMethod:
        """Nothing to fit (``needs_fit`` is False)."""
        return self

    # ---- the Method ----------------------------------------------------------------------------------------------
    def complete(self, motion: Motion, mask: Mask, label=None, n_samples: int = 1, seed: int | None = None
                 ) -> Completion:
        """``n_samples`` completions of ``motion`` under ``mask`` (best reproduction of the observation first)."""
        mask.check(motion, generative=True)
        check_label(label, self.vocabulary, f"the {self.name} model")
        self.ckpt.check_skeleton(motion.skeleton)
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise MotionsynthError(f"n_samples must be at least 1, got {n_samples}")
        check_fps(self.ckpt, motion)
        start = time.perf_counter()
        T, W, n = motion.num_frames, self.window, int(n_samples)
        feats = hold_pad(encode(motion, dtype=np.float32), W)
        labels = self._labels(label)
        gen = torch.Generator(device=self.device).manual_seed(0 if seed is None else int(seed))
        if mask.noisy:
            mode = "denoise"
            raw, objective = windowed_best_of_n({"features": feats}, W, self.overlap, n, self._per_batch(n),
                                                lambda ks, w: self._sdedit(w["features"], n, labels, gen))
            samples = [denoising.finish(r[:T], motion, "smooth", self.root_sigma) for r in raw]
        else:
            fmask = feature_mask(mask, self.skeleton)
            fmask = np.concatenate([fmask, np.zeros((len(feats) - T, fmask.shape[1]), bool)])
            mode = long_mode(mask, self.long) if T > W else "windows"
            if mode == "continue":
                raw, objective = self._continue(feats, fmask, n, labels, gen)
            else:
                raw, objective = windowed_best_of_n(
                    {"features": feats, "mask": fmask}, W, self.overlap, n, self._per_batch(n),
                    lambda ks, w: self._solve(w["features"], w["mask"], n, labels, gen))
            samples = finish(raw[:, :T], motion, mask, self.pin_rotations)
        timings = {"total_s": time.perf_counter() - start, "frames": float(T),
                   "windows": float(len(blend_weights(len(feats), W, self.overlap)[0]))}
        return Completion(samples, options={**self.params, "long": mode}, timings=timings,
                          objective=[float(o) for o in objective])

    def _per_batch(self, n: int) -> int:
        return max(1, self.batch_size // n)

    def _labels(self, label: dict | None) -> dict | None:
        """The label (checked) → {kind: (1,) long} over the model's label kinds, or None."""
        if not label:
            return None
        idx = {k: torch.tensor([self.vocabulary[k].index(name)], device=self.device) for k, name in label.items()}
        try:
            self.model.label_index(idx, 1)
        except ValueError as e:
            raise MotionsynthError(f"{self.ckpt.path or 'checkpoint'}: {e}") from None
        return idx

    # ---- sampling ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, known: torch.Tensor, fmask: torch.Tensor, labels: dict | None, gen: torch.Generator,
               start: int | None = None) -> torch.Tensor:
        """Normalised windows (B, W, D) observed where ``fmask`` (B, W, D) bool is set (or, with ``start``, noisy
        windows to SDEdit from step ``start``) → (B, W, D) normalised samples, ``batch_size`` at a time."""
        out = []
        for i in range(0, len(known), self.batch_size):
            out.append(self._sample(known[i:i + self.batch_size], fmask[i:i + self.batch_size], labels, gen, start))
        return torch.cat(out)

    def _sample(self, known, fmask, labels, gen, start):
        model, schedule, c = self.model, self.model.schedule, self.model.config
        observed = None
        if start is None and self.inpaint in ("condition", "both"):
            observed = (known, fmask.float())

        def f(x, t, lab):
            return model(x, t, lab, *(observed or (None, None)))

        def both(x, t):  # conditional and unconditional in one batch of 2B
            B = len(x)
            lab = {k: torch.cat([v.expand(B), v.new_full((B,), -1)]) for k, v in labels.items()}
            obs = None if observed is None else tuple(torch.cat([o, o]) for o in observed)
            return model(torch.cat([x, x]), torch.cat([t, t]), lab, *(obs or (None, None))).chunk(2)

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

    def _run(self, feats: np.ndarray, fmask: np.ndarray, labels, gen, start: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Raw windows (N, W, D) and masks (N, W, D) → raw samples (N, W, D) float64 and objectives (N,): mean
        absolute error of the normalised samples on the observed entries (all entries for SDEdit)."""
        stats = self.ckpt.stats
        x = torch.as_tensor(np.asarray(stats.normalize(feats), dtype=np.float32), device=self.device)
        m = torch.as_tensor(fmask, dtype=torch.bool, device=self.device)
        out = self.sample(x, m, labels, gen, start)
        w = m.float()
        err = ((out - x).abs() * w).sum((1, 2)) / w.sum((1, 2)).clamp_min(1.0)
        return stats.denormalize(out.cpu().numpy()).astype(np.float64), err.cpu().numpy()

    def _solve(self, feats: np.ndarray, fmask: np.ndarray, n: int, labels, gen) -> tuple[np.ndarray, np.ndarray]:
        """`windowed_best_of_n`'s solver: k windows → n samples each (k, n, W, D) and objectives (k, n)."""
        k = len(feats)
        raw, err = self._run(np.repeat(feats, n, 0), np.repeat(fmask, n, 0), labels, gen)
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _sdedit(self, feats: np.ndarray, n: int, labels, gen) -> tuple[np.ndarray, np.ndarray]:
        """Denoising's solver: k noisy windows → n SDEdit samples each (k, n, W, D), distances to the input (k, n)."""
        k = len(feats)
        t0 = max(0, min(self.T - 1, round(self.denoise_level * self.T) - 1))
        everything = np.ones((k * n, *feats.shape[1:]), bool)
        raw, err = self._run(np.repeat(feats, n, 0), everything, labels, gen, start=t0)
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _continue(self, feats: np.ndarray, fmask: np.ndarray, n: int, labels, gen) -> tuple[np.ndarray, np.ndarray]:
        """Window after window, the frames made so far observed (the seam inpainted) and kept; n chains in one
        batch, sorted by their mean objective (best first). Returns raw (n, T', D) and objectives (n,)."""
        T, W = len(feats), self.window
        starts, _ = blend_weights(T, W, self.overlap)
        made = np.repeat(feats[None].astype(np.float64), n, 0)
        objective, end = np.zeros(n), 0
        for s in starts:
            held = max(0, end - s)  # frames of this window already made: observed
            x = made[:, s:s + W].copy()
            m = np.repeat(fmask[None, s:s + W], n, 0)
            m[:, :held] = True
            raw, err = self._run(x.astype(np.float32), m, labels, gen)
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
