"""Every conversion is cross-checked against scipy.spatial.transform.Rotation (property tests), in numpy and torch."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation as Sci

from motionsynth import rotations as R

ORDERS = ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX", "xyz", "zxy", "zyx"]
quats = arrays(np.float64, (8, 4), elements=st.floats(-1, 1)).filter(lambda q: (np.linalg.norm(q, axis=-1) > 0.1).all())


def unit(q):
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def same_rotation(qa, qb, atol=1e-9):
    """Quaternions equal up to sign."""
    return np.allclose(np.abs((qa * qb).sum(-1)), 1.0, atol=atol)


@settings(max_examples=40, deadline=None)
@given(quats)
def test_matrix_matches_scipy(q):
    q = unit(q)
    np.testing.assert_allclose(R.quat_to_matrix(q), Sci.from_quat(q).as_matrix(), atol=1e-12)
    assert same_rotation(R.matrix_to_quat(Sci.from_quat(q).as_matrix()), q)
    assert (R.matrix_to_quat(Sci.from_quat(q).as_matrix())[..., 3] >= 0).all()


@settings(max_examples=40, deadline=None)
@given(quats)
def test_axis_angle_matches_scipy(q):
    q = unit(q)
    v = Sci.from_quat(q).as_rotvec()
    ours = R.quat_to_axis_angle(q)
    assert (np.linalg.norm(ours, axis=-1) <= np.pi + 1e-12).all()
    # at an angle of exactly π, v and -v are the same rotation: compare rotations, not vectors
    np.testing.assert_allclose(Sci.from_rotvec(ours).as_matrix(), Sci.from_quat(q).as_matrix(), atol=1e-9)
    assert same_rotation(R.axis_angle_to_quat(v), q)


@settings(max_examples=40, deadline=None)
@given(quats, st.sampled_from(ORDERS), st.booleans())
def test_euler_matches_scipy(q, order, degrees):
    q = unit(q)
    angles = Sci.from_quat(q).as_euler(order, degrees=degrees)
    assert same_rotation(R.euler_to_quat(angles, order, degrees=degrees), q)
    back = R.quat_to_euler(q, order, degrees=degrees)
    # near gimbal lock the angle extraction loses a few digits (≈4e-8 seen); 1e-6 is far below what BVH keeps
    np.testing.assert_allclose(Sci.from_euler(order, back, degrees=degrees).as_matrix(), Sci.from_quat(q).as_matrix(),
                               atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(quats, quats)
def test_product_inverse_apply_match_scipy(a, b):
    a, b = unit(a), unit(b)
    assert same_rotation(R.quat_mul(a, b), (Sci.from_quat(a) * Sci.from_quat(b)).as_quat())
    assert same_rotation(R.quat_inv(a), Sci.from_quat(a).inv().as_quat())
    v = b[:, :3] * 10
    np.testing.assert_allclose(R.quat_apply(a, v), Sci.from_quat(a).apply(v), atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(quats)
def test_6d_round_trip(q):
    q = unit(q)
    d6 = R.quat_to_6d(q)
    m = Sci.from_quat(q).as_matrix()
    np.testing.assert_allclose(d6, np.concatenate([m[:, :, 0], m[:, :, 1]], -1), atol=1e-12)
    assert same_rotation(R.sixd_to_quat(d6), q)


def test_6d_from_unnormalised_input_is_a_rotation():
    d6 = np.random.default_rng(0).normal(size=(100, 6)) * 3
    m = R.sixd_to_matrix(d6)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(m), 1, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(quats, quats, st.floats(0, 1))
def test_slerp_matches_scipy(a, b, t):
    from scipy.spatial.transform import Slerp

    a, b = unit(a), unit(b)
    out = R.slerp(a, b, t)
    for i in range(len(a)):
        ref = Slerp([0, 1], Sci.from_quat(np.stack([a[i], b[i]])))([t]).as_quat()[0]
        assert same_rotation(out[i], ref, atol=1e-7)


def test_slerp_end_points():
    rng = np.random.default_rng(1)
    a, b = Sci.random(20, random_state=2).as_quat(), Sci.random(20, random_state=3).as_quat()
    assert same_rotation(R.slerp(a, b, 0.0), a)
    assert same_rotation(R.slerp(a, b, 1.0), b)
    t = rng.uniform(size=20)
    assert R.slerp(a, b, t).shape == (20, 4)


def test_torch_matches_numpy_and_is_differentiable():
    q = Sci.random(50, random_state=4).as_quat()
    qt = torch.tensor(q, requires_grad=True)
    for fn in (R.quat_to_matrix, R.quat_to_6d, R.quat_to_axis_angle):
        np.testing.assert_allclose(fn(qt).detach().numpy(), fn(q), atol=1e-12)
    R.quat_to_euler(qt, "ZXY").sum().backward()
    assert qt.grad is not None and torch.isfinite(qt.grad).all()
    d6 = torch.randn(10, 6, requires_grad=True)
    R.sixd_to_matrix(d6).sum().backward()
    assert torch.isfinite(d6.grad).all()


def test_continuity_removes_sign_flips():
    q = Sci.from_rotvec(np.linspace(0, 1, 30)[:, None] * [0, 3, 0]).as_quat()
    flipped = q * np.where(np.arange(30) % 3 == 0, -1, 1)[:, None]
    fixed = R.quat_continuous(flipped)
    assert ((fixed[1:] * fixed[:-1]).sum(-1) > 0).all()
    assert same_rotation(fixed, q)


@pytest.mark.parametrize("angle", [0.3, -2.0, 3.1, -3.1])
def test_twist_angle_about_up(angle):
    up = np.array([0.0, 1.0, 0.0])
    q = R.quat_about_axis(np.array(angle), up)
    assert np.isclose(R.quat_twist_angle(q, up), angle)
    tilt = Sci.from_rotvec([0.4, 0, 0]).as_quat()  # a swing about x after the heading keeps the heading
    assert np.isclose(R.quat_twist_angle(R.quat_mul(q, tilt), up), angle, atol=0.1)


def test_yaw_matrix_and_wrap_angle_take_numpy_or_torch():
    angles = np.array([-4.0, -np.pi / 2, 0.0, 0.3, np.pi, 7.0])
    m = R.yaw_matrix(angles)
    assert isinstance(m, np.ndarray) and m.shape == (6, 3, 3)
    np.testing.assert_allclose(m, Sci.from_rotvec(angles[:, None] * np.array([0.0, 1.0, 0.0])).as_matrix(),
                               atol=1e-12)
    np.testing.assert_allclose(R.yaw_matrix(torch.from_numpy(angles)).numpy(), m, atol=0)
    np.testing.assert_allclose(R.quat_to_matrix(R.quat_about_axis(angles, np.array([0.0, 1.0, 0.0]))), m, atol=1e-12)
    wrapped = R.wrap_angle(angles)
    assert np.all((wrapped > -np.pi - 1e-12) & (wrapped <= np.pi + 1e-12))
    np.testing.assert_allclose(np.cos(wrapped), np.cos(angles), atol=1e-12)
    np.testing.assert_allclose(R.wrap_angle(torch.from_numpy(angles)).numpy(), wrapped, atol=0)
