"""HM-VAE family and skeleton-aware layers: shapes, topology, losses, overfitting one batch (all variants)."""

from __future__ import annotations

import pytest
import torch

from motionsynth.data.features import feature_dim
from motionsynth.models.hmvae import HMVAE, HMVAEConfig
from motionsynth.models.layers import SkeletonConv, SkeletonPool, SkeletonUnpool, Topology
from motionsynth.models.trajectory import TrajectoryConfig, TrajectoryModel
from motionsynth.registry import FAMILIES, build_model, model_config

from helpers import BANDAI_PARENTS, feature_batch, make_skeleton, tiny_config


# ---- layers ---------------------------------------------------------------------------------------------------------
def test_topology_pool_bandai_tree():
    topo = Topology.from_parents(BANDAI_PARENTS)
    pooled, groups = topo.pool()
    assert sorted(sum(groups, [])) == list(range(22))  # a partition
    assert all(len(g) in (1, 2) for g in groups)
    # merged pairs are parent-child pairs along chains of degree-2 nodes
    for g in groups:
        if len(g) == 2:
            assert BANDAI_PARENTS[g[1]] == g[0] and topo.children[g[0]] == [g[1]]
    assert len(pooled) == 11 and pooled.parents[0] == -1
    assert all(0 <= p < n for n, p in enumerate(pooled.parents) if n)
    again, _ = pooled.pool()
    assert len(again) < len(pooled)


def test_topology_pool_chain_and_distances():
    chain = Topology.from_parents([-1, 0, 1, 2, 3])
    pooled, groups = chain.pool()
    assert groups == [[0, 1], [2, 3], [4]]
    assert pooled.parents == (-1, 0, 1)
    assert chain.distances[0, 4] == 4 and chain.neighbours(1).sum() == 5 + 2 * 4
    assert Topology.single().pool()[1] == [[0]]


def test_skeleton_conv_locality_and_shapes():
    chain = Topology.from_parents([-1, 0, 1, 2, 3])
    conv = SkeletonConv(chain, 3, 4, kernel=3, stride=2, dist=1)
    x = torch.randn(2, 15, 16, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 20, 8)
    # node 0's output depends on nodes 0 and 1 only
    y[:, 0:4].sum().backward()
    per_node = x.grad.abs().sum((0, 2)).reshape(5, 3).sum(1)
    assert per_node[:2].gt(0).all() and per_node[2:].eq(0).all()


def test_pool_unpool_roundtrip_shapes():
    topo = Topology.from_parents(BANDAI_PARENTS)
    pool = SkeletonPool(topo, 5)
    unpool = SkeletonUnpool(pool, 5)
    x = torch.randn(3, 22 * 5, 7)
    p = pool(x)
    assert p.shape == (3, 11 * 5, 7)
    u = unpool(p)
    assert u.shape == x.shape
    # a pooled pair gets the average of its two members, copied back to both
    xr, ur = x.reshape(3, 22, 5, 7), u.reshape(3, 22, 5, 7)
    torch.testing.assert_close(ur[:, 2], (xr[:, 2] + xr[:, 3]) / 2)
    torch.testing.assert_close(ur[:, 3], ur[:, 2])


# ---- the model --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["hmvae", "m", "tcn"])
def test_shapes_and_methods(variant):
    sk = make_skeleton()
    x, stats = feature_batch(sk, 4, 32)
    model = HMVAE(tiny_config(variant), sk)
    model.set_stats(stats)
    mu_l, logvar_l, mu_g, logvar_g = model.encode(x)
    local, glob = model.latent_shapes()
    assert mu_g.shape == logvar_g.shape == (4, *glob)
    if variant == "hmvae":
        assert mu_l.shape == logvar_l.shape == (4, *local)
    else:
        assert mu_l is None and local is None
    D = feature_dim(sk)
    assert model.decode(mu_l, mu_g).shape == (4, 32, D)
    assert model.reconstruct(x).shape == (4, 32, D)
    s1 = model.sample(3, torch.Generator().manual_seed(0))
    s2 = model.sample(3, torch.Generator().manual_seed(0))
    assert s1.shape == (3, 32, D) and torch.equal(s1, s2)
    loss, logs = model.training_step({"features": x}, step=0)
    assert torch.isfinite(loss) and {"l6d", "lrot", "ljoints", "kl_global", "loss"} <= set(logs)
    assert "loss" in model.validation_step({"features": x})


def test_progressive_training_uses_global_latent_first():
    sk = make_skeleton()
    x, stats = feature_batch(sk, 2, 32)
    model = HMVAE(tiny_config(progressive_steps=100), sk)
    model.set_stats(stats)
    _, early = model.training_step({"features": x}, step=0)
    assert not model.local_active and model.latent_shapes()[0] is None
    assert model.sample(2).shape == (2, 32, feature_dim(sk))  # the global latent alone
    _, late = model.training_step({"features": x}, step=100)
    assert float(early["kl_local"]) == 0.0 and float(late["kl_local"]) > 0.0
    assert model.local_active and model.latent_shapes()[0] == (11, 4)
    assert "steps_seen" in model.state_dict()
    # before the switch the local latent has no gradient
    loss, _ = model.training_step({"features": x}, step=0)
    loss.backward()
    assert model.to_local.weight.grad is None or model.to_local.weight.grad.abs().sum() == 0


def test_window_must_divide_by_16():
    with pytest.raises(ValueError, match="divisible by 16"):
        HMVAEConfig(window=40)


def test_registry_and_presets():
    assert {"hmvae", "hmvae-m", "hmvae-tcn", "trajectory"} <= set(FAMILIES)
    assert model_config("hmvae-m").variant == "m" and model_config("hmvae-tcn").variant == "tcn"
    paper = model_config("hmvae", "paper")
    assert paper.kernel == 15 and paper.channels == [12, 24, 48, 96] and paper.beta == 0.003
    assert paper.lambda_joints == 10 and paper.progressive_steps == 50_000
    model = build_model("hmvae", {"window": 32, "channels": [4, 4, 8, 8], "traj": {"channels": [2, 2, 2, 2]}},
                        make_skeleton())
    assert isinstance(model, HMVAE) and model.config.traj.channels == [2, 2, 2, 2]


def _overfit(model, x, steps, lr=3e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(0)
    first = None
    for _ in range(steps):
        loss, _ = model.training_step({"features": x}, step=10_000)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    return first, float(model.validation_step({"features": x})["loss"])


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["hmvae", "m", "tcn"])
def test_each_variant_overfits_one_batch(variant):
    torch.manual_seed(0)
    sk = make_skeleton()
    x, stats = feature_batch(sk, 4, 32)
    model = HMVAE(tiny_config(variant, beta=1e-4, trajectory=False), sk)
    model.set_stats(stats)
    first, last = _overfit(model, x, 250)
    assert last < first / 10, (first, last)


@pytest.mark.slow
def test_trajectory_model_overfits_and_completes():
    torch.manual_seed(0)
    sk = make_skeleton()
    x, stats = feature_batch(sk, 4, 32)
    model = TrajectoryModel(TrajectoryConfig(channels=[8, 8, 16, 16], kernel=3), sk)
    model.set_stats(stats)
    first, last = _overfit(model, x, 200)
    assert last < first / 10, (first, last)
    out = model.complete(x)
    assert out.shape == x.shape and torch.equal(out[..., :-4], x[..., :-4])
