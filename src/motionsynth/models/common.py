"""What the networks share: normalisation buffers and the feature layout (`StatsMixin`), joint positions from 6D
rotations (`local_positions`), the interpolated fill of unobserved entries (`interpolate_gaps`)."""

from __future__ import annotations

import torch

from .. import rotations as R
from ..data.features import ROOT_DIM, rot6d_slice
from ..kinematics import fk
from ..skeleton import Skeleton

__all__ = ["StatsMixin", "bracket", "interpolate_gaps", "local_positions"]


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


def interpolate_gaps(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the unobserved entries of feature windows column by column from the observed ones.

    x (..., T, D), mask (..., T, D) (bool or 0/1) → (..., T, D): observed entries unchanged; an unobserved entry
    between two observed ones of its column is linearly interpolated in time, one before the first or after the last
    is held at the nearest observed value, and a column never observed is 0 (the normalised features' mean).
    """
    m = mask.bool()
    T = x.shape[-2]
    t = torch.arange(T, device=x.device).view(T, 1).expand_as(m)
    prev, nxt = bracket(m)
    x_prev = x.gather(-2, prev.clamp(min=0))
    x_next = x.gather(-2, nxt.clamp(max=T - 1))
    w = (t - prev).to(x.dtype) / (nxt - prev).clamp(min=1).to(x.dtype)
    both = x_prev + w * (x_next - x_prev)
    out = torch.where(prev >= 0, torch.where(nxt < T, both, x_prev), torch.where(nxt < T, x_next, 0.0))
    return torch.where(m, x, out)


def bracket(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., T, C) bool → the last observed frame at or before each frame (-1: none) and the first at or after it
    (T: none), (..., T, C) long each."""
    T = mask.shape[-2]
    t = torch.arange(T, device=mask.device).view(T, 1).expand_as(mask)
    prev = torch.where(mask, t, -1).cummax(-2).values
    nxt = torch.where(mask, t, T).flip(-2).cummin(-2).values.flip(-2)
    return prev, nxt
