"""Motion-level ops (`motionsynth.ops`): pad, concat, rest pose, windows and their cross-fade."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth import ops
from motionsynth.errors import MotionsynthError

from helpers import make_motion, make_skeleton


def test_pad_holds_the_last_frame_and_keeps_everything_else():
    sk = make_skeleton()
    m = make_motion(sk, 10, seed=1)
    m.translations = np.broadcast_to(sk.offsets, (10, len(sk), 3)).copy()
    m.labels = {"content": "walk"}
    p = ops.pad(m, 15)
    assert p.num_frames == 15 and p.fps == m.fps and p.name == m.name and p.labels == m.labels
    assert np.array_equal(p.rotations[:10], m.rotations) and np.array_equal(p.rotations[10:], m.rotations[[-1] * 5])
    assert np.array_equal(p.root_positions[14], m.root_positions[9]) and p.translations.shape == (15, len(sk), 3)
    assert ops.pad(m, 4).num_frames == 10  # never shortens
    assert ops.hold_pad(np.arange(3), 5).tolist() == [0, 1, 2, 2, 2]


def test_concat_joins_and_refuses_mismatches():
    sk = make_skeleton()
    a, b = make_motion(sk, 10, seed=1), make_motion(sk, 7, seed=2)
    c = ops.concat([a, b])
    assert c.num_frames == 17 and np.array_equal(c.rotations[10:], b.rotations) and c.name == a.name
    with pytest.raises(MotionsynthError, match="fps"):
        ops.concat([a, make_motion(sk, 5, fps=60.0)])
    with pytest.raises(MotionsynthError):
        ops.concat([a, make_motion(make_skeleton(offset_scale=2.0), 5)])
    with pytest.raises(MotionsynthError, match="at least one"):
        ops.concat([])


def test_rest_motion_is_the_rest_pose():
    sk = make_skeleton()
    m = ops.rest_motion(sk, 12, 30.0)
    assert m.num_frames == 12 and np.allclose(m.rotations, [0, 0, 0, 1])
    np.testing.assert_allclose(m.global_positions()[0], m.global_positions()[-1])
    np.testing.assert_allclose(m.root_positions[0], sk.offsets[sk.root])
    with pytest.raises(MotionsynthError):
        ops.rest_motion(sk, 0, 30.0)


@pytest.mark.parametrize("T,W,overlap", [(300, 32, 16), (300, 32, 8), (300, 32, 0), (20, 32, 16), (32, 32, 16),
                                         (33, 32, 16), (100, 90, 45)])
def test_blend_weights_sum_to_one(T, W, overlap):
    starts, weights = ops.blend_weights(T, W, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, T - W) and weights.shape == (len(starts), W)
    total = np.zeros(max(T, W))
    for s, w in zip(starts, weights):
        total[s:s + W] += w
    np.testing.assert_allclose(total[:T], 1.0, atol=1e-12)
    assert (weights >= 0).all() and (total[T:] == 0).all()


def test_blend_weights_cross_fade_linearly():
    starts, weights = ops.blend_weights(80, 32, 16)  # windows at 0, 16, 32, 48: each overlap is exactly 16 frames
    assert starts.tolist() == [0, 16, 32, 48]
    np.testing.assert_allclose(weights[1, 16:], 1 - np.arange(1, 17) / 17, atol=1e-12)
    np.testing.assert_allclose(weights[2, :16], np.arange(1, 17) / 17, atol=1e-12)


@pytest.mark.parametrize("T,W,overlap", [(300, 32, 16), (20, 32, 16), (33, 32, 31), (100, 64, 32)])
def test_crossfade_of_identical_windows_is_the_identity(T, W, overlap):
    """Windows cut from a signal and cross-faded back give the signal: the weights sum to one at every frame."""
    starts, weights = ops.blend_weights(T, W, overlap)
    x = np.random.default_rng(0).normal(size=(max(T, W), 3))
    windows = np.stack([x[s:s + W] for s in starts])
    out = ops.crossfade(np.zeros_like(x), windows, starts, weights)
    np.testing.assert_allclose(out[:T], x[:T], atol=1e-12)
    assert starts[-1] + W == max(T, W) and (np.diff(starts) <= W - overlap).all()


def test_interpolate_gaps_fills_each_column_from_its_observations():
    import torch

    from motionsynth.models.common import interpolate_gaps

    x = torch.randn(2, 7, 3)
    m = torch.zeros(2, 7, 3, dtype=torch.bool)
    m[:, [1, 4], 0] = True  # column 0: seen at frames 1 and 4
    m[:, 5, 1] = True  # column 1: seen once; column 2: never
    out = interpolate_gaps(x, m)
    assert torch.equal(out[m], x[m])
    a, b = x[:, 1, 0], x[:, 4, 0]
    assert torch.allclose(out[:, 2, 0], a + (b - a) / 3) and torch.allclose(out[:, 3, 0], a + 2 * (b - a) / 3)
    assert torch.allclose(out[:, 0, 0], a) and torch.allclose(out[:, 6, 0], b)  # held outside
    assert torch.allclose(out[:, :, 1], x[:, 5:6, 1].expand(-1, 7))
    assert (out[:, :, 2] == 0).all()
