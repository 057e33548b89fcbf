"""Baselines on tiny synthetic motions."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth import metrics as M
from motionsynth import rotations as R
from motionsynth.errors import MotionsynthError
from motionsynth.methods import baselines as B
from motionsynth.motion import Motion
from motionsynth.postprocess import smooth_motion
from motionsynth.skeleton import Skeleton
from motionsynth.tasks import Mask, Method, denoise_mask, inbetween_mask, joints_mask, keyframe_mask, predict_mask

J = 5


@pytest.fixture
def skeleton():
    # a static top joint above the moving root (as in the project's data), a spine and a two-joint limb
    return Skeleton(["top", "hips", "spine", "arm", "hand"], [-1, 0, 1, 2, 3],
                    [[0, 0, 0], [0, 90, 0], [0, 20, 0], [15, 0, 0], [25, 0, 0]], root=1)


def rotating_motion(skeleton, T=31, fps=30.0):
    """Each joint rotates at a constant angular velocity about its own fixed axis; the root moves linearly."""
    t = np.arange(T, dtype=float)
    axes = np.array([[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0.6, 0.8, 0]], dtype=float)
    start = np.array([0.0, 0.3, -0.2, 0.5, 0.1])
    speed = np.array([0.0, 0.04, 0.03, -0.05, 0.06])  # rad/frame
    angles = start[None] + speed[None] * t[:, None]
    rot = R.axis_angle_to_quat(angles[..., None] * axes[None])
    root = np.stack([2.0 * t + 1, np.full(T, 90.0), -1.5 * t], -1)
    return Motion(skeleton, rot, root, fps)


def quat_close(a, b, atol=1e-6):
    dots = np.abs((a * b).sum(-1))
    np.testing.assert_allclose(dots, 1.0, atol=atol)


def corrupt(motion, mask, rng):
    """Unobserved parts hold garbage, as the interface allows."""
    m = motion.copy()
    m.rotations[~mask.joints] = R.quat_normalize(rng.normal(size=((~mask.joints).sum(), 4)))
    m.root_positions[~mask.root] = rng.normal(size=((~mask.root).sum(), 3)) * 100
    return m


def test_all_baselines_are_methods_and_registered():
    assert set(B.BASELINES) == {"zero-velocity", "slerp", "constant-velocity", "savgol", "gaussian", "one-euro",
                                "smooth", "mean-pose", "nearest-neighbour"}
    for name, cls in B.BASELINES.items():
        method = B.make_baseline(name)
        assert isinstance(method, Method) and method.name == name and isinstance(cls.grid, list)
        assert isinstance(method.params, dict)


def test_unknown_baseline_is_a_clear_error():
    with pytest.raises(MotionsynthError, match="known: .*slerp"):
        B.make_baseline("magic")
    with pytest.raises(MotionsynthError):
        B.make_baseline("gaussian", width=3)


def test_slerp_reproduces_constant_angular_velocity(skeleton):
    gt = rotating_motion(skeleton)
    mask = inbetween_mask(gt.num_frames, J, context=5, gap=20)  # keys 0..4 and 25; 26.. unobserved
    out = B.Interpolation().complete(corrupt(gt, mask, np.random.default_rng(0)), mask)[0]
    quat_close(out.rotations[:26], gt.rotations[:26])
    np.testing.assert_allclose(out.root_positions[:26], gt.root_positions[:26], atol=1e-9)
    quat_close(out.rotations[26:], np.broadcast_to(gt.rotations[25], out.rotations[26:].shape))  # holds at the end
    np.testing.assert_allclose(out.root_positions[26:], np.broadcast_to(gt.root_positions[25], (5, 3)))


def test_zero_velocity_holds(skeleton):
    gt = rotating_motion(skeleton)
    mask = keyframe_mask(gt.num_frames, J, [3, 10, 20])
    outs = B.ZeroVelocity().complete(corrupt(gt, mask, np.random.default_rng(1)), mask, n_samples=3)
    assert len(outs) == 3
    for out in outs:
        for t in range(gt.num_frames):
            src = 3 if t < 10 else (10 if t < 20 else 20)
            np.testing.assert_allclose(out.rotations[t], gt.rotations[src])
            np.testing.assert_allclose(out.root_positions[t], gt.root_positions[src])


def test_zero_velocity_per_joint_and_prediction(skeleton):
    gt = rotating_motion(skeleton)
    mask = predict_mask(gt.num_frames, J, 10)
    out = B.ZeroVelocity().complete(gt, mask)[0]
    np.testing.assert_allclose(out.rotations[10:], np.broadcast_to(gt.rotations[9], (21, J, 4)))
    # per joint: joint 3 observed only at frame 12 → every frame copies it (before: first observation after)
    joints = np.ones((gt.num_frames, J), bool)
    joints[:, 3] = False
    joints[12, 3] = True
    out = B.ZeroVelocity().complete(gt, Mask(joints, np.ones(gt.num_frames, bool)))[0]
    np.testing.assert_allclose(out.rotations[:, 3], np.broadcast_to(gt.rotations[12, 3], (gt.num_frames, 4)))
    np.testing.assert_allclose(out.rotations[:, [0, 1, 2, 4]], gt.rotations[:, [0, 1, 2, 4]])


def test_constant_velocity_extrapolates_exactly(skeleton):
    gt = rotating_motion(skeleton)
    mask = predict_mask(gt.num_frames, J, 8)
    out = B.ConstantVelocity().complete(corrupt(gt, mask, np.random.default_rng(2)), mask)[0]
    np.testing.assert_allclose(out.root_positions, gt.root_positions, atol=1e-9)
    quat_close(out.rotations, gt.rotations)
    np.testing.assert_allclose(out.rotations[:8], gt.rotations[:8])  # observed kept bit-exactly


def test_observed_parts_kept(skeleton):
    gt = rotating_motion(skeleton)
    rng = np.random.default_rng(3)
    mask = joints_mask(gt.num_frames, skeleton, ["hips", "spine"])
    for name in ("zero-velocity", "slerp", "constant-velocity"):
        out = B.make_baseline(name).complete(corrupt(gt, mask, rng), mask)[0]
        np.testing.assert_array_equal(out.rotations[mask.joints], gt.rotations[mask.joints])
        np.testing.assert_array_equal(out.root_positions[mask.root], gt.root_positions[mask.root])
        np.testing.assert_allclose(np.linalg.norm(out.rotations, axis=-1), 1.0)


def jittered(gt, seed: int):
    """``gt`` with Gaussian noise on its quaternions (σ 0.02, renormalised) and its root (σ 1 cm)."""
    rng = np.random.default_rng(seed)
    noisy = gt.copy()
    noisy.rotations = R.quat_normalize(gt.rotations + rng.normal(size=gt.rotations.shape) * 0.02)
    noisy.root_positions = gt.root_positions + rng.normal(size=gt.root_positions.shape) * 1.0
    return noisy


def test_filters_reduce_jitter(skeleton):
    gt = rotating_motion(skeleton, T=90)
    noisy = jittered(gt, 4)
    mask = denoise_mask(gt.num_frames, J)
    noisy_pos = noisy.global_positions()
    for method in (B.SavitzkyGolay(9, 2), B.Gaussian(2.0), B.OneEuro(1.0, 0.1)):
        out = method.complete(noisy, mask)[0]
        pos = out.global_positions()
        assert M.accel(pos) < 0.5 * M.accel(noisy_pos), method.name
        assert M.mpjpe(pos[10:-10], gt.global_positions()[10:-10]) < M.mpjpe(noisy_pos[10:-10],
                                                                            gt.global_positions()[10:-10])
        np.testing.assert_allclose(np.linalg.norm(out.rotations, axis=-1), 1.0)


def test_filters_handle_short_clips_and_missing_parts(skeleton):
    gt = rotating_motion(skeleton, T=4)
    for params in B.SavitzkyGolay.grid:
        out = B.SavitzkyGolay(**params).complete(gt, denoise_mask(4, J))[0]
        assert np.isfinite(out.rotations).all()
    mask = keyframe_mask(4, J, [0, 3])
    out = B.Gaussian(1.0).complete(corrupt(gt, mask, np.random.default_rng(5)), mask)[0]
    np.testing.assert_array_equal(out.rotations[[0, 3]], gt.rotations[[0, 3]])
    with pytest.raises(MotionsynthError):
        B.SavitzkyGolay(window=4)


def test_smooth_is_the_thesis_smoother_and_reduces_jitter(skeleton):
    gt = rotating_motion(skeleton, T=60)
    noisy = jittered(gt, 6)
    mask = denoise_mask(gt.num_frames, J)
    noisy_pos, gt_pos = noisy.global_positions(), gt.global_positions()
    for params in ({"weight": 0.3, "norm": "l2", "iters": 20}, {"weight": 0.1, "norm": "squared"}):
        method = B.make_baseline("smooth", **params)
        outs = method.complete(noisy, mask, n_samples=2)
        out = outs[0]
        assert out.skeleton is noisy.skeleton and out.num_frames == gt.num_frames and out.fps == gt.fps
        np.testing.assert_array_equal(outs[1].rotations, out.rotations)
        assert outs.options == method.params and method.params["norm"] == params["norm"]
        pos = out.global_positions()
        assert M.accel(pos) < 0.5 * M.accel(noisy_pos), params
        assert M.mpjpe(pos, gt_pos) < M.mpjpe(noisy_pos, gt_pos), params
        np.testing.assert_allclose(np.linalg.norm(out.rotations, axis=-1), 1.0)
    # it is `postprocess.smooth_motion`, not a second smoother
    ref = smooth_motion(noisy, 0.1, norm="squared")
    quat_close(out.rotations, ref.rotations, atol=1e-9)
    np.testing.assert_allclose(out.root_positions, ref.root_positions)
    # gaps are filled first (observed parts kept), and the grid covers both norms
    short = rotating_motion(skeleton, T=12)
    gaps = keyframe_mask(12, J, [0, 5, 11])
    out = B.Smooth(0.3).complete(corrupt(short, gaps, np.random.default_rng(7)), gaps)[0]
    np.testing.assert_array_equal(out.rotations[[0, 5, 11]], short.rotations[[0, 5, 11]])
    assert {p["norm"] for p in B.Smooth.grid} == {"l2", "squared"}


@pytest.mark.parametrize("params", [{"weight": 0.0}, {"weight": -1.0}, {"weight": float("nan")},
                                    {"norm": "l1"}, {"iters": 0}, {"sigma": 2.0}])
def test_smooth_bad_parameters(params):
    with pytest.raises(MotionsynthError):
        B.make_baseline("smooth", **params)


def test_mean_pose_of_identical_poses(skeleton):
    gt = rotating_motion(skeleton)
    pose = gt[7:8]
    train = [Motion(skeleton, np.repeat(pose.rotations * s, 10, 0), np.repeat(pose.root_positions, 10, 0), 30.0)
             for s in (1.0, -1.0)]  # the average ignores quaternion sign
    method = B.MeanPose().fit(train)
    quat_close(method.mean_rotations, pose.rotations[0])
    mask = joints_mask(gt.num_frames, skeleton, "hips")
    out = method.complete(corrupt(gt, mask, np.random.default_rng(6)), mask)[0]
    quat_close(out.rotations[:, 2:], np.broadcast_to(pose.rotations[0, 2:], (gt.num_frames, 3, 4)))
    np.testing.assert_array_equal(out.rotations[:, 1], gt.rotations[:, 1])


def test_fitted_baselines_need_fit(skeleton):
    gt = rotating_motion(skeleton)
    mask = joints_mask(gt.num_frames, skeleton, "hips")
    for name in ("mean-pose", "nearest-neighbour"):
        with pytest.raises(MotionsynthError, match="fit"):
            B.make_baseline(name).complete(gt, mask)


def test_nearest_neighbour_recovers_frames_in_database(skeleton):
    rng = np.random.default_rng(7)
    T = 40
    train = Motion(skeleton, R.quat_normalize(rng.normal(size=(T, J, 4))), rng.normal(size=(T, 3)) * 50, 30.0)
    method = B.NearestNeighbour().fit([train[:20], train[20:]], max_frames=1000, rng=0)
    query = train[[5, 33, 12]]
    # a different heading of the root must not matter for the match: turn the whole character about +Y
    turn = R.axis_angle_to_quat(np.array([0.0, 1.2, 0.0]))
    query.rotations[:, 1] = R.quat_mul(turn, query.rotations[:, 1])
    for observed in (["hips", "spine"], ["arm", "hand"], [0, 2, 4]):
        mask = joints_mask(3, skeleton, observed)
        out = method.complete(corrupt(query, mask, rng), mask)[0]
        if mask.joints[:, 1].any():
            quat_close(out.rotations, query.rotations, atol=1e-6)
        else:  # the heading is unknowable without the root: the neighbour's own root rotation is copied
            quat_close(out.rotations[:, [0, 2, 3, 4]], query.rotations[:, [0, 2, 3, 4]], atol=1e-6)
            quat_close(out.rotations[:, 1], train.rotations[[5, 33, 12], 1], atol=1e-6)
    assert len(method._cache) == 3
    # the per-frame observed set may differ: each frame uses its own index
    joints = np.ones((3, J), bool)
    joints[0, 3:] = False
    joints[1, [0, 2]] = False
    mask = Mask(joints, joints[:, 1])
    out = method.complete(corrupt(query, mask, rng), mask)[0]
    quat_close(out.rotations, query.rotations, atol=1e-6)


def test_nearest_neighbour_subsamples(skeleton):
    rng = np.random.default_rng(8)
    train = [Motion(skeleton, R.quat_normalize(rng.normal(size=(30, J, 4))), np.zeros((30, 3)), 30.0)
             for _ in range(4)]
    method = B.NearestNeighbour().fit(iter(train), max_frames=50, rng=1)
    assert method.rotations.shape == (50, J, 4)
