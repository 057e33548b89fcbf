"""A learned denoiser on top of the best classical one: a transformer over the frames of a window predicts a RESIDUAL
(Δ) to the output of the smoothing filter (`postprocess.smooth_motion`, the thesis's eq. 4.1), as the
Δ-interpolator (`models.delta`) does to the interpolation of key frames.

Read top to bottom: config → inputs (noisy + filtered) → the network → losses → training.

Why a residual to the filter: the filter, tuned per noise model on the validation split, is the benchmark's
strongest denoiser on every noise model but the estimator-like ``mixed`` one (its slow drift no smoother can see).
With the output layer zero-initialised the untrained network IS the filter, so training starts from the filter's
error and only has to learn what the filter gets wrong (drift, the over-smoothed peaks of fast motion, frames a
tracker held).

Data. Input and output are NORMALISED feature windows (B, T, D) (`data.features`: every joint's local 6D rotation,
then the root block). Each frame's token is a linear map of the filtered frame and the noisy frame (2D), plus a
learned positional embedding; a pre-norm transformer encoder (``layers``, ``heads``, ``ff``) and a zero-initialised
linear head give Δ (B, T, D): the output is filtered + Δ.

Training. Clean training windows are corrupted on the fly with the benchmark's noise models
(`data.noise.corrupt_windows`, ``noise_models``: one drawn per window, seeded by the window's take and start) and
filtered with ``filter_weight`` / ``filter_iters`` (`postprocess.smooth_motions`, all windows of a batch in one
solve). Loss: L1 of the normalised features + ``pos_weight`` × L1 of the root-relative joint positions (metres, by
forward kinematics) + ``accel_weight`` × L1 of their accelerations against the clean ones (the residual must not
add jitter), on every frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.features import encode
from ..data.noise import corrupt_windows, noise_model_list
from ..motion import Motion
from ..postprocess import NORMS, smooth_motions
from ..skeleton import Skeleton
from .common import StatsMixin, window_seeds
from .delta import transformer_encoder


@dataclass
class DeltaDenoiseConfig:
    """Δ-denoiser hyper-parameters. ``preset("cpu")`` (the default: d_model 128, 3 layers, 4 heads, ff 512) is sized
    for one CPU thread; ``preset("paper")`` (alias ``"gpu"``: d_model 256, 6 layers, 8 heads, ff 1024) for a GPU.

    window: frames per window. d_model, layers, heads, ff, dropout: the transformer encoder.
    noise_models: noise models (`data.noise.NOISE_MODELS`) the training input is corrupted with, one drawn per
        window. fps: frame rate of the training data (the noise models' drift frequencies and dropped runs).
    filter_weight, filter_iters, filter_norm: the smoothing filter whose output the network corrects
        (`postprocess.smooth_motion`'s ``weight``, ``iters``, ``norm``); the benchmark's val-tuned weights are 0.3
        (gaussian, mixed), 2.0 (spikes), 1.0 (dropped).
    pos_weight: L1 of the joint positions (metres) beside the L1 of the normalised features.
    accel_weight: L1 of the joint positions' accelerations (metres per frame²) against the clean ones.
    length_unit: file units per metre (cm data: 100).
    """

    window: int = 64
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    ff: int = 512
    dropout: float = 0.0
    noise_models: list[str] = field(default_factory=lambda: ["mixed"])
    fps: float = 30.0
    filter_weight: float = 0.3
    filter_iters: int = 50
    filter_norm: str = "l2"
    pos_weight: float = 2.0
    accel_weight: float = 0.0
    length_unit: float = 100.0

    def __post_init__(self):
        self.noise_models = noise_model_list(self.noise_models)
        if self.window < 4:
            raise ValueError(f"window must be at least 4 frames, got {self.window}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if min(self.d_model, self.layers, self.heads, self.ff, self.filter_iters) < 1:
            raise ValueError("d_model, layers, heads, ff and filter_iters must be at least 1")
        if not (self.filter_weight > 0 and self.fps > 0):
            raise ValueError(f"filter_weight and fps must be positive, got {self.filter_weight}, {self.fps}")
        if self.filter_norm not in NORMS:
            raise ValueError(f"filter_norm must be one of {', '.join(NORMS)}, got {self.filter_norm!r}")
        if not 0.0 <= self.dropout < 1.0 or min(self.pos_weight, self.accel_weight) < 0:
            raise ValueError("dropout must be in [0, 1), pos_weight and accel_weight >= 0")

    @classmethod
    def preset(cls, name: str, **overrides) -> DeltaDenoiseConfig:
        """``cpu``: d_model 128, 3 layers, ff 512. ``paper`` / ``gpu``: d_model 256, 6 layers, 8 heads, ff 1024."""
        if name == "cpu":
            return cls(**overrides)
        if name in ("paper", "gpu"):
            return cls(**{"d_model": 256, "layers": 6, "heads": 8, "ff": 1024, "dropout": 0.1, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper/gpu)")


class DeltaDenoiser(StatsMixin, nn.Module):
    """The Δ-denoiser and its training loss. See the module docstring."""

    Config = DeltaDenoiseConfig

    def __init__(self, config: DeltaDenoiseConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c = config
        self._init_stats(skeleton)
        self.dim = D = self.rot_dim + self.root_dim
        self.inp = nn.Linear(2 * D, c.d_model)
        self.position = nn.Parameter(torch.zeros(c.window, c.d_model))
        self.encoder = transformer_encoder(c.d_model, c.heads, c.ff, c.dropout, c.layers)
        self.norm = nn.LayerNorm(c.d_model)
        self.out = nn.Linear(c.d_model, D)
        nn.init.normal_(self.position, std=0.02)
        nn.init.zeros_(self.out.weight)  # Δ = 0: the untrained model is the filter
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> DeltaDenoiser:
        return cls(config if isinstance(config, DeltaDenoiseConfig) else DeltaDenoiseConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    @property
    def variant(self) -> str:
        return "delta-denoise"

    # ---- inputs --------------------------------------------------------------------------------------------------
    def filter(self, motions: list[Motion]) -> list[Motion]:
        """The configured smoothing filter (`postprocess.smooth_motions`) of each motion."""
        c = self.config
        return smooth_motions(motions, c.filter_weight, c.filter_iters, c.filter_norm)

    def corrupt(self, x: torch.Tensor, seeds: list) -> dict:
        """Clean normalised windows (B, W, D) → ``{"noisy", "filtered"}`` normalised (B, W, D): each window corrupted
        by `data.noise.corrupt_windows` (``noise_models``, ``seeds``), then filtered."""
        raw = self.denormalize(x).detach().cpu().numpy().astype(np.float64)
        noisy = corrupt_windows(raw, self.skeleton, self.config.fps, seeds, self.config.noise_models)
        pair = {"noisy": noisy, "filtered": self.filter(noisy)}
        return {k: self.normalize(torch.from_numpy(np.stack([encode(m, dtype=np.float32) for m in v])).to(x.device))
                for k, v in pair.items()}

    # ---- the network ---------------------------------------------------------------------------------------------
    def forward(self, cond: dict) -> torch.Tensor:
        """``cond["filtered"]`` and ``cond["noisy"]``: normalised (B, T, D), T ≤ ``window`` → the denoised windows
        (B, T, D): filtered + Δ."""
        base, noisy = cond["filtered"], cond["noisy"]
        T = base.shape[1]
        if T > self.config.window:
            raise ValueError(f"windows of at most {self.config.window} frames, got {T}")
        h = self.encoder(self.inp(torch.cat([base, noisy], -1)) + self.position[:T])
        return base + self.out(self.norm(h))

    # ---- losses --------------------------------------------------------------------------------------------------
    def losses(self, cond: dict, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """L1 of the normalised features + ``pos_weight`` × L1 of the joint positions + ``accel_weight`` × L1 of their
        accelerations, of the denoised ``cond`` against the clean ``x`` → (loss, logs); ``filter_*``: the same for the
        filter alone (what Δ improves on); ``mpjpe_cm``, ``filter_mpjpe_cm``: mean joint position errors in cm."""
        out = self(cond)
        p = self.positions(x)

        def accel(q: torch.Tensor) -> torch.Tensor:
            return q[:, 2:] - 2 * q[:, 1:-1] + q[:, :-2]

        def scores(y: torch.Tensor) -> tuple[torch.Tensor, ...]:
            q = self.positions(y)
            return ((y - x).abs().mean(), (q - p).abs().mean(), (accel(q) - accel(p)).abs().mean(),
                    (q - p).norm(dim=-1).mean() * 100.0)

        c = self.config
        feat, pos, acc, mpjpe = scores(out)
        loss = feat + c.pos_weight * pos + c.accel_weight * acc
        with torch.no_grad():
            f_feat, f_pos, f_acc, f_mpjpe = scores(cond["filtered"])
        logs = {"feat": feat, "pos": pos, "accel": acc, "mpjpe_cm": mpjpe, "filter_feat": f_feat, "filter_pos": f_pos,
                "filter_accel": f_acc, "filter_mpjpe_cm": f_mpjpe,
                "filter_loss": f_feat + c.pos_weight * f_pos + c.accel_weight * f_acc}
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        """One step's loss on ``batch["features"]`` (B, T, D), corrupted and filtered afresh → (loss, logs)."""
        x = batch["features"]
        return self.losses(self.corrupt(x, window_seeds(batch, [0, int(step)])), x)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """The training loss on a fixed corruption (the windows' seeds): comparable from one validation to the next."""
        x = batch["features"]
        return self.losses(self.corrupt(x, window_seeds(batch, [1])), x)[1]
