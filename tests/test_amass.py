"""AMASS reader: shapes, Z-up metres → Y-up centimetres, rest skeleton, widths, bad files, optional smplx path."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.errors import FormatError
from motionsynth.io.amass import SMPL_BODY_NAMES, SMPL_BODY_PARENTS, SMPL_NEUTRAL_REST_JOINTS, read_amass, smpl_skeleton

from helpers import cli_output

UPRIGHT = np.array([np.pi / 2, 0.0, 0.0])  # AMASS pelvis orientation of a person standing in the Z-up world


def write_npz(path, T=20, width=156, seed=0, rate_key="mocap_framerate", **override):
    rng = np.random.default_rng(seed)
    data = {"poses": rng.normal(0, 0.3, (T, width)), "trans": rng.normal(0, 1, (T, 3)),
            rate_key: np.array(120.0), "betas": rng.normal(0, 1, 16), "gender": np.array("female")}
    data.update(override)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(path, **data)
    return path


def test_smpl_tree():
    assert len(SMPL_BODY_NAMES) == len(SMPL_BODY_PARENTS) == 22
    assert all(p < j for j, p in enumerate(SMPL_BODY_PARENTS))
    sk = smpl_skeleton()
    assert sk.root == 0 and sk.names[sk.parents[4]] == "left_hip" and sk.names[sk.parents[20]] == "left_elbow"
    assert sk.names[sk.symmetry[sk.index("left_wrist")]] == "right_wrist"
    assert sk.index("left_hip") in sk.groups["left_leg"] and sk.index("head") in sk.groups["head"]
    # rest pose: Y up, left is +X, knees below hips, roughly 1.6-1.8 m from ankles to head
    rest = smpl_skeleton().offsets
    assert rest[sk.index("left_hip")][0] > 0 > rest[sk.index("right_hip")][0]
    assert rest[sk.index("left_knee")][1] < -30


@pytest.mark.parametrize("width", [72, 156, 165])
def test_read_shapes_and_units(tmp_path, width):
    T = 25
    f = write_npz(tmp_path / "take.npz", T=T, width=width,
                  rate_key="mocap_frame_rate" if width == 165 else "mocap_framerate")
    m = read_amass(f)
    assert m.rotations.shape == (T, 22, 4) and m.root_positions.shape == (T, 3)
    assert m.fps == 120.0 and m.labels == {} and m.name == "take" and m.translations is None
    assert np.allclose(np.linalg.norm(m.rotations, axis=-1), 1)
    # non-root joints carry the file's axis-angles unchanged
    poses = np.load(f)["poses"]
    assert np.allclose(R.quat_to_axis_angle(m.rotations[:, 5]), poses[:, 15:18], atol=1e-9) or \
        np.allclose(np.abs((m.rotations[:, 5] * R.axis_angle_to_quat(poses[:, 15:18])).sum(-1)), 1)


def test_same_body_for_smpl_and_smplh(tmp_path):
    poses72 = np.random.default_rng(3).normal(0, 0.3, (10, 72))
    poses156 = np.concatenate([poses72[:, :66], np.ones((10, 90))], 1)
    trans = np.random.default_rng(4).normal(0, 1, (10, 3))
    a = read_amass(write_npz(tmp_path / "a.npz", T=10, width=72, poses=poses72, trans=trans))
    b = read_amass(write_npz(tmp_path / "b.npz", T=10, width=156, poses=poses156, trans=trans))
    assert np.allclose(a.global_positions(), b.global_positions())


def test_z_up_metres_to_y_up_cm(tmp_path):
    T = 10
    trans = np.zeros((T, 3))
    trans[:, 2] = np.linspace(0, 0.9, T)  # rising along AMASS +Z (up)
    trans[:, 0] = 0.5
    trans[:, 1] = np.linspace(0, 2, T)  # AMASS +Y
    poses = np.zeros((T, 72))
    poses[:, :3] = UPRIGHT
    m = read_amass(write_npz(tmp_path / "t.npz", T=T, width=72, poses=poses, trans=trans))
    step = m.root_positions - m.root_positions[0]
    assert np.allclose(step[:, 1], np.linspace(0, 90, T))  # up is +Y here, in cm
    assert np.allclose(step[:, 0], 0) and np.allclose(step[:, 2], -np.linspace(0, 200, T))  # AMASS +Y → -Z
    # pelvis = trans + rest pelvis (SMPL), converted
    expected = R.quat_apply(R.axis_angle_to_quat(np.array([-np.pi / 2, 0, 0])), trans + SMPL_NEUTRAL_REST_JOINTS[0])
    assert np.allclose(m.root_positions, expected * 100)
    # an upright AMASS pelvis is the identity here: the body stands along +Y
    assert np.allclose(np.abs(m.rotations[:, 0, 3]), 1)
    pos = m.global_positions()
    assert (pos[:, SMPL_BODY_NAMES.index("head"), 1] > pos[:, SMPL_BODY_NAMES.index("left_ankle"), 1] + 100).all()


def test_zero_pose_is_rest_skeleton(tmp_path):
    T = 3
    poses = np.zeros((T, 156))
    poses[:, :3] = UPRIGHT
    m = read_amass(write_npz(tmp_path / "z.npz", T=T, width=156, poses=poses, trans=np.zeros((T, 3))))
    pos = m.global_positions()
    rest_cm = (SMPL_NEUTRAL_REST_JOINTS - SMPL_NEUTRAL_REST_JOINTS[0]) * 100
    assert np.allclose(pos - pos[:, :1], rest_cm, atol=1e-9)
    # all-zero AMASS pose (pelvis not rotated) is the rest body lying along the converted axes: C · rest
    poses[:, :3] = 0
    m0 = read_amass(write_npz(tmp_path / "z0.npz", T=T, width=156, poses=poses, trans=np.zeros((T, 3))))
    p0 = m0.global_positions()
    C = R.axis_angle_to_quat(np.array([-np.pi / 2, 0, 0]))
    assert np.allclose(p0 - p0[:, :1], R.quat_apply(C, rest_cm), atol=1e-9)


@pytest.mark.parametrize("override, message", [
    ({"poses": None}, "lacks 'poses'"),
    ({"trans": None}, "lacks 'trans'"),
    ({"mocap_framerate": None}, "mocap_framerate"),
    ({"poses": np.zeros((5, 70))}, "(T, 72)"),
    ({"poses": np.zeros(72)}, "(T, 72)"),
    ({"trans": np.zeros((4, 3))}, "'trans' must be"),
    ({"poses": np.where(np.arange(5 * 72).reshape(5, 72) == 100, np.nan, 0.0)}, "NaN"),
    ({"trans": np.full((5, 3), np.inf)}, "NaN"),
    ({"mocap_framerate": np.array(0.0)}, "positive"),
    ({"poses": np.zeros((0, 72)), "trans": np.zeros((0, 3))}, "no frames"),
])
def test_bad_files(tmp_path, override, message):
    f = write_npz(tmp_path / "bad.npz", T=5, width=72, **override)
    with pytest.raises(FormatError) as e:
        read_amass(f)
    assert message in str(e.value) and "bad.npz" in str(e.value)


def test_not_an_npz(tmp_path):
    f = tmp_path / "junk.npz"
    f.write_text("hello")
    with pytest.raises(FormatError):
        read_amass(f)
    with pytest.raises(FormatError):
        read_amass(tmp_path / "missing.npz")


def test_body_model_dir_without_smplx_warns_and_uses_builtin(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "smplx", None)  # makes `import smplx` raise ImportError
    f = write_npz(tmp_path / "t.npz", width=72)
    with pytest.warns(UserWarning, match="smplx"):
        m = read_amass(f, body_model_dir=tmp_path)
    assert np.allclose(m.skeleton.offsets, smpl_skeleton().offsets)


def test_exact_rest_joints_with_smplx(tmp_path, monkeypatch):
    """The smplx path, against a stand-in module: J = J_regressor · (v_template + shapedirs · betas)."""
    import torch

    rng = np.random.default_rng(9)
    V = 30
    v_template = rng.normal(0, 0.3, (V, 3))
    shapedirs = rng.normal(0, 0.01, (V, 3, 10))
    regressor = rng.random((24, V))
    regressor /= regressor.sum(1, keepdims=True)
    calls = {}

    def create(model_path, model_type, gender, num_betas):
        calls.update(model_path=model_path, model_type=model_type, gender=gender, num_betas=num_betas)
        return types.SimpleNamespace(v_template=torch.tensor(v_template), shapedirs=torch.tensor(shapedirs),
                                     J_regressor=torch.tensor(regressor))

    monkeypatch.setitem(sys.modules, "smplx", types.SimpleNamespace(create=create))
    betas = rng.normal(0, 1, 16)
    f = write_npz(tmp_path / "t.npz", width=156, betas=betas)
    m = read_amass(f, body_model_dir=tmp_path)
    assert calls["model_type"] == "smplh" and calls["gender"] == "female"
    joints = regressor @ (v_template + shapedirs @ betas[:10])
    expected = smpl_skeleton(joints[:22]).offsets
    assert np.allclose(m.skeleton.offsets, expected)
    trans = np.load(f)["trans"]
    C = R.axis_angle_to_quat(np.array([-np.pi / 2, 0, 0]))
    assert np.allclose(m.root_positions, R.quat_apply(C, trans + joints[0]) * 100)


# ---- `motionsynth data prepare --dataset amass --body-models DIR` ---------------------------------------------------


def _amass_folder(tmp_path, takes=3):
    src = tmp_path / "amass" / "S1"
    src.mkdir(parents=True)
    for i in range(takes):
        write_npz(src / f"take{i}.npz", T=30, width=156, seed=i, betas=np.linspace(-1, 1, 16))
    return tmp_path / "amass"


def test_prepare_with_body_models_uses_the_models(tmp_path, monkeypatch, capsys):
    """--body-models reaches the reader of every take: the cache's skeleton has the model's bone lengths."""
    import json

    import torch

    from motionsynth.data.cache import MotionCache

    rng = np.random.default_rng(3)
    V = 30
    v_template, shapedirs = rng.normal(0, 0.3, (V, 3)), rng.normal(0, 0.01, (V, 3, 10))
    regressor = rng.random((24, V))
    regressor /= regressor.sum(1, keepdims=True)
    seen = []

    def create(model_path, model_type, gender, num_betas):
        seen.append(model_path)
        return types.SimpleNamespace(v_template=torch.tensor(v_template), shapedirs=torch.tensor(shapedirs),
                                     J_regressor=torch.tensor(regressor))

    monkeypatch.setitem(sys.modules, "smplx", types.SimpleNamespace(create=create))
    models = tmp_path / "body_models"
    models.mkdir()
    code, out, err = cli_output(capsys, "data", "prepare", _amass_folder(tmp_path), "--dataset", "amass", "--out",
                                  tmp_path / "cache", "--body-models", models, "-j", "1", "--no-progress")
    assert code == 0, err
    assert "prepared 3 takes" in out and seen == [str(models)] * 3
    cache = MotionCache(tmp_path / "cache")
    joints = regressor @ (v_template + shapedirs @ np.linspace(-1, 1, 16)[:10])
    np.testing.assert_allclose(cache.skeleton.offsets, smpl_skeleton(joints[:22]).offsets, atol=1e-4)
    assert not np.allclose(cache.skeleton.offsets, smpl_skeleton().offsets, atol=1e-2)
    assert json.loads((tmp_path / "cache" / "meta.json").read_text())["adapter"] == {"body_models": str(models)}
    # (without smplx the folder is not used, and not recorded: see the next test)


def test_body_models_folder_without_smplx_warns_once_and_uses_builtin(tmp_path, monkeypatch):
    from motionsynth.data.cache import prepare

    monkeypatch.setitem(sys.modules, "smplx", None)
    with pytest.warns(UserWarning, match="smplx") as record:
        cache = prepare(_amass_folder(tmp_path), "amass", tmp_path / "c", workers=1, progress=False,
                        body_models=tmp_path)
    assert len([w for w in record if "smplx" in str(w.message)]) == 1
    np.testing.assert_allclose(cache.skeleton.offsets, smpl_skeleton().offsets, atol=1e-4)
    assert "adapter" not in cache.meta


def test_body_models_folder_lacking_models_is_the_readers_clear_error(tmp_path, monkeypatch, capsys):
    def create(model_path, model_type, gender, num_betas):
        raise FileNotFoundError(f"no {model_type} model in {model_path}")

    monkeypatch.setitem(sys.modules, "smplx", types.SimpleNamespace(create=create))
    empty = tmp_path / "empty_models"
    empty.mkdir()
    code, out, err = cli_output(capsys, "data", "prepare", _amass_folder(tmp_path), "--dataset", "amass", "--out",
                                  tmp_path / "c", "--body-models", empty, "-j", "1", "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert "no usable takes" in err and "cannot load the smplh female body model from" in err
    assert str(empty) in err and not (tmp_path / "c").exists()


def test_body_models_option_errors(tmp_path, capsys):
    code, _, err = cli_output(capsys, "data", "prepare", _amass_folder(tmp_path), "--dataset", "amass", "--out",
                                tmp_path / "c", "--body-models", tmp_path / "nowhere", "--no-progress")
    assert code == 2 and "--body-models" in err and "no such folder" in err
    bvh = tmp_path / "bvh"
    bvh.mkdir()
    code, _, err = cli_output(capsys, "data", "prepare", bvh, "--dataset", "bvh-folder", "--out", tmp_path / "c",
                                "--body-models", tmp_path, "--no-progress")
    assert code == 2 and "--body-models only applies to --dataset amass, not bvh-folder" in err


def test_read_amass_is_the_shared_smpl_conversion(tmp_path):
    """read_amass, the other SMPL layouts (io.smpl) and write_smpl share one conversion: smpl_to_motion (Z up here)
    and its inverse motion_to_smpl."""
    from motionsynth.io.amass import motion_to_smpl, smpl_to_motion

    f = write_npz(tmp_path / "t.npz", T=8, width=72)
    with np.load(f) as z:
        poses, trans = z["poses"], z["trans"]
    m = read_amass(f)
    direct = smpl_to_motion(R.axis_angle_to_quat(poses[:, :66].reshape(8, 22, 3)), trans, 120.0, axes="z-up")
    assert np.array_equal(m.rotations, direct.rotations) and np.array_equal(m.root_positions, direct.root_positions)
    pose, back = motion_to_smpl(m)
    np.testing.assert_allclose(back, trans, atol=1e-9)
    np.testing.assert_allclose(np.abs((R.axis_angle_to_quat(pose) * m.rotations * [1, 1, 1, 1]).sum(-1))[:, 1:], 1,
                               atol=1e-9)
