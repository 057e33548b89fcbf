"""The npz motion file, `load_motion` / `save_motion` dispatch and `motionsynth convert`."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.errors import FormatError, MotionsynthError
from motionsynth.io import load_motion, save_motion
from motionsynth.io import npz as npz_module
from motionsynth.io.bvh import parse_bvh
from motionsynth.io.npz import load_npz, save_npz
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

from helpers import run_cli

BVH = """HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
\tJOINT LeftUpLeg
\t{
\t\tOFFSET 3 -2 0
\t\tCHANNELS 3 Zrotation Yrotation Xrotation
\t\tEnd Site
\t\t{
\t\t\tOFFSET 0 -40 0
\t\t}
\t}
\tJOINT Spine
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\t}
}
MOTION
Frames: 4
Frame Time: 0.0333333
0 90 0 10 20 30 40 50 60 0 10 0 1 2 3
1 91 0 11 21 31 41 51 61 0 10.5 0 2 3 4
2 92 0 12 22 32 42 52 62 0 11 0 3 4 5
3 93 0 13 23 33 43 53 63 0 11.5 0 4 5 6
"""




def fk_error(a: Motion, b: Motion) -> float:
    return float(np.abs(a.global_positions() - b.global_positions()).max())


@pytest.fixture
def bvh_file(tmp_path):
    path = tmp_path / "walk.bvh"
    path.write_text(BVH)
    return path


def test_npz_round_trip_keeps_everything(tmp_path):
    m = parse_bvh(BVH, "walk.bvh")
    m.labels = {"style": np.int64(3), "content": "walk"}
    save_npz(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:  # plain arrays only
        assert {"skeleton", "rotations", "root_positions", "translations", "fps", "labels", "name"} <= set(z.files)
    back = load_npz(tmp_path / "m.npz")
    assert np.array_equal(back.rotations, m.rotations) and np.array_equal(back.translations, m.translations)
    assert np.array_equal(back.root_positions, m.root_positions)
    assert back.fps == 30.0 and back.name == "walk" and back.labels == {"style": 3, "content": "walk"}
    assert back.skeleton.to_dict() == m.skeleton.to_dict()


def test_npz_without_translations(tmp_path):
    skel = Skeleton(["a", "b"], [-1, 0], [[0, 0, 0], [0, 1, 0]])
    m = Motion(skel, R.quat_identity((3, 2)), np.zeros((3, 3)), fps=60)
    save_motion(m, tmp_path / "m.npz")
    back = load_motion(tmp_path / "m.npz")
    assert back.translations is None and back.num_frames == 3


def test_bvh_npz_bvh_round_trip(bvh_file, tmp_path):
    m = load_motion(bvh_file)
    save_motion(m, tmp_path / "a.npz")
    save_motion(load_motion(tmp_path / "a.npz"), tmp_path / "b.bvh")
    back = load_motion(tmp_path / "b.bvh")
    assert back.skeleton.channels == m.skeleton.channels
    assert fk_error(m, back) < 1e-3


def test_foreign_and_broken_npz(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(FormatError, match="not a motionsynth motion file"):
        load_npz(tmp_path / "other.npz")
    with pytest.raises(FormatError, match="unrecognised .npz"):
        load_motion(tmp_path / "other.npz")
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    with pytest.raises(FormatError, match="not a valid .npz"):
        load_motion(tmp_path / "broken.npz")


def test_amass_npz_is_dispatched_to_the_amass_reader(tmp_path):
    T = 5
    np.savez(tmp_path / "amass.npz", poses=np.zeros((T, 156)), trans=np.zeros((T, 3)),
             mocap_framerate=np.array(120.0), betas=np.zeros(16), gender=np.array("neutral"))
    m = load_motion(tmp_path / "amass.npz")
    assert m.num_frames == T and m.fps == 120.0
    with pytest.raises(FormatError, match="AMASS"):
        load_npz(tmp_path / "amass.npz")


def test_dispatch_errors(tmp_path):
    with pytest.raises(FormatError, match="unknown motion file type '.fbx'"):
        load_motion(tmp_path / "x.fbx")
    with pytest.raises(FormatError, match="no such file"):
        load_motion(tmp_path / "missing.bvh")
    m = parse_bvh(BVH)
    with pytest.raises(MotionsynthError, match="unknown output type"):
        save_motion(m, tmp_path / "x.csv")


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    m = parse_bvh(BVH)

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(npz_module.np, "savez", broken_savez)
    with pytest.raises(OSError):
        save_npz(m, tmp_path / "out.npz")
    assert list(tmp_path.iterdir()) == []


# ---- the command -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("out_name", ["out.bvh", "out.npz"])
def test_convert_bvh(bvh_file, tmp_path, out_name, capsys):
    out = tmp_path / out_name
    assert run_cli("convert", str(bvh_file), str(out)) == 0
    assert "wrote" in capsys.readouterr().out
    assert fk_error(load_motion(bvh_file), load_motion(out)) < 1e-3


def test_convert_npz_to_bvh_and_resample(bvh_file, tmp_path):
    assert run_cli("convert", str(bvh_file), str(tmp_path / "a.npz")) == 0
    assert run_cli("convert", str(tmp_path / "a.npz"), str(tmp_path / "b.bvh"), "--fps", "60") == 0
    back = load_motion(tmp_path / "b.bvh")
    assert back.fps == 60.0 and back.num_frames == 7
    src = load_motion(bvh_file)
    assert np.abs(back.global_positions()[::2] - src.global_positions()).max() < 1e-3


def test_convert_amass(tmp_path):
    T = 4
    np.savez(tmp_path / "amass.npz", poses=np.zeros((T, 156)), trans=np.zeros((T, 3)),
             mocap_frame_rate=np.array(60.0), betas=np.zeros(16))
    assert run_cli("convert", str(tmp_path / "amass.npz"), str(tmp_path / "a.bvh")) == 0
    m = load_motion(tmp_path / "a.bvh")
    assert m.num_frames == T and m.fps == 60.0


@pytest.mark.parametrize("args, message", [
    (["bad.bvh", "out.bvh"], "bad.bvh:24: frame line has 14 values, expected 15"),
    (["missing.bvh", "out.npz"], "missing.bvh: no such file"),
    (["walk.bvh", "out.txt"], "unknown output type '.txt'"),
    (["walk.bvh", "out.bvh", "--fps", "0"], "--fps must be a finite frame rate from 0.001 to 1,000,000"),
])
def test_convert_errors_exit_2_without_output(bvh_file, tmp_path, monkeypatch, capsys, args, message):
    lines = BVH.splitlines()
    lines[23] = " ".join(lines[23].split()[:-1])  # the first frame line, line 24
    (tmp_path / "bad.bvh").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    assert run_cli("convert", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def test_convert_does_not_overwrite_on_failure(tmp_path, capsys):
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT a\n{\n")
    out = tmp_path / "out.bvh"
    out.write_text("previous")
    assert run_cli("convert", str(tmp_path / "bad.bvh"), str(out)) == 2
    assert out.read_text() == "previous"


@pytest.mark.parametrize("fps", ["0", "-1", "nan", "inf", "-inf", "1e-9", "1e9", "1e400"])
def test_convert_refuses_an_fps_out_of_range_in_one_line(bvh_file, tmp_path, capsys, fps):
    from helpers import cli_output

    for out in (tmp_path / "o.bvh", tmp_path / "o.npz"):
        code, _, err = cli_output(capsys, "convert", bvh_file, out, "--fps", fps)
        assert code == 2 and err.startswith("error: --fps") and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_convert_fps_at_the_ends_of_the_range(bvh_file, tmp_path):
    assert run_cli("convert", bvh_file, tmp_path / "slow.bvh", "--fps", "0.001") == 0
    assert load_motion(tmp_path / "slow.bvh").num_frames == 1
    assert run_cli("convert", bvh_file, tmp_path / "fast.npz", "--fps", "1e6") == 0  # 100,001 frames x 3 joints
    assert load_motion(tmp_path / "fast.npz").num_frames == 100_001


# ---- SMPL parameters: .pkl in, --to smpl out ------------------------------------------------------------------------
def _estimator_pkl(path, T=6, **extra):
    import pickle

    rng = np.random.default_rng(0)
    pose = rng.normal(0, 0.3, (T, 72))
    pose[:, :3] = [np.pi, 0, 0]
    data = {"pose": pose, "trans": rng.normal(0, 1, (T, 3)) + [0, 0, 4], "betas": np.zeros((T, 10)), **extra}
    path.write_bytes(pickle.dumps({0: data}))
    return path


def test_convert_estimator_pkl_to_bvh_and_smpl(tmp_path, capsys):
    from helpers import cli_output

    src = _estimator_pkl(tmp_path / "vibe_output.pkl")
    code, out, err = cli_output(capsys, "convert", src, tmp_path / "a.bvh")
    assert code == 0, err
    assert "6 frames @ 30 fps, 22 joints" in out
    m = load_motion(src)
    bvh = load_motion(tmp_path / "a.bvh")  # the joints depth first, as BVH lists them
    order = [bvh.skeleton.names.index(n) for n in m.skeleton.names]
    assert np.abs(m.global_positions() - bvh.global_positions()[:, order]).max() < 1e-3
    # the SMPL body read back from BVH (another joint order) is written as SMPL without retargeting
    assert run_cli("convert", tmp_path / "a.bvh", tmp_path / "b.npz", "--to", "smpl") == 0
    assert fk_error(m, load_motion(tmp_path / "b.npz")) < 1e-3
    code, out, err = cli_output(capsys, "convert", src, tmp_path / "s.npz", "--to", "smpl")
    assert code == 0 and "SMPL parameters: 6 frames @ 30 fps" in out, err
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert z["poses"].shape == (6, 72) and z["trans"].shape == (6, 3)
    assert fk_error(m, load_motion(tmp_path / "s.npz")) < 1e-6
    # the camera frame by default; --smpl-axes names another
    assert run_cli("convert", src, tmp_path / "z.npz", "--smpl-axes", "z-up") == 0
    assert fk_error(m, load_motion(tmp_path / "z.npz")) > 10


def test_convert_amass_to_smpl_round_trip(tmp_path):
    T = 5
    rng = np.random.default_rng(1)
    poses, trans = rng.normal(0, 0.4, (T, 156)), rng.normal(0, 1, (T, 3))
    np.savez(tmp_path / "amass.npz", poses=poses, trans=trans, mocap_framerate=np.array(120.0))
    assert run_cli("convert", tmp_path / "amass.npz", tmp_path / "smpl.npz", "--to", "smpl", "--fps", "60") == 0
    with np.load(tmp_path / "smpl.npz", allow_pickle=False) as z:
        assert float(z["mocap_framerate"]) == 60.0 and z["poses"].shape == (3, 72)
        np.testing.assert_allclose(z["trans"], trans[::2], atol=1e-9)


@pytest.mark.parametrize("case, message", [
    ("objects", "refuses posix.system"),
    ("shape", "'pose' must be"),
    ("nan", "'pose' has NaN or infinite values (first at frame 2)"),
    ("people", "holds 2 people (tracks 0, 1)"),
    ("to-bvh", "--to smpl writes an AMASS-style .npz; OUT must end in .npz, not '.bvh'"),
    ("to-other", "--to must be one of smpl, got 'fbx'"),
    ("axes", "--smpl-axes must be one of z-up, camera, y-up, got 'up'"),
    ("axes-bvh", "--smpl-axes applies to SMPL parameter files (.npz or .pkl), not '.bvh'"),
    ("pkl-out", "unknown output type '.pkl'; expected one of .bvh, .npz"),
])
def test_convert_smpl_errors_exit_2_in_one_line_without_output(bvh_file, tmp_path, capsys, case, message):
    import os
    import pickle

    from helpers import cli_output

    marker = tmp_path / "ran"

    class Shell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    pose = np.zeros((6, 72))
    src, out, extra = tmp_path / "in.pkl", tmp_path / "out.npz", []
    if case == "objects":
        src.write_bytes(pickle.dumps({"pose": pose, "cam": Shell()}))
    elif case == "shape":
        src.write_bytes(pickle.dumps({"pose": np.zeros((6, 71))}))
    elif case == "nan":
        pose[2, 7] = np.nan
        src.write_bytes(pickle.dumps({"pose": pose}))
    elif case == "people":
        src.write_bytes(pickle.dumps([{"pose": pose}, {"pose": pose}]))
    else:
        _estimator_pkl(src)
        out, extra = {"to-bvh": (tmp_path / "out.bvh", ["--to", "smpl"]), "to-other": (out, ["--to", "fbx"]),
                      "axes": (out, ["--smpl-axes", "up"]), "axes-bvh": (out, ["--smpl-axes", "camera"]),
                      "pkl-out": (tmp_path / "out.pkl", [])}[case]
        if case == "axes-bvh":
            src = bvh_file
    for to in ([], ["--to", "smpl"]) if case in ("objects", "shape", "nan", "people") else ([],):
        code, _, err = cli_output(capsys, "convert", src, out, *extra, *to)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert message in err and "Traceback" not in err
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]
    assert not marker.exists()


def test_convert_foreign_skeleton_to_smpl(bvh_file, tmp_path, capsys):
    import importlib.util

    from helpers import cli_output

    code, out, err = cli_output(capsys, "convert", bvh_file, tmp_path / "s.npz", "--to", "smpl")
    if importlib.util.find_spec("motionsynth.retarget") is None:
        assert code == 2 and "not the 22-joint SMPL body, and retargeting is not available" in err
        assert not (tmp_path / "s.npz").exists()
    else:  # retargeting is there: a 3-joint rig may still not map onto a body, but then it says so in one line
        assert (code == 0 and load_motion(tmp_path / "s.npz").num_frames == 4) or (
            code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "s.npz").exists()), err
