"""Skeleton-aware building blocks (Aberman et al. 2020, "Skeleton-Aware Networks"; HM-VAE §3.1).

Features on a skeleton are stored *flat* as ``(B, N * C, T)``: node n's C channels are ``[n * C, (n + 1) * C)``.
A node is a joint (its local rotation) or, after pooling, a group of joints. Topologies are built from
``Skeleton.parents`` only, never from names.

- `Topology`: a tree of nodes (parents in topological order) with graph distances.
- `SkeletonConv`: for each node, a temporal convolution over the features of the nodes within graph distance d —
  a dense ``Conv1d`` whose weight is masked by the neighbourhood (the standard implementation).
- `SkeletonPool`: average consecutive pairs of nodes along unbranched chains (the paper's "degree-2 bone pairs,
  searched from the root"), giving a coarser `Topology`.
- `SkeletonUnpool`: the inverse — copy each pooled node's features back to every node it merged.

A one-node topology turns all three into plain temporal convolutions (the TCN ablation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True, eq=False)
class Topology:
    """A tree of ``len(parents)`` nodes; ``parents[0] == -1`` and ``parents[n] < n``."""

    parents: tuple[int, ...]

    @classmethod
    def from_parents(cls, parents) -> Topology:
        parents = tuple(int(p) for p in np.asarray(parents).tolist())
        if not parents or parents[0] != -1 or any(not 0 <= p < n for n, p in enumerate(parents) if n > 0):
            raise ValueError("topology: parents must be in topological order with parents[0] == -1")
        return cls(parents)

    @classmethod
    def single(cls) -> Topology:
        """One node: skeleton operators become plain temporal convolutions."""
        return cls((-1,))

    def __len__(self) -> int:
        return len(self.parents)

    @cached_property
    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.parents]
        for n, p in enumerate(self.parents):
            if p >= 0:
                out[p].append(n)
        return out

    @cached_property
    def distances(self) -> np.ndarray:
        """(N, N) number of tree edges between nodes (breadth-first from every node)."""
        N = len(self)
        adj = [set(self.children[n]) | ({self.parents[n]} if self.parents[n] >= 0 else set()) for n in range(N)]
        dist = np.full((N, N), N + 1, dtype=np.int64)
        for s in range(N):
            dist[s, s], frontier = 0, [s]
            while frontier:
                nxt = []
                for a in frontier:
                    for b in adj[a]:
                        if dist[s, b] > dist[s, a] + 1:
                            dist[s, b] = dist[s, a] + 1
                            nxt.append(b)
                frontier = nxt
        return dist

    def neighbours(self, d: int) -> np.ndarray:
        """(N, N) bool: node j is within distance d of node i."""
        return self.distances <= d

    def pool(self) -> tuple[Topology, list[list[int]]]:
        """Merge consecutive pairs of nodes along each unbranched chain, walking from the root.

        A chain is a maximal path whose inner nodes have exactly one child (degree 2); in a chain
        ``[a, b, c, d, e]`` the groups are ``[a, b], [c, d], [e]``. Returns the coarser topology and, per new node,
        the old nodes it merges (new nodes are ordered by their first member, so parents stay before children).
        """
        groups: list[list[int]] = []
        stack = [[0]]
        while stack:
            chain = stack.pop(0)
            while len(self.children[chain[-1]]) == 1:
                chain.append(self.children[chain[-1]][0])
            groups += [chain[i:i + 2] for i in range(0, len(chain), 2)]
            stack.extend([[c] for c in self.children[chain[-1]]])
        groups.sort(key=lambda g: g[0])
        owner = np.empty(len(self), dtype=np.int64)
        for g, members in enumerate(groups):
            owner[members] = g
        parents = tuple(-1 if self.parents[m[0]] < 0 else int(owner[self.parents[m[0]]]) for m in groups)
        return Topology(parents), groups


class SkeletonConv(nn.Module):
    """Skeleton convolution: ``(B, N * C_in, T) → (B, N * C_out, T')`` with ``T' = ceil(T / stride)``.

    Node i's output sees, through a temporal kernel of size ``kernel``, the input channels of every node within
    graph distance ``dist`` of i (the weights of other nodes are masked to zero). Padding keeps ``T' = T / stride``
    for even T: ``padding_mode`` is ``"reflect"`` (the paper's), ``"replicate"`` or ``"zeros"``; reflection falls
    back to replication when the sequence is shorter than the padding.
    """

    near: torch.Tensor  # buffer

    def __init__(self, topology: Topology, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 dist: int = 2, padding_mode: str = "reflect"):
        super().__init__()
        N = len(topology)
        self.topology, self.in_channels, self.out_channels = topology, in_channels, out_channels
        self.kernel, self.stride, self.padding_mode = kernel, stride, padding_mode
        self.conv = nn.Conv1d(N * in_channels, N * out_channels, kernel, stride=stride)
        # the (N, N) node neighbourhood: a small constant, real even when the network is built on the meta device
        near = torch.as_tensor(topology.neighbours(dist), dtype=torch.float32, device="cpu")
        self.register_buffer("near", near, persistent=False)
        with torch.no_grad():  # fan-in is the neighbourhood, not every node: rescale the default init
            fan_in = (near.sum(1).repeat_interleave(out_channels) * in_channels * kernel)[:, None, None]
            bound = 1.0 / fan_in.sqrt()
            dev = self.conv.weight.device
            self.conv.weight.uniform_(-1, 1).mul_(bound.to(dev))
            self.conv.weight.copy_(self._masked(self.conv.weight, near.to(dev)))
            assert self.conv.bias is not None  # built with a bias
            self.conv.bias.uniform_(-1, 1).mul_(bound[:, 0, 0].to(dev))

    def _masked(self, weight: torch.Tensor, near: torch.Tensor) -> torch.Tensor:
        """The kernel (N·C_out, N·C_in, k) with the weights between nodes farther than ``dist`` apart zeroed: node i's
        block of rows times node j's block of columns is multiplied by ``near[i, j]`` (broadcast, never expanded to
        the kernel's size)."""
        N = len(self.topology)
        w = weight.reshape(N, self.out_channels, N, self.in_channels, weight.shape[-1])
        return (w * near[:, None, :, None, None]).reshape(weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = (self.kernel - 1) // 2
        right = self.kernel - 1 - left
        if self.stride > 1:  # output length T / stride for even T
            right = max(0, right - (self.stride - 1))
        mode = self.padding_mode
        if mode == "reflect" and x.shape[-1] <= max(left, right):
            mode = "replicate"
        x = F.pad(x, (left, right), mode="constant" if mode == "zeros" else mode)
        return F.conv1d(x, self._masked(self.conv.weight, self.near), self.conv.bias, stride=self.stride)


class SkeletonPool(nn.Module):
    """Average pooling of consecutive chain nodes: ``(B, N * C, T) → (B, N' * C, T)``; ``.pooled`` is the coarser
    `Topology`, ``.groups`` the merged old nodes per new node."""

    weight: torch.Tensor  # buffer

    def __init__(self, topology: Topology, channels: int):
        super().__init__()
        self.topology, self.channels = topology, channels
        self.pooled, self.groups = topology.pool()
        weight = torch.zeros(len(self.pooled), len(topology), device="cpu")  # a constant, real on meta
        for g, members in enumerate(self.groups):
            weight[g, members] = 1.0 / len(members)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, T = x.shape
        x = x.reshape(B, len(self.topology), self.channels, T)
        return torch.einsum("gn,bnct->bgct", self.weight, x).reshape(B, -1, T)


class SkeletonUnpool(nn.Module):
    """Inverse of a `SkeletonPool`: ``(B, N' * C, T) → (B, N * C, T)``, every merged node gets its group's features."""

    weight: torch.Tensor  # buffer

    def __init__(self, pool: SkeletonPool, channels: int):
        super().__init__()
        self.topology, self.channels = pool.topology, channels
        self.num_pooled = len(pool.pooled)
        self.register_buffer("weight", (pool.weight > 0).to(torch.float32).T.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, T = x.shape
        x = x.reshape(B, self.num_pooled, self.channels, T)
        return torch.einsum("ng,bgct->bnct", self.weight, x).reshape(B, -1, T)


class NodeLinear(nn.Module):
    """A separate linear map per node: ``(B, N, C_in) → (B, N, C_out)`` (the per-bone latent projections)."""

    def __init__(self, num_nodes: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1.0 / in_features ** 0.5
        self.weight = nn.Parameter(torch.empty(num_nodes, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_nodes, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bni,nio->bno", x, self.weight) + self.bias


LOGVAR_RANGE = (-10.0, 6.0)
"""Posterior log-variances are clamped here: an unbounded one once exploded (the TCN-VAE's KL reached 1.4e4 at
step 249 of a CPU run, then NaN); inside the range the clamp changes nothing."""
