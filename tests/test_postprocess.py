"""Post-processing (thesis draft §4.2–4.3): constant-velocity smoothing, RANSAC floor fit, Rodrigues alignment, and
`motionsynth smooth` / `motionsynth align-floor`."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth import postprocess as pp
from motionsynth import rotations as R
from motionsynth.errors import MotionsynthError
from motionsynth.io import load_motion, save_motion
from motionsynth.kinematics import UP, foot_joints
from motionsynth.motion import Motion
from motionsynth.postprocess import NORMS

from helpers import biped_motion, biped_skeleton, run_cli


def accel(m: Motion) -> float:
    p = m.global_positions()
    return float(np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean())


def mpjpe(a: Motion, b: Motion) -> float:
    return float(np.linalg.norm(a.global_positions() - b.global_positions(), axis=-1).mean())


def noisy_copy(m: Motion, seed: int = 0, cm: float = 2.0, deg: float = 3.0) -> Motion:
    """Per-frame jitter on the root and on every joint below the static top joint."""
    rng = np.random.default_rng(seed)
    aa = rng.normal(0, np.radians(deg), (*m.rotations.shape[:2], 3))
    aa[:, 0] = 0
    return Motion(m.skeleton, R.quat_mul(m.rotations, R.axis_angle_to_quat(aa)),
                  m.root_positions + rng.normal(0, cm, m.root_positions.shape), m.fps, name=m.name)


def stepping_motion(T: int = 240, fps: float = 30.0) -> Motion:
    """A biped stepping along an arc: still for half a second (toes on y = 0), then gliding half a second with its
    legs swinging; the upper body moves all the time."""
    sk = biped_skeleton()
    t = np.arange(T) / fps
    phase = t % 1.0
    moving = np.clip((phase - 0.5) / 0.5, 0, 1)
    s = np.floor(t) + moving * moving * (3 - 2 * moving)  # steps done: smoothstep while moving
    angle = 0.25 * s
    rv = np.zeros((T, len(sk), 3))
    rng = np.random.default_rng(3)
    rv[:, 2:12] = np.radians(10) * np.sin(2 * np.pi * rng.uniform(0.2, 1, (10, 3)) * t[:, None, None])
    rv[:, 1, 1] = angle
    swing = np.radians(25) * np.sin(np.pi * moving)
    for up_leg, knee, sign in ((12, 13, 1), (16, 17, -1)):
        rv[:, up_leg, 0] = sign * swing
        rv[:, knee, 0] = 0.5 * swing
    root = np.stack([150 * np.sin(angle), np.full(T, 87.0), 150 * np.cos(angle)], 1)
    return Motion(sk, R.axis_angle_to_quat(rv), root, fps, name="steps")


# ---- smoothing --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["l2", "squared"])
def test_smoothing_removes_jitter_and_stays_close(norm):
    clean = biped_motion(biped_skeleton(), T=150)
    noisy = noisy_copy(clean)
    out = pp.smooth_motion(noisy, weight=0.3 if norm == "l2" else 0.05, norm=norm)
    assert out.rotations.shape == noisy.rotations.shape and out.root_positions.shape == noisy.root_positions.shape
    assert out.skeleton is noisy.skeleton and out.fps == noisy.fps and out.name == noisy.name
    np.testing.assert_allclose(np.linalg.norm(out.rotations, axis=-1), 1, atol=1e-9)
    assert accel(out) < 0.1 * accel(noisy)
    assert mpjpe(out, clean) < 0.5 * mpjpe(noisy, clean)


def test_no_smoothing_limits_return_the_input():
    noisy = noisy_copy(biped_motion(biped_skeleton(), T=60))
    for out in (pp.smooth_motion(noisy, weight=4.0), pp.smooth_motion(noisy, weight=1e9, norm="squared")):
        assert mpjpe(out, noisy) < 1e-4
        assert np.abs(out.rotations - noisy.rotations).max() < 1e-6  # signs kept
    assert mpjpe(pp.smooth_motion(noisy, weight=3.5), noisy) > 0.1  # just below the limit it already smooths


def test_heavy_smoothing_tends_to_constant_velocity():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(80, 3)), 0)
    for y in (pp.smooth_curve(x, 1e-4, iters=100), pp.smooth_curve(x, 1e-8, norm="squared")):
        assert np.abs(y[2:] - 2 * y[1:-1] + y[:-2]).max() < 1e-3 * np.abs(np.diff(x, axis=0)).max()
    objective = [np.linalg.norm(np.diff(y, 2, axis=0), axis=1).sum() + 0.5 * np.linalg.norm(y - x, axis=1).sum()
                 for y in (x, pp.smooth_curve(x, 0.5, iters=1), pp.smooth_curve(x, 0.5, iters=50))]
    assert objective[2] < objective[1] < objective[0]  # the reweighting minimises eq. 4.1 further
    np.testing.assert_array_equal(pp.smooth_curve(x[:2]), x[:2])


def _step_curve(T: int = 1000) -> np.ndarray:
    """A constant 6D curve but for one rounding step of 1.7e-6 in one channel (as BVH writers leave on static
    joints): its systems were numerically indefinite for the former 1e-9 residual floor (LinAlgError)."""
    x = np.tile([0.3, 0.9, 0.1, 0.2, 0.7, 0.5], (T, 1))
    x[T // 2:, 5] += 1.7e-6
    return x


def test_smoothing_never_fails_on_clean_static_or_rounded_curves():
    t = np.arange(1000) / 30
    curves = {"step": _step_curve(), "blip": _step_curve() - np.eye(1000)[:, 500:501] * np.eye(6)[2] * 1e-6,
              "constant": np.full((1000, 3), 15.7), "rounded offset": np.c_[np.full(1000, 15.7), 1e-12 * (t > 9)],
              "slow sine": np.c_[np.sin(0.1 * t), np.cos(0.1 * t)], "line": np.c_[t, 2 * t]}
    for name, x in curves.items():
        for norm in NORMS:
            y = pp.smooth_curve(x, norm=norm)
            assert np.isfinite(y).all() and y.shape == x.shape, name
            assert np.abs(y - x).max() <= 1e-3 * (np.ptp(x) + 1e-9) + 1e-12, name  # clean curves stay put


def test_curves_are_smoothed_together_as_one_by_one():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=(5, 120, 3)), 1)
    x[2] = 4.0  # a constant curve among them
    together = pp.smooth_curves(x, 0.3)
    for k in range(len(x)):
        np.testing.assert_allclose(together[k], pp.smooth_curve(x[k], 0.3), rtol=0, atol=1e-9)


def test_the_shared_factorisation_solves_the_unweighted_system():
    target = np.random.default_rng(3).normal(size=(3, 40, 6))
    np.testing.assert_allclose(pp._solve_unweighted(0.3, target),
                               pp._solve(np.ones((3, 38)), np.ones((3, 40)), 0.3, target), atol=1e-12)


def test_the_pivoting_fallback_solves_the_same_system(monkeypatch):
    import scipy.linalg

    rng = np.random.default_rng(2)
    w, u, target = rng.uniform(0.1, 2, (2, 48)), rng.uniform(0.1, 2, (2, 50)), rng.normal(size=(2, 50, 3))
    expected = pp._solve(w, u, 0.3, target)

    def indefinite(*args, **kwargs):
        raise np.linalg.LinAlgError("2th leading minor not positive definite")

    monkeypatch.setattr(scipy.linalg, "solveh_banded", indefinite)
    np.testing.assert_allclose(pp._solve(w, u, 0.3, target), expected, atol=1e-10)


@pytest.mark.slow
def test_smooth_command_on_a_long_clip_with_static_joints(tmp_path):
    """Static joints with rounded values and a long clip: one solve for all curves, no error."""
    from motionsynth.io import save_motion

    clip = biped_motion(biped_skeleton(), T=3000)
    clip.rotations[:, 3] = clip.rotations[0, 3]  # a static joint
    clip.rotations[1500:, 3, 0] += 1e-7  # … with a rounding step
    save_motion(clip, tmp_path / "clip.bvh")
    assert run_cli("smooth", tmp_path / "clip.bvh", "-o", tmp_path / "out.bvh") == 0
    out = load_motion(tmp_path / "out.bvh")
    assert len(out) == 3000 and np.isfinite(out.rotations).all()


# ---- floor: Rodrigues and RANSAC --------------------------------------------------------------------------------
def test_rodrigues_maps_a_onto_b_with_a_proper_rotation():
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(size=3), rng.normal(size=3)) for _ in range(20)]
    pairs += [(UP * 3, UP), (np.array([0.0, -2, 0]), UP), (np.array([1.0, 1, 1]), -np.array([1.0, 1, 1]))]
    for a, b in pairs:
        rot = pp.rodrigues(a, b)
        np.testing.assert_allclose(rot @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        axis = np.cross(a, b)
        if np.linalg.norm(axis) > 1e-9:
            np.testing.assert_allclose(rot @ axis, axis, atol=1e-9)  # about the common perpendicular


def test_ransac_ignores_outliers_and_is_seeded():
    rng = np.random.default_rng(1)
    normal = np.array([0.2, 1.0, -0.1]) / np.linalg.norm([0.2, 1.0, -0.1])
    u, v = np.linalg.svd(normal[None])[2][1:]  # in-plane directions
    on = 30 + rng.uniform(-200, 200, (140, 1)) * u + rng.uniform(-200, 200, (140, 1)) * v
    on += rng.normal(0, 1.0, (140, 1)) * normal
    off = rng.uniform(-200, 200, (60, 3)) + np.array([0, 100, 0])  # 30 %, mostly far from the plane
    points = np.concatenate([on, off])
    n, d, inliers = pp.fit_floor(points, threshold=10, iters=500, rng=7)
    assert np.degrees(np.arccos(n @ normal)) < 0.5
    assert d == pytest.approx(normal @ np.array([30.0, 30, 30]), abs=1.0)
    assert inliers[:140].all() and inliers[140:].sum() < 15
    n2, d2, inliers2 = pp.fit_floor(points, threshold=10, iters=500, rng=7)
    assert np.array_equal(n, n2) and d == d2 and np.array_equal(inliers, inliers2)


def test_ransac_refuses_too_few_or_collinear_points():
    with pytest.raises(MotionsynthError, match="too few"):
        pp.fit_floor(np.zeros((2, 3)))
    line = np.outer(np.linspace(0, 100, 20), [1.0, 0, 0])
    with pytest.raises(MotionsynthError, match="line"):
        pp.fit_floor(line)


# ---- floor: alignment of a motion -------------------------------------------------------------------------------
def test_transform_motion_moves_every_joint_rigidly():
    m = biped_motion(biped_skeleton(), T=40)
    rot = R.quat_to_matrix(R.axis_angle_to_quat(np.array([0.3, -0.5, 0.2])))
    origin = np.array([10.0, -20, 5])
    out = pp.transform_motion(m, rot, origin)
    body = m.skeleton.subtree(m.skeleton.root)
    expected = (m.global_positions()[:, body] - origin) @ rot.T
    np.testing.assert_allclose(out.global_positions()[:, body], expected, atol=1e-9)
    np.testing.assert_array_equal(out.rotations[:, 0], m.rotations[:, 0])  # the static top joint stays


def test_align_floor_undoes_a_known_tilt():
    clean = stepping_motion()
    toes = foot_joints(clean.skeleton)
    assert [clean.skeleton.names[j] for j in toes] == ["LeftToe", "RightToe"]
    assert np.abs(pp.contact_points(clean)[:, 1]).max() < 1e-6  # the clean floor is y = 0
    tilt = R.quat_to_matrix(R.axis_angle_to_quat(np.radians(12) * np.array([0.8, 0.36, 0.48])))
    tilted = pp.transform_motion(clean, tilt, np.array([-30.0, -45, 20]))
    assert np.abs(pp.contact_points(tilted)[:, 1]).max() > 10
    rotation, _, info = pp.floor_transform(tilted)
    assert info["inliers"] == info["points"] > 50
    aligned, aligned_info = pp.align_floor(tilted)
    assert aligned_info["tilt"] == info["tilt"] > 5
    assert np.abs(pp.contact_points(aligned)[:, 1]).max() < 0.1
    total = rotation @ tilt  # undoes the tilt: what is left is a turn about +Y
    assert np.degrees(np.arccos(np.clip((total @ UP) @ UP, -1, 1))) < 0.5
    # the whole motion equals the original up to that heading turn and a planar shift
    body = clean.skeleton.subtree(clean.skeleton.root)
    p, q = clean.global_positions()[:, body], aligned.global_positions()[:, body]
    shift = (q - p @ total.T).reshape(-1, 3).mean(0)
    assert abs(shift[1]) < 0.1
    np.testing.assert_allclose(q, p @ total.T + shift, atol=0.1)
    assert np.array_equal(pp.align_floor(tilted)[0].root_positions, aligned.root_positions)  # seeded: deterministic


# ---- command line ----------------------------------------------------------------------------------------------
def test_cli_round_trips(tmp_path, capsys):
    noisy = noisy_copy(biped_motion(biped_skeleton(), T=60))
    save_motion(noisy, tmp_path / "noisy.bvh")
    assert run_cli("smooth", str(tmp_path / "noisy.bvh"), "-o", str(tmp_path / "smooth.npz")) == 0
    out = load_motion(tmp_path / "smooth.npz")
    assert len(out) == 60 and out.fps == pytest.approx(noisy.fps) and accel(out) < accel(noisy)
    assert run_cli("smooth", str(tmp_path / "noisy.bvh"), "-o", str(tmp_path / "same.bvh"), "--weight", "4") == 0
    assert mpjpe(load_motion(tmp_path / "same.bvh"), load_motion(tmp_path / "noisy.bvh")) < 1e-3

    tilt = R.quat_to_matrix(R.axis_angle_to_quat(np.radians([8.0, 0, 5])))
    save_motion(pp.transform_motion(stepping_motion(), tilt, np.array([0.0, -30, 0])), tmp_path / "tilted.npz")
    assert run_cli("align-floor", str(tmp_path / "tilted.npz"), "-o", str(tmp_path / "level.bvh"), "--seed", "3") == 0
    assert "floor tilted" in capsys.readouterr().out
    assert np.abs(pp.contact_points(load_motion(tmp_path / "level.bvh"))[:, 1]).max() < 0.5
    # the same clip in metres: the unit scales the default thresholds
    m = load_motion(tmp_path / "tilted.npz")
    metres = Motion(m.skeleton.__class__(m.skeleton.names, m.skeleton.parents, m.skeleton.offsets / 100,
                                         root=m.skeleton.root), m.rotations, m.root_positions / 100, m.fps)
    save_motion(metres, tmp_path / "tilted_m.npz")
    assert run_cli("align-floor", str(tmp_path / "tilted_m.npz"), "-o", str(tmp_path / "level_m.npz"),
                   "--unit", "m") == 0
    assert np.abs(pp.contact_points(load_motion(tmp_path / "level_m.npz"), 0.15)[:, 1]).max() < 0.005


@pytest.mark.parametrize("args, message", [
    (["smooth", "{d}/missing.bvh", "-o", "{d}/out.npz"], "no such file"),
    (["smooth", "{d}/bad.bvh", "-o", "{d}/out.npz"], "bad.bvh"),
    (["smooth", "{d}/m.npz", "-o", "{d}/out.npz", "--norm", "l1"], "--norm"),
    (["smooth", "{d}/m.npz", "-o", "{d}/out.npz", "--weight", "-1"], "--weight"),
    (["smooth", "{d}/m.npz", "-o", "{d}/out.npz", "--iters", "0"], "--iters"),
    (["smooth", "{d}/m.npz", "-o", "{d}/out.txt"], "unknown output type"),
    (["smooth", "{d}/m.npz", "-o", "{d}/m.npz"], "same file"),
    (["align-floor", "{d}/m.npz", "-o", "{d}/out.npz", "--unit", "ft"], "--unit"),
    (["align-floor", "{d}/m.npz", "-o", "{d}/out.npz", "--threshold", "0"], "--threshold"),
    (["align-floor", "{d}/bad.bvh", "-o", "{d}/out.npz"], "bad.bvh"),
    (["align-floor", "{d}/m.npz", "-o", "{d}/out.npz"], "too few foot-contact points"),
])
def test_cli_errors_exit_2_without_output(tmp_path, capsys, args, message):
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 0\n")
    save_motion(biped_motion(biped_skeleton(), T=30), tmp_path / "m.npz")  # feet never slow: no contacts
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run_cli(*[a.format(d=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
