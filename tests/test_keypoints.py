"""Keypoint layouts, files and the skeleton fit (`motionsynth.io.keypoints`, `motionsynth.fit`) on synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionsynth import limits
from motionsynth import rotations as R
from motionsynth.errors import FormatError, InvalidMotionError, MotionsynthError, SkeletonMismatchError
from motionsynth.fit import fit_motion, motion_keypoints, rest_skeleton
from motionsynth.io.keypoints import LAYOUTS, fill_missing, from_y_up, read_keypoints, to_y_up, write_keypoints
from motionsynth.motion import Motion

COUNTS = {"h36m": 17, "coco": 17, "smpl24": 24, "mediapipe": 33}


def known_motion(layout: str, frames: int = 40, seed: int = 0, spread: float = 0.6) -> Motion:
    """A random motion (cm) on the layout's rest skeleton that the layout's points can observe: a joint whose frame
    is read from its parent's bone (an ``origin``: the chest, from the spine) only twists about that bone."""
    rng = np.random.default_rng(seed)
    sk, lay = rest_skeleton(layout), LAYOUTS[layout]
    rotvecs = rng.normal(0, spread, (frames, len(sk), 3))
    for j, spec in enumerate(lay.joints):
        if spec.origin:
            axis = lay.template[lay.indices(spec.aim)].mean(0) - lay.template[lay.indices(spec.origin)].mean(0)
            rotvecs[:, j] = rotvecs[:, j, :1] * axis / np.linalg.norm(axis)
    return Motion(sk, R.axis_angle_to_quat(rotvecs), rng.normal(0, 50, (frames, 3)) + [0, 90, 0], 30.0)


def rigid_twist_joints(layout: str) -> list[int]:
    """Joints whose twist points are the joint itself or its children (rigid with it): their twist is observable."""
    lay = LAYOUTS[layout]
    owner = {lay.joints[j].points[0]: j for j in lay.point_joints}
    out = []
    for j, spec in enumerate(lay.joints):
        if spec.twist and all(owner[p] == j or lay.parents[owner[p]] == j for p in spec.twist[0] + spec.twist[1]):
            out.append(j)
    return out


# ---- layouts ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(COUNTS))
def test_layouts(name):
    lay = LAYOUTS[name]
    assert lay.num_points == COUNTS[name] and lay.template.shape == (COUNTS[name], 3)
    names = lay.joint_names
    assert names[0] == "pelvis" and len(set(names)) == len(names)
    assert {"left_hip", "right_knee", "left_ankle", "left_shoulder", "right_elbow", "left_wrist"} <= set(names)
    sk = rest_skeleton(name)
    assert (sk.symmetry != np.arange(len(sk))).sum() >= 10  # the body map sees sides
    assert np.allclose(sk.offsets[sk.symmetry] * [-1, 1, 1], sk.offsets)  # a symmetric rig


def test_h36m_order_and_virtual_joints():
    assert LAYOUTS["h36m"].points[:4] == ("Hip", "RHip", "RKnee", "RFoot")
    coco = LAYOUTS["coco"]
    assert coco.joints[0].points == ("left_hip", "right_hip")  # pelvis = mid-hips
    assert {"neck", "head", "nose", "left_ear"} <= set(coco.joint_names)
    assert "left_collar" in LAYOUTS["smpl24"].joint_names


# ---- the fit ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(COUNTS))
def test_fit_round_trip(name):
    truth = known_motion(name)
    kp = motion_keypoints(truth, name)
    assert kp.shape == (40, COUNTS[name], 3)
    fitted = fit_motion(kp, name, 30.0, name="x")
    back = motion_keypoints(fitted, name)
    assert np.linalg.norm(back - kp, axis=-1).mean() < 1e-3  # < 1 mm
    assert np.allclose(fitted.skeleton.offsets, truth.skeleton.offsets, atol=1e-6)
    twist = rigid_twist_joints(name)
    assert twist
    dots = np.abs((truth.global_rotations()[:, twist] * fitted.global_rotations()[:, twist]).sum(-1))
    assert dots.min() > 1 - 1e-9  # rotations recovered, twist included


def test_fit_without_twist_keeps_positions_not_twist():
    truth = known_motion("h36m")
    fitted = fit_motion(motion_keypoints(truth, "h36m"), "h36m", 30.0)
    knee = fitted.skeleton.index("left_knee")
    dots = np.abs((truth.global_rotations()[:, knee] * fitted.global_rotations()[:, knee]).sum(-1))
    assert dots.min() < 0.99  # no second direction for the shin: its twist is the parent's, not the truth's


def test_fit_median_bone_lengths_and_symmetry():
    truth = known_motion("h36m", frames=101)
    kp = motion_keypoints(truth, "h36m")
    lay = LAYOUTS["h36m"]
    knee, foot = lay.index("LKnee"), lay.index("LFoot")
    noisy = kp.copy()
    outliers = np.arange(0, 101, 3)  # a third of the frames: the shin 30 % longer
    noisy[outliers, foot] = kp[outliers, knee] + 1.3 * (kp[outliers, foot] - kp[outliers, knee])
    sk = fit_motion(noisy, "h36m", 30.0).skeleton
    shin = np.linalg.norm(truth.skeleton.offsets[truth.skeleton.index("left_ankle")])
    assert np.linalg.norm(sk.offsets[sk.index("left_ankle")]) == pytest.approx(shin, rel=1e-6)
    longer = kp.copy()
    rfoot, rknee = lay.index("RFoot"), lay.index("RKnee")
    longer[:, rfoot] = kp[:, rknee] + 1.1 * (kp[:, rfoot] - kp[:, rknee])
    sym = fit_motion(longer, "h36m", 30.0).skeleton
    free = fit_motion(longer, "h36m", 30.0, symmetric=False).skeleton
    lengths = lambda s, n: np.linalg.norm(s.offsets[s.index(n)])
    assert lengths(sym, "left_ankle") == pytest.approx(lengths(sym, "right_ankle"))
    assert lengths(sym, "left_ankle") == pytest.approx(1.05 * shin, rel=1e-6)
    assert lengths(free, "right_ankle") == pytest.approx(1.1 * shin, rel=1e-6)


def test_fit_is_a_motion_in_cm_rooted_at_the_pelvis():
    truth = known_motion("coco")
    kp = motion_keypoints(truth, "coco")
    m = fit_motion(kp, "coco", 25.0)
    assert m.fps == 25.0 and m.skeleton.root == 0
    assert np.allclose(m.root_positions / 100, (kp[:, 11] + kp[:, 12]) / 2)  # mid-hips, metres → cm
    rest = rest_skeleton("coco")
    assert rest.offsets[0, 1] > 50  # the rest pose stands on the floor: pelvis height in cm


def test_fit_refuses_bad_positions():
    kp = LAYOUTS["h36m"].template[None].repeat(3, 0)
    with pytest.raises(InvalidMotionError, match="17, 3"):
        fit_motion(kp[:, :16], "h36m", 30.0)
    bad = kp.copy()
    bad[1, 4] = np.nan
    with pytest.raises(InvalidMotionError, match="frame 1, point 'LHip'"):
        fit_motion(bad, "h36m", 30.0)
    with pytest.raises(MotionsynthError, match="unknown keypoint layout"):
        fit_motion(kp, "openpose", 30.0)
    with limits.allow_joint_frames(10), pytest.raises(limits.LimitError):
        fit_motion(kp, "h36m", 30.0)


def test_motion_keypoints_needs_the_layout_joints():
    m = known_motion("h36m")
    with pytest.raises(SkeletonMismatchError, match="nose"):
        motion_keypoints(m, "coco")


# ---- files ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npy", ".npz", ".json", ".csv"])
@pytest.mark.parametrize("up", ["y", "z", "-y"])
def test_files_round_trip(tmp_path, suffix, up):
    kp = motion_keypoints(known_motion("coco", frames=7), "coco")
    path = tmp_path / f"k{suffix}"
    write_keypoints(path, kp, "coco", fps=25.0, up=up)
    back = read_keypoints(path, "coco", up=up)
    assert back.layout == "coco" and np.allclose(back.positions, kp, atol=1e-7)
    assert back.fps == (25.0 if suffix in (".npz", ".json") else None)


def test_axes_and_units(tmp_path):
    p = np.array([[1.0, 2.0, 3.0]])
    assert np.allclose(to_y_up(p, "z"), [[1, 3, -2]]) and np.allclose(to_y_up(p, "-y"), [[1, -2, -3]])
    for up in ("y", "z", "-y"):
        assert np.allclose(from_y_up(to_y_up(p, up), up), p)
    kp = LAYOUTS["h36m"].template[None]
    write_keypoints(tmp_path / "mm.npy", kp, "h36m", unit="mm")
    assert np.allclose(np.load(tmp_path / "mm.npy"), kp * 1000)
    assert np.allclose(read_keypoints(tmp_path / "mm.npy", "h36m", unit="mm").positions, kp)


def test_readers_take_plain_files(tmp_path):
    kp = LAYOUTS["h36m"].template[None].repeat(4, 0)
    (tmp_path / "a.json").write_text(json.dumps(kp.tolist()))
    np.savez(tmp_path / "one.npz", whatever=kp)
    np.savez(tmp_path / "named.npz", joints3d=kp, other=np.zeros(3))
    np.savetxt(tmp_path / "b.csv", kp.reshape(4, -1), delimiter=",")
    for name in ("a.json", "one.npz", "named.npz", "b.csv"):
        assert np.allclose(read_keypoints(tmp_path / name, "h36m").positions, kp), name


def test_short_gaps_filled_long_gaps_refused(tmp_path):
    kp = motion_keypoints(known_motion("h36m", frames=30), "h36m")
    gap = kp.copy()
    gap[10:13, 5] = np.nan
    filled = fill_missing(gap, LAYOUTS["h36m"].points)
    assert np.allclose(filled[10:13, 5], kp[9, 5] + (kp[13, 5] - kp[9, 5]) * np.arange(1, 4)[:, None] / 4)
    gap[0:2, 3] = np.nan  # at the start: held from the first observed frame
    assert np.allclose(fill_missing(gap, LAYOUTS["h36m"].points)[0:2, 3], kp[2, 3])
    long = kp.copy()
    long[5:20, 13] = np.nan
    np.save(tmp_path / "long.npy", long)
    with pytest.raises(FormatError, match=r"longer than 5 frames.*LWrist frames 5-19") as e:
        read_keypoints(tmp_path / "long.npy", "h36m")
    assert e.value.path == str(tmp_path / "long.npy")
    assert read_keypoints(tmp_path / "long.npy", "h36m", max_gap=20).positions.shape == kp.shape
    with pytest.raises(FormatError, match="longer than 0"):
        fill_missing(gap, LAYOUTS["h36m"].points, max_gap=0)


@pytest.mark.parametrize("content, message", [
    (lambda kp: np.where(np.arange(17)[None, :, None] == 6, np.nan, kp), r"missing \(NaN\) in every frame: \['LFoot'\]"),
    (lambda kp: np.where(np.arange(17)[None, :, None] == 6, np.inf, kp), r"infinite values at 4 frames.*'LFoot'"),
    (lambda kp: kp[:, :16], "16 points per frame, but layout 'h36m' has 17"),
    (lambda kp: kp[0], r"must be \(frames, points, 3\), got shape \(17, 3\)"),
    (lambda kp: kp[:, :, :2], r"got shape \(4, 17, 2\)"),
    (lambda kp: kp[:0], "no frames"),
])
def test_bad_npy_refused(tmp_path, content, message):
    kp = LAYOUTS["h36m"].template[None].repeat(4, 0)
    path = tmp_path / "bad.npy"
    np.save(path, content(kp))
    with pytest.raises(FormatError, match=message):
        read_keypoints(path, "h36m")


def test_wrong_count_names_other_layouts(tmp_path):
    np.save(tmp_path / "smpl.npy", LAYOUTS["smpl24"].template[None])
    with pytest.raises(FormatError, match=r"24 points per frame, but layout 'coco' has 17 \(layouts of 24 points: "
                                          r"smpl24\)"):
        read_keypoints(tmp_path / "smpl.npy", "coco")


@pytest.mark.parametrize("name, text, message", [
    ("a.json", "{", "not valid JSON"),
    ("b.json", '{"frames": []}', "needs a 'keypoints' list"),
    ("c.json", '[[[1, 2, 3]], [[1, 2]]]', "three numbers"),
    ("d.json", '{"layout": "coco", "keypoints": []}', "layout is 'coco', not 'h36m'"),
    ("e.json", '{"fps": -3, "keypoints": []}', "fps must be finite and positive"),
    ("f.csv", "1,2,3\n", "3 columns in a row, but layout 'h36m' needs 51"),
    ("g.csv", ",".join(["1"] * 50 + ["x"]) + "\n", "not a number"),
    ("h.txt", "", "unknown keypoint file type '.txt'"),
    ("i.npy", "not numpy", "not a valid .npy file"),
])
def test_bad_files_refused(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(FormatError, match=message):
        read_keypoints(tmp_path / name, "h36m")


def test_npz_without_a_keypoint_array(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3), b=np.zeros(3))
    with pytest.raises(FormatError, match="expected a single array or one named keypoints"):
        read_keypoints(tmp_path / "x.npz", "h36m")
    with pytest.raises(FormatError, match="no such file"):
        read_keypoints(tmp_path / "missing.npz", "h36m")


def test_too_large_refused_before_reading(tmp_path):
    kp = LAYOUTS["h36m"].template[None].repeat(20, 0)
    for suffix in (".npy", ".npz", ".json", ".csv"):
        write_keypoints(tmp_path / f"k{suffix}", kp, "h36m")
        with limits.allow_joint_frames(100), pytest.raises(limits.LimitError):
            read_keypoints(tmp_path / f"k{suffix}", "h36m")


def test_writer_refuses_bad_input_and_leaves_nothing(tmp_path):
    kp = LAYOUTS["h36m"].template[None]
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        write_keypoints(tmp_path / "a.npy", kp[:, :3], "h36m")
    with pytest.raises(ValueError, match="NaN"):
        write_keypoints(tmp_path / "a.npy", kp * np.nan, "h36m")
    (tmp_path / "file").write_text("")
    with pytest.raises(MotionsynthError, match="is a file"):
        write_keypoints(tmp_path / "file" / "a.npy", kp, "h36m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_writer_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    import motionsynth.io.keypoints as K

    def broken(*args):
        raise OSError("disk full")
    monkeypatch.setattr(K, "_write_csv", broken)
    with pytest.raises(OSError):
        write_keypoints(tmp_path / "a.csv", LAYOUTS["h36m"].template[None], "h36m")
    assert list(tmp_path.iterdir()) == []
