"""Root trajectories of denoised motion: robust smoothing, integration and placement."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.data.features import encode
from motionsynth.errors import MotionsynthError
from motionsynth.methods.denoising import check_options, despike, finish, place
from motionsynth.methods.root import assemble, integrate, smooth_path, world_root

from helpers import make_motion, make_skeleton


def test_smooth_path_rejects_isolated_spikes_and_keeps_lines():
    t = np.arange(100, dtype=np.float64)
    line = np.stack([2.0 * t, -t + 5.0], -1)
    spiky = line.copy()
    np.testing.assert_allclose(smooth_path(line, 2.0)[10:-10], line[10:-10], atol=1e-6)  # away from the held edges
    spiky[[30, 60], 0] += 500.0  # outliers of one and two frames: rejected, up to the median's bias on a slope
    spiky[[80, 81], 1] -= 500.0
    assert np.abs(smooth_path(spiky, sigma=2.0) - line)[10:-10].max() < 5.0
    np.testing.assert_array_equal(smooth_path(spiky, 0.0, median=1), spiky)  # both steps off: unchanged


def test_features_round_trip_through_integrate_and_assemble():
    sk = make_skeleton()
    motion = make_motion(sk, 80, seed=4)
    pos, heading = world_root(motion)
    feats = encode(motion, dtype=np.float64)
    rot_dim = 6 * len(sk)
    root = feats[:, rot_dim:]
    h = np.unwrap(heading)
    integrated = integrate(root[:, 0], root[:, 1:3], h)
    np.testing.assert_allclose(integrated[:, [0, 2]] + pos[0, [0, 2]], pos[:, [0, 2]], atol=1e-6)
    rebuilt = assemble(feats[:, :rot_dim], h, pos, sk, motion)
    np.testing.assert_allclose(rebuilt.global_positions(), motion.global_positions(), atol=1e-5)


@pytest.mark.parametrize("mode", ["smooth", "model"])
def test_place_gives_back_a_clean_motion_from_its_own_features(mode):
    sk = make_skeleton()
    motion = make_motion(sk, 60, seed=5)
    out = place(encode(motion, dtype=np.float64), motion, mode, sigma=0.0)
    err = np.abs(out.global_positions() - motion.global_positions())[5:-5].max()
    assert err < (1e-4 if mode == "model" else 2.0), err  # smooth: a 5-frame running median of a smooth path
    assert out.num_frames == motion.num_frames and out.fps == motion.fps
    with pytest.raises(ValueError, match="root mode"):
        place(encode(motion), motion, "input")


def test_despike_removes_short_outliers_and_keeps_steps():
    x = np.zeros((40, 3), dtype=np.float32)
    x[20:] = 1.0  # a step (a tracker's held frame, then a jump) survives
    x[[8, 30, 31], 1] += 50.0  # outliers of one and two frames do not
    out = despike(x, 5)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    assert np.abs(out[:, 1] - x[:, 0]).max() == 0.0
    np.testing.assert_array_equal(despike(x, 1), x)


def test_finish_smooths_only_when_asked():
    sk = make_skeleton()
    motion = make_motion(sk, 60, seed=6)
    feats = encode(motion, dtype=np.float64)
    rough = finish(feats, motion, "model")
    smooth = finish(feats, motion, "model", smooth_sigma=3.0)
    accel = [np.abs(np.diff(m.global_positions(), 2, axis=0)).mean() for m in (rough, smooth)]
    assert accel[1] < accel[0]
    with pytest.raises(MotionsynthError, match="despike"):
        check_options("smooth", 2.0, 4, 0.0)
    with pytest.raises(MotionsynthError, match="root must be"):
        check_options("input", 2.0, 1, 0.0)
