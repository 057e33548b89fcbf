"""Every task with the two-branch CVAE (`models.cvae.CVAE`) as a `tasks.Method`: one forward pass per window.

A window of the model's W frames is encoded to normalised features, the unobserved entries (`completion.feature_mask`
of the `tasks.Mask`) zeroed, and completed by decoding a latent z drawn from the conditional prior p(z | observed,
label) (``temperature`` scales its standard deviation; 0 decodes its mean). With ``mean_first`` (default) sample 0
is the decoded MEAN of the prior — the one best answer (`models.cvae`, ``mean_weight``) — and samples 1… are draws
around it; for generation (nothing observed) every sample is a draw. A model with a root track
(``model.track``) is also given the observed root positions and headings of the clip (`root.world_root`). Each sample draws ``candidates`` latents
per window in one batch and keeps the one whose output best reproduces the observed entries (mean absolute error of
the normalised features there: the objective); the drawn results come back best first.

Lengths. A clip shorter than W is padded to W by holding its last frame (the padded frames unobserved) and cut back.
A longer clip goes one of two ways (``long``):

- ``"continue"`` — the document's §2: generate the first W frames, then every next window (starting
  W - ``overlap`` frames later) takes the frames already made as constraints — observed, like the mask's own
  observations in it — and the seams are cross-faded (`ops.blend_weights`). Each sample is its own chain.
- ``"windows"`` — `completion.windowed_best_of_n`: overlapping windows completed independently (all in one batch)
  and cross-faded, sample s made of every window's s-th best.

``"auto"`` (default) continues for generation and prediction (nothing observed after the first unobserved frame),
where later windows have nothing of their own to hold on to, and uses independent windows otherwise.

Then `completion.finish`: the root block integrated and pinned to the observed root, the observed rotations blended
in (``pin_rotations``) and copied back exactly. Denoising (``mask.noisy``) is not supported: the model was never
trained on noisy observations (a clear error).

Labels: ``{"content": "walk"}`` etc., checked against the checkpoint's vocabulary for the kinds the model is
conditioned on (`tasks.check_label`); a kind left out is "no label". ``seed=None`` means seed 0 (repeatable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import Options, option
from ..errors import MotionsynthError
from ..models.cvae import CVAE
from ..motion import Motion
from ..ops import blend_weights, crossfade
from ..tasks import Completion, Mask
from .completion import LearnedMethod, check_fps, conditioning, finish, label_tensors, long_mode, windowed_best_of_n

__all__ = ["CVAEMethod", "CVAEOptions", "LONG_MODES"]

LONG_MODES = ("auto", "continue", "windows")


@dataclass
class CVAEOptions(Options):
    """The CVAE method's options (`config.Options`)."""

    candidates: int = option(1, "latents drawn per drawn sample and window; the best reproduction of the observation "
                                "is kept")
    temperature: float = option(1.0, "scale of the prior's standard deviation for the drawn samples (0: its mean)")
    mean_first: bool = option(True, "sample 0 is the prior's mean, the others are draws (generation: all draws)")
    overlap: int | None = option(None, "frames shared by consecutive windows of a long clip (default: W/4)")
    long: str = option("auto", "a clip longer than the window: continue window after window, independent windows, or "
                               "auto (continue for generation and prediction)", LONG_MODES)
    pin_rotations: bool = option(True, "blend the observed rotations into the synthesised frames")
    batch_size: int = option(256, "windows x samples per forward pass")

    def check(self) -> None:
        for ok, message in [(self.candidates >= 1, f"candidates must be at least 1, got {self.candidates}"),
                            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
                            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}")]:
            if not ok:
                raise MotionsynthError(message)


class CVAEMethod(LearnedMethod):
    """A CVAE checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``cvae`` family.
        options: `CVAEOptions` by name — candidates (latents drawn per drawn sample and window; the best
            reproduction of the observation is kept), temperature (scale of the prior's standard deviation for the
            drawn samples; 0: its mean), mean_first (sample 0 is the prior's mean, the others draws; generation: all
            draws), overlap (frames shared by consecutive windows of a long clip; default W/4), long (``"auto"``,
            ``"continue"`` or ``"windows"``, module docstring), pin_rotations (`completion.pin_rotations`),
            batch_size (windows × samples per forward pass). The defaults (mean first, 1 candidate at temperature
            1) were chosen on the validation split with ``scripts/tune_method.py`` (docs/BENCHMARKS.md, "Two-branch
            CVAE").
    """

    tasks = ("inbetween", "complete", "predict", "generate")
    Options = CVAEOptions
    network, what = CVAE, "CVAE"

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o = cast(CVAEOptions, self.opts)
        self.name = self.model.variant
        W = self.window
        self.overlap = W // 4 if o.overlap is None else int(o.overlap)
        if not 0 < self.overlap < W:
            raise MotionsynthError(f"overlap must be in 1..{W - 1} frames, got {self.overlap}")
        self.candidates, self.temperature, self.long = int(o.candidates), float(o.temperature), o.long
        self.mean_first = bool(o.mean_first)
        self.pin_rotations, self.batch_size = bool(o.pin_rotations), int(o.batch_size)
        self.params = {"candidates": self.candidates, "temperature": self.temperature,
                       "mean_first": self.mean_first, "overlap": self.overlap,
                       "long": self.long, "pin_rotations": self.pin_rotations, "batch_size": self.batch_size}
        self.vocabulary = self.label_vocabulary()

    # ---- the Method ----------------------------------------------------------------------------------------------
    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """``n_samples`` completions of ``motion`` under ``mask``: the prior's mean first (``mean_first``), then draws
        (best reproduction of the observation first)."""
        check_fps(self.ckpt, motion)
        start = time.perf_counter()
        T, W = motion.num_frames, self.window
        cond: dict[str, Any] = conditioning(motion, mask, W, track=True)
        cond["label"] = self._one_hot(label)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        mode = long_mode(mask, self.long)
        parts = []
        if self.mean_first and not mask.empty:  # generation: every sample a draw
            parts.append(self._run(mode, cond, 1, gen, {"temperature": 0.0, "candidates": 1}))
        if n_samples > len(parts):
            parts.append(self._run(mode, cond, n_samples - len(parts), gen,
                                   {"temperature": self.temperature, "candidates": self.candidates}))
        raw = np.concatenate([r for r, _ in parts])
        objective = np.concatenate([o for _, o in parts])
        samples = finish(raw[:, :T], motion, mask, self.pin_rotations)
        timings = {"total_s": time.perf_counter() - start, "frames": float(T),
                   "windows": float(len(blend_weights(len(cond["features"]), W, self.overlap)[0]))}
        return Completion(samples, options={**self.params, "long": mode}, timings=timings,
                          objective=objective.tolist())

    def _run(self, mode: str, cond: dict, n: int, gen, draw: dict) -> tuple[np.ndarray, np.ndarray]:
        """n completions of the padded clip (``cond``: `completion.conditioning` + ``label``) → raw (n, T', D),
        objectives (n,); ``draw``: the temperature and candidates of the draws."""
        if mode == "continue":
            return self._continue(cond, n, gen, draw)

        def solve(ks, windows):
            return self._solve(windows, n, gen, draw)

        return windowed_best_of_n(cond, self.window, self.overlap, n,
                                  max(1, self.batch_size // (n * draw["candidates"])), solve)

    def _one_hot(self, label: dict | None) -> torch.Tensor:
        """The label (checked) → (1, L) one-hot over the model's label kinds."""
        idx = label_tensors(label, self.vocabulary)
        try:
            return self.model.one_hot(idx, 1)
        except ValueError as e:
            raise MotionsynthError(f"{self.ckpt.path or 'checkpoint'}: {e}") from None

    # ---- windows -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _draw(self, cond: dict, gen: torch.Generator, draw: dict) -> tuple[np.ndarray, np.ndarray]:
        """Windows of the conditioning (``features`` raw (N, W, D), ``mask`` (N, W, D), ``track`` (N, W, 3) or absent:
        from the features, ``label`` (1, L) one-hot) → ``c`` = ``draw["candidates"]`` completions each at
        ``draw["temperature"]``, raw (N, c, W, D), and their objectives (N, c): mean absolute error of the normalised
        features on the observed entries."""
        stats, c, feats = self.ckpt.stats, draw["candidates"], cond["features"]
        x = torch.as_tensor(np.asarray(stats.normalize(feats), dtype=np.float32), device=self.device)
        m = torch.as_tensor(cond["mask"], dtype=torch.float32, device=self.device)
        x, m = x.repeat_interleave(c, 0), m.repeat_interleave(c, 0)
        track = cond.get("track")
        tr = None if track is None else torch.as_tensor(track, device=self.device).repeat_interleave(c, 0)
        outs: list[torch.Tensor] = []
        for i in range(0, len(x), self.batch_size):
            part = slice(i, i + self.batch_size)
            net = {"observed": x[part], "mask": m[part], "label": cond["label"].expand(len(x[part]), -1),
                   "track": None if tr is None else tr[part]}
            outs.append(self.model.sample(net, gen, draw["temperature"]))
        out = torch.cat(outs)
        err = ((out - x).abs() * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1.0)
        raw = stats.denormalize(out.cpu().numpy()).astype(np.float64)
        return raw.reshape(len(feats), c, *feats.shape[1:]), err.cpu().numpy().reshape(len(feats), c)

    def _best(self, raw: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, c, W, D), (N, c) → each row's best candidate (N, W, D) and its objective (N,)."""
        pick = err.argmin(1)
        rows = np.arange(len(err))
        return raw[rows, pick], err[rows, pick]

    def _solve(self, windows: dict, n: int, gen, draw: dict) -> tuple[np.ndarray, np.ndarray]:
        """`windowed_best_of_n`'s solver: k windows of the conditioning → n samples each (k, n, W, D) and objectives
        (k, n)."""
        feats = windows["features"]
        k = len(feats)
        each = {key: np.repeat(v, n, 0) if isinstance(v, np.ndarray) else v for key, v in windows.items()}
        raw, err = self._best(*self._draw(each, gen, draw))
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _continue(self, cond: dict, n: int, gen, draw: dict) -> tuple[np.ndarray, np.ndarray]:
        """The document's long-sequence scheme: window after window, the frames made so far held as observed; n
        chains, sorted by their mean objective (best first). Returns raw (n, T', D) and objectives (n,)."""
        feats, fmask = cond["features"], cond["mask"]
        T, W = len(feats), self.window
        starts, weights = blend_weights(T, W, self.overlap)
        made = np.zeros((n, T, feats.shape[1]))  # the cross-faded result so far
        objective, end = np.zeros(n), 0
        for k, s in enumerate(starts):
            x = np.repeat(feats[None, s:s + W], n, 0).astype(np.float64)
            m = np.repeat(fmask[None, s:s + W], n, 0)
            held = max(0, end - s)  # frames of this window already made: constraints
            x[:, :held], m[:, :held] = made[:, s:s + held] / _done(weights, starts, k, s, held)[None, :, None], True
            # the root track is left out: the made frames' root is in their features
            raw, err = self._best(*self._draw({"features": x.astype(np.float32), "mask": m, "label": cond["label"]},
                                              gen, draw))
            own = fmask[s:s + W]  # the objective counts the mask's observations only
            if own.any():
                stats = self.ckpt.stats
                diff = np.abs(stats.normalize(raw) - stats.normalize(feats[None, s:s + W])) * own
                err = diff.sum((1, 2)) / own.sum()
            objective += err
            for c in range(n):
                crossfade(made[c], raw[c][None], starts[k:k + 1], weights[k:k + 1])
            end = s + W
        objective /= len(starts)
        order = np.argsort(objective, kind="stable")
        return made[order], objective[order]


def _done(weights: np.ndarray, starts: np.ndarray, k: int, s: int, held: int) -> np.ndarray:
    """The cross-fade weight already accumulated at frames s..s+held (windows before k), to read the partial sum
    there as a value."""
    total = np.zeros(held)
    for j in range(k):
        a = max(s, starts[j])
        b = min(s + held, starts[j] + weights.shape[1])
        if b > a:
            total[a - s:b - s] += weights[j, a - starts[j]:b - starts[j]]
    return np.where(total > 0, total, 1.0)
