"""A feed-forward in-betweener after Oreshkin et al., "Motion In-betweening via Deep Δ-Interpolator" (2022): a
transformer over the frames of a window predicts a RESIDUAL (Δ) to the interpolation of the key frames.

Read top to bottom: config → training masks → the network → losses → training.

Data. Input and output are NORMALISED feature windows (B, T, D) (`data.features`: every joint's local 6D rotation,
then the root block: height, planar velocity, heading velocity); the observation is a feature mask (B, T, D)
(`models.cvae.feature_mask`). Each frame's token is a linear map of

- the fill: each column interpolated in time between its observed entries (`common.interpolate_gaps`: linear
  between key frames, held before the first and after the last); the root velocities between two observed root
  frames are those of the linear path between them (the root track below), as SLERP/LERP in-betweening does;
- the mask channels (one per joint, one per root-block column, `StatsMixin.mask_channels`);
- the root track where the root is observed: planar position (metres) and heading (cos, sin) relative to the first
  observed root frame (`models.cvae.track_channels`), interpolated between observed frames, + its mask channel —
  the features hold root *velocities* only, so without it a target 3 m ahead and one 1 m ahead look the same;
- the frames since the previous and until the next observed frame (divided by the window; 1 where there is none);

plus a learned positional embedding. A pre-norm transformer encoder (``layers``, ``heads``, ``ff``) reads the
tokens and a linear head (zero-initialised: the untrained model IS the interpolation) maps each back to D: the
output is fill + Δ, and the observed entries are copied back unchanged.

Training masks (`draw_keyframes`): in-betweening windows — ``context`` = 1…``max_context`` observed frames, then a
gap of ``gaps`` = [5, 45] frames and a target frame; with probability ``p_more`` another gap and key frame follow
(and so on), and with probability ``p_late`` the window starts inside a gap (no context: the first key frame is at
frame 0…``gaps[1]``), as the windows of a long clip cut between key frames do. Whole frames only: this model does
in-betweening, not completion of body parts or prediction.

Loss: L1 of the normalised features on the unobserved entries plus ``pos_weight`` × L1 of the joint positions by
forward kinematics (root-relative, metres, `common.local_positions`) on the unobserved frames; frames outside the
key frames (before the first, after the last: extrapolation, which the in-betweening task does not score) count
``outside_weight``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..data import features
from ..data.features import ROOT_HEIGHT
from ..skeleton import Skeleton
from .common import StatsMixin, bracket, interpolate_gaps
from .cvae import feature_mask, track_channels, track_velocity


@dataclass
class DeltaConfig:
    """Δ-interpolator hyper-parameters. ``preset("cpu")`` (the default: d_model 128, 4 layers, 4 heads, ff 512;
    0.84 M parameters on Bandai's 22 joints) is sized for one CPU thread: 20,000 steps of batch 16 took 58 minutes on
    one thread of the shared 2-core development CPU; ``preset("paper")`` (alias ``"gpu"``: d_model 256, 6 layers, 8 heads, ff 1024) for a GPU
    (``configs/delta-gpu.yaml``).

    window: frames per window. d_model, layers, heads, ff, dropout: the transformer encoder.
    track: give the network the observed root positions and headings (module docstring).
    max_context: at most this many context frames in training (the benchmark's: 10); gaps: [shortest, longest] gap
        between key frames in training; p_more: probability of one more gap and key frame after each target;
        p_late: probability that a training window starts inside a gap.
    pos_weight: L1 of the joint positions (metres) beside the L1 of the normalised features.
    outside_weight: weight of the unobserved frames before the first and after the last key frame.
    length_unit: file units per metre (cm data: 100).
    """

    window: int = 64
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff: int = 512
    dropout: float = 0.0
    track: bool = True
    max_context: int = 10
    gaps: list[int] = field(default_factory=lambda: [5, 45])
    p_more: float = 0.3
    p_late: float = 0.15
    pos_weight: float = 2.0
    outside_weight: float = 0.1
    length_unit: float = 100.0

    def __post_init__(self):
        self.gaps = [int(g) for g in self.gaps]
        if self.window < 4:
            raise ValueError(f"window must be at least 4 frames, got {self.window}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if min(self.d_model, self.layers, self.heads, self.ff, self.max_context) < 1:
            raise ValueError("d_model, layers, heads, ff and max_context must be at least 1")
        if len(self.gaps) != 2 or not 1 <= self.gaps[0] <= self.gaps[1]:
            raise ValueError(f"gaps is [shortest, longest] with 1 <= shortest <= longest, got {self.gaps}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.p_more < 1.0 and 0.0 <= self.p_late <= 1.0):
            raise ValueError("dropout and p_more must be in [0, 1), p_late in [0, 1]")
        if min(self.pos_weight, self.outside_weight) < 0:
            raise ValueError("loss weights must be >= 0")

    @classmethod
    def preset(cls, name: str, **overrides) -> DeltaConfig:
        """``cpu``: d_model 128, 4 layers, ff 512. ``paper`` / ``gpu``: d_model 256, 6 layers, 8 heads, ff 1024."""
        if name == "cpu":
            return cls(**overrides)
        if name in ("paper", "gpu"):
            return cls(**{"d_model": 256, "layers": 6, "heads": 8, "ff": 1024, "dropout": 0.1, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper/gpu)")


# ---- training masks --------------------------------------------------------------------------------------------------
def _randint(gen, lo: int, hi: int) -> int:
    """An integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


def draw_keyframes(B: int, T: int, config: DeltaConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """(B, T) bool: the observed frames of B in-betweening windows (module docstring)."""
    lo, hi = config.gaps
    frames = torch.zeros(B, T, dtype=torch.bool)
    for b in range(B):
        if float(torch.rand((), generator=gen)) < config.p_late:
            key = _randint(gen, 0, min(hi, T - 1))
        else:
            key = _randint(gen, 1, min(config.max_context, T - 2)) - 1
            frames[b, :key] = True
        frames[b, key] = True
        while True:
            key += _randint(gen, lo, hi) + 1
            if key >= T:
                break
            frames[b, key] = True
            if float(torch.rand((), generator=gen)) >= config.p_more:
                break
    return frames


# ---- the network -----------------------------------------------------------------------------------------------------
def transformer_encoder(d_model: int, heads: int, ff: int, dropout: float, layers: int) -> nn.TransformerEncoder:
    """A pre-norm GELU transformer encoder over (B, T, d_model) tokens (batch first)."""
    layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class DeltaInterpolator(StatsMixin, nn.Module):
    """The Δ-interpolator and its training loss. See the module docstring."""

    Config = DeltaConfig

    def __init__(self, config: DeltaConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c, J = config, len(skeleton)
        self._init_stats(skeleton)
        self.dim = D = self.rot_dim + self.root_dim
        cin = D + J + self.root_dim + (5 if c.track else 0) + 2  # fill, mask, track + its mask, key-frame distances
        self.inp = nn.Linear(cin, c.d_model)
        self.position = nn.Parameter(torch.zeros(c.window, c.d_model))
        self.encoder = transformer_encoder(c.d_model, c.heads, c.ff, c.dropout, c.layers)
        self.norm = nn.LayerNorm(c.d_model)
        self.out = nn.Linear(c.d_model, D)
        nn.init.normal_(self.position, std=0.02)
        nn.init.zeros_(self.out.weight)  # Δ = 0: the untrained model is the interpolation
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> DeltaInterpolator:
        return cls(config if isinstance(config, DeltaConfig) else DeltaConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    @property
    def variant(self) -> str:
        return "delta"

    # ---- inputs --------------------------------------------------------------------------------------------------
    def fill(self, x: torch.Tensor, fmask: torch.Tensor, track: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised windows (B, T, D), observed where ``fmask`` (B, T, D) is 1, and the root ``track`` (B, T, 3)
        (x, z in file units, heading; None: integrated from ``x``, right where ``x`` is the true window) → the
        interpolated fill (B, T, D) and the extra input channels (B, T, 5 or 0): track + its mask."""
        base = interpolate_gaps(x, fmask)
        if not self.config.track:
            return base, x.new_zeros(*x.shape[:2], 0)
        if track is None:
            track = features.root_track(self.denormalize(x)[..., self.rot_dim:])
        seen = (fmask[..., self.rot_dim + ROOT_HEIGHT] > 0) & (fmask[..., 6 * self.skeleton.root] > 0)
        channels = track_channels(track.to(x.dtype), seen, self.config.length_unit)
        channels = interpolate_gaps(channels, seen[..., None].expand_as(channels))
        # root velocities inside a gap of the root: those of the interpolated (linear) path
        prev, nxt = bracket(seen[..., None])
        inside = torch.zeros_like(seen)
        inside[:, 1:] = (prev[:, :-1, 0] >= 0) & (nxt[:, 1:, 0] < seen.shape[1])
        cols = list(range(self.rot_dim + 1, self.rot_dim + 4))  # planar velocity, heading velocity
        vel = (track_velocity(channels, self.config.length_unit) - self.feat_mean[cols]) / self.feat_std[cols]
        use = inside[..., None] & (fmask[..., cols] == 0)
        base = base.clone()
        base[..., cols] = torch.where(use, vel, base[..., cols])
        return base, torch.cat([channels, seen[..., None].to(x.dtype)], -1)

    def _distances(self, fmask: torch.Tensor) -> torch.Tensor:
        """(B, T, D) mask → (B, T, 2): frames since the previous frame with anything observed and until the next one,
        over the window length (1 where there is none)."""
        T = fmask.shape[1]
        prev, nxt = bracket(fmask.amax(-1, keepdim=True) > 0)
        t = torch.arange(T, device=fmask.device)[None, :, None]
        since = torch.where(prev >= 0, t - prev, T).to(fmask.dtype) / T
        until = torch.where(nxt < T, nxt - t, T).to(fmask.dtype) / T
        return torch.cat([since, until], -1)

    def forward(self, cond: dict) -> torch.Tensor:
        """Complete windows from the conditioning ``cond`` (one dict, as `methods.completion.conditioning` builds
        it): ``observed`` normalised features (B, T, D), observed where ``mask`` (B, T, D) is 1; ``track`` (B, T, 3)
        root x, z, heading (file units, radians; any common origin) at least at the observed root frames (absent or
        None: integrated from the observed features — right only where the observed frames are contiguous) →
        (B, T, D) normalised features: fill + Δ, the observed entries as given. T ≤ ``window``."""
        x, fmask = cond["observed"], cond["mask"].to(cond["observed"].dtype)
        T = x.shape[1]
        if T > self.config.window:
            raise ValueError(f"windows of at most {self.config.window} frames, got {T}")
        base, extra = self.fill(x, fmask, cond.get("track"))
        h = self.inp(torch.cat([base, self.mask_channels(fmask), extra, self._distances(fmask)], -1))
        h = self.encoder(h + self.position[:T])
        out = base + self.out(self.norm(h))
        return torch.where(fmask > 0, x, out)

    @torch.no_grad()
    def sample(self, cond: dict, generator: torch.Generator | None = None, temperature: float = 0.0) -> torch.Tensor:
        """`forward` without gradients (deterministic: ``generator`` and ``temperature`` are ignored)."""
        return self(cond)

    # ---- losses --------------------------------------------------------------------------------------------------
    def _masks(self, batch: dict, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's feature mask (B, T, D) and the weight of each frame in the loss (B, T): 0 where observed, 1
        inside a gap, ``outside_weight`` before the first and after the last key frame."""
        x = batch["features"]
        B, T, _ = x.shape
        frames = draw_keyframes(B, T, self.config, gen)
        joints = frames[..., None].expand(-1, -1, len(self.skeleton))
        fmask = feature_mask(joints, frames, self.skeleton).to(x.device, x.dtype)
        prev, nxt = bracket(frames[..., None])
        inside = (prev[..., 0] >= 0) & (nxt[..., 0] < T)
        weight = torch.where(inside, 1.0, self.config.outside_weight) * (~frames).float()
        return fmask, weight.to(x.device, x.dtype)

    def losses(self, batch: dict, gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """L1 of the normalised features on the unobserved entries + ``pos_weight`` × L1 of the joint positions on
        the unobserved frames (weighted per frame, `_masks`) → (loss, logs); ``fill_*``: the same for the
        interpolation alone (what Δ improves on)."""
        x = batch["features"]
        fmask, w = self._masks(batch, gen)
        out = self({"observed": x, "mask": fmask})
        wf = (1.0 - fmask) * w[..., None]
        p = self.positions(x)

        def l1(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            feat = ((y - x).abs() * wf).sum() / wf.sum().clamp_min(1.0)
            pos = ((self.positions(y) - p).abs().mean((-1, -2)) * w).sum() / w.sum().clamp_min(1.0)
            return feat, pos

        logs = dict(zip(("feat", "pos"), l1(out)))
        loss = logs["feat"] + self.config.pos_weight * logs["pos"]
        with torch.no_grad():
            fill, _ = self.fill(x, fmask)
            logs["fill_feat"], logs["fill_pos"] = l1(torch.where(fmask > 0, x, fill))
            logs["fill_loss"] = logs["fill_feat"] + self.config.pos_weight * logs["fill_pos"]
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0, phase: str | None = None) -> tuple[torch.Tensor, dict]:
        """One step's loss on ``batch["features"]`` (B, T, D) with freshly drawn key frames → (loss, logs)."""
        return self.losses(batch)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """The training loss on a fixed draw of key frames (seed 0): comparable from one validation to the next."""
        _, logs = self.losses(batch, torch.Generator().manual_seed(0))
        return logs
