"""The two-branch conditional VAE of Cai et al., "A Unified 3D Human Motion Synthesis Model via Conditional Variational
Auto-Encoder" (ICCV 2021; its supplementary material): every task — in-betweening, completion, prediction,
generation — is one forward pass from a masked window.

Read top to bottom: config → masks (the training curriculum) → residual blocks → the networks → losses → training.

Data. Input and output are NORMALISED feature windows (B, T, D) (`data.features`: every joint's local 6D rotation,
then the root block: height, planar velocity, heading velocity). The observation is a feature mask M (B, T, D)
(`feature_mask`; the logic of `methods.completion.feature_mask`); the mask rides along as J + 4 extra channels (one
per joint, one per root-block column). The model predicts every column, the root block included. ``fill`` chooses
what the prior sees in the unobserved entries and what the decoder adds to: ``"zero"`` (the document's: masked
entries zeroed, the decoder outputs the window) or ``"interpolate"`` (the default: each column interpolated in time
between its observed entries, `common.interpolate_gaps`, and the decoder outputs a residual on top of that fill at
every scale, as the Δ-interpolator of Oreshkin et al. does — the network starts from interpolation instead of
having to rebuild the observed pose from nothing; measured in docs/BENCHMARKS.md).

Root track (``track``, default on). The features hold the root's *velocities* only, so a masked window does not say
where an observed frame is relative to another: an in-betweening target 3 m ahead and one 1 m ahead look the same.
With ``track`` the prior also sees, at the frames where the root is observed, the root's planar position (metres)
and heading (cos, sin) relative to the first such frame (`track_channels`; 4 channels + 1 mask channel). In
training they come from integrating the true window's velocities (`features.root_track`); a method passes
the positions of the observed frames of the clip it completes (`methods.cvae`). With ``fill="interpolate"`` the
track is interpolated too and, at the unobserved frames between two observed ones, the velocity columns of the fill
are the ones of that interpolated path (`track_velocity`) — the root fill is then the linear path to the next observed root, as in
SLERP/LERP in-betweening. Labels: one one-hot block of ``label_slots`` per label kind in ``label_kinds`` (``content``, ``style``),
all zero where a take has no such label or the label was dropped (``label_dropout``), so one model works with and
without labels.

The CVAE (eq. 1–3). X_i = M ⊙ X is observed, X_u = (1 - M) ⊙ X is not. Three networks and one shared decoder:

- conditional prior p(z | X_i, c): encoder E_p of the masked window (+ mask channels, label c). Its features at the
  four temporal scales also condition the decoder (added to the decoder's features at each scale: the observation
  reaches the output at full resolution);
- posterior q(z | X_u, c): encoder E_q of the unobserved part (+ its mask, label), for reconstruction only;
- decoder p(X | z, X_i, c): z (a latent map at T/8) + label → up blocks with E_p's features → an output at each of
  the four scales T/8, T/4, T/2, T.

Two branches (the document's §4.1): the *reconstruction* branch decodes z ~ q and is trained to reproduce the whole
window (appearance match at four scales, L1 on normalised features, + ``pos_weight`` × L1 of the joint positions by
forward kinematics in metres, `common.local_positions`); the *generative* branch decodes z ~ p and is trained to
match the observed entries only (four scales), to fool a discriminator (hinge loss) and to be recognised by an action
classifier — what it puts in the gaps is free, hence diverse. ``beta`` × KL(q ‖ p) (eq. 3) ties the two. The
``branches=1`` ablation decodes z ~ q once and puts every loss on that output (the one-branch CVAE of §4.1).
Discriminator: the final output with the observed entries pasted in (X̂ = M ⊙ X + (1 - M) ⊙ out), concatenated with
the label one-hot, spectral normalisation on every layer. Action classifier: the same body on the sequence alone,
trained on real windows, its cross-entropy on generated ones a generator loss (only where the label was given).
``gan_weight=0`` and ``action_weight=0`` are the "w/o GAN" and "w/o action" ablations (the networks are not built).

The prior's mean (``mean_weight``, not in the document). Tasks that want one answer decode the prior's MEAN latent
(``temperature=0``); nothing in the two branches asks that output to be right where nothing was observed (the
generative branch only matches the observed entries), and on in-betweening it was not: with the interpolation fill
it came out worse than the fill itself. ``mean_weight`` × (four-scale L1 + ``pos_weight`` × joint positions) of
decode(mu_p) against the whole window trains it as a regression (the mean completion), while samples around it stay
free (docs/BENCHMARKS.md measures both). With the interpolation fill most entries of a window are observed or
nearly given by the fill, so a joint that is never observed (completion of a missing body part) is a small share of
that mean; ``missing_weight`` × the same loss as a mean over the unobserved entries only gives them their own weight.

Blocks (Figure 2): a start block (conv → act → conv, plus a 1×1 shortcut), the pre-activation residual block, the up
block (×2 linear upsampling inside the residual and the shortcut; nearest upsampling, tried first, left a
2/4/8-frame staircase in the output: 6× the data's frame-to-frame acceleration) and the down block (a residual block followed by
average pooling). Temporal sizes T0 → T3 = window → window/8 (the paper: 128, 64, 32, 16; its T4 = 15 is the
latent's length, here T3). Orthogonal initialisation everywhere; Adam β = (0, 0.99) for both phases
(`configure_optimizers`; the trainer runs the discriminator phase, then the generator phase, every step).

Training masks (`draw_masks`): per window one of generation (nothing observed), prediction (a prefix), LAFAN-style
in-betweening (context, gap, target, the rest unobserved or observed), random key frames at a random density, a
missing body part (`Skeleton.groups`, on all frames or a span), and combinations — probabilities in ``mask_probs``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..data import features
from ..data.features import ROOT_HEIGHT
from ..skeleton import Skeleton
from .common import StatsMixin, bracket, interpolate_gaps, label_rows
from .layers import LOGVAR_RANGE

MASK_KINDS = ("generate", "predict", "inbetween", "keyframes", "body", "combo")


@dataclass
class CVAEConfig:
    """CVAE hyper-parameters. ``preset("cpu")`` (the default; 1.8 M parameters with discriminator and classifier,
    1.1 M in the encoders and decoder) trained 8,000 steps (batch 16) in 55 minutes on one thread of the 2-core
    development CPU; ``preset("paper")`` has the document's sizes (C1 = 128, C2 = 256; train with
    ``configs/cvae-paper.yaml``: window 128, batch 128, lr 1e-4 — a GPU).

    window: frames T0 (divisible by 8: three down blocks).
    channels: [C1, C2]: C1 at T0 and T1, C2 at T2 and T3, in every network.
    latent: channels of the latent map z (T0/8 frames).
    kernel: temporal kernel of every convolution.
    fill: ``"interpolate"`` or ``"zero"`` (module docstring).
    track: condition the prior on the observed root positions and headings (module docstring).
    branches: 2 (the paper's) or 1 (the one-branch ablation).
    label_kinds, label_slots, label_dropout: the label kinds conditioned on, one-hot slots per kind (≥ the number
        of names), and the probability that a window's label (each kind) is hidden in training.
    beta: weight of KL(q ‖ p) (a mean over latent elements); pos_weight: joint positions (L1, metres);
        vel_weight: L1 of the frame-to-frame differences of the normalised features (reconstruction branch);
        gan_weight: hinge GAN loss (0: no discriminator); action_weight: action classifier (0: none);
        scale_weights: the appearance match at T0, T1, T2, T3.
        mean_weight: reconstruction of the whole window from the prior's mean latent (module docstring; 0: off).
        missing_weight: the same loss of the prior's mean on the unobserved entries alone, as a mean over them
            (module docstring; 0: off).
    mask_probs: probability of each kind of training mask (`MASK_KINDS`).
    length_unit: file units per metre (cm data: 100).
    """

    window: int = 64
    channels: list[int] = field(default_factory=lambda: [64, 128])
    latent: int = 16
    kernel: int = 3
    fill: str = "interpolate"
    track: bool = True
    branches: int = 2
    label_kinds: list[str] = field(default_factory=lambda: ["content", "style"])
    label_slots: int = 16
    label_dropout: float = 0.3
    beta: float = 0.01
    pos_weight: float = 5.0
    vel_weight: float = 1.0
    gan_weight: float = 0.1
    action_weight: float = 0.1
    scale_weights: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.5, 0.5])
    mean_weight: float = 1.0
    missing_weight: float = 0.0
    mask_probs: dict = field(default_factory=lambda: {"generate": 0.1, "predict": 0.2, "inbetween": 0.25,
                                                      "keyframes": 0.15, "body": 0.2, "combo": 0.1})
    length_unit: float = 100.0

    def __post_init__(self):
        self.channels, self.label_kinds = list(self.channels), list(self.label_kinds)
        self.scale_weights = [float(w) for w in self.scale_weights]
        self.mask_probs = {str(k): float(v) for k, v in dict(self.mask_probs).items()}
        if self.window % 8 or self.window < 16:
            raise ValueError(f"CVAE window must be a multiple of 8 (three down blocks), at least 16; got {self.window}")
        if len(self.channels) != 2:
            raise ValueError(f"channels is [C1, C2], got {self.channels}")
        if self.fill not in ("interpolate", "zero"):
            raise ValueError(f"fill must be 'interpolate' or 'zero', got {self.fill!r}")
        if self.branches not in (1, 2):
            raise ValueError(f"branches must be 1 or 2, got {self.branches}")
        if len(self.scale_weights) != 4:
            raise ValueError(f"scale_weights needs 4 entries (T0..T3), got {self.scale_weights}")
        if set(self.mask_probs) - set(MASK_KINDS) or sum(self.mask_probs.values()) <= 0:
            raise ValueError(f"mask_probs: kinds are {', '.join(MASK_KINDS)} with a positive total; "
                             f"got {self.mask_probs}")

    @classmethod
    def preset(cls, name: str, **overrides) -> CVAEConfig:
        """``cpu``: C1 = 64, C2 = 128, latent 16 × T/8. ``paper``: C1 = 128, C2 = 256, latent 64."""
        if name == "cpu":
            return cls(**overrides)
        if name == "paper":
            return cls(**{"channels": [128, 256], "latent": 64, **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


# ---- masks ---------------------------------------------------------------------------------------------------------
def feature_mask(joints: torch.Tensor, root: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Observed joints (..., T, J) and root positions (..., T) → (..., T, D) float feature mask, 1 where observed
    (`data.features.feature_mask`, the one definition)."""
    return features.feature_mask(joints, root, skeleton).float()


# ---- the root track ------------------------------------------------------------------------------------------------
def track_channels(track: torch.Tensor, seen: torch.Tensor, unit: float) -> torch.Tensor:
    """Root track (B, T, 3) (x, z in file units, heading) observed where ``seen`` (B, T) bool → (B, T, 4): x, z in
    metres (``unit`` file units per metre) and cos, sin of the heading, relative to the first observed frame (its
    position the origin, its heading 0); zero where unobserved."""
    B = track.shape[0]
    ref = track[torch.arange(B, device=track.device), seen.float().argmax(1)]  # (B, 3): the first observed frame
    d = track[..., :2] - ref[:, None, :2]
    c, s = ref[:, 2].cos()[:, None], ref[:, 2].sin()[:, None]
    h = track[..., 2] - ref[:, None, 2]
    out = torch.stack([(c * d[..., 0] - s * d[..., 1]) / unit, (s * d[..., 0] + c * d[..., 1]) / unit,
                       h.cos(), h.sin()], -1)
    return out * seen[..., None].float()


def track_velocity(channels: torch.Tensor, unit: float) -> torch.Tensor:
    """Track channels (B, T, 4) → the raw root-block velocities of that path (B, T, 3): planar velocity in the
    previous frame's heading frame (file units) and heading change (frame 0: zero) — the inverse of
    `features.root_track`."""
    pos, h = channels[..., :2] * unit, torch.atan2(channels[..., 3], channels[..., 2])
    d, c, s = pos[:, 1:] - pos[:, :-1], h[:, :-1].cos(), h[:, :-1].sin()
    turn = torch.remainder(h[:, 1:] - h[:, :-1] + math.pi, 2 * math.pi) - math.pi
    v = torch.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1], turn], -1)
    return torch.cat([torch.zeros_like(v[:, :1]), v], 1)


def _uniform(gen, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _randint(gen, lo: int, hi: int) -> int:
    """An integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


def _frames(kind: str, T: int, gen) -> torch.Tensor:
    """(T,) bool: the whole frames a frame-wise mask of ``kind`` observes."""
    f = torch.zeros(T, dtype=torch.bool)
    if kind == "predict":
        f[:_randint(gen, 1, 3 * T // 4)] = True
    elif kind == "inbetween":  # context, gap, target (then the rest unobserved, or observed)
        context = _randint(gen, 1, 10)
        target = min(T - 1, context + _randint(gen, 1, T - 2))
        f[:context] = True
        f[target:(T if _uniform(gen) < 0.3 else target + 1)] = True
    elif kind == "keyframes":
        density = math.exp(_uniform(gen, math.log(0.02), math.log(0.5)))
        f = torch.rand(T, generator=gen) < density
        f[_randint(gen, 0, T - 1)] = True
    return f


def _body(T: int, skeleton: Skeleton, gen) -> torch.Tensor:
    """(T, J) bool: one or more body parts (`Skeleton.groups`) missing on all frames or on a span, the rest seen."""
    groups = [g for g in skeleton.groups.values() if 0 < len(g) < len(skeleton)]
    missing = set(groups[_randint(gen, 0, len(groups) - 1)])
    while _uniform(gen) < 0.3:
        missing |= set(groups[_randint(gen, 0, len(groups) - 1)])
    joints = torch.ones(T, len(skeleton), dtype=torch.bool)
    span = slice(None)
    if _uniform(gen) < 0.3:
        a = _randint(gen, 0, T - 2)
        span = slice(a, _randint(gen, a + 1, T))
    joints[span, sorted(missing)] = False
    return joints


def draw_masks(B: int, T: int, skeleton: Skeleton, probs: dict, gen: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The training curriculum: B masks of T frames → observed joints (B, T, J) and root (B, T), bool.

    The root position is observed where the moving root's rotation is (as in `tasks.joints_mask`)."""
    kinds = list(probs)
    weights = torch.tensor([probs[k] for k in kinds], dtype=torch.float)
    joints = torch.zeros(B, T, len(skeleton), dtype=torch.bool)
    for b, i in enumerate(torch.multinomial(weights, B, replacement=True, generator=gen).tolist()):
        kind = kinds[i]
        if kind in ("predict", "inbetween", "keyframes"):
            joints[b] = _frames(kind, T, gen)[:, None]
        elif kind == "body":
            joints[b] = _body(T, skeleton, gen)
        elif kind == "combo":  # a missing body part, plus whole frames (key frames or a prefix)
            extra = _frames("keyframes" if _uniform(gen) < 0.5 else "predict", T, gen)
            joints[b] = _body(T, skeleton, gen) | extra[:, None]
    return joints, joints[..., skeleton.root].clone()


# ---- blocks (Figure 2) --------------------------------------------------------------------------------------------
def _spectral_norm(module: nn.Module) -> nn.Module:
    """`spectral_norm`, except on the meta device, where a network is only sized before it is built
    (`registry.load_checkpoint`): spectral norm adds no parameter, and its start-up power iterations there run through
    Python meta kernels that cost seconds."""
    return module if cast(torch.Tensor, module.weight).is_meta else spectral_norm(module)


def _conv(cin: int, cout: int, k: int, sn: bool) -> nn.Module:
    conv = nn.Conv1d(cin, cout, k, padding=k // 2)
    return _spectral_norm(conv) if sn else conv


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="linear", align_corners=False)


class ResBlock(nn.Module):
    """Pre-activation residual block (b); ``start`` — the first block of an encoder or discriminator (a): no
    activation before the first convolution; ``up`` — ×2 linear upsampling first (c); ``down`` — average pooling
    after (the "ResBlock downsample")."""

    def __init__(self, cin: int, cout: int, k: int, sn: bool = False, start: bool = False, up: bool = False,
                 down: bool = False):
        super().__init__()
        self.start, self.up, self.down = start, up, down
        self.conv1, self.conv2 = _conv(cin, cout, k, sn), _conv(cout, cout, k, sn)
        self.skip = _conv(cin, cout, 1, sn) if (cin != cout or start) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.start else _act(x)
        if self.up:
            h, x = _upsample(h), _upsample(x)
        h = self.conv2(_act(self.conv1(h))) + self.skip(x)
        return F.avg_pool1d(h, 2) if self.down else h


class Encoder(nn.Module):
    """(B, cin, T0) → features at T0, T1, T2, T3 (channels C1, C1, C2, C2) and (mu, logvar) (B, latent, T3)."""

    def __init__(self, cin: int, c1: int, c2: int, latent: int, k: int):
        super().__init__()
        self.blocks = nn.ModuleList([ResBlock(cin, c1, k, start=True), ResBlock(c1, c1, k, down=True),
                                     ResBlock(c1, c2, k, down=True), ResBlock(c2, c2, k, down=True)])
        self.out = nn.Sequential(ResBlock(c2, c2, k), nn.LeakyReLU(0.1), nn.Conv1d(c2, 2 * latent, 1))

    def forward(self, x: torch.Tensor):
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        mu, logvar = self.out(x).chunk(2, 1)
        return feats, mu, logvar.clamp(*LOGVAR_RANGE)


class Decoder(nn.Module):
    """z (B, latent + L, T3) and E_p's features → outputs (B, dim, T) at T0, T1, T2, T3 (finest first)."""

    def __init__(self, latent: int, c1: int, c2: int, dim: int, k: int):
        super().__init__()
        self.inp = nn.Conv1d(latent, c2, 1)
        self.blocks = nn.ModuleList([ResBlock(c2, c2, k), ResBlock(c2, c2, k, up=True), ResBlock(c2, c1, k, up=True),
                                     ResBlock(c1, c1, k, up=True)])
        self.heads = nn.ModuleList([nn.Conv1d(c, dim, 1) for c in (c2, c2, c1, c1)])

    def forward(self, z: torch.Tensor, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        h, outs = self.inp(z), []
        for block, head, skip in zip(self.blocks, self.heads, reversed(feats)):
            h = block(h) + skip
            outs.append(head(_act(h)))
        return outs[::-1]


class Critic(nn.Module):
    """Discriminator (``outputs=1``, spectral norm) or action classifier (``outputs`` = logits): (B, cin, T) →
    (B, outputs), down blocks then a sum over time."""

    def __init__(self, cin: int, c1: int, c2: int, outputs: int, k: int, sn: bool):
        super().__init__()
        self.blocks = nn.Sequential(ResBlock(cin, c1, k, sn, start=True), ResBlock(c1, c1, k, sn, down=True),
                                    ResBlock(c1, c2, k, sn, down=True), ResBlock(c2, c2, k, sn, down=True),
                                    ResBlock(c2, c2, k, sn))
        linear = nn.Linear(c2, outputs)
        self.out = _spectral_norm(linear) if sn else linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(_act(self.blocks(x)).sum(-1))


# ---- the model ---------------------------------------------------------------------------------------------------
def _kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) ‖ N(mu_p, e^logvar_p)), averaged over batch and latent elements."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0).mean()


def _l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    if weight is None:
        return (pred - target).abs().mean()
    return ((pred - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)


class CVAE(StatsMixin, nn.Module):
    """The two-branch CVAE (and its ablations). See the module docstring."""

    Config = CVAEConfig

    def __init__(self, config: CVAEConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c, J = config, len(skeleton)
        self._init_stats(skeleton)
        D, L = self.rot_dim + self.root_dim, len(c.label_kinds) * c.label_slots
        self.dim, self.label_dim, self.mask_dim = D, L, J + self.root_dim
        (c1, c2), k = c.channels, c.kernel
        self.track_dim = 5 if c.track else 0  # 4 track channels + their mask
        self.prior = Encoder(D + self.mask_dim + L + self.track_dim, c1, c2, c.latent, k)
        self.posterior = Encoder(D + self.mask_dim + L, c1, c2, c.latent, k)
        self.decoder = Decoder(c.latent + L, c1, c2, D, k)
        self.discriminator = Critic(D + L, c1, c2, 1, k, sn=True) if c.gan_weight > 0 else None
        has_action = c.action_weight > 0 and L > 0
        self.classifier = Critic(D, c1, c2, L, k, sn=False) if has_action else None
        for m in self.modules():  # orthogonal initialisation (spectral norm's `original` weights included)
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                w = cast(Any, m).parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
                nn.init.orthogonal_(w)
                nn.init.zeros_(cast(torch.Tensor, m.bias))  # every layer here has a bias
        self._drawn: tuple | None = None

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> CVAE:
        return cls(config if isinstance(config, CVAEConfig) else CVAEConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    @property
    def variant(self) -> str:
        """``cvae``, or the ablation: ``cvae-1branch``, ``cvae-nogan``, ``cvae-noaction`` (joined)."""
        c = self.config
        parts = ["1branch"] * (c.branches == 1) + ["nogan"] * (c.gan_weight <= 0) + ["noaction"] * (c.action_weight <= 0)
        return "-".join(["cvae", *parts])

    # ---- inputs --------------------------------------------------------------------------------------------------
    def one_hot(self, labels: dict | None, B: int) -> torch.Tensor:
        """Label indices {kind: (B,) long, -1 = none} → (B, L) one-hot blocks (zero where none; `common.label_rows`)."""
        S = self.config.label_slots
        rows = label_rows(labels, self.config.label_kinds, S, B, self.feat_mean.device)
        return F.one_hot(rows, S + 1)[..., :S].reshape(B, self.label_dim).to(self.feat_mean.dtype)

    def _cond(self, x: torch.Tensor, fmask: torch.Tensor, onehot: torch.Tensor, extra: torch.Tensor | None = None
              ) -> torch.Tensor:
        """(B, T, D) values (unobserved entries already filled), their mask, (B, L) label, optional (B, T, E) extra
        channels → (B, D + J + 4 + L (+ E), T) encoder input."""
        lab = onehot[:, :, None].expand(-1, -1, x.shape[1])
        parts = [x.transpose(1, 2), self.mask_channels(fmask).transpose(1, 2), lab]
        return torch.cat(parts + ([] if extra is None else [extra.transpose(1, 2)]), 1)

    def _prior(self, x: torch.Tensor, fmask: torch.Tensor, onehot: torch.Tensor,
               track: torch.Tensor | None = None) -> tuple:
        """The conditional prior on the observed entries (and root ``track`` (B, T, 3), `features.root_track`; None:
        integrated from ``x``, right where ``x`` is the true window) → (E_p's features, mu, logvar, fill or None)."""
        base = interpolate_gaps(x, fmask) if self.config.fill == "interpolate" else None
        extra = None
        if self.config.track:
            raw_root = x[..., self.rot_dim:] * self.feat_std[self.rot_dim:] + self.feat_mean[self.rot_dim:]
            track = features.root_track(raw_root) if track is None else track
            seen = (fmask[..., self.rot_dim + ROOT_HEIGHT] > 0) & (fmask[..., 6 * self.skeleton.root] > 0)
            channels = track_channels(track, seen, self.config.length_unit)
            if base is not None:
                channels = interpolate_gaps(channels, seen[..., None].expand_as(channels))
                base = self._track_fill(base, fmask, channels, seen)
            extra = torch.cat([channels, seen[..., None].float()], -1)
        feats, mu, logvar = self.prior(self._cond(x * fmask if base is None else base, fmask, onehot, extra))
        return feats, mu, logvar, base

    def _track_fill(self, base: torch.Tensor, fmask: torch.Tensor, channels: torch.Tensor, seen: torch.Tensor
                    ) -> torch.Tensor:
        """The fill with its root velocity columns, at unobserved frames between two observed root frames, taken
        from the interpolated track (`track_velocity`, normalised)."""
        prev, nxt = bracket(seen[..., None])
        T = seen.shape[1]
        inside = torch.zeros_like(seen)
        inside[:, 1:] = (prev[:, :-1, 0] >= 0) & (nxt[:, 1:, 0] < T)  # frames t with observed roots <= t-1 and >= t
        cols = list(range(self.rot_dim + 1, self.rot_dim + 4))  # planar velocity, heading velocity
        vel = (track_velocity(channels, self.config.length_unit) - self.feat_mean[cols]) / self.feat_std[cols]
        use = inside[..., None] & (fmask[..., cols] == 0)
        out = base.clone()
        out[..., cols] = torch.where(use, vel, base[..., cols])
        return out

    def _posterior(self, x: torch.Tensor, fmask: torch.Tensor, onehot: torch.Tensor) -> tuple:
        """q(z | X_u, c): the unobserved entries (observed ones zeroed) → (mu, logvar)."""
        _, mu, logvar = self.posterior(self._cond(x * (1.0 - fmask), 1.0 - fmask, onehot))
        return mu, logvar

    def _decode(self, z: torch.Tensor, feats: list, onehot: torch.Tensor, base: torch.Tensor | None
                ) -> list[torch.Tensor]:
        """→ outputs (B, T_s, D) at the four scales, finest first (+ the fill, average-pooled to each scale)."""
        lab = onehot[:, :, None].expand(-1, -1, z.shape[-1])
        outs = [o.transpose(1, 2) for o in self.decoder(torch.cat([z, lab], 1), feats)]
        if base is None:
            return outs
        pooled = base.transpose(1, 2)
        for s in range(len(outs)):
            if s:
                pooled = F.avg_pool1d(pooled, 2)
            outs[s] = outs[s] + pooled.transpose(1, 2)
        return outs

    # ---- what tasks use -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: dict, generator: torch.Generator | None = None, temperature: float = 1.0
               ) -> torch.Tensor:
        """Complete windows from the conditioning ``cond`` (one dict, as `methods.completion.conditioning` builds
        it): ``observed`` normalised features (B, T, D), observed where ``mask`` (B, T, D) is 1; ``label`` one-hot
        (B, L) (absent or None: no label); ``track`` (B, T, 3) root x, z, heading (file units, radians; any common
        origin) at least at the observed root frames — needed where the observed frames are not contiguous (absent
        or None: integrated from the observed features) → (B, T, D) normalised features, z ~ p(z | X_i, c) scaled by
        ``temperature`` (0: its mean)."""
        x, fmask, onehot = cond["observed"], cond["mask"], cond.get("label")
        B = x.shape[0]
        onehot = self.feat_mean.new_zeros(B, self.label_dim) if onehot is None else onehot
        feats, mu, logvar, base = self._prior(x, fmask, onehot, cond.get("track"))
        eps = torch.randn(mu.shape, generator=generator, device=generator.device if generator else mu.device)
        z = mu + temperature * (0.5 * logvar).exp() * eps.to(mu.device)
        return self._decode(z, feats, onehot, base)[0]

    # ---- losses --------------------------------------------------------------------------------------------------
    def _joint_weight(self, fmask: torch.Tensor) -> torch.Tensor:
        """(B, T, D) feature mask → (B, T, J, 3) its joints' rotation entries as a weight of joint positions."""
        return fmask[..., :self.rot_dim:6, None].expand(-1, -1, -1, 3)

    def _appearance(self, outs: list, x: torch.Tensor, fmask: torch.Tensor | None) -> torch.Tensor:
        """Appearance match at the four scales (L1, normalised features); only where ``fmask`` (if given)."""
        loss: torch.Tensor | float
        loss, target, weight = 0.0, x, fmask
        for s, (out, w) in enumerate(zip(outs, self.config.scale_weights)):
            if s:
                target = F.avg_pool1d(target.transpose(1, 2), 2).transpose(1, 2)
                weight = None if weight is None else F.avg_pool1d(weight.transpose(1, 2), 2).transpose(1, 2)
            loss = loss + w * _l1(out, target, weight)
        return cast(torch.Tensor, loss)  # scale_weights is never empty

    def _draw(self, batch: dict, step: int, gen: torch.Generator | None = None) -> tuple:
        """(x, feature mask, one-hot given to the model, label indices kept for the classifier) of a batch; drawn once
        per training step and shared by its phases."""
        x = batch["features"]
        key = (step, id(x))
        if gen is None and self._drawn is not None and self._drawn[0] == key:
            return self._drawn[1]
        B, T, _ = x.shape
        joints, root = draw_masks(B, T, self.skeleton, self.config.mask_probs, gen)
        fmask = feature_mask(joints, root, self.skeleton).to(x.device)
        labels = {k: torch.as_tensor(v).to(x.device).long() for k, v in (batch.get("labels") or {}).items()
                  if k in self.config.label_kinds}
        if gen is None:  # label dropout in training only
            labels = {k: torch.where(torch.rand(B, device=x.device) < self.config.label_dropout, -1, v)
                      for k, v in labels.items()}
        out = (x, fmask, self.one_hot(labels, B), labels)
        if gen is None:
            self._drawn = (key, out)
        return out

    def _action_loss(self, seq: torch.Tensor, labels: dict) -> torch.Tensor:
        """Cross-entropy of the classifier on (B, T, D) per label kind, where the label is known."""
        assert self.classifier is not None  # built when action_weight > 0, the only time this is called
        logits = self.classifier(seq.transpose(1, 2))
        loss, S = seq.new_zeros(()), self.config.label_slots
        for i, kind in enumerate(self.config.label_kinds):
            if kind in labels and (labels[kind] >= 0).any():
                loss = loss + F.cross_entropy(logits[:, i * S:(i + 1) * S], labels[kind], ignore_index=-1)
        return loss

    def _critic_input(self, seq: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return torch.cat([seq.transpose(1, 2), onehot[:, :, None].expand(-1, -1, seq.shape[1])], 1)

    def discriminator_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        """Hinge loss of the discriminator on real windows against generated ones (composites, no gradient to the
        generator), and the classifier's cross-entropy on the real windows."""
        x, fmask, onehot, labels = self._draw(batch, step)
        loss, logs = x.new_zeros(()), {}
        if self.discriminator is not None:
            with torch.no_grad():
                fake = self._fake(x, fmask, onehot)
            d_real = self.discriminator(self._critic_input(x, onehot))
            d_fake = self.discriminator(self._critic_input(fake, onehot))
            logs["d_real"], logs["d_fake"] = d_real.mean().detach(), d_fake.mean().detach()
            loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()
        if self.classifier is not None:
            full = {k: v for k, v in (batch.get("labels") or {}).items() if k in self.config.label_kinds}
            logs["action_real"] = self._action_loss(x, {k: torch.as_tensor(v).to(x.device).long()
                                                        for k, v in full.items()})
            loss = loss + logs["action_real"]
        logs["loss"] = loss.detach()
        return loss, {k: v.detach() for k, v in logs.items()}

    def _fake(self, x, fmask, onehot) -> torch.Tensor:
        """What the discriminator judges: the generative output (one-branch: the posterior's) as a composite."""
        if self.config.branches == 2:
            out = self.sample({"observed": x, "mask": fmask, "label": onehot})
        else:
            feats, _, _, base = self._prior(x, fmask, onehot)
            mu_q, logvar_q = self._posterior(x, fmask, onehot)
            z = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
            out = self._decode(z, feats, onehot, base)[0]
        return fmask * x + (1.0 - fmask) * out

    def generator_step(self, batch: dict, step: int) -> tuple[torch.Tensor, dict]:
        """Reconstruction branch (z ~ q), generative branch (z ~ p), KL(q ‖ p), GAN and action losses."""
        c = self.config
        x, fmask, onehot, labels = self._draw(batch, step)
        feats, mu_p, logvar_p, base = self._prior(x, fmask, onehot)
        mu_q, logvar_q = self._posterior(x, fmask, onehot)
        z_q = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        rec = self._decode(z_q, feats, onehot, base)
        logs = {"rec": self._appearance(rec, x, None), "kl": _kl(mu_q, logvar_q, mu_p, logvar_p),
                "pos": _l1(self.positions(rec[0]), self.positions(x)),
                "vel": _l1(rec[0].diff(dim=1), x.diff(dim=1))}
        loss = logs["rec"] + c.pos_weight * logs["pos"] + c.vel_weight * logs["vel"] + c.beta * logs["kl"]
        if c.mean_weight > 0:
            mean = self._decode(mu_p, feats, onehot, base)
            logs["mean"] = self._appearance(mean, x, None) + c.pos_weight * _l1(self.positions(mean[0]),
                                                                              self.positions(x))
            loss = loss + c.mean_weight * logs["mean"]
            if c.missing_weight > 0:
                miss = 1.0 - fmask
                logs["mean_missing"] = self._appearance(mean, x, miss) + c.pos_weight * _l1(
                    self.positions(mean[0]), self.positions(x), self._joint_weight(miss))
                loss = loss + c.missing_weight * logs["mean_missing"]
        if c.branches == 2:
            z_p = mu_p + (0.5 * logvar_p).exp() * torch.randn_like(mu_p)
            gen = self._decode(z_p, feats, onehot, base)
            logs["app_gen"] = self._appearance(gen, x, fmask)
            loss = loss + logs["app_gen"]
        else:
            gen = rec
        fake = fmask * x + (1.0 - fmask) * gen[0]
        if self.discriminator is not None:
            logs["gan"] = -self.discriminator(self._critic_input(fake, onehot)).mean()
            loss = loss + c.gan_weight * logs["gan"]
        if self.classifier is not None:
            logs["action"] = self._action_loss(fake, labels)
            loss = loss + c.action_weight * logs["action"]
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    # ---- training ------------------------------------------------------------------------------------------------
    def configure_optimizers(self, train_config) -> dict[str, torch.optim.Optimizer]:
        """Adam β = (0, 0.99) at ``train_config.lr``: ``discriminator`` (discriminator + classifier; absent when
        neither exists), then ``generator`` (encoders + decoder)."""
        def adam(modules):
            return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=train_config.lr,
                                    betas=(0.0, 0.99))

        critics = [m for m in (self.discriminator, self.classifier) if m is not None]
        phases = {"discriminator": adam(critics)} if critics else {}
        phases["generator"] = adam([self.prior, self.posterior, self.decoder])
        return phases

    def training_step(self, batch: dict, step: int = 0, phase: str = "generator") -> tuple[torch.Tensor, dict]:
        """One phase's loss (``discriminator`` or ``generator``) on ``batch["features"]`` (B, T, D) → (loss, logs)."""
        if phase == "discriminator":
            return self.discriminator_step(batch, step)
        return self.generator_step(batch, step)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """Task-like validation on fixed masks (seed 0): ``loss`` is the error of the completion from the prior's
        mean latent — L1 of the normalised features + ``pos_weight`` × joint positions (metres) — on the unobserved
        entries; also the reconstruction branch's L1 and KL(q ‖ p)."""
        c = self.config
        x, fmask, onehot, _ = self._draw(batch, -1, torch.Generator().manual_seed(0))
        out = self.sample({"observed": x, "mask": fmask, "label": onehot}, temperature=0.0)
        miss = 1.0 - fmask
        logs = {"missing_l1": _l1(out, x, miss),
                "missing_pos": _l1(self.positions(out), self.positions(x), self._joint_weight(miss)),
                "observed_l1": _l1(out, x, fmask)}
        feats, mu_p, logvar_p, base = self._prior(x, fmask, onehot)
        mu_q, logvar_q = self._posterior(x, fmask, onehot)
        logs["rec"] = _l1(self._decode(mu_q, feats, onehot, base)[0], x)
        logs["kl"] = _kl(mu_q, logvar_q, mu_p, logvar_p)
        logs["loss"] = logs["missing_l1"] + c.pos_weight * logs["missing_pos"]
        return logs
