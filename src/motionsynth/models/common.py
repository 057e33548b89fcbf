"""What the networks share: normalisation buffers and the feature layout (`StatsMixin`), joint positions from 6D
rotations (`local_positions`)."""

from __future__ import annotations

import torch

from .. import rotations as R
from ..data.features import ROOT_DIM, rot6d_slice
from ..kinematics import fk
from ..skeleton import Skeleton

__all__ = ["StatsMixin", "local_positions"]


class StatsMixin:
    """The feature layout of ``skeleton`` (``rot_dim`` = 6J rotation columns, then ``root_dim`` root-block columns,
    `data.features`) and its normalisation statistics as buffers saved with the weights: ``feat_mean``,
    ``feat_std`` (D,)."""

    def _init_stats(self, skeleton: Skeleton) -> None:
        self.rot_dim, self.root_dim = rot6d_slice(skeleton).stop, ROOT_DIM
        self.register_buffer("feat_mean", torch.zeros(self.rot_dim + self.root_dim))
        self.register_buffer("feat_std", torch.ones(self.rot_dim + self.root_dim))

    def set_stats(self, stats) -> None:
        """Copy a `FeatureStats` (mean, std (D,)) into the buffers."""
        self.feat_mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float32).reshape(-1))
        self.feat_std.copy_(torch.as_tensor(stats.std, dtype=torch.float32).reshape(-1))

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) normalised features → raw features."""
        return x * self.feat_std + self.feat_mean


def local_positions(sixd: torch.Tensor, skeleton: Skeleton, offsets: torch.Tensor) -> torch.Tensor:
    """(..., T, J, 6) raw local 6D rotations → (..., T, J, 3) joint positions by FK with the root at the origin."""
    mats = R.sixd_to_matrix(sixd)
    trans = offsets.to(mats.dtype).clone()
    trans[skeleton.root] = 0.0
    trans[skeleton.ancestors(skeleton.root)] = 0.0  # static joints above the moving root
    return fk(mats, trans, skeleton.parents)[1]
