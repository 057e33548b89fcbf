"""Root trajectory from body motion (HM-VAE §3.3).

The HM-VAE models *local* motion (joint rotations). The root block of the features — root height, planar velocity in
the heading frame (2) and heading velocity — is predicted from the body motion by this module: root-relative joint
positions (forward kinematics of the local rotations with the root at the origin) go through skeleton convolutions
and poolings **without temporal downsampling**, and a per-frame linear layer gives the root block (B, T, ROOT_DIM).
The features store the root joint's rotation with its heading removed, so these positions are in the character's
heading frame: the module sees body motion, not where the character faces.

Loss (eq. 9): a velocity term (mean squared error on the normalised root block) plus a trajectory term (mean squared
error on the root positions accumulated from the velocities by `features.decode_torch`, in metres:
positions / ``length_unit``).

It is used two ways: inside `HMVAE` (trained jointly, on the ground-truth rotations, so the VAE's errors do not leak
into it; at sampling time it reads the decoded rotations) and as its own model family ``trajectory`` for the
command line (``motionsynth train trajectory``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..data.features import decode_torch
from ..skeleton import Skeleton
from .common import StatsMixin, local_positions
from .layers import SkeletonConv, SkeletonPool, Topology


@dataclass
class TrajectoryConfig:
    """Hyper-parameters of the trajectory module.

    channels: per-node channels of the four skeleton-conv layers (each followed by a pooling).
    kernel: temporal kernel; dist: skeleton neighbourhood distance.
    length_unit: file units per metre (100 for cm data): positions are divided by it before entering the network
        and in the trajectory loss.
    traj_weight: weight of the accumulated-trajectory term against the velocity term.
    """

    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 32])
    kernel: int = 7
    dist: int = 2
    padding_mode: str = "reflect"
    length_unit: float = 100.0
    traj_weight: float = 1.0

    @classmethod
    def preset(cls, name: str) -> TrajectoryConfig:
        if name == "cpu":
            return cls()
        if name == "paper":
            return cls(channels=[12, 24, 48, 96], kernel=15)
        raise KeyError(f"unknown preset {name!r} (cpu, paper)")


class TrajectoryModel(StatsMixin, nn.Module):
    """Body motion → root block. Input and output are NORMALISED features (B, T, D); only the root block of the
    output is predicted (the rotation block is copied from the input)."""

    Config = TrajectoryConfig

    def __init__(self, config: TrajectoryConfig, skeleton: Skeleton):
        super().__init__()
        self.config, self.skeleton = config, skeleton
        self._init_stats(skeleton)
        topo, cin, layers = Topology.from_parents(skeleton.parents), 3, []
        for c in config.channels:
            pool = SkeletonPool(topo, c)
            layers += [SkeletonConv(topo, cin, c, config.kernel, 1, config.dist, config.padding_mode), pool,
                       nn.LeakyReLU(0.2)]
            topo, cin = pool.pooled, c
        self.net = nn.Sequential(*layers)
        self.head = nn.Conv1d(len(topo) * cin, self.root_dim, 1)

    @classmethod
    def from_config(cls, config, skeleton: Skeleton) -> TrajectoryModel:
        return cls(config if isinstance(config, TrajectoryConfig) else TrajectoryConfig(**config), skeleton)

    def config_dict(self) -> dict:
        return asdict(self.config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised features (only the rotation block is read) → (B, T, ROOT_DIM) normalised root."""
        B, T, _ = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            raw = self.denormalize(x.float())[..., :self.rot_dim].reshape(B, T, -1, 6)
            pos = local_positions(raw, self.skeleton, self.offsets) / self.config.length_unit
        h = self.net(pos.reshape(B, T, -1).transpose(1, 2))
        return self.head(h).transpose(1, 2)

    def complete(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features whose root block is to be predicted → the same with the predicted root block."""
        return torch.cat([x[..., :self.rot_dim], self(x)], dim=-1)

    def loss(self, pred_root: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Velocity + accumulated-trajectory loss of a predicted normalised root block against features ``x``."""
        with torch.autocast(device_type=x.device.type, enabled=False):  # integration in float32 always
            return self._loss(pred_root.float(), x.float())

    def _loss(self, pred_root: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        vel = F.mse_loss(pred_root, x[..., self.rot_dim:])
        pred = self.denormalize(torch.cat([x[..., :self.rot_dim], pred_root], -1))
        _, root_pred = decode_torch(pred, self.skeleton)
        _, root_true = decode_torch(self.denormalize(x), self.skeleton)
        traj = F.mse_loss(root_pred / self.config.length_unit, root_true / self.config.length_unit)
        return vel + self.config.traj_weight * traj, {"traj_vel": vel.detach(), "traj_pos": traj.detach()}

    def training_step(self, batch: dict, step: int = 0) -> tuple[torch.Tensor, dict]:
        x = batch["features"]
        loss, logs = self.loss(self(x), x)
        return loss, {"loss": loss.detach(), **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict) -> dict:
        x = batch["features"]
        loss, logs = self.loss(self(x), x)
        return {"loss": loss, **logs}
