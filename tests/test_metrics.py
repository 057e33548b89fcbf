"""Metrics against hand-computed values, numpy/torch agreement and an independent LAFAN1 cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motionsynth import metrics as M
from motionsynth import rotations as R
from motionsynth.errors import MotionsynthError


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_rotation(rng, shape=()):
    return R.quat_normalize(rng.normal(size=(*shape, 4)))


# ---- pose error --------------------------------------------------------------------------------------------------
def test_mpjpe_constant_offset_is_offset_length(rng):
    gt = rng.normal(size=(2, 5, 4, 3)) * 50
    offset = np.array([0.0, 3.0, 0.0])
    assert M.mpjpe(gt + offset, gt) == pytest.approx(3.0)
    per_frame = M.mpjpe(gt + offset, gt, reduce=False)
    assert per_frame.shape == (2, 5)
    np.testing.assert_allclose(per_frame, 3.0)


def test_mpjpe_joint_subset(rng):
    gt = rng.normal(size=(5, 4, 3))
    pred = gt.copy()
    pred[:, 0] += [4.0, 0, 0]
    assert M.mpjpe(pred, gt) == pytest.approx(1.0)
    assert M.mpjpe(pred, gt, joints=[0]) == pytest.approx(4.0)
    assert M.mpjpe(pred, gt, joints=[1, 2, 3]) == pytest.approx(0.0)


def test_pa_mpjpe_of_similarity_copy_is_zero(rng):
    gt = rng.normal(size=(3, 6, 3)) * 30
    rot = random_rotation(rng, (3, 1))
    pred = 1.7 * R.quat_apply(rot, gt) + np.array([10.0, -5.0, 2.0])
    assert M.mpjpe(pred, gt) > 1.0
    assert M.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-8)


def test_pa_mpjpe_does_not_exceed_mpjpe_and_excludes_reflection(rng):
    gt = rng.normal(size=(4, 8, 3))
    pred = gt + rng.normal(size=gt.shape) * 0.3
    assert M.pa_mpjpe(pred, gt) <= M.mpjpe(pred, gt) + 1e-12
    mirrored = gt * np.array([-1.0, 1.0, 1.0])  # a reflection is not a rotation: error stays positive
    assert M.pa_mpjpe(mirrored, gt) > 1e-3


def test_root_relative():
    pos = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    rel = M.root_relative(pos, 1)
    np.testing.assert_allclose(rel[:, 1], 0.0)
    np.testing.assert_allclose(rel[:, 0], pos[:, 0] - pos[:, 1])


# ---- smoothness --------------------------------------------------------------------------------------------------
def test_accel_constant_velocity_is_zero_and_quadratic_is_two():
    t = np.arange(10, dtype=float)
    linear = np.zeros((10, 2, 3))
    linear[..., 0] = 3 * t[:, None] + 1
    assert M.accel(linear) == pytest.approx(0.0)
    quad = np.zeros((10, 2, 3))
    quad[..., 2] = t[:, None] ** 2
    assert M.accel(quad) == pytest.approx(2.0)
    assert M.accel(quad, fps=30) == pytest.approx(2.0 * 900)
    assert M.accel(quad, reduce=False).shape == (8,)


def test_accel_error(rng):
    gt = rng.normal(size=(2, 10, 3, 3))
    linear = np.zeros_like(gt)
    linear[..., 1] = np.arange(10)[:, None]
    assert M.accel_error(gt + linear, gt) == pytest.approx(0.0, abs=1e-12)
    t = np.arange(10, dtype=float)
    quad = np.zeros_like(gt)
    quad[..., 0] = t[:, None] ** 2
    assert M.accel_error(gt + quad, gt) == pytest.approx(2.0)


def test_accel_needs_three_frames():
    with pytest.raises(MotionsynthError):
        M.accel(np.zeros((2, 3, 3)))


# ---- LAFAN1 metrics: hand values and an independent loop implementation ---------------------------------------------
def loop_canonical(q):
    """(T, J, 4): first frame w ≥ 0 then continuous — written with loops."""
    q = q.copy()
    T, J, _ = q.shape
    for j in range(J):
        if q[0, j, 3] < 0:
            q[0, j] = -q[0, j]
        for t in range(1, T):
            if float(np.dot(q[t, j], q[t - 1, j])) < 0:
                q[t, j] = -q[t, j]
    return q


def loop_l2q(pred, gt):
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        p, g = loop_canonical(pred[b]), loop_canonical(gt[b])
        for t in range(p.shape[0]):
            total += math.sqrt(sum((p[t, j, c] - g[t, j, c]) ** 2 for j in range(p.shape[1]) for c in range(4)))
            count += 1
    return total / count


def loop_l2p(pred, gt, mean, std):
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for t in range(pred.shape[1]):
            s = 0.0
            for j in range(pred.shape[2]):
                for c in range(3):
                    s += ((pred[b, t, j, c] - mean[j, c]) / std[j, c] - (gt[b, t, j, c] - mean[j, c]) / std[j, c]) ** 2
            total += math.sqrt(s)
            count += 1
    return total / count


def loop_npss(pred, gt):
    """NPSS with an explicit DFT and loops (features = flattened canonical quaternions)."""
    B, T = pred.shape[:2]
    num = den = 0.0
    for b in range(B):
        p = loop_canonical(pred[b]).reshape(T, -1)
        g = loop_canonical(gt[b]).reshape(T, -1)
        for d in range(p.shape[1]):
            pw, gw = [], []
            for f in range(T):
                pw.append(sum(p[t, d] * math.cos(2 * math.pi * f * t / T) for t in range(T)) ** 2)
                gw.append(sum(g[t, d] * math.cos(2 * math.pi * f * t / T) for t in range(T)) ** 2)
            ptot, gtot = sum(pw), sum(gw)
            cp = cg = emd = 0.0
            for f in range(T):
                cp += pw[f] / ptot
                cg += gw[f] / gtot
                emd += abs(cp - cg)
            num += gtot * emd
            den += gtot
    return num / den


def test_l2q_identical_is_zero_and_sign_invariant(rng):
    q = random_rotation(rng, (2, 6, 3))
    flipped = q * rng.choice([-1.0, 1.0], size=(2, 6, 3, 1))
    assert M.l2q(q, q) == pytest.approx(0.0)
    assert M.l2q(flipped, q) == pytest.approx(0.0, abs=1e-12)


def test_lafan1_metrics_match_loop_implementation(rng):
    B, T, J = 3, 7, 4
    gt = random_rotation(rng, (B, T, J))
    pred = random_rotation(rng, (B, T, J))
    assert M.l2q(pred, gt) == pytest.approx(loop_l2q(pred, gt), abs=1e-6)
    assert M.npss(pred, gt) == pytest.approx(loop_npss(pred, gt), abs=1e-6)
    pos_gt, pos_pred = rng.normal(size=(B, T, J, 3)) * 20, rng.normal(size=(B, T, J, 3)) * 20
    mean, std = M.l2p_stats(rng.normal(size=(50, J, 3)) * 10 + 5)
    assert mean.shape == std.shape == (J, 3)
    assert M.l2p(pos_pred, pos_gt, mean, std) == pytest.approx(loop_l2p(pos_pred, pos_gt, mean, std), abs=1e-6)
    assert M.l2p(pos_pred, pos_gt, mean.reshape(-1), std.reshape(-1)) == pytest.approx(
        loop_l2p(pos_pred, pos_gt, mean, std), abs=1e-6)


def test_npss_identical_is_zero(rng):
    q = random_rotation(rng, (2, 9, 3))
    assert M.npss(q, q) == pytest.approx(0.0, abs=1e-12)


def test_l2p_stats_are_population_stats(rng):
    x = rng.normal(size=(4, 6, 2, 3))
    mean, std = M.l2p_stats(x)
    np.testing.assert_allclose(mean, x.reshape(-1, 2, 3).mean(0))
    np.testing.assert_allclose(std, x.reshape(-1, 2, 3).std(0))


# ---- physical plausibility ---------------------------------------------------------------------------------------
def test_foot_skating():
    T = 11
    pos = np.zeros((T, 3, 3))
    pos[:, 1, 0] = np.arange(T) * 2.0  # foot 1 slides 2 cm/frame on the floor
    pos[:, 2, 1] = 50.0  # foot 2 is high: never in contact
    pos[:, 2, 0] = np.arange(T) * 7.0
    assert M.foot_skating(pos, [1], fps=None) == pytest.approx(2.0)
    assert M.foot_skating(pos, [1], fps=30) == pytest.approx(60.0)
    assert M.foot_skating(pos, [0, 1], fps=None) == pytest.approx(1.0)
    assert M.foot_skating(pos, [0, 1, 2], fps=None) == pytest.approx(1.0)
    assert M.foot_skating(pos, [2], fps=None, floor=0.0) == pytest.approx(0.0)
    speed, contact = M.foot_contact_speed(pos, [1, 2], fps=None)  # per step and foot
    assert speed.shape == contact.shape == (T - 1, 2) and isinstance(speed, np.ndarray)
    np.testing.assert_allclose(speed, [[2.0, 7.0]] * (T - 1))
    np.testing.assert_array_equal(contact, [[1.0, 0.0]] * (T - 1))


# ---- generation --------------------------------------------------------------------------------------------------
def test_fid_identical_and_shifted(rng):
    a = rng.normal(size=(4000, 3))
    assert abs(M.fid(a, a)) < 1e-6
    shift = np.array([1.0, 2.0, -2.0])
    assert M.fid(a, a + shift) == pytest.approx(9.0, abs=1e-6)
    b = rng.normal(size=(4000, 3)) + shift
    assert M.fid(a, b) == pytest.approx(9.0, abs=0.3)


def test_diversity_and_multimodality(rng):
    feats = np.zeros((40, 2))
    feats[20:, 0] = 5.0
    labels = np.array([0] * 20 + [1] * 20)
    assert M.multimodality(feats, labels, rng=1) == pytest.approx(0.0)
    d = M.diversity(feats, n_pairs=2000, rng=1)
    assert d == pytest.approx(2.5, abs=0.3)  # half the pairs are 5 apart
    spread = feats + rng.normal(size=feats.shape)
    assert M.multimodality(spread, labels, n_pairs=500, rng=2) == pytest.approx(math.sqrt(math.pi), abs=0.2)
    # rng seeds make the result reproducible
    assert M.diversity(spread, rng=3) == M.diversity(spread, rng=3)


# ---- numpy and torch agree -------------------------------------------------------------------------------------------
def test_torch_and_numpy_agree(rng):
    pred, gt = rng.normal(size=(2, 6, 4, 3)), rng.normal(size=(2, 6, 4, 3))
    qp, qg = random_rotation(rng, (2, 6, 4)), random_rotation(rng, (2, 6, 4))
    mean, std = M.l2p_stats(gt)
    cases = [
        lambda p, g: M.mpjpe(p, g), lambda p, g: M.mpjpe(p, g, reduce=False), lambda p, g: M.pa_mpjpe(p, g),
        lambda p, g: M.accel(p, 30), lambda p, g: M.accel_error(p, g),
        lambda p, g: M.foot_skating(p, [1, 2], 30.0, height=0.5),
    ]
    for fn in cases:
        a = fn(pred, gt)
        b = fn(torch.from_numpy(pred), torch.from_numpy(gt))
        assert isinstance(b, torch.Tensor) and not isinstance(a, torch.Tensor)
        np.testing.assert_allclose(b.numpy(), a, atol=1e-10)
    for fn in (M.l2q, M.npss):
        np.testing.assert_allclose(fn(torch.from_numpy(qp), torch.from_numpy(qg)).numpy(), fn(qp, qg), atol=1e-10)
    np.testing.assert_allclose(M.l2p(torch.from_numpy(pred), torch.from_numpy(gt), mean, std).numpy(),
                               M.l2p(pred, gt, mean, std), atol=1e-10)
    f = rng.normal(size=(50, 3))
    assert isinstance(M.fid(torch.from_numpy(f), torch.from_numpy(f + 1)), torch.Tensor)
    np.testing.assert_allclose(float(M.fid(torch.from_numpy(f), torch.from_numpy(f + 1))), M.fid(f, f + 1))


def test_torch_metrics_are_differentiable(rng):
    pred = torch.tensor(rng.normal(size=(5, 4, 3)), requires_grad=True)
    gt = torch.tensor(rng.normal(size=(5, 4, 3)))
    (M.mpjpe(pred, gt) + M.pa_mpjpe(pred, gt) + M.accel(pred)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(MotionsynthError, match="differ"):
        M.mpjpe(np.zeros((3, 4, 3)), np.zeros((3, 5, 3)))
