"""A motion diffusion model (thesis draft ``../shared/seeds/004_…txt`` §2.4–2.5; MDM, Tevet et al. 2023): a
transformer encoder over the frames of a window that denoises normalised feature windows, trained with L_simple
(eq. 2.14) plus geometric losses on its clean-sample estimate. The schedule and the samplers live apart from the
network (`motionsynth.diffusion`); the task method is `methods.diffusion`.

Read top to bottom: config → embeddings → the denoiser → geometric terms → training.

Data. A sample x0 is a NORMALISED feature window (B, W, D) (`data.features`: every joint's local 6D rotation, then
the root block: height, planar velocity in the heading frame, heading velocity). x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε
(eq. 2.7) over a ``T``-step ``schedule`` (``"cosine"``, eq. 2.15, or ``"linear"``).

The denoiser f(x_t, t, c[, observation]) → ε̂ or x̂0 (``prediction``; MDM predicts x0, which the geometric losses
need; an ε model's x̂0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t is amplified noise at large t, so its geometric terms are
weighted by ᾱ_t). Tokens: one per frame (a linear map of the frame's input to ``d_model``) after one *condition
token* — the sum of a sinusoidal timestep embedding (through a small MLP) and one learned embedding per label kind
(``label_kinds``: ``content``, ``style``; ``label_slots`` names each, plus a "no label" entry per kind). Sinusoidal
positions are added to every token; a pre-norm transformer encoder (``layers``, ``heads``, ``ff``, ``dropout``)
reads them all, and a linear head maps each frame's token back to D features.

Classifier-free guidance. In training the labels are dropped (all kinds at once with probability
``label_dropout``, each kind alone with half of it) to the "no label" entry, so one network is both the conditional
and the unconditional model: `diffusion.cfg` mixes them at sampling time.

Observation. Inpainting can re-impose the observed entries at every step (`diffusion.impose`) with any network.
With ``condition_on_observed`` the network is also *given* the masked observation — the observed normalised values
(zero elsewhere) and the mask as one channel per joint and per root-block column, concatenated to each frame's
input — trained on the CVAE's mask curriculum (`models.cvae.draw_masks`, `models.cvae.feature_mask`;
``mask_probs``, generation included, so the same network also generates from nothing).

Losses (`training_step`): L_simple on the ``prediction`` target, plus on x̂0 (weights ``pos_weight``,
``vel_weight``, ``foot_weight``; MDM's L_pos, L_vel, L_foot): the mean squared error of the joint positions by
forward kinematics (root-relative, metres, `common.local_positions`), of their frame-to-frame differences, and the
squared displacement of each foot between consecutive frames — in the world, root motion included (`foot_steps`) —
where the true foot is in contact: still, the speed test of `kinematics.foot_contacts` made on the features' foot
steps (it moves less than ``contact_threshold`` metres per frame). The feet are the toes of
`kinematics.foot_joints`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import rotations as R
from ..data.features import ROOT_HEIGHT, ROOT_TURN, ROOT_VELOCITY
from ..diffusion import PREDICTIONS, NoiseSchedule
from ..kinematics import foot_joints
from ..skeleton import Skeleton
from .common import StatsMixin, label_rows
from .cvae import MASK_KINDS, draw_masks, feature_mask

SCHEDULES = ("cosine", "linear")


@dataclass
class DiffusionConfig:
    """Diffusion hyper-parameters. ``preset("cpu")`` (the default: d_model 128, 4 layers, ff 256; 0.60 M parameters
    on a 22-joint skeleton; a training step of batch 32, window 64 took 0.29 s on one thread of the busy 2-core
    development CPU, batch 16 0.19 s) is sized for that CPU; ``preset("paper")`` (alias ``"gpu"``: d_model 512,
    8 layers, ff 1024, MDM's sizes; 17.5 M parameters) for a GPU (``configs/diffusion-gpu.yaml``).

    window: frames per window. d_model, layers, heads, ff, dropout: the transformer encoder.
    T: diffusion steps; schedule: ``"cosine"`` or ``"linear"``; prediction: ``"x0"`` or ``"eps"``.
    label_kinds, label_slots, label_dropout: label kinds conditioned on, names per kind (≥ the vocabulary), and the
        probability that all labels of a window are dropped in training (classifier-free guidance).
    pos_weight, vel_weight, foot_weight: geometric losses on x̂0 (module docstring; 0: off).
    contact_threshold: a true foot moving less than this (metres per frame) is in contact.
    condition_on_observed: the network also reads the masked observation (module docstring).
    mask_probs: the training masks' kinds (`models.cvae.MASK_KINDS`), with ``condition_on_observed``.
    length_unit: file units per metre (cm data: 100).
    """

    window: int = 64
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 256
    dropout: float = 0.1
    T: int = 1000
    schedule: str = "cosine"
    prediction: str = "x0"
    label_kinds: list[str] = field(default_factory=lambda: ["content", "style"])
    label_slots: int = 16
    label_dropout: float = 0.1
    pos_weight: float = 1.0
    vel_weight: float = 1.0
    foot_weight: float = 1.0
    contact_threshold: float = 0.005
    condition_on_observed: bool = False
    mask_probs: dict = field(default_factory=lambda: {"generate": 0.3, "predict": 0.15, "inbetween": 0.2,
                                                      "keyframes": 0.1, "body": 0.15, "combo": 0.1})
    length_unit: float = 100.0

    def __post_init__(self):
        self.label_kinds = list(self.label_kinds)
        self.mask_probs = {str(k): float(v) for k, v in dict(self.mask_probs).items()}
        if self.window < 2:
            raise ValueError(f"window must be at least 2 frames, got {self.window}")
        if self.d_model % self.heads or self.d_model % 2:
            raise ValueError(f"d_model ({self.d_model}) must be even and divisible by heads ({self.heads})")
        if min(self.layers, self.heads, self.ff, self.T) < 1:
            raise ValueError("layers, heads, ff and T must be at least 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if not 0.0 <= self.label_dropout <= 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1] and dropout in [0, 1), got {self.label_dropout}, "
                             f"{self.dropout}")
        if min(self.pos_weight, self.vel_weight, self.foot_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if set(self.mask_probs) - set(MASK_KINDS) or sum(self.mask_probs.values()) <= 0:
            raise ValueError(f"mask_probs: kinds are {', '.join(MASK_KINDS)} with a positive total; "
                             f"got {self.mask_probs}")

    @classmethod
    def preset(cls, name: str, **overrides) -> DiffusionConfig:
        """``cpu``: d_model 128, 4 layers, 4 heads, ff 256. ``paper`` / ``gpu``: d_model 512, 8 layers, 4 heads,
        ff 1024 (MDM's transformer)."""
        if name == "cpu":
            return cls(**overrides)
        if name in ("paper", "gpu"):
            return cls(**{"d_model": 512, "layers": 8, "heads": 4, "ff": 1024, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper/gpu)")


# ---- embeddings --------------------------------------------------------------------------------------------------
def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) positions (timesteps or frame indices) → (N, dim) sinusoidal embeddings (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], -1)


# ---- the denoiser ------------------------------------------------------------------------------------------------
class MotionDiffusion(StatsMixin, nn.Module):
    """The transformer denoiser and its training losses. See the module docstring."""

    Config = DiffusionConfig

    def __init__(self, config: DiffusionConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c, J = config, len(skeleton)
        self._init_stats(skeleton)
        self.dim = D = self.rot_dim + self.root_dim
        self.mask_dim = J + self.root_dim
        self.schedule = NoiseSchedule.cosine(c.T) if c.schedule == "cosine" else NoiseSchedule.linear(c.T)
        self.feet = foot_joints(skeleton, required=False)  # the toes; none: no foot loss
        cin = D + (D + self.mask_dim if c.condition_on_observed else 0)
        self.inp = nn.Linear(cin, c.d_model)
        self.time_mlp = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.SiLU(), nn.Linear(c.d_model, c.d_model))
        self.labels = nn.ModuleList([nn.Embedding(c.label_slots + 1, c.d_model) for _ in c.label_kinds])
        layer = nn.TransformerEncoderLayer(c.d_model, c.heads, c.ff, c.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.out = nn.Linear(c.d_model, D)
        for emb in cast("list[nn.Embedding]", self.labels):
            nn.init.normal_(emb.weight, std=0.02)
            nn.init.zeros_(emb.weight[c.label_slots])  # "no label" starts at zero: the timestep alone
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> MotionDiffusion:
        return cls(config if isinstance(config, DiffusionConfig) else DiffusionConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    @property
    def variant(self) -> str:
        """``diffusion-x0`` / ``diffusion-eps``, ``-cond`` with the observation as input."""
        return f"diffusion-{self.config.prediction}" + ("-cond" if self.config.condition_on_observed else "")

    # ---- inputs --------------------------------------------------------------------------------------------------
    def label_index(self, labels: dict | None, B: int) -> torch.Tensor:
        """Label indices {kind: (B,) long, −1 = none} (None: none at all) → (B, K) embedding rows, ``label_slots``
        = "no label" (`common.label_rows`)."""
        return label_rows(labels, self.config.label_kinds, self.config.label_slots, B, self.feat_mean.device)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: dict | None = None) -> torch.Tensor:
        """The denoiser: noisy windows x_t (B, W, D), 0-based steps t (B,) and the conditioning ``cond``, one dict
        (as motion-diffusion-model's ``y``; None: none): ``label`` {kind: (B,) long, −1 none} or None, and (with
        ``condition_on_observed``) the observation: ``observed`` normalised values (B, W, D) observed where ``mask``
        (B, W, D) is 1 (absent: nothing observed) → the prediction (B, W, D), ε̂ or x̂0."""
        cond = cond or {}
        labels, observed, fmask = cond.get("label"), cond.get("observed"), cond.get("mask")
        B, W, _ = x_t.shape
        parts = [x_t]
        if self.config.condition_on_observed:
            if fmask is None:
                fmask = torch.zeros_like(x_t)
                observed = torch.zeros_like(x_t)
            fmask = fmask.to(x_t.dtype)
            parts += [cast(torch.Tensor, observed) * fmask, self.mask_channels(fmask)]  # given with the mask
        h = self.inp(torch.cat(parts, -1))
        token = self.time_mlp(sinusoid(t, self.config.d_model))  # the timestep + label token
        rows = self.label_index(labels, B)
        for i, emb in enumerate(self.labels):
            token = token + emb(rows[:, i])
        h = torch.cat([token[:, None], h], 1)
        h = h + sinusoid(torch.arange(W + 1, device=x_t.device), self.config.d_model)[None]
        h = self.encoder(h)
        return self.out(self.norm(h[:, 1:]))

    # ---- geometric terms -----------------------------------------------------------------------------------------
    def foot_steps(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        """(B, W, D) normalised → (B, W − 1, F, 3): each foot's world displacement from frame t − 1 to t (metres),
        in frame t − 1's heading frame — the root block's planar velocity and height change plus the local
        positions turned by the heading change: v_t + Y(Δh_t) l_t − l_{t−1}."""
        pos = self.positions(x) if pos is None else pos
        feet = pos[..., self.feet, :]  # (B, W, F, 3)
        root = self.denormalize(x)[..., self.rot_dim:]
        unit = self.config.length_unit
        v = torch.stack([root[:, 1:, ROOT_VELOCITY][..., 0], root[:, 1:, ROOT_HEIGHT] - root[:, :-1, ROOT_HEIGHT],
                         root[:, 1:, ROOT_VELOCITY][..., 1]], -1) / unit  # (B, W-1, 3)
        turned = (R.yaw_matrix(root[:, 1:, ROOT_TURN])[:, :, None] @ feet[:, 1:, ..., None])[..., 0]
        return v[:, :, None] + turned - feet[:, :-1]

    def geometric_losses(self, x0_hat: torch.Tensor, x0: torch.Tensor, weight: torch.Tensor | None = None) -> dict:
        """MDM's L_pos, L_vel, L_foot of x̂0 (B, W, D) against the true x0, each a scalar; ``weight`` (B,) per
        window (None: 1)."""
        w = x0.new_ones(x0.shape[0]) if weight is None else weight

        def mean(err: torch.Tensor, m: torch.Tensor | None = None) -> torch.Tensor:
            per = err.flatten(1) if m is None else (err * m).flatten(1)
            count = per.shape[1] if m is None else m.expand_as(err).flatten(1).sum(1).clamp_min(1.0)
            return (w * per.sum(1) / count).mean()

        p_hat, p = self.positions(x0_hat), self.positions(x0)
        logs = {"pos": mean((p_hat - p) ** 2), "vel": mean((p_hat.diff(dim=1) - p.diff(dim=1)) ** 2)}
        if self.feet:
            with torch.no_grad():
                contact = (self.foot_steps(x0, p).norm(dim=-1) < self.config.contact_threshold).to(x0.dtype)
            logs["foot"] = mean(self.foot_steps(x0_hat, p_hat) ** 2, contact[..., None])
        else:
            logs["foot"] = x0.new_zeros(())
        return logs

    # ---- training ------------------------------------------------------------------------------------------------
    def _draw(self, batch: dict, gen: torch.Generator | None) -> tuple:
        """(x0, t, ε, labels, observed, fmask) of a batch; ``gen`` None: training (random, labels dropped), else a
        fixed draw (validation, labels kept)."""
        x0 = batch["features"]
        B, W, _ = x0.shape
        dev = x0.device

        def rand(*shape):
            return torch.rand(shape, generator=gen).to(dev) if gen is not None else torch.rand(shape, device=dev)

        t = (torch.randint(0, self.config.T, (B,), generator=gen) if gen is not None
             else torch.randint(0, self.config.T, (B,))).to(dev)
        noise = (torch.randn(x0.shape, generator=gen) if gen is not None else torch.randn(x0.shape)).to(dev, x0.dtype)
        labels = {k: torch.as_tensor(v).to(dev).long() for k, v in (batch.get("labels") or {}).items()
                  if k in self.config.label_kinds}
        if gen is None and labels:
            p = self.config.label_dropout
            drop_all = rand(B) < p
            labels = {k: torch.where(drop_all | (rand(B) < p / 2), -1, v) for k, v in labels.items()}
        observed = fmask = None
        if self.config.condition_on_observed:
            joints, root = draw_masks(B, W, self.skeleton, self.config.mask_probs, gen)
            fmask = feature_mask(joints, root, self.skeleton).to(dev, x0.dtype)
            observed = x0 * fmask
        return x0, t, noise, labels, observed, fmask

    def losses(self, batch: dict, gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """L_simple (eq. 2.14) on the ``prediction`` target + the weighted geometric losses on x̂0 → (loss, logs)."""
        c = self.config
        x0, t, noise, labels, observed, fmask = self._draw(batch, gen)
        x_t = self.schedule.q_sample(x0, t, noise)
        out = self(x_t, t, {"label": labels, "observed": observed, "mask": fmask})
        if c.prediction == "x0":
            x0_hat, weight = out, None
            logs = {"simple": F.mse_loss(out, x0)}
        else:
            x0_hat = self.schedule.x0_from_eps(x_t, t, out)
            weight = self.schedule.gather(self.schedule.alpha_bars, t, x0).reshape(-1)
            logs = {"simple": F.mse_loss(out, noise)}
        logs.update(self.geometric_losses(x0_hat, x0, weight))
        logs["x0_mse"] = F.mse_loss(x0_hat.detach(), x0)
        loss = logs["simple"] + c.pos_weight * logs["pos"] + c.vel_weight * logs["vel"] + c.foot_weight * logs["foot"]
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0, phase: str | None = None) -> tuple[torch.Tensor, dict]:
        """One step's loss on ``batch["features"]`` (B, W, D) (+ ``batch["labels"]``) → (loss, logs)."""
        return self.losses(batch)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """The training losses on a fixed draw (seed 0) of steps, noise and masks, labels kept: comparable from
        one validation to the next."""
        _, logs = self.losses(batch, torch.Generator().manual_seed(0))
        return logs
