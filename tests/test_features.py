"""Feature encoding: encode → decode is lossless through FK, invariant to the world yaw/position, differentiable;
streaming normalisation statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionsynth import rotations as R
from motionsynth.data.features import (
    ROOT_DIM,
    STD_FLOOR,
    FeatureStats,
    decode,
    decode_torch,
    encode,
    feature_dim,
    origin,
    root_slice,
    rot6d_slice,
)
from motionsynth.errors import FormatError
from motionsynth.kinematics import fk
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

NAMES = ["hips", "spine", "head", "left_leg", "left_foot", "right_leg", "right_foot"]
PARENTS = [-1, 0, 1, 0, 3, 0, 5]


def make_skeleton(static_parent: bool, rng) -> Skeleton:
    """A small skeleton; with ``static_parent`` a fixed ``base`` joint sits above the moving root (as Bandai's
    ``joint_Root`` above ``Hips``, but with a non-zero offset)."""
    offsets = rng.normal(0, 10, (len(NAMES), 3))
    if not static_parent:
        return Skeleton(NAMES, PARENTS, offsets, root=0)
    return Skeleton(["base"] + NAMES, [-1] + [p + 1 for p in PARENTS], np.vstack([[3.0, -2.0, 5.0], offsets]),
                    root=1)


def make_motion(skeleton: Skeleton, rng, T: int = 80, parent_rotation=None) -> Motion:
    """Random joint rotations, a curvy trajectory and a heading that spins past ±π several times."""
    t = np.arange(T, dtype=np.float64)
    rot = R.axis_angle_to_quat(rng.normal(0, 0.6, (T, len(skeleton), 3)))
    heading = 0.35 * t + 0.5 * np.sin(t / 7)
    tilt = R.axis_angle_to_quat(rng.normal(0, 0.2, (T, 3)))
    yaw = R.quat_about_axis(heading, np.array([0.0, 1.0, 0.0]))
    rot[:, skeleton.root] = R.quat_mul(yaw, tilt)
    for a in skeleton.ancestors(skeleton.root):
        rot[:, a] = R.quat_identity() if parent_rotation is None else parent_rotation
    pos = np.stack([120 * np.sin(t / 15), 90 + 5 * np.sin(t / 3), 60 * np.cos(t / 11) + 2 * t], -1)
    return Motion(skeleton, rot, pos, 30.0)


def rotate_world(motion: Motion, angle: float, shift) -> Motion:
    """The motion rotated by ``angle`` about +Y through the world origin, then moved by ``shift`` (x, 0, z)."""
    sk = motion.skeleton
    g_rot, g_pos = fk(motion.rotations, motion.local_translations(), sk.parents)
    Y = R.quat_about_axis(np.array(angle), np.array([0.0, 1.0, 0.0]))
    out = motion.copy()
    ancestors = sk.ancestors(sk.root)
    p_rot = g_rot[:, ancestors[0]] if ancestors else R.quat_identity((motion.num_frames,))
    p_pos = g_pos[:, ancestors[0]] if ancestors else np.zeros((motion.num_frames, 3))
    new_g = R.quat_mul(Y, g_rot[:, sk.root])
    new_p = R.quat_apply(Y, g_pos[:, sk.root]) + np.asarray(shift, dtype=np.float64)
    out.rotations[:, sk.root] = R.quat_mul(R.quat_inv(p_rot), new_g)
    out.root_positions = R.quat_apply(R.quat_inv(p_rot), new_p - p_pos)
    return out


@pytest.fixture(params=[False, True], ids=["root-is-joint-0", "static-parent-above-root"])
def skeleton(request):
    return make_skeleton(request.param, np.random.default_rng(1))


def test_layout(skeleton):
    J = len(skeleton)
    assert ROOT_DIM == 4 and feature_dim(skeleton) == 6 * J + 4
    assert rot6d_slice(skeleton) == slice(0, 6 * J) and root_slice(skeleton) == slice(6 * J, 6 * J + 4)
    f = encode(make_motion(skeleton, np.random.default_rng(2)))
    assert f.shape == (80, feature_dim(skeleton)) and f.dtype == np.float32
    assert np.all(f[0, root_slice(skeleton)][1:] == 0)  # no velocity at frame 0


@pytest.mark.parametrize("parent_rotation", [None, R.axis_angle_to_quat(np.array([0.3, -1.2, 0.4]))],
                         ids=["identity-parent", "rotated-parent"])
def test_roundtrip_fk(skeleton, parent_rotation):
    m = make_motion(skeleton, np.random.default_rng(3), parent_rotation=parent_rotation)
    f = encode(m, dtype=np.float64)
    # the heading turns through several full circles, yet its per-frame velocity stays wrapped and small
    assert np.ptp(np.cumsum(f[:, -1])) > 4 * np.pi and np.abs(f[:, -1]).max() < 2.0
    back = decode(f, skeleton, m.fps, origin=origin(m), labels={"style": 2})
    err = np.abs(back.global_positions() - m.global_positions()).max()
    assert err <= 1e-3, err
    assert back.labels == {"style": 2} and back.fps == m.fps
    # local rotations of every non-root joint come back exactly (up to sign)
    others = [j for j in range(len(skeleton)) if j != skeleton.root]
    dots = np.abs((back.rotations[:, others] * m.rotations[:, others]).sum(-1))
    assert np.allclose(dots, 1, atol=1e-9)


def test_canonical_decode_starts_at_origin(skeleton):
    m = make_motion(skeleton, np.random.default_rng(4))
    back = decode(encode(m, dtype=np.float64), skeleton, m.fps)
    assert np.allclose(origin(back), 0, atol=1e-9)
    # same shape of motion, moved: pairwise distances within each frame are preserved
    moving = skeleton.subtree(skeleton.root)  # static ancestors stay where they are
    a, b = m.global_positions()[:, moving], back.global_positions()[:, moving]
    da = np.linalg.norm(a[:, :, None] - a[:, None], axis=-1)
    db = np.linalg.norm(b[:, :, None] - b[:, None], axis=-1)
    assert np.abs(da - db).max() < 1e-6


def test_invariant_to_yaw_and_planar_translation(skeleton):
    m = make_motion(skeleton, np.random.default_rng(5))
    f = encode(m, dtype=np.float64)
    for angle, shift in [(2.5, (300.0, 0.0, -40.0)), (-3.1, (-7.0, 0.0, 1000.0))]:
        g = encode(rotate_world(m, angle, shift), dtype=np.float64)
        assert np.abs(f - g).max() < 1e-6
        o, o2 = origin(m), origin(rotate_world(m, angle, shift))
        assert np.isclose(np.cos(o2[2] - o[2] - angle), 1.0)


def test_decode_torch_matches_decode_and_has_gradients(skeleton):
    m = make_motion(skeleton, np.random.default_rng(6), T=30)
    f = encode(m, dtype=np.float64)
    ref = decode(f, skeleton, m.fps).global_positions()
    x = torch.tensor(np.stack([f, f]), requires_grad=True)  # (B=2, T, D)
    mats, root_pos = decode_torch(x, skeleton)
    assert mats.shape == (2, 30, len(skeleton), 3, 3) and root_pos.shape == (2, 30, 3)
    trans = torch.as_tensor(skeleton.offsets).expand(2, 30, -1, -1).clone()
    trans[..., skeleton.root, :] = root_pos
    _, pos = fk(mats, trans, skeleton.parents)
    assert np.abs(pos[0].detach().numpy() - ref).max() < 1e-6
    pos.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # float32 works too
    mats32, _ = decode_torch(x.detach().float(), skeleton)
    assert mats32.dtype == torch.float32


def test_feature_stats_streaming_matches_numpy(tmp_path):
    rng = np.random.default_rng(7)
    chunks = [rng.normal(1000.0, 3.0, (n, 5)) * [1, 2, 3, 4, 0] + [0, 0, 0, 0, 7] for n in (1, 17, 300, 2)]
    stats = FeatureStats.from_arrays(iter(chunks))
    whole = np.concatenate(chunks)
    assert np.allclose(stats.mean, whole.mean(0), rtol=1e-6)
    assert np.allclose(stats.std[:4], whole.std(0)[:4], rtol=1e-5)
    assert stats.std[4] == np.float32(STD_FLOOR)  # constant channel floored
    assert stats.mean.dtype == stats.std.dtype == np.float32
    x = whole[:10].astype(np.float32)
    assert np.allclose(stats.denormalize(stats.normalize(x)), x, rtol=1e-5)
    xt = torch.from_numpy(x)
    assert torch.allclose(stats.normalize(xt), torch.from_numpy(stats.normalize(x)))
    assert np.allclose(stats.normalize(x)[:, :4].mean(0), ((x - stats.mean) / stats.std)[:, :4].mean(0))
    stats.save(tmp_path / "stats.npz")
    loaded = FeatureStats.load(tmp_path / "stats.npz")
    assert np.array_equal(loaded.mean, stats.mean) and np.array_equal(loaded.std, stats.std)
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3))
    with pytest.raises(FormatError):
        FeatureStats.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        FeatureStats.load(tmp_path / "junk.npz")


@pytest.mark.real_data
def test_bandai_roundtrip(bandai_zip):
    from motionsynth.io.bvh import iter_bvh

    checked = 0
    for name, motion in iter_bvh(bandai_zip):
        if isinstance(motion, Exception):
            continue
        # Bandai BVH animate a translation on every joint (Motion.translations), equal to the rest offsets within
        # ~1e-5 cm; the features use the skeleton offsets, so compare with the motion without those channels.
        plain = Motion(motion.skeleton, motion.rotations, motion.root_positions, motion.fps)
        back = decode(encode(plain, dtype=np.float64), plain.skeleton, plain.fps, origin=origin(plain))
        err = np.abs(back.global_positions() - plain.global_positions()).max()
        assert err <= 1e-3, (name, err)
        f32 = encode(plain)
        assert np.isfinite(f32).all() and f32.shape == (plain.num_frames, feature_dim(plain.skeleton))
        checked += 1
        if checked == 10:
            break
    assert checked == 10


def test_constant_channels_normalise_to_zero():
    """A channel constant in the statistics' data carries no information: noise on it must not be amplified."""
    from motionsynth.data.features import FeatureStats

    data = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    data[:, 1] = 0.5  # constant channel
    stats = FeatureStats.from_arrays([data])
    assert stats.constant.tolist() == [False, True, False, False]
    noisy = data + 0.01
    z = stats.normalize(noisy)
    assert np.all(z[:, 1] == 0) and np.abs(z).max() < 10
    np.testing.assert_allclose(stats.denormalize(stats.normalize(data)), data, atol=1e-5)
    zt = stats.normalize(torch.from_numpy(noisy))
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-6)


def test_root_track_is_one_function_for_numpy_and_torch():
    from motionsynth.data.features import root_track

    root = np.random.default_rng(0).normal(size=(2, 30, 4))
    a = root_track(root, heading0=0.3)
    b = root_track(torch.from_numpy(root), heading0=0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 30, 3) and np.allclose(a[:, 0, :2], 0) and np.allclose(a[:, 0, 2], 0.3)
    np.testing.assert_allclose(a[:, -1, 2], 0.3 + root[:, 1:, 3].sum(1))
