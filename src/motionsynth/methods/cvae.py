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

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.features import encode
from ..errors import MotionsynthError
from ..models.cvae import CVAE
from ..motion import Motion
from ..ops import blend_weights, crossfade, hold_pad
from ..tasks import Completion, Mask, check_label
from .completion import attach, check_fps, feature_mask, finish, long_mode, windowed_best_of_n
from .root import world_root

__all__ = ["CVAEMethod", "LONG_MODES"]

LONG_MODES = ("auto", "continue", "windows")


class CVAEMethod:
    """A CVAE checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` of the ``cvae`` family.
        candidates: latents drawn per drawn sample and window; the best reproduction of the observation is kept.
        temperature: scale of the prior's standard deviation for the drawn samples (0: its mean).
        mean_first: sample 0 is the prior's mean (temperature 0, one candidate); the others are draws (generation:
            all draws).
            The defaults (mean first, 1 candidate at temperature 1) were chosen on the validation split with
            ``scripts/tune_method.py`` (docs/BENCHMARKS.md, "Two-branch CVAE").
        overlap: frames shared by consecutive windows of a long clip (default W/4).
        long: ``"auto"``, ``"continue"`` or ``"windows"`` (module docstring).
        pin_rotations: blend the observed rotations into the synthesised frames (`completion.pin_rotations`).
        batch_size: windows × samples per forward pass.
        progress: taken for the commands' sake; a completion is a few forward passes, there is nothing to show.
    """

    needs_fit = False

    def __init__(self, checkpoint: Checkpoint, *, candidates: int = 1, temperature: float = 1.0,
                 mean_first: bool = True,
                 overlap: int | None = None, long: str = "auto", pin_rotations: bool = True, batch_size: int = 256,
                 progress: bool = False):
        attach(self, checkpoint, CVAE, "CVAE")
        self.name = self.model.variant
        self.window = W = int(self.model.config.window)
        self.overlap = W // 4 if overlap is None else int(overlap)
        checks = [(candidates >= 1, f"candidates must be at least 1, got {candidates}"),
                  (temperature >= 0, f"temperature must be >= 0, got {temperature}"),
                  (0 < self.overlap < W, f"overlap must be in 1..{W - 1} frames, got {self.overlap}"),
                  (long in LONG_MODES, f"long must be one of {', '.join(LONG_MODES)}, got {long!r}"),
                  (batch_size >= 1, f"batch_size must be at least 1, got {batch_size}")]
        for ok, message in checks:
            if not ok:
                raise MotionsynthError(message)
        self.candidates, self.temperature, self.long = int(candidates), float(temperature), long
        self.mean_first = bool(mean_first)
        self.pin_rotations, self.batch_size = bool(pin_rotations), int(batch_size)
        self.params = {"candidates": self.candidates, "temperature": self.temperature,
                       "mean_first": self.mean_first, "overlap": self.overlap,
                       "long": long, "pin_rotations": self.pin_rotations, "batch_size": self.batch_size}
        # the label kinds the model is conditioned on, with the checkpoint's names for them
        self.vocabulary = {k: list(checkpoint.labels[k]) for k in self.model.config.label_kinds
                           if k in checkpoint.labels}
        self.device = self.model.feat_mean.device

    def fit(self, motions) -> CVAEMethod:
        """Nothing to fit (``needs_fit`` is False)."""
        return self

    # ---- the Method ----------------------------------------------------------------------------------------------
    def complete(self, motion: Motion, mask: Mask, label=None, n_samples: int = 1, seed: int | None = None
                 ) -> Completion:
        """``n_samples`` completions of ``motion`` under ``mask``: the prior's mean first (``mean_first``), then draws
        (best reproduction of the observation first)."""
        mask.check(motion, generative=True)
        check_label(label, self.vocabulary, f"the {self.name} model")
        self.ckpt.check_skeleton(motion.skeleton)
        if mask.noisy:
            raise MotionsynthError(f"the {self.name} model completes missing frames and joints; it was not trained to "
                                   f"clean noisy observations (denoising): use an hmvae or meva checkpoint")
        if n_samples < 1:
            raise MotionsynthError(f"n_samples must be at least 1, got {n_samples}")
        check_fps(self.ckpt, motion)
        start = time.perf_counter()
        T, W = motion.num_frames, self.window
        feats = hold_pad(encode(motion, dtype=np.float32), W)
        pos, heading = world_root(motion)
        track = hold_pad(np.stack([pos[:, 0], pos[:, 2], heading], -1).astype(np.float32), W)
        fmask = feature_mask(mask, self.skeleton)
        fmask = np.concatenate([fmask, np.zeros((len(feats) - T, fmask.shape[1]), bool)])
        onehot = self._one_hot(label)
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        mode = long_mode(mask, self.long)
        inputs = {"features": feats, "mask": fmask, "track": track}
        parts = []
        if self.mean_first and not mask.empty:  # generation: every sample a draw
            parts.append(self._run(mode, inputs, onehot, 1, gen, 0.0, 1))
        if n_samples > len(parts):
            parts.append(self._run(mode, inputs, onehot, n_samples - len(parts), gen, self.temperature,
                                   self.candidates))
        raw = np.concatenate([r for r, _ in parts])
        objective = np.concatenate([o for _, o in parts])
        samples = finish(raw[:, :T], motion, mask, self.pin_rotations)
        timings = {"total_s": time.perf_counter() - start, "frames": float(T),
                   "windows": float(len(blend_weights(len(feats), W, self.overlap)[0]))}
        return Completion(samples, options={**self.params, "long": mode}, timings=timings,
                          objective=objective.tolist())

    def _run(self, mode: str, inputs: dict, onehot, n: int, gen, temperature: float, candidates: int
             ) -> tuple[np.ndarray, np.ndarray]:
        """n completions of the padded clip (``inputs``: features, mask, track) → raw (n, T', D), objectives (n,)."""
        draw = {"temperature": temperature, "candidates": candidates}
        if mode == "continue":
            return self._continue(inputs["features"], inputs["mask"], onehot, n, gen, draw)

        def solve(ks, windows):
            return self._solve(windows["features"], windows["mask"], onehot, n, gen, windows["track"], draw)

        return windowed_best_of_n(inputs, self.window, self.overlap, n,
                                  max(1, self.batch_size // (n * candidates)), solve)

    def _one_hot(self, label: dict | None) -> torch.Tensor:
        """The label (checked) → (1, L) one-hot over the model's label kinds."""
        idx = {k: torch.tensor([self.vocabulary[k].index(name)]) for k, name in (label or {}).items()}
        try:
            return self.model.one_hot(idx, 1)
        except ValueError as e:
            raise MotionsynthError(f"{self.ckpt.path or 'checkpoint'}: {e}") from None

    # ---- windows -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _draw(self, feats: np.ndarray, fmask: np.ndarray, onehot: torch.Tensor, gen: torch.Generator,
              track: np.ndarray | None, draw: dict) -> tuple[np.ndarray, np.ndarray]:
        """Raw windows (N, W, D), their masks and root tracks (N, W, 3) (None: from the features) → ``c`` =
        ``draw["candidates"]`` completions each at ``draw["temperature"]``, raw (N, c, W, D), and their objectives
        (N, c): mean absolute error of the normalised features on the observed entries."""
        stats, c = self.ckpt.stats, draw["candidates"]
        x = torch.as_tensor(np.asarray(stats.normalize(feats), dtype=np.float32), device=self.device)
        m = torch.as_tensor(fmask, dtype=torch.float32, device=self.device)
        x, m = x.repeat_interleave(c, 0), m.repeat_interleave(c, 0)
        tr = None if track is None else torch.as_tensor(track, device=self.device).repeat_interleave(c, 0)
        out = []
        for i in range(0, len(x), self.batch_size):
            xs, ms = x[i:i + self.batch_size], m[i:i + self.batch_size]
            ts = None if tr is None else tr[i:i + self.batch_size]
            out.append(self.model.sample(xs, ms, onehot.expand(len(xs), -1), gen, draw["temperature"], ts))
        out = torch.cat(out)
        err = ((out - x).abs() * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1.0)
        raw = stats.denormalize(out.cpu().numpy()).astype(np.float64)
        return raw.reshape(len(feats), c, *feats.shape[1:]), err.cpu().numpy().reshape(len(feats), c)

    def _best(self, raw: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, c, W, D), (N, c) → each row's best candidate (N, W, D) and its objective (N,)."""
        pick = err.argmin(1)
        rows = np.arange(len(err))
        return raw[rows, pick], err[rows, pick]

    def _solve(self, feats: np.ndarray, fmask: np.ndarray, onehot, n: int, gen, track: np.ndarray, draw: dict
               ) -> tuple[np.ndarray, np.ndarray]:
        """`windowed_best_of_n`'s solver: k windows → n samples each (k, n, W, D) and objectives (k, n)."""
        k = len(feats)
        raw, err = self._best(*self._draw(np.repeat(feats, n, 0), np.repeat(fmask, n, 0), onehot, gen,
                                          np.repeat(track, n, 0), draw))
        return raw.reshape(k, n, *feats.shape[1:]), err.reshape(k, n)

    def _continue(self, feats: np.ndarray, fmask: np.ndarray, onehot, n: int, gen, draw: dict
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The document's long-sequence scheme: window after window, the frames made so far held as observed; n
        chains, sorted by their mean objective (best first). Returns raw (n, T', D) and objectives (n,)."""
        T, W = len(feats), self.window
        starts, weights = blend_weights(T, W, self.overlap)
        made = np.zeros((n, T, feats.shape[1]))  # the cross-faded result so far
        objective, end = np.zeros(n), 0
        for k, s in enumerate(starts):
            x = np.repeat(feats[None, s:s + W], n, 0).astype(np.float64)
            m = np.repeat(fmask[None, s:s + W], n, 0)
            held = max(0, end - s)  # frames of this window already made: constraints
            x[:, :held], m[:, :held] = made[:, s:s + held] / _done(weights, starts, k, s, held)[None, :, None], True
            raw, err = self._best(*self._draw(x.astype(np.float32), m, onehot, gen, None, draw))
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
