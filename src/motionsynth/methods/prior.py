"""In-betweening, completion and refinement with a learned motion prior (HM-VAE §4), as a `tasks.Method`.

`PriorMethod` wraps an HM-VAE-family checkpoint (``hmvae``, ``hmvae-m``, ``hmvae-tcn``) and completes motions of any
length for any `tasks.Mask`.

Completion and in-betweening (``mask.noisy`` False) — latent optimisation, eq. 14–15:

1. The observed motion is encoded to features; the model's window W (64) cuts them into windows (below).
2. Phase 1: ``restarts`` latent pairs (z_l, z_g) per window are drawn from the prior (all windows and restarts form ONE
   batch; with ``init="interpolate"`` the first restart is instead the encoder's posterior mean of the observation
   filled by SLERP/LERP, `baselines.Interpolation`; with ``init="nearest"`` every restart is drawn from the
   encoder's posterior of the observation filled by nearest-neighbour retrieval, `baselines.NearestNeighbour`, the
   first one its mean; with ``init="model"`` restart 0 is the posterior mean of another method's completion,
   ``init_model`` — e.g. the CVAE's, a forward pass) and optimised with Adam (``lr``) so that the decoder's rotations match the OBSERVED joints of
   the observed frames (``mask.joints``): ``L = L6d + Lrot + λ·Ljoints`` (λ = ``lambda_joints`` = 10) — mean
   squared errors of the raw 6D, of the rotation matrices, and of the root-relative joint positions by forward
   kinematics in metres (the VAE models rotations only; the root trajectory is handled separately, below). A joint's
   position counts where it and every joint on its chain up to the moving root are observed. The decoder is fixed.
3. The ``n_samples`` best restarts of each window (lowest phase-1 objective) go to phase 2: the decoder's weights are
   fine-tuned (Adam, ``decoder_lr``) with the latents fixed, with ``L + weight_reg · ‖θ' − θ‖²`` (eq. 15, the sum of
   squares over the decoder's parameters). Every sample gets its OWN copy of the decoder (``torch.func.vmap`` of
   ``torch.func.functional_call`` over per-sample parameter copies, `PHASE2_BATCH` samples at a time): the
   checkpoint's model is never modified. ``n_samples`` > ``restarts`` raises the restarts to ``n_samples``; the
   results come best first (lowest final objective; the `tasks.Completion`'s ``objective`` holds it per sample).
4. Iterations: in-betweening (every frame fully observed or fully missing: keyframes, prediction) 50 + 100, completion
   (joints missing within frames) 100 + 200, the paper's numbers; ``phase1_iters`` / ``phase2_iters`` override both.
   Completion with ``init="nearest"`` defaults to 1 restart and 0 + 0 iterations — the retrieved completion encoded
   and decoded, i.e. projected onto the prior, which keeps retrieval's close matches, removes its frame-to-frame
   jumps and gives the hidden root the trajectory module's heading; on the validation split fitting the observed
   joints only moved the missing ones away from the truth (docs/BENCHMARKS.md).
   With nothing observed at all (generation, ``tasks.generate_mask``) the latents are simply sampled: one restart
   per sample, no iterations. The HM-VAE is not conditioned on labels (a label is an error).

Windows. A clip shorter than W is padded to W by holding its last frame (the padded frames are unobserved) and cut
back. A longer clip is covered by windows of W frames overlapping by ``overlap`` frames (default W/2), each optimised
independently (all in one batch, ``batch_size`` windows × restarts at a time), then cross-faded
(`completion.windowed_best_of_n`). A window that observes nothing is the prior's free guess: keep gaps shorter than about W/2
for long clips.

Root trajectory. The decoded root block comes from the model's trajectory module (HM-VAE §3.3) run on the decoded
rotations; it is integrated and pinned to the observed root (`completion.place_root`). The rotations are pinned
too (``pin_rotations``, default on, `completion.pin_rotations`), so the synthesised frames join the observed ones
without a jump (the latent fit is never exact). Observed values are then copied back unchanged
(`tasks.keep_observed`); per-joint translations of the input (BVH with 6 channels everywhere) are kept.

Refinement / denoising (``mask.noisy``). ``refine="window"`` is the paper's sliding window (eq. 10–13): for every
frame t, the window of W frames centred on t (the clip's ends held) is encoded, decoded from the posterior mean, and
frame t of the result kept — exact but W× the work; ``batch_size`` centres go through one forward pass.
``refine="overlap"``: windows every ``stride`` frames (default W/2), decoded from the posterior mean and
cross-faded — about W/stride× cheaper. With ``refine_iters > 0`` (default 0) each window's latents are further
optimised (phase 1, from the posterior mean) against the noisy input. Both stream: any length, memory bounded by
``batch_size``. The root (`denoising.place`): ``root="smooth"`` (default) keeps the input's planar root path and heading,
robustly smoothed over time (running median, then a Gaussian of ``root_sigma`` frames), with the refined height;
``root="model"`` integrates the trajectory module's
prediction from the input's first frame (drifts over long clips).

Frame rate: denoising resamples to the model's frame rate and back; completion needs the model's frame rate (a
clear error otherwise — masks do not resample).

Timings (seconds) and objectives come back in the `tasks.Completion`. ``seed=None`` means seed 0 (repeatable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from .. import rotations as R
from ..checkpoint import Checkpoint
from ..config import Options, option
from ..data.features import encode, rot6d_slice
from ..errors import MotionsynthError
from ..models.common import local_positions
from ..models.hmvae import HMVAE
from ..motion import Motion
from ..ops import blend_weights, hold_pad
from ..tasks import Completion, Mask
from .baselines import Interpolation, NearestNeighbour
from .completion import LearnedMethod, check_fps, feature_mask, finish, windowed_best_of_n
from .denoising import ROOT_MODES, check_options, denoise_motion, overlapped

__all__ = ["PriorMethod", "PriorOptions", "INIT_MODES", "REFINE_MODES", "DEFAULT_ITERS", "DEFAULT_RESTARTS",
           "PHASE2_BATCH"]

REFINE_MODES = ("window", "overlap")
INIT_MODES = ("sample", "interpolate", "nearest", "model")
DEFAULT_ITERS = {"inbetween": (50, 100), "complete": (100, 200), "complete_nearest": (0, 0), "generate": (0, 0)}
"""(phase 1, phase 2) iterations per kind of mask: the paper's implementation details, except completion from a
retrieved pose (``init="nearest"``), where the validation split showed that every iteration of fitting the observed
joints moved the missing ones further from the truth (docs/BENCHMARKS.md): the retrieval is only projected."""

DEFAULT_RESTARTS = {"inbetween": 16, "complete": 64, "complete_nearest": 1, "generate": 1}
"""Restarts per window per kind of mask, chosen on the validation split (docs/BENCHMARKS.md): completing a missing
body part from sampled latents is far more ambiguous than filling frames between keyframes, and more restarts find
better fits; from the retrieved completion one start (its posterior mean) is all it takes. Generation has nothing to
fit: one draw per sample."""

PHASE2_BATCH = 8
"""Samples fine-tuned together in phase 2 (each holds a copy of the decoder and its Adam state: memory, not speed)."""

# The modules `HMVAE.decode_rotations` uses: the parameters phase 2 fine-tunes.
_DECODER = ("from_global", "decoder", "from_local", "final_unpool", "final_conv", "out_conv")


class _Decoder(nn.Module):
    """`HMVAE.decode_rotations` as a forward, so `torch.func.functional_call` can swap the decoder's parameters."""

    def __init__(self, model: HMVAE):
        super().__init__()
        self.m = model

    def forward(self, z_local, z_global):
        return self.m.decode_rotations(z_local, z_global)


@dataclass
class PriorOptions(Options):
    """The HM-VAE prior's options (`config.Options`; the class docstring of `PriorMethod` says more)."""

    restarts: int | None = option(None, "latent initialisations per window, the best kept (default: 16 "
                                        "in-betweening and prediction, 64 completion, 1 completion with init nearest)")
    phase1_iters: int | None = option(None, "iterations of latent optimisation (default: 50 in-betweening and "
                                            "prediction, 100 completion, 0 with init nearest)")
    phase2_iters: int | None = option(None, "iterations of decoder fine-tuning (default: 100 in-betweening and "
                                            "prediction, 200 completion, 0 with init nearest)")
    lr: float = option(0.05, "Adam learning rate of the latents")
    decoder_lr: float = option(1e-4, "Adam learning rate of the decoder weights (phase 2)")
    weight_reg: float = option(1e-4, "lambda2 of eq. 15: the weight of the squared change of the decoder's weights")
    lambda_joints: float = option(10.0, "lambda1 of eq. 14: the weight of joint positions (metres)")
    overlap: int | None = option(None, "frames shared by consecutive windows of a long clip (default: W/2)")
    init: str = option("sample", "latent initialisation: sample (from the prior, the paper's), interpolate (restart 0 "
                                 "from the encoded SLERP fill), nearest (from the encoded nearest-neighbour fill; "
                                 "needs training data) or model (restart 0 from init_model's completion)", INIT_MODES)
    init_model: Any = option(None, "the model whose completion starts init=model (a shipped name, a run or a "
                                   "checkpoint folder)", kind="model")
    refine: str = option("window", "denoising: window (the paper's sliding window: exact, slow) or overlap (windows "
                                   "every stride frames, cross-faded)", REFINE_MODES)
    stride: int | None = option(None, "hop of refine=overlap (default: W/2)")
    refine_iters: int = option(0, "latent-optimisation iterations per window against the noisy input")
    root: str = option("smooth", "denoising root trajectory: smooth (the input's path and heading, smoothed) or "
                                 "model (the trajectory module's)", ROOT_MODES)
    root_sigma: float = option(6.0, "Gaussian sigma in frames of root=smooth (after a 5-frame running median)")
    despike: int = option(5, "running median over the noisy input, frames (odd; 1: off)")
    smooth_sigma: float = option(2.0, "Gaussian filter over the refined motion, sigma in frames (0: off)")
    pin_rotations: bool = option(True, "blend the observed rotations into the synthesised frames")
    batch_size: int = option(64, "samples (windows x restarts, or centres) per forward pass")

    def check(self) -> None:
        checks = [(self.restarts is None or self.restarts >= 1, f"restarts must be at least 1, got {self.restarts}"),
                  (self.phase1_iters is None or self.phase1_iters >= 0,
                   f"phase1_iters must be >= 0, got {self.phase1_iters}"),
                  (self.phase2_iters is None or self.phase2_iters >= 0,
                   f"phase2_iters must be >= 0, got {self.phase2_iters}"),
                  ((self.init == "model") == (self.init_model is not None), 'init="model" and init_model go together'),
                  (self.refine_iters >= 0, f"refine_iters must be >= 0, got {self.refine_iters}"),
                  (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
                  (self.lr > 0 and self.decoder_lr > 0, "learning rates must be positive"),
                  (self.weight_reg >= 0 and self.lambda_joints >= 0, "weights must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise MotionsynthError(message)
        check_options(self.root, self.root_sigma, self.despike, self.smooth_sigma)


class PriorMethod(LearnedMethod):
    """An HM-VAE-family checkpoint as a `tasks.Method` (see the module docstring).

    Args:
        checkpoint: a loaded `checkpoint.Checkpoint` (`registry.load_method` loads a folder).
        options: `PriorOptions` by name:
            restarts: latent initialisations per window (at least ``n_samples`` are used; None: `DEFAULT_RESTARTS`
                by the mask).
            phase1_iters, phase2_iters: iterations of latent optimisation and decoder fine-tuning (None: by the
                mask).
            lr: Adam learning rate of the latents; decoder_lr: of the decoder weights (phase 2).
            weight_reg: λ2 of eq. 15 (times the sum of squared weight changes).
            lambda_joints: λ1 of eq. 14 (joint positions in metres).
            overlap: frames shared by consecutive windows for completion (default W/2).
            init: ``"sample"`` (every restart from the prior, the paper's), ``"interpolate"`` (restart 0 from the
                encoder's posterior mean of the SLERP/LERP interpolation of the observation,
                `baselines.Interpolation`) or ``"nearest"`` (every restart from the encoder's posterior of the
                nearest-neighbour completion, `baselines.NearestNeighbour`, restart 0 its mean; needs `fit` on
                training motions first; for completion it defaults to 1 restart and 0 + 0 iterations: the retrieval
                projected onto the prior), or ``"model"`` (restart 0 from the encoder's posterior mean of
                ``init_model``'s completion).
            init_model: the `tasks.Method` whose completion starts ``init="model"`` (`registry.load_method` loads a
                checkpoint path given as ``init_model``).
            refine: denoising mode, ``"window"`` or ``"overlap"``; stride: hop of ``"overlap"`` (default W/2).
            refine_iters: latent-optimisation iterations per window when denoising (0: posterior mean only).
            root: denoising root trajectory, ``"smooth"`` (the input's, smoothed) or ``"model"`` (trajectory
                module).
            root_sigma: Gaussian sigma in frames of ``root="smooth"`` (after a 5-frame running median).
            despike: running-median frames over the noisy input before refinement (odd; 1: off;
                `denoising.despike`).
            smooth_sigma: Gaussian filter over the refined motion, frames (0: off; `denoising.finish`).
                The defaults of ``root_sigma``, ``despike`` and ``smooth_sigma`` were chosen on the validation split
                for the ``mixed`` noise model (lowest MPJPE among settings at most as jerky as the best tuned filter;
                docs/BENCHMARKS.md).
            pin_rotations: blend the observed rotations into the synthesised frames (module docstring).
            batch_size: samples (windows × restarts, or centres) per forward pass.
        ``progress`` (an attribute): progress bars (stderr) over the optimisation iterations and refinement batches.
    """

    tasks = ("inbetween", "complete", "predict", "denoise", "generate")
    Options = PriorOptions
    network, what = HMVAE, "HM-VAE prior"
    slow = True  # seconds a window: latent optimisation
    retrieval: NearestNeighbour | None  # init="nearest": the pose database, built by `fit`

    @classmethod
    def quick_options(cls, task: str) -> dict:
        """Overlapping windows for denoising, else 4 restarts of 50 + 100 iterations (≈ 8 s a window on a CPU)."""
        return {"refine": "overlap"} if task == "denoise" else {"restarts": 4, "phase1_iters": 50, "phase2_iters": 100}

    def __init__(self, checkpoint: Checkpoint, **options):
        super().__init__(checkpoint, options)
        o = cast(PriorOptions, self.opts)
        self.name = checkpoint.family
        W = self.window
        self.overlap = W // 2 if o.overlap is None else int(o.overlap)
        self.stride = W // 2 if o.stride is None else int(o.stride)
        for ok, message in [(0 <= self.overlap < W, f"overlap must be in 0..{W - 1} frames, got {self.overlap}"),
                            (1 <= self.stride <= W, f"stride must be in 1..{W} frames, got {self.stride}")]:
            if not ok:
                raise MotionsynthError(message)
        self.restarts, self.phase1_iters, self.phase2_iters = o.restarts, o.phase1_iters, o.phase2_iters
        self.lr, self.decoder_lr, self.weight_reg, self.lambda_joints = o.lr, o.decoder_lr, o.weight_reg, \
            o.lambda_joints
        self.init, self.init_model, self.refine, self.refine_iters = o.init, o.init_model, o.refine, int(o.refine_iters)
        self.needs_fit, self.retrieval = o.init == "nearest", None  # fit builds the pose database
        self.params = {"refine": o.refine, "refine_iters": self.refine_iters, "despike": int(o.despike),
                       "root": o.root, "root_sigma": float(o.root_sigma),
                       "smooth_sigma": float(o.smooth_sigma)}  # the denoising options
        self.batch_size, self.pin_rotations = int(o.batch_size), bool(o.pin_rotations)
        self._decoder = _Decoder(self.model)
        # detached views of the decoder's parameters: phases never touch the model's own tensors or their .grad
        self._params = {f"m.{n}": p.detach() for n, p in self.model.named_parameters() if n.split(".")[0] in _DECODER}
        self._rot_dim = rot6d_slice(self.skeleton).stop
        # joints whose root-relative position depends only on joints from the moving root down to them
        sk = self.skeleton
        static = set(sk.ancestors(sk.root))
        self._chains = [[a for a in [j, *sk.ancestors(j)] if a not in static] for j in range(len(sk))]

    # ---- the Method ----------------------------------------------------------------------------------------------
    def _complete(self, motion: Motion, mask: Mask, label, n_samples: int, seed: int | None) -> Completion:
        """``n_samples`` completions of ``motion`` (the best restarts first); denoised if ``mask.noisy``."""
        start = time.perf_counter()
        if mask.noisy:
            out = self.denoise(motion)
            result = Completion([out] + [out.copy() for _ in range(n_samples - 1)], options=self.options(),
                                timings={"refine_s": time.perf_counter() - start, "frames": float(motion.num_frames)})
        else:
            result = self._complete_masked(motion, mask, n_samples, 0 if seed is None else int(seed))
        result.timings["total_s"] = time.perf_counter() - start
        return result

    def options(self, kind: str | None = None) -> dict:
        """Every option (for a kind of mask: its restarts and iterations resolved; None: as given)."""
        out = {"restarts": self.restarts, "phase1_iters": self.phase1_iters, "phase2_iters": self.phase2_iters,
               "lr": self.lr, "decoder_lr": self.decoder_lr, "weight_reg": self.weight_reg,
               "lambda_joints": self.lambda_joints, "overlap": self.overlap, "init": self.init,
               "init_model": None if self.init_model is None else
               f"{self.init_model.name} {str(self.init_model.checkpoint_hash)[:12]}",
               "stride": self.stride, "pin_rotations": self.pin_rotations, "batch_size": self.batch_size,
               **self.params}
        if kind is not None:
            it1, it2 = DEFAULT_ITERS[kind]
            out["restarts"] = self.restarts or DEFAULT_RESTARTS[kind]
            out["phase1_iters"] = it1 if self.phase1_iters is None else self.phase1_iters
            out["phase2_iters"] = it2 if self.phase2_iters is None else self.phase2_iters
        return out

    def kind(self, mask: Mask) -> str:
        """``"generate"`` when nothing is observed, ``"inbetween"`` when every frame is fully observed or fully
        missing, else ``"complete"``."""
        if mask.empty:
            return "generate"
        return "inbetween" if (mask.joints.all(1) | ~mask.joints.any(1)).all() else "complete"

    # ---- completion: latent optimisation ---------------------------------------------------------------------------
    def _complete_masked(self, motion: Motion, mask: Mask, n: int, seed: int) -> Completion:
        check_fps(self.ckpt, motion)
        T, W = motion.num_frames, self.window
        kind = self.kind(mask)
        kind += "_nearest" if self.init == "nearest" and kind == "complete" else ""
        options = self.options(kind)
        it1, it2 = options["phase1_iters"], options["phase2_iters"]
        restarts = max(options["restarts"], n)
        inputs = {"features": hold_pad(encode(motion, dtype=np.float32), W)}
        observed = feature_mask(mask, self.skeleton)[:, :self._rot_dim].reshape(T, -1, 6).all(-1)
        inputs["observed"] = np.concatenate([observed, np.zeros((len(inputs["features"]) - T, observed.shape[1]),
                                                                bool)])
        if self.init != "sample" and mask.joints.any():
            inputs["init"] = hold_pad(encode(self._init_fill(motion, mask), dtype=np.float32), W)
        gen = torch.Generator().manual_seed(seed)
        timings = {"phase1_s": 0.0, "phase2_s": 0.0, "restarts": float(restarts), "phase1_iters": float(it1),
                   "phase2_iters": float(it2)}

        def solve(ks, windows):
            return self._solve(windows, n, restarts, it1, it2, gen, timings)

        raw, objective = windowed_best_of_n(inputs, W, self.overlap, n, max(1, self.batch_size // restarts), solve)
        timings["windows"] = float(len(blend_weights(len(inputs["features"]), W, self.overlap)[0]))
        samples = finish(raw[:, :T], motion, mask, self.pin_rotations)
        return Completion(samples, options=options, timings=timings, objective=objective.tolist())

    def _solve(self, windows: dict, n: int, restarts: int, it1: int, it2: int, gen: torch.Generator,
               timings: dict) -> tuple[np.ndarray, np.ndarray]:
        """One batch of k windows → the ``n`` best of ``restarts`` fits per window: raw features (k, n, W, D) and
        their objectives (k, n) (phase 1 on every restart, phase 2 on the best ``n``)."""
        feats, k = windows["features"], len(windows["features"])
        target = self._target(feats, windows["observed"])
        target_r = {key: v.repeat_interleave(restarts, 0) for key, v in target.items()}
        z_l, z_g = self._sample_latents(k * restarts, gen)
        if "init" in windows:  # restart 0 of every window: the encoded fill
            z_l, z_g = self._encoded_init(z_l, z_g, windows["init"], restarts)
        t0 = time.perf_counter()
        if target["count"].sum() > 0:
            z_l, z_g = self._optimise_latents(z_l, z_g, target_r, it1)
        with torch.no_grad():
            obj = self._objective(self._decode(z_l, z_g), target_r).reshape(k, restarts)
        best = torch.argsort(obj, dim=1)[:, :n]  # (k, n)
        pick = (torch.arange(k)[:, None] * restarts + best).reshape(-1)
        z_l = None if z_l is None else z_l[pick]
        z_g = z_g[pick]
        target_n = {key: v.repeat_interleave(n, 0) for key, v in target.items()}
        t1 = time.perf_counter()
        timings["phase1_s"] += t1 - t0
        if it2 > 0 and target["count"].sum() > 0:
            parts = [self._finetune_decoder(None if z_l is None else z_l[i:i + PHASE2_BATCH],
                                            z_g[i:i + PHASE2_BATCH],
                                            {key: v[i:i + PHASE2_BATCH] for key, v in target_n.items()}, it2)
                     for i in range(0, len(z_g), PHASE2_BATCH)]
            rot, obj = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        else:
            with torch.no_grad():
                rot = self._decode(z_l, z_g)
                obj = self._objective(rot, target_n)
        timings["phase2_s"] += time.perf_counter() - t1
        with torch.no_grad():
            full = torch.cat([rot, self.model.root_block(rot)], -1)
        raw = self.ckpt.stats.denormalize(full.cpu().numpy()).astype(np.float64)
        return raw.reshape(k, n, *feats.shape[1:]), obj.detach().cpu().numpy().reshape(k, n)

    def _init_fill(self, motion: Motion, mask: Mask) -> Motion:
        """The completion whose encoding starts restart 0 (``init`` "interpolate", "nearest" or "model")."""
        if self.init == "interpolate":
            return Interpolation().complete(motion, mask)[0]
        if self.init == "model":
            return self.init_model.complete(motion, mask, seed=0)[0]
        if self.retrieval is None:
            raise MotionsynthError('init="nearest" needs a pose database: call fit(training motions) first '
                                   '(the benchmark does; the commands take --data CACHE)')
        return self.retrieval.complete(motion, mask)[0]

    def fit(self, motions, max_frames: int = 200_000, rng=None) -> "PriorMethod":
        """Build the nearest-neighbour pose database of ``init="nearest"`` from training motions
        (`baselines.NearestNeighbour.fit`)."""
        self.retrieval = NearestNeighbour().fit(motions, max_frames=max_frames, rng=rng)
        return self

    def _target(self, feats: np.ndarray, observed: np.ndarray) -> dict[str, torch.Tensor]:
        """Windows of raw features (k, W, D) and observed joints (k, W, J) → the tensors of the objective."""
        J = observed.shape[-1]
        d6 = torch.as_tensor(feats[..., :self._rot_dim], dtype=torch.float32, device=self.device)
        d6 = d6.reshape(*feats.shape[:2], J, 6)
        pos_ok = np.stack([observed[..., c].all(-1) for c in self._chains], -1)
        rot_mask = torch.as_tensor(observed, dtype=torch.float32, device=self.device)
        pos_mask = torch.as_tensor(pos_ok, dtype=torch.float32, device=self.device)
        with torch.no_grad():
            mats = R.sixd_to_matrix(d6)
            pos = self._positions(d6)
        return {"d6": d6, "mats": mats, "pos": pos, "rot_mask": rot_mask, "pos_mask": pos_mask,
                "count": rot_mask.sum((1, 2))}

    def _positions(self, d6: torch.Tensor) -> torch.Tensor:
        """(..., W, J, 6) raw 6D → (..., W, J, 3) root-relative joint positions in metres."""
        return local_positions(d6, self.skeleton, self.model.offsets) / self.model.config.length_unit

    def _objective(self, rot: torch.Tensor, target: dict) -> torch.Tensor:
        """(N, W, 6J) normalised decoded rotations → (N,) eq. 14 over the observed joints of each sample."""
        N, W, _ = rot.shape
        std, mean = self.model.feat_std[:self._rot_dim], self.model.feat_mean[:self._rot_dim]
        d6 = (rot * std + mean).reshape(N, W, -1, 6)
        m, pm = target["rot_mask"], target["pos_mask"]
        count = m.sum((1, 2)).clamp_min(1.0)
        l6d = (((d6 - target["d6"]) ** 2).sum(-1) * m).sum((1, 2)) / (6 * count)
        lrot = (((R.sixd_to_matrix(d6) - target["mats"]) ** 2).sum((-1, -2)) * m).sum((1, 2)) / (9 * count)
        loss = l6d + lrot
        if self.lambda_joints > 0:
            pcount = pm.sum((1, 2)).clamp_min(1.0)
            lj = (((self._positions(d6) - target["pos"]) ** 2).sum(-1) * pm).sum((1, 2)) / (3 * pcount)
            loss = loss + self.lambda_joints * lj
        return loss

    def _encoded_init(self, z_l, z_g, feats: np.ndarray, restarts: int):
        """Start from the posterior of the raw feature windows ``feats`` (k, W, D): restart 0 of each window is its
        posterior mean; with ``init="nearest"`` the other restarts are draws from that posterior (the sampled latents
        ``z`` become ``mu + sigma * z``), otherwise they stay draws from the prior."""
        x = torch.as_tensor(np.asarray(self.ckpt.stats.normalize(feats), dtype=np.float32), device=self.device)
        with torch.no_grad():
            mu_l, logvar_l, mu_g, logvar_g = self.model.encode(x)

        def start(z, mu, logvar):
            z = z.clone().reshape(len(feats), restarts, *mu.shape[1:])
            if self.init == "nearest":
                z = mu[:, None] + torch.exp(0.5 * logvar)[:, None] * z
            z[:, 0] = mu
            return z.reshape(-1, *mu.shape[1:])

        return (None if z_l is None else start(z_l, mu_l, logvar_l)), start(z_g, mu_g, logvar_g)

    def _sample_latents(self, N: int, gen: torch.Generator):
        local, glob = self.model.latent_shapes()
        z_g = torch.randn(N, *glob, generator=gen).to(self.device)
        z_l = torch.randn(N, *local, generator=gen).to(self.device) if local else None
        return z_l, z_g

    def _decode(self, z_l, z_g, params: dict | None = None) -> torch.Tensor:
        """Latents → (N, W, 6J) normalised rotations with the decoder's (detached) or the given parameters."""
        return torch.func.functional_call(self._decoder, params or self._params, (z_l, z_g))

    def _optimise_latents(self, z_l, z_g, target: dict, iters: int):
        """Phase 1: Adam on the latents (decoder fixed)."""
        z_g = z_g.clone().requires_grad_(True)
        z_l = None if z_l is None else z_l.clone().requires_grad_(True)
        opt = _adam([z for z in (z_l, z_g) if z is not None], self.lr)
        for _ in _bar(range(iters), self.progress, "phase 1 (latents)"):
            opt.zero_grad(set_to_none=True)
            self._objective(self._decode(z_l, z_g), target).sum().backward()
            opt.step()
        return (None if z_l is None else z_l.detach()), z_g.detach()

    def _finetune_decoder(self, z_l, z_g, target: dict, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Phase 2: a private copy of the decoder per sample, fine-tuned with eq. 15 (latents fixed).

        Returns the decoded rotations (N, W, 6J) and the objective (N,) (eq. 14, without the regulariser) after the
        last step."""
        N = z_g.shape[0]
        base = self._params
        params = {k: v[None].repeat(N, *([1] * v.ndim)).clone().requires_grad_(True) for k, v in base.items()}
        opt = _adam(list(params.values()), self.decoder_lr)
        decoder = self._decoder

        if z_l is None:
            def one(p, zg):
                return torch.func.functional_call(decoder, p, (None, zg[None]))[0]
            batched = torch.func.vmap(one)
            run = lambda: batched(params, z_g)
        else:
            def one_l(p, zl, zg):
                return torch.func.functional_call(decoder, p, (zl[None], zg[None]))[0]
            batched_l = torch.func.vmap(one_l)
            run = lambda: batched_l(params, z_l, z_g)
        for _ in _bar(range(iters), self.progress, "phase 2 (decoder)"):
            opt.zero_grad(set_to_none=True)
            self._objective(run(), target).sum().backward()
            with torch.no_grad():  # the regulariser's gradient, 2 λ2 (θ' − θ), added in place (cheaper than autograd)
                for k, p in params.items():
                    if p.grad is not None:
                        p.grad.add_(p - base[k], alpha=2.0 * self.weight_reg)
            opt.step()
        with torch.no_grad():
            rot = run()
            return rot, self._objective(rot, target)

    # ---- denoising ----------------------------------------------------------------------------------------------
    def denoise(self, motion: Motion) -> Motion:
        """The refined motion: same length, skeleton, fps, name, labels and translations as ``motion``."""
        p = self.params
        return denoise_motion(motion, float(self.ckpt.fps or motion.fps),
                              self._refine_window if self.refine == "window" else self._refine_overlap,
                              p["despike"], p["root"], p["root_sigma"], p["smooth_sigma"])

    def _encode_decode(self, x: np.ndarray) -> np.ndarray:
        """(k, W, D) raw noisy windows → (k, W, D) raw refined windows (posterior mean, optional refine_iters)."""
        stats = self.ckpt.stats
        xn = torch.as_tensor(np.asarray(stats.normalize(x), dtype=np.float32), device=self.device)
        with torch.no_grad():
            mu_l, _, mu_g, _ = self.model.encode(xn)
        z_l = mu_l if self.model.local_active else None
        if self.refine_iters > 0:
            target = self._target(x, np.ones((*x.shape[:2], len(self.skeleton)), dtype=bool))
            z_l, z_g = self._optimise_latents(z_l, mu_g, target, self.refine_iters)
        else:
            z_g = mu_g
        with torch.no_grad():
            out = self.model.decode(z_l, z_g).cpu().numpy()
        return stats.denormalize(out).astype(np.float64)

    def _refine_window(self, feats: np.ndarray) -> np.ndarray:
        """The paper's sliding window: frame t from the window centred on it (edges held), many centres per batch."""
        T, W = len(feats), self.window
        c = W // 2
        padded = np.concatenate([np.repeat(feats[:1], c, 0), feats, np.repeat(feats[-1:], W - c - 1, 0)])
        views = np.lib.stride_tricks.sliding_window_view(padded, W, axis=0).transpose(0, 2, 1)  # (T, W, D)
        out = np.empty((T, feats.shape[1]), dtype=np.float64)
        for s in _bar(range(0, T, self.batch_size), self.progress, "refine (sliding window)"):
            out[s:s + self.batch_size] = self._encode_decode(np.ascontiguousarray(views[s:s + self.batch_size]))[:, c]
        return out

    def _refine_overlap(self, feats: np.ndarray) -> np.ndarray:
        """Windows every ``stride`` frames, decoded and cross-faded (`denoising.overlapped`)."""
        return overlapped(feats, self.window, self.window - self.stride, self.batch_size, self._encode_decode,
                          self.progress)


# ---- helpers ---------------------------------------------------------------------------------------------------------
def _bar(items, enabled: bool, desc: str):
    from ..progress import bar

    return bar(items, enabled, desc)


def _adam(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """Adam, fused where this torch build supports it (several times faster on CPU for millions of weights)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
