"""What the networks share: normalisation buffers and the feature layout (`StatsMixin`, with the per-joint mask
channels), the label encoding (`label_rows`), joint positions from 6D rotations (`local_positions`), the
interpolated fill of unobserved entries (`interpolate_gaps`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import rotations as R
from ..data.features import ROOT_DIM, constant_channels, rot6d_slice
from ..kinematics import fk
from ..skeleton import Skeleton

__all__ = ["StatsMixin", "bracket", "interpolate_gaps", "label_rows", "local_positions", "window_seeds"]


if TYPE_CHECKING:
    _MixinBase = nn.Module  # the mixin always comes with `nn.Module` (its buffers)
else:
    _MixinBase = object


class StatsMixin(_MixinBase):
    """The feature layout of ``skeleton`` (``rot_dim`` = 6J rotation columns, then ``root_dim`` root-block columns,
    `data.features`) and its normalisation statistics as buffers saved with the weights: ``feat_mean``,
    ``feat_std`` (D,)."""

    feat_mean: torch.Tensor
    feat_std: torch.Tensor
    offsets: torch.Tensor  # buffer, not saved (`_init_stats`)
    skeleton: Skeleton
    config: Any  # the network's config dataclass (``length_unit`` for `positions`)

    def _init_stats(self, skeleton: Skeleton) -> None:
        """The feature layout's sizes, the normalisation buffers (saved) and the rest ``offsets`` (J, 3) (made from
        the skeleton, not saved)."""
        self.rot_dim, self.root_dim = rot6d_slice(skeleton).stop, ROOT_DIM
        self.register_buffer("feat_mean", torch.zeros(self.rot_dim + self.root_dim))
        self.register_buffer("feat_std", torch.ones(self.rot_dim + self.root_dim))
        self.register_buffer("offsets", torch.as_tensor(skeleton.offsets, dtype=torch.float32, device="cpu"),
                             persistent=False)

    def set_stats(self, stats) -> None:
        """Copy a `FeatureStats` (mean, std (D,)) into the buffers."""
        self.feat_mean.copy_(torch.as_tensor(stats.mean, dtype=torch.float32).reshape(-1))
        self.feat_std.copy_(torch.as_tensor(stats.std, dtype=torch.float32).reshape(-1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) raw features → normalised, as `FeatureStats.normalize`: channels constant in the training data
        map to 0."""
        return (x - self.feat_mean) / self.feat_std * (~constant_channels(self.feat_std)).to(x.dtype)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) normalised features → raw features."""
        return x * self.feat_std + self.feat_mean

    def positions(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised features → (B, T, J, 3) joint positions in metres, root at the origin and in its
        heading frame (forward kinematics of the 6D rotations; ``config.length_unit`` file units per metre)."""
        d6 = self.denormalize(x)[..., :self.rot_dim]
        return local_positions(d6.reshape(*x.shape[:2], -1, 6), self.skeleton, self.offsets) / self.config.length_unit

    def mask_channels(self, fmask: torch.Tensor) -> torch.Tensor:
        """(..., T, D) feature mask → (..., T, J + 4): one channel per joint (its first 6D column), one per root-block
        column."""
        return torch.cat([fmask[..., :self.rot_dim:6], fmask[..., self.rot_dim:]], -1)


def label_rows(labels: dict | None, kinds, slots: int, B: int, device=None) -> torch.Tensor:
    """Label indices {kind: (B,) (or one index for all) long, −1 = none} (None: none at all) → (B, K) long, one
    column per kind of ``kinds``: the index, or ``slots`` where there is none. The one encoding of a model's labels
    (an embedding row: `MotionDiffusion.label_index`; a one-hot block: `CVAE.one_hot`). An index ≥ ``slots`` is a
    ValueError."""
    out = torch.full((B, len(kinds)), slots, dtype=torch.long, device=device)
    for i, kind in enumerate(kinds):
        idx = None if labels is None else labels.get(kind)
        if idx is None:
            continue
        idx = torch.as_tensor(idx, device=out.device).long().reshape(-1).expand(B)
        if (idx >= slots).any():
            raise ValueError(f"{kind} label index {int(idx.max())} >= label_slots ({slots}); raise model.label_slots")
        out[:, i] = torch.where(idx >= 0, idx, slots)
    return out


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


def window_seeds(batch: dict, salt: list[int]) -> list[list[int]]:
    """Per-window noise seeds ``[*salt, take, start]`` from a batch's ``take`` and ``start``, so a window gets the
    same noise wherever it is (``[*salt, b]`` for a batch without them)."""
    B = batch["features"].shape[0]
    if "take" not in batch or "start" not in batch:
        return [[*salt, b] for b in range(B)]
    takes, starts = (torch.as_tensor(batch[k]).reshape(-1).tolist() for k in ("take", "start"))
    return [[*salt, int(t), int(s)] for t, s in zip(takes, starts)]
