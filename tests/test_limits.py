"""Issue 22: the one joint-frame limit (`motionsynth.limits`) in every reader, checked from the header before any
large array is built — BVH ``Frames:``, the project's npz and AMASS array headers, ``convert --fps`` — and raised or
lowered by the environment and ``motionsynth --max-joint-frames N``."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from motionsynth import limits
from motionsynth.errors import FormatError, MotionsynthError
from motionsynth.io import load_motion
from motionsynth.io.amass import read_amass
from motionsynth.io.bvh import format_bvh, iter_bvh, parse_bvh, read_bvh, write_bvh
from motionsynth.io.npz import load_npz, save_npz
from motionsynth.limits import LimitError

from helpers import assert_refused_without_output, cli_output, make_motion, make_skeleton, save_tiny

MB = 2**20


@pytest.fixture(autouse=True)
def default_limit(monkeypatch):
    """Every test starts at the default limit and leaves none behind (``--max-joint-frames`` sets it for the
    process)."""
    monkeypatch.delenv(limits.ENV_VAR, raising=False)
    limits.set_max_joint_frames(None)
    yield
    limits.set_max_joint_frames(None)


def peak_bytes(fn) -> tuple[int, BaseException | None]:
    """(tracemalloc peak of ``fn()``, what it raised)."""
    tracemalloc.start()
    try:
        fn()
        raised = None
    except Exception as e:  # returned to the test, which checks its type
        raised = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def assert_one_line_refusal(code: int, err: str, *needles: str) -> None:
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


# ---- BVH ------------------------------------------------------------------------------------------------------------
def huge_frames_bvh(frames: int) -> tuple[str, int]:
    """(a 22-joint BVH whose ``Frames:`` says ``frames`` but which holds one frame line, the ``Frames:`` line)."""
    text = format_bvh(make_motion(make_skeleton(), 1))
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Frames:"))
    lines[at] = f"Frames: {frames}"
    return "\n".join(lines) + "\n", at + 1


def test_bvh_huge_frames_refused_from_the_header_with_file_and_line(tmp_path):
    text, line = huge_frames_bvh(99_999_999)  # 2.2e9 joint-frames: 123 GB if parsed
    path = tmp_path / "huge.bvh"
    path.write_text(text)
    peak, raised = peak_bytes(lambda: read_bvh(path))
    assert isinstance(raised, LimitError), raised
    assert str(raised).startswith(f"{path}:{line}: 99,999,999 frames x 22 joints")
    assert "--max-joint-frames" in str(raised) and peak < 2 * MB
    with pytest.raises(FormatError, match="out of range for a frame count"):  # beyond any limit: a format error
        parse_bvh(huge_frames_bvh(10**13)[0])


def test_bvh_limit_from_the_environment_the_block_and_the_argument(monkeypatch):
    text = format_bvh(make_motion(make_skeleton(), 40))  # 880 joint-frames
    assert parse_bvh(text).num_frames == 40
    with limits.allow_joint_frames(879), pytest.raises(LimitError, match="40 frames x 22 joints"):
        parse_bvh(text)
    monkeypatch.setenv(limits.ENV_VAR, "800")
    with pytest.raises(LimitError, match="more than the limit of 800"):
        parse_bvh(text)
    monkeypatch.setenv(limits.ENV_VAR, "880")
    assert parse_bvh(text).num_frames == 40
    with pytest.raises(LimitError, match="more than the limit of 100"):  # a caller's tighter limit
        parse_bvh(text, max_joint_frames=100)


def test_writing_is_not_refused_by_a_lowered_reader_limit(tmp_path):
    m = make_motion(make_skeleton(), 40)
    with limits.allow_joint_frames(100):
        write_bvh(m, tmp_path / "m.bvh")  # what was computed can always be written
        with pytest.raises(LimitError):
            read_bvh(tmp_path / "m.bvh")
    assert read_bvh(tmp_path / "m.bvh").num_frames == 40


@pytest.mark.parametrize("workers", [1, 2])
def test_iter_bvh_yields_a_take_over_the_limit_and_goes_on(tmp_path, workers):
    write_bvh(make_motion(make_skeleton(), 10), tmp_path / "a.bvh")
    write_bvh(make_motion(make_skeleton(), 60), tmp_path / "b.bvh")
    write_bvh(make_motion(make_skeleton(), 10), tmp_path / "c.bvh")
    with limits.allow_joint_frames(500):  # workers get this process's limit
        results = dict(iter_bvh(tmp_path, workers=workers))
    assert isinstance(results["b.bvh"], LimitError) and "b.bvh:" in str(results["b.bvh"])
    assert results["a.bvh"].num_frames == 10 and results["c.bvh"].num_frames == 10


# ---- the project's npz ------------------------------------------------------------------------------------------------
def npy_bytes(shape: tuple, descr: str = "<f8", payload: bytes = b"") -> bytes:
    """A ``.npy`` member: a header claiming ``shape`` of ``descr``, then ``payload`` (whatever it holds)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def with_member(src, dst, key: str, data: bytes, compress: int = zipfile.ZIP_STORED):
    """A copy of the npz ``src`` at ``dst`` with member ``key.npy`` replaced by ``data``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compress) as zout:
        for name in zin.namelist():
            zout.writestr(name, data if name == f"{key}.npy" else zin.read(name))
    return dst


def test_npz_header_claiming_1e13_frames_is_refused_without_allocating(tmp_path, capsys):
    save_npz(make_motion(make_skeleton(), 10), tmp_path / "m.npz")
    bad = with_member(tmp_path / "m.npz", tmp_path / "bad.npz", "rotations",
                      npy_bytes((10**13, 22, 4), payload=bytes(64)))
    peak, raised = peak_bytes(lambda: load_npz(bad))
    assert isinstance(raised, FormatError) and "'rotations' is damaged" in str(raised), raised
    assert str(raised).startswith(str(bad)) and "\n" not in str(raised) and peak < 2 * MB
    code, _, err = cli_output(capsys, "convert", bad, tmp_path / "out.bvh")
    assert_one_line_refusal(code, err, "bad.npz", "'rotations'")
    assert not (tmp_path / "out.bvh").exists()


def test_npz_over_the_limit_and_unexpected_members(tmp_path):
    save_npz(make_motion(make_skeleton(), 40), tmp_path / "m.npz")  # 880 joint-frames
    with limits.allow_joint_frames(500), pytest.raises(LimitError, match="'rotations': 40 frames x 22 joints"):
        load_npz(tmp_path / "m.npz")
    with limits.allow_joint_frames(880):
        assert load_npz(tmp_path / "m.npz").num_frames == 40
    objects = with_member(tmp_path / "m.npz", tmp_path / "o.npz", "name", npy_bytes((1,), "|O", b"\x80\x04N."))
    with pytest.raises(FormatError, match="'name' holds pickled Python objects"):
        load_npz(objects)
    raw = with_member(tmp_path / "m.npz", tmp_path / "r.npz", "fps", b"not an array")
    with pytest.raises(FormatError, match="'fps' is damaged"):
        load_npz(raw)
    n = 2**22 + 1  # characters: 16 MiB + 4 bytes of UTF-32, stored compressed in a few kB
    long_text = with_member(tmp_path / "m.npz", tmp_path / "t.npz", "labels",
                            npy_bytes((), f"<U{n}", "x".encode("utf-32-le") * n), zipfile.ZIP_DEFLATED)
    with limits.allow_joint_frames(880), pytest.raises(LimitError, match="'labels' needs 16,777,220 bytes"):
        load_npz(long_text)


def test_compressed_npz_header_is_read_from_the_stream(tmp_path):
    save_npz(make_motion(make_skeleton(), 10), tmp_path / "m.npz")
    rotations = np.load(tmp_path / "m.npz")["rotations"]
    buf = io.BytesIO()
    np.lib.format.write_array(buf, rotations)
    good = with_member(tmp_path / "m.npz", tmp_path / "z.npz", "rotations", buf.getvalue(), zipfile.ZIP_DEFLATED)
    assert np.array_equal(load_npz(good).rotations, rotations)
    bad = with_member(tmp_path / "m.npz", tmp_path / "zb.npz", "rotations",
                      npy_bytes((10**13, 22, 4), payload=bytes(10**6)), zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match="holds 1,000,000 bytes"):
        load_npz(bad)


# ---- AMASS ------------------------------------------------------------------------------------------------------------
def amass_file(path, T: int, width: int = 156):
    np.savez_compressed(path, poses=np.zeros((T, width)), trans=np.zeros((T, 3)), mocap_framerate=np.array(60.0))
    return path


def test_amass_over_the_limit_refused_from_the_header(tmp_path, capsys):
    f = amass_file(tmp_path / "clip.npz", 50)  # SMPL-H: 50 frames x 52 joints = 2,600 joint-frames
    with limits.allow_joint_frames(2_599):
        peak, raised = peak_bytes(lambda: read_amass(f))
    assert isinstance(raised, LimitError) and "'poses': 50 frames x 52 joints" in str(raised), raised
    assert str(raised).startswith(str(f)) and peak < 2 * MB
    with limits.allow_joint_frames(2_600):
        assert read_amass(f).num_frames == 50
    code, _, err = cli_output(capsys, "--max-joint-frames", "1000", "convert", f, tmp_path / "out.bvh")
    assert_one_line_refusal(code, err, "clip.npz", "'poses'")
    assert not (tmp_path / "out.bvh").exists()


def test_amass_header_claiming_1e13_frames_is_refused_without_allocating(tmp_path):
    f = amass_file(tmp_path / "clip.npz", 5)
    bad = with_member(f, tmp_path / "bad.npz", "poses", npy_bytes((10**13, 156), payload=bytes(800)),
                      zipfile.ZIP_DEFLATED)
    peak, raised = peak_bytes(lambda: load_motion(bad))
    assert isinstance(raised, FormatError) and "'poses' is damaged" in str(raised) and peak < 2 * MB, raised


# ---- the command line: the environment and --max-joint-frames ----------------------------------------------------
def test_limit_raised_by_the_environment_or_the_flag_lets_a_file_through(tmp_path, monkeypatch, capsys):
    write_bvh(make_motion(make_skeleton(), 40), tmp_path / "m.bvh")  # 880 joint-frames
    out = tmp_path / "out.npz"
    monkeypatch.setenv(limits.ENV_VAR, "500")
    code, _, err = cli_output(capsys, "convert", tmp_path / "m.bvh", out)
    assert_one_line_refusal(code, err, "m.bvh:", "880 joint-frames", "limit of 500")
    assert not out.exists()
    code, _, err = cli_output(capsys, "--max-joint-frames", "1000", "convert", tmp_path / "m.bvh", out)
    assert code == 0 and out.exists(), err
    assert limits.max_joint_frames() == 500  # the flag held for that call only
    with limits.allow_joint_frames(2200):  # 100 frames of 22 joints
        assert load_motion(out).num_frames == 40
    out.unlink()
    monkeypatch.setenv(limits.ENV_VAR, "1e3")
    code, _, err = cli_output(capsys, "convert", tmp_path / "m.bvh", out)
    assert code == 0 and out.exists(), err


def test_bad_limit_values_are_one_line_errors(tmp_path, monkeypatch, capsys):
    write_bvh(make_motion(make_skeleton(), 4), tmp_path / "m.bvh")
    for value in ("0", "-5", "lots", "1e99", "1.5"):
        code, _, err = cli_output(capsys, "--max-joint-frames", value, "convert", tmp_path / "m.bvh",
                                  tmp_path / "o.npz")
        assert_one_line_refusal(code, err, "joint-frame limit")
    monkeypatch.setenv(limits.ENV_VAR, "many")
    with pytest.raises(MotionsynthError, match=limits.ENV_VAR):
        read_bvh(tmp_path / "m.bvh")
    assert not (tmp_path / "o.npz").exists()


# ---- resampling ---------------------------------------------------------------------------------------------------------
def test_resample_checks_the_limit_before_building_the_grid():
    m = make_motion(make_skeleton(), 31)  # 1 s at 30 fps
    assert m.resampled_length(30) == 31 and m.resampled_length(60) == len(m.resample(60)) == 61
    peak, raised = peak_bytes(lambda: m.resample(1e12))
    assert isinstance(raised, LimitError) and "resampled to 1e+12 fps" in str(raised) and peak < MB, raised
    with limits.allow_joint_frames(22 * 60), pytest.raises(LimitError):
        m.resample(60)


def test_convert_fps_over_the_limit_names_the_option(tmp_path, capsys):
    save_npz(make_motion(make_skeleton(), 31), tmp_path / "m.npz")
    code, _, err = cli_output(capsys, "--max-joint-frames", "10000", "convert", tmp_path / "m.npz",
                              tmp_path / "o.bvh", "--fps", "1000")  # 1,001 frames x 22 joints
    assert_one_line_refusal(code, err, "--fps 1000", "1,001 frames x 22 joints")
    assert not (tmp_path / "o.bvh").exists()


# ---- task results ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["predict", "{clip}", "--given", "10", "--frames", "100000000"],
    ["predict", "{clip}", "--given", "10", "--frames", "400", "--samples", "3"],
    ["inbetween", "{clip}", "--keyframes", "0,39", "--samples", "30"],
])
def test_task_results_over_the_limit_are_refused_before_any_work(args, tmp_path, capsys, monkeypatch):
    """samples x frames x joints of the result (here 22 joints; limit 10,000 joint-frames) is checked first."""
    monkeypatch.setenv(limits.ENV_VAR, "10000")
    assert_refused_without_output(save_tiny(tmp_path / "model"), args, tmp_path, capsys)


def test_generate_over_the_limit_is_refused_before_any_work(tmp_path, capsys):
    model, out = save_tiny(tmp_path / "model"), tmp_path / "gen"
    code, _, err = cli_output(capsys, "generate", "--model", model, "--frames", "100000000", "--n", "16", "-o", out)
    assert_one_line_refusal(code, err, "--n 16 x 100,000,000 frames", "joint-frames")
    assert not out.exists()


def test_library_motions_are_sized_against_the_limit():
    from motionsynth.ops import pad, rest_motion

    sk = make_skeleton()
    with limits.allow_joint_frames(2200):  # 100 frames of 22 joints
        assert len(pad(make_motion(sk, 10), 100)) == 100
        with pytest.raises(LimitError, match="padded to 101 frames"):
            pad(make_motion(sk, 10), 101)
        with pytest.raises(LimitError, match="joint-frames"):
            rest_motion(sk, 10**9, 30.0)
