"""BVH reading and writing: layouts, round trips, errors with line numbers, folders and zips."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionsynth import rotations as R
from motionsynth.errors import FormatError, MotionsynthError
from motionsynth.io.bvh import format_bvh, iter_bvh, iter_bvh_members, parse_bvh, read_bvh, write_bvh
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton


def frames_text(rng, n_frames: int, layout: list[int], scale: float = 30.0, fmt: str = "%.4f",
                sep: str = " ") -> list[str]:
    """Random frame lines; ``layout``: channels per joint (6 = positions then rotations, 3 = rotations)."""
    lines = []
    for _ in range(n_frames):
        vals = []
        for n in layout:
            if n == 6:
                vals += list(rng.uniform(-50, 50, 3))
            vals += list(rng.uniform(-scale, scale, 3))
        lines.append(sep.join(fmt % v for v in vals))
    return lines


def cmu_style(rng, n_frames: int = 4) -> str:
    """Positions on the root only, 120 fps, channel order Zrotation Yrotation Xrotation, end sites."""
    head = """HIERARCHY
ROOT Hips
{
  OFFSET 0.0 0.0 0.0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT LHipJoint
  {
    OFFSET 0 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    JOINT LeftUpLeg
    {
      OFFSET 1.65 -1.8 0.84
      CHANNELS 3 Zrotation Yrotation Xrotation
      End Site
      {
        OFFSET 0 -7.2 0
      }
    }
  }
  JOINT LowerBack
  {
    OFFSET 0.03 2.05 -0.2
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 2 0
    }
  }
}
MOTION
"""
    return head + f"Frames: {n_frames}\nFrame Time: 0.00833333\n" + "\n".join(
        frames_text(rng, n_frames, [6, 3, 3, 3])) + "\n"


def six_channel(rng, n_frames: int = 5, sep: str = " ", newline: str = "\n", fmt: str = "%.4f") -> str:
    """6 channels everywhere, a static all-zero ``joint_Root`` above the moving ``Hips``, order Z X Y."""
    ch = "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
    lines = ["HIERARCHY", "ROOT joint_Root", "{", "\tOFFSET 0 0 0", f"\t{ch}", "\tJOINT Hips", "\t{",
             "\t\tOFFSET 4.5 91.4 -427.2", f"\t\t{ch}", "\t\tJOINT Spine", "\t\t{", "\t\t\tOFFSET 15.7 0 0",
             f"\t\t\t{ch}", "\t\t\tEnd Site", "\t\t\t{", "\t\t\t\tOFFSET 0 0 0", "\t\t\t}", "\t\t}", "\t}", "}",
             "MOTION", f"Frames: {n_frames}", "Frame Time: 0.0333333"]
    body = []
    for line in frames_text(rng, n_frames, [6, 6, 6], fmt=fmt, sep=sep):
        vals = line.split(sep)
        vals[:6] = ["0"] * 6  # joint_Root never moves
        body.append(sep.join(vals))
    return newline.join(lines + body) + newline


def fk_error(a: Motion, b: Motion) -> float:
    return float(np.abs(a.global_positions() - b.global_positions()).max())


# ---- reading ---------------------------------------------------------------------------------------------------------
def test_cmu_style_layout():
    m = parse_bvh(cmu_style(np.random.default_rng(0)), "takes/run_01.bvh")
    s = m.skeleton
    assert s.names == ["Hips", "LHipJoint", "LeftUpLeg", "LowerBack"]
    assert s.parents.tolist() == [-1, 0, 1, 0]
    assert s.root == 0 and m.translations is None
    assert m.fps == 120.0 and m.num_frames == 4 and m.name == "run_01" and m.labels == {}
    assert set(s.end_sites) == {2, 3} and np.allclose(s.end_sites[2], [0, -7.2, 0])
    assert s.channels[1] == ("Zrotation", "Yrotation", "Xrotation")


def test_channel_values_are_intrinsic_euler_in_file_order():
    text = cmu_style(np.random.default_rng(1), n_frames=2)
    m = parse_bvh(text)
    frame = [float(v) for v in text.strip().splitlines()[-1].split()]
    assert np.allclose(m.root_positions[1], frame[:3])
    expected = R.euler_to_quat(np.array(frame[3:6]), "ZYX", degrees=True)
    assert np.allclose(np.abs((m.rotations[1, 0] * expected).sum()), 1.0)
    # R = Rz @ Ry @ Rx, built by hand
    z, y, x = np.radians(frame[3:6])
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    assert np.allclose(R.quat_to_matrix(m.rotations[1, 0]), rz @ ry @ rx)


def test_six_channels_static_root_above_moving_hips():
    m = parse_bvh(six_channel(np.random.default_rng(2)))
    assert m.skeleton.root == m.skeleton.index("Hips") == 1
    assert m.fps == 30.0
    assert m.translations is not None and m.translations.shape == (5, 3, 3)
    assert np.allclose(m.translations[:, 0], 0)
    assert np.allclose(m.root_positions, m.translations[:, 1])


def test_whitespace_crlf_and_scientific_notation_read_the_same():
    plain = six_channel(np.random.default_rng(3))
    odd = six_channel(np.random.default_rng(3), sep="\t  ", newline="\r\n", fmt="%.6e")
    a, b = parse_bvh(plain), parse_bvh(odd.encode())
    assert np.allclose(a.rotations, b.rotations, atol=1e-5)
    assert np.allclose(a.translations, b.translations, atol=1e-4)  # %.4f vs %.6e rounding
    cr_only = parse_bvh(plain.replace("\n", "\r"))
    assert np.allclose(a.rotations, cr_only.rotations)


@pytest.mark.parametrize("frame_time, fps", [("0.0333333", 30.0), ("0.00833333", 120.0), ("0.011", 90.9091),
                                             ("1.5e-2", 66.6667)])
def test_fps_from_frame_time(frame_time, fps):
    text = cmu_style(np.random.default_rng(4)).replace("Frame Time: 0.00833333", f"Frame Time: {frame_time}")
    assert parse_bvh(text).fps == fps


@pytest.mark.parametrize("frames, frame_time", [
    ("Frames:\t4", "Frame\tTime:\t0.00833333"),
    ("Frames:  \t 4", "Frame  Time:    0.00833333"),
    ("\tFrames:4 \t", "Frame \t Time:0.00833333"),
])
def test_motion_header_words_separated_by_any_spaces_and_tabs(frames, frame_time):
    text = cmu_style(np.random.default_rng(4))
    expected = parse_bvh(text)
    m = parse_bvh(text.replace("Frames: 4", frames).replace("Frame Time: 0.00833333", frame_time))
    assert m.num_frames == 4 and m.fps == 120.0 and np.array_equal(m.rotations, expected.rotations)


@pytest.mark.parametrize("line", ["FrameTime: 0.01", "Frame Times: 0.01", "Frame\nTime: 0.01"])
def test_frame_time_words_must_be_there(line):
    text = cmu_style(np.random.default_rng(4)).replace("Frame Time: 0.00833333", line)
    with pytest.raises(FormatError, match="expected 'Frame Time:'"):
        parse_bvh(text)


def test_partial_rotation_channels_round_trip():
    text = """HIERARCHY
ROOT root
{
 OFFSET 0 0 0
 CHANNELS 4 Xposition Zposition Yrotation Xrotation
 JOINT hinge
 {
  OFFSET 0 1 0
  CHANNELS 1 Zrotation
  JOINT fixed
  {
   OFFSET 0 1 0
   End Site
   {
    OFFSET 0 1 0
   }
  }
 }
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 30 40 50
-1 -2 -30 -40 -50
"""
    m = parse_bvh(text)
    assert m.skeleton.channels[2] == () and np.allclose(m.rotations[:, 2], [0, 0, 0, 1])
    assert np.allclose(m.root_positions[0], [1, 0, 2])
    back = parse_bvh(format_bvh(m))
    assert back.skeleton.channels == m.skeleton.channels
    assert fk_error(m, back) < 1e-3


# ---- round trips -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [cmu_style, six_channel])
def test_round_trip_bvh_bvh(make, tmp_path):
    m = parse_bvh(make(np.random.default_rng(5), 6), "a.bvh")
    write_bvh(m, tmp_path / "b.bvh")
    back = read_bvh(tmp_path / "b.bvh")
    assert back.skeleton.names == m.skeleton.names and back.skeleton.root == m.skeleton.root
    assert back.skeleton.channels == m.skeleton.channels and back.fps == m.fps
    assert (back.translations is None) == (m.translations is None)
    assert fk_error(m, back) < 1e-3
    assert back.name == "b"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bvh"]  # no temporary file left


def test_writer_orders_joints_depth_first():
    skel = Skeleton(["pelvis", "l_hip", "r_hip", "spine", "l_knee", "r_knee"], [-1, 0, 0, 0, 1, 2],
                    np.random.default_rng(6).normal(size=(6, 3)) * 10)
    rng = np.random.default_rng(7)
    m = Motion(skel, R.quat_normalize(rng.normal(size=(3, 6, 4))), rng.normal(size=(3, 3)), fps=25)
    back = parse_bvh(format_bvh(m))
    assert back.skeleton.names == ["pelvis", "l_hip", "l_knee", "r_hip", "r_knee", "spine"]
    perm = [skel.names.index(n) for n in back.skeleton.names]
    assert np.abs(back.global_positions() - m.global_positions()[:, perm]).max() < 1e-3


ORDERS = ["".join(p) for p in ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"]]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), orders=st.lists(st.sampled_from(ORDERS), min_size=4, max_size=4),
       positions=st.lists(st.booleans(), min_size=4, max_size=4), n_frames=st.integers(1, 4))
def test_property_random_rotations_and_orders_round_trip(seed, orders, positions, n_frames):
    rng = np.random.default_rng(seed)
    channels = [(("Xposition", "Yposition", "Zposition") if (pos or j == 0) else ())
                + tuple(f"{a}rotation" for a in order) for j, (order, pos) in enumerate(zip(orders, positions))]
    skel = Skeleton(["a", "b", "c", "d"], [-1, 0, 1, 1], rng.uniform(-50, 50, (4, 3)), channels, {2: [0, 5, 0]})
    rot = R.quat_normalize(rng.normal(size=(n_frames, 4, 4)))
    trans = None
    if any(positions[1:]):  # animated where there are position channels, the rest offsets elsewhere
        trans = np.where(np.array([bool(c) and c[0] == "Xposition" for c in channels])[:, None],
                         rng.uniform(-100, 100, (n_frames, 4, 3)), skel.offsets)
    m = Motion(skel, rot, rng.uniform(-100, 100, (n_frames, 3)), fps=30, translations=trans)
    back = parse_bvh(format_bvh(m))
    assert fk_error(m, back) < 1e-3
    assert np.allclose(np.abs((back.rotations * m.rotations).sum(-1)), 1.0, atol=1e-6)


# ---- bad input -------------------------------------------------------------------------------------------------------
GOOD_LINES = cmu_style(np.random.default_rng(8), n_frames=3).splitlines()
FRAME0 = GOOD_LINES.index("MOTION") + 3  # 0-based index of the first frame line


def with_lines(edit) -> str:
    lines = list(GOOD_LINES)
    edit(lines)
    return "\n".join(lines) + "\n"


def at(prefix: str, nth: int = 0) -> int:
    """0-based index of the nth line of GOOD_LINES starting with ``prefix`` (its line number is this + 1)."""
    return [i for i, line in enumerate(GOOD_LINES) if line.strip().startswith(prefix)][nth]


def _set(i, value):
    def edit(lines):
        lines[i] = value
    return edit


LAST_BRACE = at("}", 5)  # closes the ROOT
BAD_CASES = {  # edit of GOOD_LINES, message, expected 1-based line number
    "missing HIERARCHY": (lambda ls: ls.pop(0), "missing HIERARCHY", 1),
    "truncated frames": (lambda ls: ls.pop(), "truncated MOTION block", FRAME0 + 3),
    "too few values": (_set(FRAME0 + 1, "1 2 3"), "has 3 values, expected 15", FRAME0 + 2),
    "too many values": (_set(FRAME0, GOOD_LINES[FRAME0] + " 7"), "has 16 values", FRAME0 + 1),
    "nan": (_set(FRAME0 + 2, GOOD_LINES[FRAME0 + 2].replace(GOOD_LINES[FRAME0 + 2].split()[4], "nan", 1)),
            "non-finite", FRAME0 + 3),
    "inf": (_set(FRAME0 + 1, "-inf" + GOOD_LINES[FRAME0 + 1][GOOD_LINES[FRAME0 + 1].index(" "):]), "non-finite",
            FRAME0 + 2),
    "not a number": (_set(FRAME0 + 1, "abc" + GOOD_LINES[FRAME0 + 1][GOOD_LINES[FRAME0 + 1].index(" "):]),
                     "not a number: 'abc'", FRAME0 + 2),
    "unknown channel": (_set(at("CHANNELS", 1), "CHANNELS 3 Zrotation Wrotation Xrotation"),
                        "unknown channel name 'Wrotation'", at("CHANNELS", 1) + 1),
    "channel count": (_set(at("CHANNELS", 1), "CHANNELS 2 Zrotation Yrotation Xrotation"),
                      "CHANNELS 2 lists", at("CHANNELS", 1) + 1),
    "duplicate joint": (_set(at("JOINT", 2), "JOINT LeftUpLeg"), "duplicate joint name 'LeftUpLeg'",
                        at("JOINT", 2) + 1),
    "missing brace": (lambda ls: ls.pop(LAST_BRACE), "unbalanced braces: 1 '{' not closed", at("MOTION")),
    "extra brace": (lambda ls: ls.insert(LAST_BRACE + 1, "}"), "unbalanced braces: '}' without", LAST_BRACE + 2),
    "bad offset": (_set(at("OFFSET", 1), "OFFSET 0 0"), "OFFSET needs 3 numbers", at("OFFSET", 1) + 1),
    "missing MOTION": (lambda ls: ls.__delitem__(slice(at("MOTION"), None)), "missing MOTION", None),
    "bad frame count": (_set(at("Frames:"), "Frames: many"), "not a frame count", at("Frames:") + 1),
    "zero frames": (lambda ls: ls.__setitem__(slice(at("Frames:"), None), ["Frames: 0", "Frame Time: 0.01"]),
                    "0 frames", at("Frames:") + 1),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_names_file_and_line(case):
    edit, message, line = BAD_CASES[case]
    with pytest.raises(FormatError) as info:
        parse_bvh(with_lines(edit), "bad.bvh")
    err = info.value
    assert message in str(err) and err.path == "bad.bvh"
    if line is not None:
        assert err.line == line, str(err)
        assert f"bad.bvh:{line}:" in str(err)


@pytest.mark.parametrize("data, message", [(b"", "empty file"), (b"  \n\n", "empty file"),
                                           (bytes(range(256)) * 4, "binary data"),
                                           (b"PK\x03\x04" + b"x" * 40, "binary data")])
def test_empty_and_binary_files(data, message, tmp_path):
    path = tmp_path / "x.bvh"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=message) as info:
        read_bvh(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(FormatError, match="no such file"):
        read_bvh("/nonexistent/take.bvh")


# ---- many files ------------------------------------------------------------------------------------------------------
def test_zip_members_good_and_bad(tmp_path):
    rng = np.random.default_rng(9)
    zpath = tmp_path / "takes.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("data/b_walk.bvh", cmu_style(rng))
        z.writestr("data/a_run.bvh", six_channel(rng))
        z.writestr("data/c_broken.bvh", b"\x89PNG\r\n\x1a\n\x00\x00binary")
        z.writestr("data/notes.txt", "not a take")
    items = list(iter_bvh(zpath))
    assert [n for n, _ in items] == ["data/a_run.bvh", "data/b_walk.bvh", "data/c_broken.bvh"]
    assert isinstance(items[0][1], Motion) and items[0][1].name == "a_run"
    err = items[2][1]
    assert isinstance(err, FormatError) and "data/c_broken.bvh" in str(err) and "binary" in str(err)
    assert not (tmp_path / "data").exists()  # nothing extracted
    picked = dict(iter_bvh_members(zpath, ["data/b_walk.bvh", "data/notes.txt", "data/missing.bvh"]))
    assert isinstance(picked["data/b_walk.bvh"], Motion)
    assert isinstance(picked["data/notes.txt"], FormatError)
    assert "no such member" in str(picked["data/missing.bvh"])
    parallel = list(iter_bvh(zpath, workers=2))
    assert [n for n, _ in parallel] == [n for n, _ in items]
    assert np.array_equal(parallel[1][1].rotations, items[1][1].rotations)
    assert isinstance(parallel[2][1], FormatError) and parallel[2][1].path == err.path


def test_folder_and_single_file(tmp_path):
    rng = np.random.default_rng(10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bvh").write_text(cmu_style(rng))
    (tmp_path / "a.BVH").write_text(six_channel(rng))
    (tmp_path / "c.bvh").write_text("HIERARCHY\nROOT x\n{\n")
    items = list(iter_bvh(tmp_path))
    assert [n for n, _ in items] == ["a.BVH", "c.bvh", "sub/b.bvh"]
    assert isinstance(items[1][1], FormatError) and items[1][1].line is not None
    single = list(iter_bvh(tmp_path / "sub" / "b.bvh"))
    assert len(single) == 1 and isinstance(single[0][1], Motion)
    with pytest.raises(FormatError, match="no such file"):
        list(iter_bvh(tmp_path / "missing"))


# ---- real data -------------------------------------------------------------------------------------------------------
@pytest.mark.real_data
def test_bandai_takes_read_and_round_trip(bandai_zip):
    with zipfile.ZipFile(bandai_zip) as z:
        members = sorted(n for n in z.namelist() if n.endswith(".bvh"))
    picked = members[:: max(1, len(members) // 20)][:20]
    n = 0
    for name, m in iter_bvh_members(bandai_zip, picked):
        assert isinstance(m, Motion), f"{name}: {m}"
        assert len(m.skeleton) == 22 and m.fps == 30.0
        assert m.skeleton.root == m.skeleton.index("Hips")
        back = parse_bvh(format_bvh(m))
        assert fk_error(m, back) < 1e-3
        n += 1
    assert n == len(picked) == 20


# ---- hardening (issue 11): escapes found by fuzzing ------------------------------------------------------------------
def with_field(old: str, new: str | bytes) -> bytes:
    """GOOD_LINES with the first line starting ``old`` (stripped) replaced, keeping its indentation; as bytes."""
    i = at(old)
    indent = GOOD_LINES[i][:len(GOOD_LINES[i]) - len(GOOD_LINES[i].lstrip())]
    lines = [line.encode() for line in GOOD_LINES]
    lines[i] = indent.encode() + (new.encode() if isinstance(new, str) else new)
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("field, value, message", [
    ("CHANNELS", "CHANNELS \u00b3 Zrotation Yrotation Xrotation", "is not a channel count"),  # '³'.isdigit()
    ("CHANNELS", b"CHANNELS \xb3 Zrotation Yrotation Xrotation", "is not a channel count"),  # Latin-1 '³'
    ("CHANNELS", "CHANNELS \u0663 Zrotation Yrotation Xrotation", "is not a channel count"),  # Arabic-Indic 3
    ("CHANNELS", "CHANNELS " + "9" * 5000, "(5000 digits) is out of range for a channel count"),
    ("CHANNELS", "CHANNELS 7 Xposition Yposition Zposition Zrotation Yrotation Xrotation Xrotation",
     "out of range for a channel count (a whole number from 0 to 6)"),
    ("CHANNELS", "CHANNELS -3 Zrotation Yrotation Xrotation", "is not a channel count"),
    ("Frames:", "Frames: \u00b3", "is not a frame count"),
    ("Frames:", b"Frames: \xb3", "is not a frame count"),
    ("Frames:", "Frames: " + "9" * 5000, "(5000 digits) is out of range for a frame count"),
    ("Frames:", "Frames: 100000001", "out of range for a frame count"),
    ("Frames:", "Frames: 3.0", "is not a frame count"),
    ("Frame Time:", "Frame Time: 5e-324", "Frame Time: 5e-324 is out of range"),  # 1 / 5e-324 overflows
    ("Frame Time:", "Frame Time: 1e-320", "is out of range"),
    ("Frame Time:", "Frame Time: 1e-400", "is out of range"),  # reads as 0.0
    ("Frame Time:", "Frame Time: 0", "is out of range"),
    ("Frame Time:", "Frame Time: -0.01", "is out of range"),
    ("Frame Time:", "Frame Time: 1001", "is out of range"),
    ("Frame Time:", "Frame Time: inf", "non-finite Frame Time"),
    ("Frame Time:", "Frame Time: nan", "non-finite Frame Time"),
    ("Frame Time:", "Frame Time: \u0660.\u0660\u0663", "not a number"),  # float() would take Arabic-Indic digits
    ("Frame Time:", "Frame Time: 0.0" + "3" * 200, "not a number"),  # over 100 characters
    ("OFFSET", "OFFSET 1e400 0 0", "OFFSET value 1e400 is out of range"),
    ("OFFSET", "OFFSET 0 nan 0", "non-finite OFFSET value 'nan'"),
    ("OFFSET", "OFFSET 0 0 1_000", "not a number: '1_000'"),
    ("OFFSET", "OFFSET 0 0 1e10", "out of range (|x| <= 1e+09)"),
])
def test_header_numbers_are_checked_by_one_parser(field, value, message):
    with pytest.raises(FormatError) as info:
        parse_bvh(with_field(field, value), "bad.bvh")
    assert message in str(info.value)
    assert info.value.path == "bad.bvh" and info.value.line == at(field) + 1


@pytest.mark.parametrize("careful", [False, True])
def test_frame_values_use_the_decimal_grammar(careful):
    def edit(lines):
        lines[FRAME0 + 1] = "1_0" + lines[FRAME0 + 1][lines[FRAME0 + 1].index(" "):]  # float() would take it
        if careful:
            lines[FRAME0] = lines[FRAME0].replace(" ", " \r", 1)
    with pytest.raises(FormatError, match="not a number: '1_0'") as info:
        parse_bvh(with_lines(edit))
    assert info.value.line == FRAME0 + 2


def test_leading_zeros_are_a_plain_count():
    m = parse_bvh(with_field("Frames:", "Frames: " + "0" * 5000 + "3"))  # int() would refuse 5001 digits
    assert m.num_frames == 3


@pytest.mark.parametrize("value, message", [("nan", "non-finite value nan"), ("1e400", "non-finite value inf"),
                                            ("-1e400", "non-finite value -inf"), ("Infinity", "non-finite"),
                                            ("1e10", "value 1e+10 is out of range")])
def test_non_finite_or_huge_frame_values_name_their_line(value, message):
    for careful in (False, True):  # the fast numpy reading, and the careful one (numpy refuses a CR in a line)
        def edit(lines, careful=careful):
            vals = lines[FRAME0 + 1].split()
            lines[FRAME0 + 1] = " ".join([vals[0], value] + vals[2:])
            if careful:
                lines[FRAME0 + 2] = lines[FRAME0 + 2].replace(" ", " \r", 1)
        with pytest.raises(FormatError) as info:
            parse_bvh(with_lines(edit), "bad.bvh")
        assert message in str(info.value) and "column 2" in str(info.value)
        assert info.value.line == FRAME0 + 2


@pytest.mark.parametrize("name", [b"Sp\x00ine", b"Sp\x01ine", b"Sp\x7fine", b"Sp\xc2\x80ine", b"Sp\x81ine",
                                  b"Sp\xe2\x80\x8bine", b"a }", b"}"])
def test_reader_refuses_names_the_writer_cannot_write(name):
    # padded past the first 4 KiB, so that a NUL is not caught as "binary data" first
    data = with_field("JOINT", b"JOINT " + name).replace(b"HIERARCHY\n", b"HIERARCHY\n" + b" " * 5000 + b"\n", 1)
    with pytest.raises(FormatError) as info:
        parse_bvh(data, "bad.bvh")
    assert "joint name" in str(info.value) and info.value.line == at("JOINT") + 2


def test_odd_but_writable_names_round_trip():
    text = with_field("JOINT", "JOINT Left Up\u00a0Leg") + b""  # NBSP separates words like a space
    m = parse_bvh(text.replace(b"JOINT LowerBack", "JOINT Br\u00fccke {x}".encode()))
    assert m.skeleton.names[1] == "Left Up Leg" and m.skeleton.names[3] == "Br\u00fccke {x}"
    assert parse_bvh(format_bvh(m)).skeleton.names == m.skeleton.names


@pytest.mark.parametrize("name", ["Sp\x00ine", "a\tb", "a\nb", " a", "a ", "a  b", "", "{", "a } b", "\x85"])
def test_writer_refuses_names_the_reader_refuses(name):
    skel = Skeleton(["root", name], [-1, 0], np.ones((2, 3)))
    m = Motion(skel, R.quat_identity((2, 2)), np.zeros((2, 3)), fps=30)
    with pytest.raises(MotionsynthError, match="cannot write BVH: joint 1 name"):
        format_bvh(m)


def _small_motion(**changes) -> Motion:
    skel = Skeleton(["root", "a"], [-1, 0], np.ones((2, 3)), changes.pop("channels", None))
    m = Motion(skel, R.quat_identity((2, 2)), np.zeros((2, 3)), fps=30)
    for key, value in changes.items():
        setattr(m, key, value)
    return m


@pytest.mark.parametrize("changes, message", [
    ({"root_positions": np.full((2, 3), 1e10)}, "has the value 1e+10"),
    ({"fps": 2e6}, "at 2000000.0 fps"),
    ({"fps": 1e-4}, "at 0.0001 fps"),
    ({"channels": [(), ()]}, "no channels"),
    ({"channels": [("Xposition", "Xposition"), ()]}, "has the channels"),
    ({"channels": [("Wrotation",), ()]}, "has the channels"),
])
def test_writer_refuses_what_the_reader_would_refuse(changes, message):
    with pytest.raises(MotionsynthError, match=re.escape(message)):
        format_bvh(_small_motion(**changes))


def test_writer_refuses_huge_offsets_and_no_frames():
    m = _small_motion()
    m.skeleton.offsets[1] = [0, 2e9, 0]
    with pytest.raises(MotionsynthError, match="offset"):
        format_bvh(m)
    with pytest.raises(MotionsynthError, match="0 frames"):
        format_bvh(_small_motion()[0:0])


def chain_motion(depth: int, n_frames: int = 2) -> Motion:
    """A chain ``depth`` joints deep, small random rotations (so the tip stays near 0.1 * depth units away)."""
    rng = np.random.default_rng(depth)
    skel = Skeleton([f"j{j}" for j in range(depth)], np.arange(depth) - 1,
                    np.tile([0.0, 0.1, 0.0], (depth, 1)), end_sites={depth - 1: [0, 1, 0]})
    rot = R.euler_to_quat(rng.uniform(-5, 5, (n_frames, depth, 3)), "ZYX", degrees=True)
    return Motion(skel, rot, rng.uniform(-10, 10, (n_frames, 3)), fps=30)


@pytest.mark.parametrize("depth", [1000, 3000])
def test_deep_chain_writes_and_reads_back(depth, tmp_path):
    m = chain_motion(depth)
    write_bvh(m, tmp_path / "deep.bvh")  # the writer is iterative: no RecursionError
    text = (tmp_path / "deep.bvh").read_text()
    assert max(len(line) - len(line.lstrip("\t")) for line in text.splitlines()) <= 34  # indentation is capped
    back = read_bvh(tmp_path / "deep.bvh")
    assert back.skeleton.names == m.skeleton.names and back.skeleton.parents.tolist() == m.skeleton.parents.tolist()
    assert fk_error(m, back) < 1e-3


def wide_bvh(n_joints: int, n_frames: int = 2, chain: int = 10) -> str:
    """``n_joints`` joints: a root with chains of ``chain`` joints, each ending in an End Site."""
    out = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0",
           "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    j = 1
    while j < n_joints:
        n = min(chain, n_joints - j)
        for i in range(n):
            out += [f"JOINT j{j + i}", "{", f"OFFSET 0 {i % 3 + 1} 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
        out += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * n
        j += n
    rng = np.random.default_rng(n_joints)
    out += ["}", "MOTION", f"Frames: {n_frames}", "Frame Time: 0.0333333"]
    out += [" ".join(f"{v:.4f}" for v in rng.uniform(-90, 90, 6 + 3 * (n_joints - 1))) for _ in range(n_frames)]
    return "\n".join(out) + "\n"


@pytest.mark.slow
def test_forty_thousand_joints_read_and_write():
    # speed (linear in the joints; 40,000 joints in well under 2 s) is measured in docs/BENCHMARKS.md
    m = parse_bvh(wide_bvh(40_000))
    assert len(m.skeleton) == 40_000 and len(m.skeleton.end_sites) == 4_000
    back = parse_bvh(format_bvh(m))
    assert back.skeleton.names == m.skeleton.names
    assert np.array_equal(back.skeleton.parents, m.skeleton.parents)
    assert np.allclose(np.abs((back.rotations * m.rotations).sum(-1)), 1.0, atol=1e-9)
    assert np.allclose(back.root_positions, m.root_positions)


@pytest.mark.parametrize("angles", [[-89.4, -111.1], [52.7, 119.7], [170.0, -179.0], [30.0, 90.0], [-120.0, -90.0]])
def test_partial_rotation_channels_round_trip_at_any_angle(angles):
    # two rotation channels (Y then X; Z padded): the writer must pick the Euler solution with Z = 0
    text = """HIERARCHY
ROOT root
{
 OFFSET 0 0 0
 CHANNELS 5 Xposition Yposition Zposition Yrotation Xrotation
 JOINT hinge
 {
  OFFSET 0 10 0
  CHANNELS 1 Zrotation
  End Site
  {
   OFFSET 10 0 0
  }
 }
}
MOTION
Frames: 1
Frame Time: 0.04
"""
    m = parse_bvh(text + f"1 2 3 {angles[0]} {angles[1]} {angles[0] + angles[1]}\n")
    back = parse_bvh(format_bvh(m))
    assert fk_error(m, back) < 1e-4
    assert np.allclose(np.abs((back.rotations * m.rotations).sum(-1)), 1.0, atol=1e-9)


def static_joints_bvh(n_joints: int, n_frames: int) -> str:
    """One animated channel (the root's Xposition) and ``n_joints - 1`` joints without channels."""
    lines = ["HIERARCHY", "ROOT r", "{", "OFFSET 0 0 0", "CHANNELS 1 Xposition"]
    for j in range(1, n_joints):
        lines += [f"JOINT j{j}", "{", "OFFSET 0 1 0", "}"]
    lines += ["}", "MOTION", f"Frames: {n_frames}", "Frame Time: 0.01"] + [str(t % 7) for t in range(n_frames)]
    return "\n".join(lines) + "\n"


def test_many_static_joints_times_many_frames_are_refused_not_allocated():
    # 2,001 joints x 1,000 frames from a 40 kB file would be 2,001,000 joint-frames (112 MB) with one channel
    with pytest.raises(FormatError, match="too large: 1,000 frames x 2,001 joints with only 1 channels") as info:
        parse_bvh(static_joints_bvh(2001, 1000))
    assert info.value.line == 5 + 4 * 2000 + 3  # the Frames: line
    m = parse_bvh(static_joints_bvh(2001, 400))  # 800,400 joint-frames: fine
    long = Motion(m.skeleton, np.tile(m.rotations, (3, 1, 1)), np.tile(m.root_positions, (3, 1)), fps=m.fps)
    with pytest.raises(MotionsynthError, match="cannot write BVH: too large"):  # and the writer agrees
        format_bvh(long)
