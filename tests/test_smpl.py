"""SMPL parameter files (io.smpl): estimator / smplx / AMASS SMPL-X layouts, people, axes, the restricted unpickler,
and write_smpl as the inverse of read_amass."""

from __future__ import annotations

import os
import pickle
import sys
import types

import numpy as np
import pytest

from motionsynth import limits
from motionsynth import rotations as R
from motionsynth.errors import FormatError, MotionsynthError
from motionsynth.io import amass, load_motion
from motionsynth.io.amass import SMPL_BODY_NAMES, SMPL_NEUTRAL_REST_JOINTS, is_smpl_body, read_amass, smpl_skeleton
from motionsynth.io.smpl import DEFAULT_VIDEO_FPS, load_pickle, read_smpl, write_smpl
from motionsynth.motion import Motion

from helpers import make_motion, make_skeleton

T = 12
HEAD, ANKLE = SMPL_BODY_NAMES.index("head"), SMPL_BODY_NAMES.index("left_ankle")


def params(seed=0, frames=T):
    """Random SMPL parameters: (frames, 24, 3) axis-angles (joints 22, 23: hands) and (frames, 3) trans (metres)."""
    rng = np.random.default_rng(seed)
    aa = rng.normal(0, 0.4, (frames, 24, 3))
    trans = rng.normal(0, 1, (frames, 3))
    return aa, trans


def mats(aa):
    return R.quat_to_matrix(R.axis_angle_to_quat(aa))


def layouts(aa, trans):
    """The same parameters in every layout read (name → dict of arrays)."""
    n = len(aa)
    return {
        "vibe pose (T,72)": {"pose": aa.reshape(n, 72), "betas": np.zeros((n, 10)), "orig_cam": np.ones((n, 4)),
                             "trans": trans},
        "pose (T,24,3,3) float32": {"pose": mats(aa).astype(np.float32), "transl": trans.astype(np.float32)},
        "smplx axis-angle": {"global_orient": aa[:, 0], "body_pose": aa[:, 1:].reshape(n, 69), "transl": trans},
        "smplx body (T,63)": {"global_orient": aa[:, 0], "body_pose": aa[:, 1:22].reshape(n, 63), "transl": trans},
        "4d-humans matrices": {"global_orient": mats(aa[:, :1]), "body_pose": mats(aa[:, 1:]), "transl": trans},
        "person dim 1": {"global_orient": aa[None, :, 0], "body_pose": mats(aa[None, :, 1:]), "transl": trans[None]},
        "(T,3,3) root, (T,21,3) body": {"global_orient": mats(aa[:, 0]), "body_pose": aa[:, 1:22], "trans": trans},
    }


def save(path, data):
    if path.suffix == ".pkl":
        with open(path, "wb") as f:
            pickle.dump(data, f)
    else:
        np.savez(path, **data)
    return path


def expected_motion(aa, trans, axes, fps=DEFAULT_VIDEO_FPS):
    return amass.smpl_to_motion(R.axis_angle_to_quat(aa[:, :22]), trans, fps, axes=axes)


def same(a: Motion, b: Motion, atol=1e-5) -> bool:
    return (np.allclose(a.global_positions(), b.global_positions(), atol=atol)
            and np.allclose(np.abs((a.rotations * b.rotations).sum(-1)), 1, atol=atol))


# ---- layouts and axes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
@pytest.mark.parametrize("layout", list(layouts(*params())))
def test_every_layout_reads_the_same_motion(tmp_path, layout, suffix):
    aa, trans = params()
    data = layouts(aa, trans)[layout]
    m = load_motion(save(tmp_path / f"take{suffix}", data))
    assert m.rotations.shape == (T, 22, 4) and m.fps == DEFAULT_VIDEO_FPS and m.name == "take"
    assert is_smpl_body(m.skeleton)
    assert same(m, expected_motion(aa, trans, "camera"), atol=1e-4)


def test_camera_frame_is_y_down_z_forward(tmp_path):
    """A person upright in the camera frame (global_orient Rx(180°)), 3 m in front, 1 m above the optical axis."""
    aa = np.zeros((T, 24, 3))
    aa[:, 0] = [np.pi, 0, 0]
    trans = np.tile([0.5, -1.0, 3.0], (T, 1))
    m = read_smpl(save(tmp_path / "up.pkl", {"pose": aa.reshape(T, 72), "trans": trans, "fps": 25}))
    J0 = SMPL_NEUTRAL_REST_JOINTS[0]
    # camera (x, y, z) -> project (x, -y, -z), cm; the pelvis is trans + rest pelvis (rotated with the world)
    assert np.allclose(m.root_positions, 100 * np.array([0.5 + J0[0], 1.0 - J0[1], -3.0 - J0[2]]))
    assert np.allclose(np.abs(m.rotations[:, 0, 3]), 1)  # upright: the identity, facing +Z (towards the camera)
    pos = m.global_positions()
    assert (pos[:, HEAD, 1] > pos[:, ANKLE, 1] + 100).all() and m.fps == 25


def test_amass_smplx_keys_are_z_up(tmp_path):
    aa, trans = params(1)
    data = {"root_orient": aa[:, 0], "pose_body": aa[:, 1:22].reshape(T, 63), "pose_hand": np.zeros((T, 90)),
            "trans": trans, "mocap_frame_rate": np.array(120.0), "betas": np.zeros(16),
            "gender": np.array("male"), "surface_model_type": np.array("smplx")}
    m = load_motion(save(tmp_path / "x.npz", data))
    assert m.fps == 120.0 and same(m, expected_motion(aa, trans, "z-up", fps=120.0))
    # the same as the AMASS `poses` file of these parameters
    np.savez(tmp_path / "a.npz", poses=aa.reshape(T, 72), trans=trans, mocap_framerate=np.array(120.0))
    assert same(m, read_amass(tmp_path / "a.npz"))


@pytest.mark.parametrize("axes", ["camera", "z-up", "y-up"])
def test_axes_can_be_given(tmp_path, axes):
    aa, trans = params(2)
    f = save(tmp_path / "p.pkl", {"pose": aa.reshape(T, 72), "trans": trans})
    assert same(read_smpl(f, axes=axes, fps=50), expected_motion(aa, trans, axes, fps=50))
    with pytest.raises(MotionsynthError, match="unknown SMPL axes"):
        read_smpl(f, axes="x-up")


def test_no_translation_keeps_the_pelvis_at_rest_and_one_frame_reads(tmp_path):
    aa, _ = params(3, frames=1)
    m = read_smpl(save(tmp_path / "one.pkl", {"global_orient": aa[0, 0], "body_pose": aa[0, 1:].reshape(69),
                                              "pred_cam": np.ones(3)}))
    assert m.num_frames == 1
    assert np.allclose(m.root_positions, 100 * R.quat_apply(R.axis_angle_to_quat(np.array([np.pi, 0, 0])),
                                                            SMPL_NEUTRAL_REST_JOINTS[0]))


# ---- people -----------------------------------------------------------------------------------------------------------
def test_one_track_of_a_tracker_output_is_read(tmp_path):
    aa, trans = params(4)
    f = save(tmp_path / "vibe.pkl", {7: {"pose": aa.reshape(T, 72), "trans": trans, "frame_ids": np.arange(T)}})
    assert same(read_smpl(f), expected_motion(aa, trans, "camera"))


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_several_people_are_refused_saying_how_many(tmp_path, suffix):
    aa, trans = params(5)
    two = {"global_orient": np.stack([aa[:, 0]] * 2), "body_pose": np.stack([aa[:, 1:].reshape(T, 69)] * 2),
           "transl": np.stack([trans] * 2)}
    with pytest.raises(FormatError, match="holds 2 people"):
        read_smpl(save(tmp_path / f"two{suffix}", two))


def test_several_tracks_are_refused_listing_them(tmp_path):
    aa, trans = params(6)
    track = {"pose": aa.reshape(T, 72), "trans": trans}
    with pytest.raises(FormatError, match=r"holds 3 people \(tracks 1, 4, 9\)") as e:
        read_smpl(save(tmp_path / "wham.pkl", {1: track, 4: track, 9: track}))
    assert "wham.pkl" in str(e.value)
    with pytest.raises(FormatError, match="holds 2 people"):
        read_smpl(save(tmp_path / "list.pkl", [track, track]))


# ---- bad values and shapes --------------------------------------------------------------------------------------------
def _bad_cases():
    aa, trans = params(7)
    nan = aa.reshape(T, 72).copy()
    nan[3, 10] = np.nan
    squash = mats(aa)
    squash[2, 5] *= 1.5
    return [
        ({"pose": nan}, "'pose' has NaN or infinite values (first at frame 3)"),
        ({"pose": aa.reshape(T, 72), "trans": np.full((T, 3), np.inf)}, "'trans' has NaN"),
        ({"pose": aa.reshape(T, 72) * 1e5}, "beyond ±10000 rad"),
        ({"pose": np.zeros((T, 50))}, "'pose' must be"),
        ({"pose": aa.reshape(T, 72), "trans": np.zeros((T + 1, 3))}, f"'trans' must be (T, 1, 3) or (T, 3) ({T} "),
        ({"global_orient": aa[:, 0], "body_pose": np.zeros((T, 70))}, "'body_pose' must be"),
        ({"body_pose": aa[:, 1:].reshape(T, 69)}, "has 'body_pose' but no 'global_orient'"),
        ({"pose": squash}, "'pose' holds matrices that are not rotations (first at frame 2"),
        ({"pose": np.full((T, 72), "x")}, "'pose' must hold numbers"),
        ({"pose": aa.reshape(T, 72), "fps": 0.0}, "'fps' must be a positive frame rate"),
        ({"pose": aa.reshape(T, 72), "fps": np.array([30.0, 60.0])}, "'fps' must be one number"),
        ({"verts": np.zeros((T, 5, 3))}, "no SMPL parameters"),
    ]


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
@pytest.mark.parametrize("case", range(len(_bad_cases())))
def test_bad_files(tmp_path, case, suffix):
    data, message = _bad_cases()[case]
    f = save(tmp_path / f"bad{suffix}", data)
    with pytest.raises(FormatError) as e:
        read_smpl(f)
    assert message in str(e.value) and "bad" + suffix in str(e.value)


def test_size_is_checked_before_a_motion_is_built(tmp_path):
    aa, trans = params(8)
    for suffix in (".pkl", ".npz"):
        f = save(tmp_path / f"big{suffix}", {"pose": aa.reshape(T, 72), "trans": trans})
        with limits.allow_joint_frames(T * 24 - 1), pytest.raises(limits.LimitError, match="'pose'"):
            read_smpl(f)
        with limits.allow_joint_frames(T * 24):
            assert read_smpl(f).num_frames == T


# ---- the restricted unpickler -----------------------------------------------------------------------------------------
class _Shell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_a_command_is_refused_and_does_not_run_it(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pkl"
    f.write_bytes(pickle.dumps({"pose": np.zeros((T, 72)), "x": _Shell(marker)}))
    with pytest.raises(FormatError) as e:
        load_pickle(f)
    name = f"{os.system.__module__}.system"  # posix.system here
    assert f"refuses {name}" in str(e.value) and "evil.pkl" in str(e.value)
    with pytest.raises(FormatError, match=f"refuses {name}"):
        load_motion(f)
    assert not marker.exists()


def test_chumpy_like_object_is_refused(tmp_path, monkeypatch):
    chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    data = pickle.dumps({"pose": Ch(np.zeros((T, 72))), "trans": np.zeros((T, 3))}, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    (tmp_path / "model.pkl").write_bytes(data)
    with pytest.raises(FormatError, match=r"refuses chumpy\.ch\.Ch"):
        read_smpl(tmp_path / "model.pkl")


@pytest.mark.parametrize("payload, message", [
    (b"\x80\x02cnumpy\nndarray\nK\x05\x85R.", "not a readable pickle"),  # numpy.ndarray((5,)) called: not allowed
    (b"cbuiltins\neval\n(S'1+1'\ntR.", "refuses builtins.eval"),
    (b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81.", "NumpyArrayWrapper: a .pkl is read only when it "
                                                                "holds plain arrays.*joblib.dump file"),
    (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(L100000000000L\ntS'b'\ntR.", "bytes, more than"),
    (b"\x80\x04\x95", "not a readable pickle"),
    (b"", "not a readable pickle"),
    (b"hello world", "not a readable pickle"),
])
def test_crafted_pickles(tmp_path, payload, message):
    f = tmp_path / "x.pkl"
    f.write_bytes(payload)
    with pytest.raises((FormatError, limits.LimitError), match=message):
        load_pickle(f)


def test_plain_pickles_of_every_protocol_and_numpy_spelling(tmp_path):
    from collections import OrderedDict

    value = OrderedDict(pose=np.arange(72.0, dtype=np.float32).reshape(1, 72) / 100, fps=np.float64(24.0),
                        betas=[0.1, 0.2], gender="neutral", ids=(1, 2), flags={True, None}, raw=b"\x00\x01")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(value, protocol=protocol)
        for spelling in (b"numpy._core", b"numpy.core"):  # numpy 2 and numpy 1 write different module names
            f = tmp_path / f"p{protocol}.pkl"
            f.write_bytes(data.replace(b"numpy._core", spelling) if protocol < 4 else data)
            back = load_pickle(f)
            assert np.array_equal(back["pose"], value["pose"]) and back["pose"].dtype == np.float32
            assert back["fps"] == 24.0 and back["betas"] == [0.1, 0.2] and back["raw"] == b"\x00\x01"
            assert back["gender"] == "neutral" and back["ids"] == (1, 2) and back["flags"] == {True, None}
            assert read_smpl(f).fps == 24.0


def test_torch_tensors_are_refused(tmp_path):
    import torch

    f = tmp_path / "t.pkl"
    f.write_bytes(pickle.dumps({"pose": torch.zeros(T, 72)}))
    with pytest.raises(FormatError, match=r"refuses torch\..*save them as numpy arrays"):
        read_smpl(f)


def test_pickle_file_size_and_opcodes_are_bounded(tmp_path):
    f = save(tmp_path / "p.pkl", {"pose": np.zeros((200, 72)), "many": list(range(1000))})
    with limits.allow_joint_frames(100), pytest.raises(limits.LimitError, match="opcodes"):
        load_pickle(f)
    big = tmp_path / "big.pkl"
    big.write_bytes(pickle.dumps(np.zeros(17 * 2**20, dtype=np.uint8)))
    with limits.allow_joint_frames(1000), pytest.raises(limits.LimitError, match="bytes, more than"):
        load_pickle(big)


# ---- writing ----------------------------------------------------------------------------------------------------------
def amass_file(path, seed=0, frames=T, width=156):
    rng = np.random.default_rng(seed)
    poses = rng.normal(0, 0.5, (frames, width))
    poses[:, :3] += [np.pi / 2, 0, 0]
    np.savez(path, poses=poses, trans=rng.normal(0, 1, (frames, 3)), mocap_framerate=np.array(60.0),
             betas=rng.normal(0, 1, 16), gender=np.array("female"))
    return path


def test_read_write_read_is_exact(tmp_path):
    src = amass_file(tmp_path / "a.npz")
    m = read_amass(src)
    write_smpl(m, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz", allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    with np.load(src) as z:
        orig_trans, orig_poses = z["trans"], z["poses"]
    assert out["poses"].shape == (T, 72) and np.all(out["poses"][:, 66:] == 0)
    np.testing.assert_allclose(out["trans"], orig_trans, atol=1e-9)  # the file's own trans, pelvis offset undone
    same_rot = np.abs((R.axis_angle_to_quat(out["poses"][:, :66].reshape(T, 22, 3))
                       * R.axis_angle_to_quat(orig_poses[:, :66].reshape(T, 22, 3))).sum(-1))
    np.testing.assert_allclose(same_rot, 1, atol=1e-9)
    assert np.array_equal(out["root_orient"], out["poses"][:, :3]) and out["pose_body"].shape == (T, 63)
    assert out["betas"].shape == (10,) and not out["betas"].any() and str(out["gender"]) == "neutral"
    assert float(out["mocap_framerate"]) == float(out["mocap_frame_rate"]) == 60.0
    back = load_motion(tmp_path / "out.npz")
    assert back.fps == 60.0 and back.skeleton.to_dict() == m.skeleton.to_dict()
    np.testing.assert_allclose(back.root_positions, m.root_positions, atol=1e-6)
    np.testing.assert_allclose(np.abs((back.rotations * m.rotations).sum(-1)), 1, atol=1e-6)
    np.testing.assert_allclose(back.global_positions(), m.global_positions(), atol=1e-6)


@pytest.mark.parametrize("rest", ["built-in", "custom"])
def test_write_read_of_a_motion_on_the_smpl_skeleton(tmp_path, rest):
    joints = SMPL_NEUTRAL_REST_JOINTS * (1.1 if rest == "custom" else 1.0)
    sk = smpl_skeleton(joints)
    rng = np.random.default_rng(3)
    rot = R.quat_normalize(rng.normal(size=(T, 22, 4)))
    m = Motion(sk, rot, rng.normal(0, 100, (T, 3)), fps=30.0, name="mine")
    pose, trans = amass.motion_to_smpl(m)
    np.testing.assert_allclose(trans, R.quat_apply(R.quat_inv(R.axis_angle_to_quat(np.array([-np.pi / 2, 0, 0]))),
                                                   m.root_positions / 100) - joints[0], atol=1e-9)
    back = amass.smpl_to_motion(R.axis_angle_to_quat(pose), trans, 30.0, rest_joints=joints)
    assert same(back, m, atol=1e-9)
    write_smpl(m, tmp_path / "mine.npz")
    read = read_amass(tmp_path / "mine.npz")
    if rest == "built-in":
        assert same(read, m, atol=1e-6) and np.array_equal(read.skeleton.offsets, m.skeleton.offsets)
    else:  # betas are not written: a reader without body models gets the neutral bones, the same `trans` path
        C = R.axis_angle_to_quat(np.array([-np.pi / 2, 0, 0]))
        np.testing.assert_allclose(read.root_positions - R.quat_apply(C, read.skeleton.offsets[0]),
                                   m.root_positions - R.quat_apply(C, m.skeleton.offsets[0]), atol=1e-6)
        np.testing.assert_allclose(np.abs((read.rotations * m.rotations).sum(-1)), 1, atol=1e-6)


def test_write_refusals(tmp_path):
    m = read_amass(amass_file(tmp_path / "a.npz"))
    with pytest.raises(MotionsynthError, match="written as .npz, not '.pkl'"):
        write_smpl(m, tmp_path / "x.pkl")
    moved = Motion(m.skeleton, m.rotations, m.root_positions, m.fps, translations=np.ones((T, 22, 3)), name="t")
    with pytest.raises(MotionsynthError, match="animates joint translations"):
        write_smpl(moved, tmp_path / "t.npz")
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob("t*"))


def test_foreign_skeleton_is_retargeted(tmp_path):
    m = make_motion(make_skeleton(), frames=10)
    write_smpl(m, tmp_path / "f.npz")
    back = load_motion(tmp_path / "f.npz")
    assert is_smpl_body(back.skeleton) and back.num_frames == 10 and back.fps == m.fps
