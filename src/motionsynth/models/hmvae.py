"""HM-VAE: the hierarchical motion VAE of Li et al., "Task-Generic Hierarchical Human Motion Prior using VAEs" (2021).

Read top to bottom: config → encoder → latents → decoder → losses → the methods tasks use.

Data. Input and output are NORMALISED feature windows (B, T, D), as `WindowDataset` yields them:
``D = 6 J + ROOT_DIM`` — every joint's local 6D rotation, then the root block (height, planar velocity in the heading
frame, heading velocity). The VAE models the rotation block (the paper's "local motion", x ∈ R^{T×J×6}); the root
block comes from the trajectory module (§3.3, `trajectory.py`), trained jointly on the ground-truth rotations and
applied to the decoded rotations. The model keeps the normalisation statistics as buffers and denormalises
internally wherever rotations or positions are needed.

Architecture (§3.2). Encoder: four blocks B1..B4, each SkeletonConv (temporal stride 2) → SkeletonPool → LeakyReLU,
so T → T/2 → T/4 → T/8 → T/16 and the skeleton coarsens. The local latent z_l is read from B1's features and the
global latent z_g from B4's, by a linear map per skeleton node (W ∈ R^{T'd × 2d_h}): z_l is (J1, local_latent),
z_g is (J4, global_latent). Decoder (symmetric): z_g → per-node linear → three blocks of temporal upsampling
(linear ×2) → SkeletonUnpool → SkeletonConv → LeakyReLU back to B1's resolution; there it is concatenated with
z_l's features (per-node linear); a final upsample → unpool → conv → conv block gives the 6D rotations.

Loss (eq. 3, 5–8): L6d + Lrot + λ·Ljoints + β·KL(z_l) + β·KL(z_g) + traj_weight·Ltraj, with
L6d the mean squared error of the raw 6D, Lrot of the rotation matrices (Gram–Schmidt of the 6D), Ljoints of the
joint positions by forward kinematics with the root at the origin, in metres (positions / ``length_unit``), λ = 10,
β = 0.003. All terms are means over their elements (the paper's sums are per-sequence; with means β = 0.003 keeps
its meaning as a light KL weight — KL is averaged over latent dimensions too).

Progressive training ([28], the paper's implementation details): for the first ``progressive_steps`` steps only the
global latent is used (z_l = 0 and no local KL); then both.

Variants (the paper's ablation, Table 3): ``"hmvae"`` (both latents), ``"m"`` (M-VAE: one latent, the global one),
``"tcn"`` (TCN-VAE: plain temporal convolutions on all joints' channels at once — a one-node topology — and one
latent). Model families on the command line: ``hmvae``, ``hmvae-m``, ``hmvae-tcn``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from .. import rotations as R
from ..skeleton import Skeleton
from .common import StatsMixin, local_positions
from .layers import LOGVAR_RANGE, NodeLinear, SkeletonConv, SkeletonPool, SkeletonUnpool, Topology
from .trajectory import TrajectoryConfig, TrajectoryModel

VARIANTS = ("hmvae", "m", "tcn")


@dataclass
class HMVAEConfig:
    """HM-VAE hyper-parameters. ``HMVAEConfig.preset("cpu")`` (the default) trains a useful model on a 2-core CPU in
    about an hour; ``preset("paper")`` has the sizes of the authors' configuration (GPU).

    window: frames per sample (divisible by 16: four stride-2 blocks).
    channels: per-node channels of encoder blocks B1..B4 (the decoder mirrors them).
    kernel, dist, padding_mode: temporal kernel, skeleton neighbourhood distance, temporal padding.
    local_latent, global_latent: latent size per skeleton node (B1 nodes for z_l, B4 nodes for z_g); the TCN variant
        (one node) has one latent of the M-VAE's total size (global_latent × the skeleton's B4 nodes).
    lambda_joints, beta: loss weights λ and β; rot_weight weights Lrot.
    progressive_steps: steps with the global latent only.
    trajectory: train the root-trajectory module jointly (else the root block is predicted as the mean).
    length_unit: file units per metre (cm data: 100).
    """

    variant: str = "hmvae"
    window: int = 64
    channels: list[int] = field(default_factory=lambda: [12, 24, 48, 96])
    kernel: int = 7
    dist: int = 2
    padding_mode: str = "reflect"
    local_latent: int = 12
    global_latent: int = 24
    lambda_joints: float = 10.0
    rot_weight: float = 1.0
    beta: float = 0.003
    progressive_steps: int = 2000
    trajectory: bool = True
    traj: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    traj_weight: float = 1.0
    length_unit: float = 100.0

    def __post_init__(self):
        if isinstance(self.traj, dict):
            self.traj = TrajectoryConfig(**self.traj)
        self.channels = list(self.channels)
        if self.variant not in VARIANTS:
            raise ValueError(f"HM-VAE variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.window % 16:
            raise ValueError(f"HM-VAE window must be divisible by 16 (four stride-2 blocks), got {self.window}")
        if len(self.channels) != 4:
            raise ValueError(f"HM-VAE has four encoder blocks: channels needs 4 entries, got {self.channels}")

    @classmethod
    def preset(cls, name: str, **overrides) -> HMVAEConfig:
        """``cpu``: kernel 7 (4.4 M effective parameters on a 22-joint skeleton), progressive after 2k steps.
        ``paper``: the authors' sizes — channels 12/24/48/96 (6·2^i, Aberman et al.), kernel 15, distance 2,
        latents 12 (local) / 24 (global) per node, progressive after 50k of 250k iterations."""
        if name == "cpu":
            return cls(**overrides)
        if name == "paper":
            return cls(**{"channels": [12, 24, 48, 96], "kernel": 15, "progressive_steps": 50_000,
                          "traj": TrajectoryConfig.preset("paper"), **overrides})
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)), averaged over batch and latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


class HMVAE(StatsMixin, nn.Module):
    """The hierarchical motion VAE (and its M-VAE / TCN-VAE ablations). See the module docstring."""

    Config = HMVAEConfig

    steps_seen: torch.Tensor  # buffer

    def __init__(self, config: HMVAEConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        c, J = config, len(skeleton)
        self._init_stats(skeleton)
        self.hierarchical = c.variant == "hmvae"
        # optimiser steps taken (saved with the weights): the local latent is active from `progressive_steps` on
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.int64))

        # ---- topologies: level 0 is the skeleton (or one node for TCN), level i the one after block Bi ----------
        if c.variant == "tcn":
            # one node carrying all joints; each level as wide as the skeleton version's level (nodes × channels)
            topo, cin, nodes = Topology.single(), 6 * J, Topology.from_parents(skeleton.parents)
            widths = []
            for w in c.channels:
                nodes = nodes.pool()[0]
                widths.append(w * len(nodes))
            tcn_latent = c.global_latent * len(nodes)  # the M-VAE's latent size
        else:
            topo, cin = Topology.from_parents(skeleton.parents), 6
            widths = list(c.channels)
        conv: dict[str, Any] = dict(kernel=c.kernel, dist=c.dist, padding_mode=c.padding_mode)

        # ---- encoder ---------------------------------------------------------------------------------------------
        self.topos, self.pools, enc = [topo], [], []
        for w in widths:
            pool = SkeletonPool(self.topos[-1], w)
            enc.append(nn.ModuleDict({"conv": SkeletonConv(self.topos[-1], cin, w, stride=2, **conv), "pool": pool}))
            self.pools.append(pool)
            self.topos.append(pool.pooled)
            cin = w
        self.encoder = nn.ModuleList(enc)
        self.widths = widths
        T = c.window
        n1, n4 = len(self.topos[1]), len(self.topos[4])
        self.global_nodes, self.global_latent = (1, tcn_latent) if c.variant == "tcn" else (n4, c.global_latent)
        self.local_nodes, self.local_latent = n1, c.local_latent
        self.t1, self.t4 = T // 2, T // 16
        self.to_global = NodeLinear(n4, widths[3] * self.t4, 2 * self.global_latent)
        self.from_global = NodeLinear(n4, self.global_latent, widths[3] * self.t4)
        if self.hierarchical:
            self.to_local = NodeLinear(n1, widths[0] * self.t1, 2 * c.local_latent)
            self.from_local = NodeLinear(n1, c.local_latent, widths[0] * self.t1)

        # ---- decoder: global path B4 → B1 resolution, then (concat local) → skeleton ------------------------------
        dec = []
        for i in (3, 2, 1):  # from level i+1 to level i: unpool with pools[i], conv widths[i] → widths[i-1]
            dec.append(nn.ModuleDict({"unpool": SkeletonUnpool(self.pools[i], widths[i]),
                                      "conv": SkeletonConv(self.topos[i], widths[i], widths[i - 1], **conv)}))
        self.decoder = nn.ModuleList(dec)
        w1 = widths[0] * (2 if self.hierarchical else 1)
        self.final_unpool = SkeletonUnpool(self.pools[0], w1)
        self.final_conv = SkeletonConv(self.topos[0], w1, widths[0], **conv)
        self.out_conv = SkeletonConv(self.topos[0], widths[0], 6 if c.variant != "tcn" else 6 * J, **conv)
        self.trajectory = TrajectoryModel(c.traj, skeleton) if c.trajectory else None

    def set_stats(self, stats) -> None:
        """Copy a `FeatureStats` into this model's (and the trajectory module's) normalisation buffers."""
        super().set_stats(stats)
        if self.trajectory is not None:
            self.trajectory.set_stats(stats)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> HMVAE:
        return cls(config if isinstance(config, HMVAEConfig) else HMVAEConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    # ---- encoder -----------------------------------------------------------------------------------------------
    def _nodes(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """(B, N * C, T') flat features → (B, N, C * T') per node."""
        return h.reshape(h.shape[0], len(self.topos[level]), -1)

    def encode(self, x: torch.Tensor):
        """(B, T, D) normalised features → (mu_local, logvar_local, mu_global, logvar_global).

        Local: (B, J1, local_latent) (None for the one-latent variants); global: (B, N4, global_latent)."""
        B, T, _ = x.shape
        h = x[..., :self.rot_dim].transpose(1, 2)  # (B, J*6, T): joint j's 6D are channels 6j..6j+5
        feats = []
        for block in cast("list[nn.ModuleDict]", self.encoder):
            h = F.leaky_relu(block["pool"](block["conv"](h)), 0.2)
            feats.append(h)
        mu_g, logvar_g = self.to_global(self._nodes(feats[3], 4)).chunk(2, dim=-1)
        logvar_g = logvar_g.clamp(*LOGVAR_RANGE)
        if not self.hierarchical:
            return None, None, mu_g, logvar_g
        mu_l, logvar_l = self.to_local(self._nodes(feats[0], 1)).chunk(2, dim=-1)
        logvar_l = logvar_l.clamp(*LOGVAR_RANGE)
        return mu_l, logvar_l, mu_g, logvar_g

    # ---- decoder -----------------------------------------------------------------------------------------------
    def decode_rotations(self, z_local: torch.Tensor | None, z_global: torch.Tensor) -> torch.Tensor:
        """Latents → (B, T, 6J) normalised rotation block. ``z_local=None`` decodes with z_l = 0."""
        B = z_global.shape[0]
        h = self.from_global(z_global).reshape(B, -1, self.t4)
        for block in cast("list[nn.ModuleDict]", self.decoder):
            h = F.interpolate(h, scale_factor=2, mode="linear", align_corners=False)
            h = F.leaky_relu(block["conv"](block["unpool"](h)), 0.2)
        if self.hierarchical:
            if z_local is None:
                z_local = z_global.new_zeros(B, self.local_nodes, self.local_latent)
            hl = self.from_local(z_local).reshape(B, self.local_nodes, -1, self.t1)
            h = torch.cat([h.reshape(B, self.local_nodes, -1, self.t1), hl], dim=2).reshape(B, -1, self.t1)
        h = F.interpolate(h, scale_factor=2, mode="linear", align_corners=False)
        h = F.leaky_relu(self.final_conv(self.final_unpool(h)), 0.2)
        return self.out_conv(h).transpose(1, 2)

    def root_block(self, rot: torch.Tensor) -> torch.Tensor:
        """(B, T, 6J) normalised rotations → (B, T, ROOT_DIM) normalised root block (trajectory module or mean)."""
        if self.trajectory is None:
            return rot.new_zeros(*rot.shape[:-1], self.root_dim)
        return self.trajectory(torch.cat([rot, rot.new_zeros(*rot.shape[:-1], self.root_dim)], -1))

    def decode(self, z_local: torch.Tensor | None, z_global: torch.Tensor) -> torch.Tensor:
        """Latents → (B, T, D) normalised features (rotations from the VAE, root block from the trajectory module)."""
        rot = self.decode_rotations(z_local, z_global)
        return torch.cat([rot, self.root_block(rot)], dim=-1)

    # ---- what tasks use ----------------------------------------------------------------------------------------
    @property
    def local_active(self) -> bool:
        """The local latent is in use: a hierarchical model trained past ``progressive_steps``."""
        return self.hierarchical and int(self.steps_seen) >= self.config.progressive_steps

    def latent_shapes(self) -> tuple[tuple[int, int] | None, tuple[int, int]]:
        """Shapes (without batch) of z_local (None when the model has no active local latent) and z_global."""
        local = (self.local_nodes, self.local_latent) if self.local_active else None
        return local, (self.global_nodes, self.global_latent)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n windows from the prior → (n, T, D) normalised features."""
        local, glob = self.latent_shapes()
        dev = self.feat_mean.device
        gen_dev = generator.device if generator is not None else dev  # a CPU generator can drive a GPU model
        z_g = torch.randn(n, *glob, generator=generator, device=gen_dev).to(dev)
        z_l = torch.randn(n, *local, generator=generator, device=gen_dev).to(dev) if local else None
        return self.decode(z_l, z_g)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) → (B, T, D): decode the posterior means."""
        mu_l, _, mu_g, _ = self.encode(x)
        return self.decode(mu_l if self.local_active else None, mu_g)

    # ---- losses ------------------------------------------------------------------------------------------------
    def reconstruction_losses(self, rot_pred: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """L6d, Lrot, Ljoints of a normalised rotation block (B, T, 6J) against features x (B, T, D)."""
        with torch.autocast(device_type=x.device.type, enabled=False):  # rotations and FK in float32 always
            return self._reconstruction_losses(rot_pred.float(), x.float())

    def _reconstruction_losses(self, rot_pred: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        B, T, _ = x.shape
        rot_dim, mean, std = self.rot_dim, self.feat_mean[:self.rot_dim], self.feat_std[:self.rot_dim]
        d6_pred = (rot_pred * std + mean).reshape(B, T, -1, 6)
        d6_true = (x[..., :rot_dim] * std + mean).reshape(B, T, -1, 6)
        m_pred, m_true = R.sixd_to_matrix(d6_pred), R.sixd_to_matrix(d6_true)
        p_pred = local_positions(d6_pred, self.skeleton, self.offsets) / self.config.length_unit
        p_true = local_positions(d6_true, self.skeleton, self.offsets) / self.config.length_unit
        return {"l6d": F.mse_loss(d6_pred, d6_true), "lrot": F.mse_loss(m_pred, m_true),
                "ljoints": F.mse_loss(p_pred, p_true)}

    def _losses(self, x: torch.Tensor, step: int | None) -> tuple[torch.Tensor, dict]:
        """Training (step given: sample the latents) or validation (step None: posterior means) loss."""
        c = self.config
        mu_l, logvar_l, mu_g, logvar_g = self.encode(x)
        use_local = self.hierarchical and (self.local_active if step is None else step >= c.progressive_steps)
        if step is None:
            z_g, z_l = mu_g, mu_l
        else:
            z_g = mu_g + torch.randn_like(mu_g) * (0.5 * logvar_g).exp()
            z_l = mu_l + torch.randn_like(mu_l) * (0.5 * logvar_l).exp() if use_local else None
        if self.hierarchical and not use_local:
            z_l = mu_l * 0.0  # z_l = 0, but every parameter stays in the graph (DDP needs no unused parameters)
        rot = self.decode_rotations(z_l, z_g)
        logs = self.reconstruction_losses(rot, x)
        logs["kl_global"] = _kl(mu_g, logvar_g)
        logs["kl_local"] = _kl(mu_l, logvar_l) if use_local else x.new_zeros(())
        loss = logs["l6d"] + c.rot_weight * logs["lrot"] + c.lambda_joints * logs["ljoints"] \
            + c.beta * (logs["kl_global"] + logs["kl_local"])
        if self.trajectory is not None:
            traj_loss, traj_logs = self.trajectory.loss(self.trajectory(x), x)
            loss = loss + c.traj_weight * traj_loss
            logs.update(traj_logs)
        logs = {k: v.detach() for k, v in logs.items()}
        logs["loss"] = loss.detach()
        return loss, logs

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        """One training loss on ``batch["features"]`` (B, T, D) at global step ``step`` → (loss, logs)."""
        self.steps_seen.fill_(step + 1)
        return self._losses(batch["features"], step)

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        """Validation losses (posterior means; the local latent once active) → logs with ``"loss"``."""
        return self._losses(batch["features"], None)[1]
