"""Issue 11: every malformed input is the project's error, never another exception, never a half-written output.

One block per reader — the project's motion npz, AMASS npz, the labels CSV of the bvh-folder adapter, the Bandai
label files, a prepared cache folder — fed malformed, wrong-typed, wrong-shaped and non-finite content (by hand and by
seeded byte corruption), then the command line: exit code 2, one line naming the file, no output left behind.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.cli import main
from motionsynth.data.cache import MotionCache, prepare
from motionsynth.errors import FormatError, InvalidMotionError, MotionsynthError
from motionsynth.io import load_motion
from motionsynth.io.amass import read_amass
from motionsynth.io.bvh import write_bvh
from motionsynth.io.npz import load_npz, save_npz
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

NAMES = ["Hips", "Spine", "Head", "LeftUpLeg", "LeftFoot", "RightUpLeg", "RightFoot"]
PARENTS = [-1, 0, 1, 0, 3, 0, 5]
OFFSETS = [[0, 90, 0], [0, 10, 0], [0, 30, 0], [10, -5, 0], [0, -80, 0], [-10, -5, 0], [0, -80, 0]]
T, J = 12, len(NAMES)


def good_motion(T: int = T, seed: int = 0) -> Motion:
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-30, 30, (T, J, 3))
    root = np.stack([np.arange(T) * 2.0, 90 + np.sin(np.arange(T)), np.zeros(T)], 1)
    return Motion(Skeleton(NAMES, PARENTS, OFFSETS), R.euler_to_quat(angles, "ZYX", degrees=True), root, 30.0,
                  labels={"action": "walk"}, name="take")


def run_cli(*args) -> tuple[int, str, str]:
    import contextlib
    import sys

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
    sys.stdout.flush()
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


def mutated_bytes(data: bytes, seed: int) -> bytes:
    """``data`` with a few bytes overwritten, a slice dropped or the file cut short (seeded)."""
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    kind = seed % 3
    if kind == 0:
        for i in rng.integers(0, len(b), 1 + seed % 5):
            b[i] = int(rng.integers(0, 256))
    elif kind == 1:
        i = int(rng.integers(0, len(b) - 1))
        del b[i: i + int(rng.integers(1, 64))]
    else:
        b = b[: int(rng.integers(0, len(b)))]
    return bytes(b)


# ---- Motion: the edge every reader and writer goes through -----------------------------------------------------------
def test_motion_refuses_non_finite_and_degenerate_values():
    m = good_motion()
    skel = m.skeleton
    cases = {
        "nan rotation": dict(rotations=np.where(np.arange(T * J * 4).reshape(T, J, 4) == 41, np.nan, m.rotations)),
        "inf root": dict(root_positions=np.where(np.arange(T * 3).reshape(T, 3) == 7, np.inf, m.root_positions)),
        "zero quaternion": dict(rotations=np.where(np.arange(T * J).reshape(T, J, 1) == 5, 0.0, m.rotations)),
        "tiny quaternion": dict(rotations=np.where(np.arange(T * J).reshape(T, J, 1) == 5, 1e-9, m.rotations)),
        "huge quaternion": dict(rotations=m.rotations * 1e300),
        "nan translation": dict(translations=np.full((T, J, 3), np.nan)),
        "fps inf": dict(fps=np.inf), "fps nan": dict(fps=np.nan), "fps 0": dict(fps=0), "fps -30": dict(fps=-30),
        "fps text": dict(fps="30 fps"), "fps tiny": dict(fps=1e-320),
    }
    for what, override in cases.items():
        kwargs = dict(skeleton=skel, rotations=m.rotations, root_positions=m.root_positions, fps=30.0, name="w")
        kwargs.update(override)
        with pytest.raises(InvalidMotionError) as e:
            Motion(**kwargs)
        assert isinstance(e.value, MotionsynthError) and isinstance(e.value, ValueError), what
        assert "'w'" in str(e.value), what
    with pytest.raises(InvalidMotionError, match="frame 5, joint 'Spine'"):
        Motion(skel, np.where(np.arange(T * J).reshape(T, J, 1) == 5 * J + 1, 0.0, m.rotations), m.root_positions, 30)
    with pytest.raises(ValueError, match="rotations must be"):  # shape errors stay plain ValueErrors
        Motion(skel, m.rotations[:, :3], m.root_positions, 30)


def test_motion_keeps_good_values_and_every_path_still_works():
    m = good_motion()
    scaled = Motion(m.skeleton, m.rotations * 2.0, m.root_positions, 30)  # not unit, but a rotation: kept as is
    assert np.array_equal(scaled.rotations, m.rotations * 2.0)
    assert len(m[3:8]) == 5 and len(m[-1]) == 1 and m.copy().fps == 30.0 and len(m.resample(60)) == 2 * T - 1
    empty = m[5:5]
    assert len(empty) == 0
    from dataclasses import replace

    assert replace(m, fps=60).fps == 60.0
    with pytest.raises(InvalidMotionError):
        replace(m, fps=float("inf"))
    for fps in (float("inf"), float("nan"), 0, -1):
        with pytest.raises(InvalidMotionError, match="resample"):
            m.resample(fps)


# ---- the project's motion npz ----------------------------------------------------------------------------------------
def npz_arrays() -> dict:
    """The arrays `save_npz` writes for a good motion with translations."""
    m = good_motion()
    m.translations = np.broadcast_to(m.skeleton.offsets, (T, J, 3)).copy()
    return {"format": np.array("motionsynth.motion"), "version": np.array(1),
              "skeleton": np.array(m.skeleton.to_json()), "rotations": m.rotations, "root_positions": m.root_positions,
              "translations": m.translations, "fps": np.array(30.0), "labels": np.array(json.dumps(m.labels)),
              "name": np.array("take")}


def skeleton_json(**change) -> str:
    d = Skeleton(NAMES, PARENTS, OFFSETS).to_dict()
    d.update(change)
    return json.dumps(d)


NAN_ROT = np.where(np.arange(T * J * 4).reshape(T, J, 4) == 57, np.nan, good_motion().rotations)
NPZ_CASES = {
    # key: list of (bad value, words the message must hold)
    "format": [(np.array(3.0), "format"), (np.array("other.format"), "not a motionsynth motion file")],
    "version": [(np.array("one"), "version"), (np.array(99), "newer"), (np.array(1.5), "version"),
                (np.array([1, 2]), "version")],
    "skeleton": [(np.array("{not json"), "skeleton"), (np.array("[1, 2]"), "skeleton"),
                 (np.array(skeleton_json(names=None)), "skeleton"), (np.array(7.0), "skeleton"),
                 (np.array(skeleton_json(offsets=[[float("nan")] * 3] * J)), "skeleton"),
                 (np.array(skeleton_json(channels=[["Wobble"]] * J)), "channels"),
                 (np.array(skeleton_json(end_sites=[1, 2])), "skeleton"),
                 (np.array(skeleton_json(end_sites={"99": [0, 1, 0]})), "end site"),
                 (np.array(skeleton_json(root=42)), "skeleton"),
                 (np.array(skeleton_json(parents=[0] * J)), "skeleton"),
                 (np.array(skeleton_json(symmetry_override=[0])), "symmetry"),
                 (np.array(skeleton_json(groups_override={"torso": ["x"]})), "groups")],
    "rotations": [(np.full((T, J, 4), "a"), "rotations"), (np.zeros((T, J, 4), dtype=complex), "rotations"),
                  (np.ones((T, J, 4), dtype=bool), "rotations"), (np.zeros((T, J, 3)), "rotations"),
                  (np.zeros((T, J + 1, 4)), "rotations"), (np.zeros((T, J * 4)), "rotations"),
                  (NAN_ROT, "rotations"), (np.full((T, J, 4), np.inf), "rotations"),
                  (np.zeros((T, J, 4)), "zero-norm"), (good_motion().rotations * 1e300, "too large")],
    "root_positions": [(np.zeros((T, 2)), "root_positions"), (np.zeros((T + 1, 3)), "root_positions"),
                       (np.full((T, 3), np.inf), "root_positions"), (np.full((T, 3), "x"), "root_positions")],
    "translations": [(np.zeros((T, J, 2)), "translations"), (np.full((T, J, 3), np.nan), "translations")],
    "fps": [(np.array(np.inf), "fps"), (np.array(np.nan), "fps"), (np.array(0.0), "fps"), (np.array(-30.0), "fps"),
            (np.array("30"), "fps"), (np.array([30.0, 60.0]), "fps"), (np.array(1e-320), "fps")],
    "labels": [(np.array("{oops"), "labels"), (np.array("[1, 2]"), "labels"), (np.array(3), "labels")],
    "name": [(np.array(5.0), "name")],
}


def cases(table: dict) -> dict:
    """A table {key: [(bad value, words of the message), …]} as pytest parameters with readable ids."""
    return dict(argvalues=[(k, v, w) for k, rows in table.items() for v, w in rows],
                ids=[f"{k}-{i}" for k, rows in table.items() for i in range(len(rows))])


def refused(path, arrays: dict, key: str, value, reader, words: str) -> None:
    """``arrays`` with ``key`` replaced by ``value``, saved at ``path``: ``reader`` raises a FormatError that names
    the file and says ``words``."""
    np.savez(path, **{**arrays, key: value})
    with pytest.raises(FormatError) as e:
        reader(path)
    assert str(e.value).startswith(str(path)) and words in str(e.value)


@pytest.mark.parametrize("key, value, words", **cases(NPZ_CASES))
def test_npz_reader_refuses_malformed_arrays(tmp_path, key, value, words):
    refused(tmp_path / "bad.npz", npz_arrays(), key, value, load_npz, words)
    with pytest.raises(FormatError):
        load_motion(tmp_path / "bad.npz")


def test_npz_reader_never_unpickles(tmp_path):
    arrays = npz_arrays()
    arrays["rotations"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "obj.npz", **arrays)  # numpy pickles object arrays when writing
    with pytest.raises(FormatError, match="'rotations' holds pickled Python objects"):
        load_npz(tmp_path / "obj.npz")
    arrays = npz_arrays()
    del arrays["rotations"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(FormatError, match="lacks"):
        load_npz(tmp_path / "missing.npz")


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_reader_on_corrupted_bytes(tmp_path, compressed):
    path = tmp_path / "m.npz"
    (np.savez_compressed if compressed else np.savez)(path, **npz_arrays())
    data = path.read_bytes()
    read = 0
    for seed in range(60):
        (tmp_path / "x.npz").write_bytes(mutated_bytes(data, seed))
        try:
            load_motion(tmp_path / "x.npz")
            read += 1
        except FormatError as e:
            assert "x.npz" in str(e)
    assert read < 60


# ---- AMASS npz -------------------------------------------------------------------------------------------------------
def amass_arrays(T: int = 6) -> dict:
    rng = np.random.default_rng(1)
    return {"poses": rng.normal(0, 0.2, (T, 156)), "trans": rng.normal(0, 0.5, (T, 3)),
            "mocap_framerate": np.array(60.0), "betas": np.zeros(16), "gender": np.array("neutral")}


AMASS_CASES = {
    "poses": [(np.full((6, 156), "x"), "'poses'"), (np.array([[{"a": 1}]], dtype=object), "'poses'"),
              (np.zeros((6, 156), dtype=complex), "'poses'"), (np.ones((6, 156), dtype=bool), "'poses'"),
              (np.zeros((6, 52, 3)), "'poses'"), (np.zeros((6, 100)), "'poses'"), (np.zeros(156), "'poses'"),
              (amass_arrays()["poses"] * 1e300, "'poses'"), (np.full((6, 156), np.nan), "'poses'"),
              (np.full((6, 156), -np.inf), "'poses'")],
    "trans": [(np.full((6, 3), "1.0"), "'trans'"), (np.zeros((6, 2)), "'trans'"), (np.zeros((5, 3)), "'trans'"),
              (amass_arrays()["trans"] * 1e300, "'trans'"), (np.full((6, 3), np.nan), "'trans'"),
              (np.array([[None] * 3] * 6, dtype=object), "'trans'")],
    "mocap_framerate": [(np.array(0.0), "mocap_framerate"), (np.array(-60.0), "mocap_framerate"),
                        (np.array(np.inf), "mocap_framerate"), (np.array(np.nan), "mocap_framerate"),
                        (np.array("60"), "mocap_framerate"), (np.array([60.0, 30.0]), "mocap_framerate"),
                        (np.array(1e-320), "mocap_framerate"), (np.array([], dtype=float), "mocap_framerate")],
}


@pytest.mark.parametrize("key, value, words", **cases(AMASS_CASES))
def test_amass_reader_refuses_malformed_arrays(tmp_path, key, value, words):
    refused(tmp_path / "clip_poses.npz", amass_arrays(), key, value, read_amass, words)


@pytest.mark.parametrize("drop", ["poses", "trans", "mocap_framerate"])
def test_amass_reader_names_missing_keys(tmp_path, drop):
    arrays = amass_arrays()
    del arrays[drop]
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(FormatError, match=f"lacks '{drop}"):
        read_amass(tmp_path / "a.npz")


def test_amass_reader_ignores_unused_object_arrays_and_checks_betas(tmp_path, monkeypatch):
    arrays = amass_arrays()
    arrays["extra"] = np.array([{"x": 1}], dtype=object)  # never loaded, so never unpickled
    np.savez(tmp_path / "ok.npz", **arrays)
    assert read_amass(tmp_path / "ok.npz").num_frames == 6
    import sys
    import types

    monkeypatch.setitem(sys.modules, "smplx", types.SimpleNamespace(create=None))
    arrays = amass_arrays()
    arrays["betas"] = np.full(16, "b")
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(FormatError, match="'betas'"):
        read_amass(tmp_path / "b.npz", body_model_dir=tmp_path)


def test_amass_reader_on_corrupted_bytes(tmp_path):
    np.savez_compressed(tmp_path / "a.npz", **amass_arrays())
    data = (tmp_path / "a.npz").read_bytes()
    for seed in range(60):
        (tmp_path / "x.npz").write_bytes(mutated_bytes(data, seed))
        try:
            read_amass(tmp_path / "x.npz")
        except FormatError as e:
            assert "x.npz" in str(e)


# ---- the labels CSV of the bvh-folder adapter ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bvh_src(tmp_path_factory):
    src = tmp_path_factory.mktemp("labels") / "src"
    src.mkdir()
    for i, name in enumerate(["a1", "b2", "c3"]):
        write_bvh(good_motion(20, i), src / f"{name}.bvh")
    return src


CSV_CASES = [
    (b"name,mood\na1,happy\nb2,\xff\xfesad\n", 3, "not UTF-8"),
    (b"file,mood\na1,happy\n", 1, "no 'name' column"),
    (b"name,mood\na1,happy,extra\n", 2, "3 fields, the header has 2"),
    (b"name,mood,speed\na1,happy,slow\nb2,sad\n", 3, "2 fields, the header has 3"),
    (b"name,mood\n,happy\n", 2, "no take name"),
    (b"name,mood\na1,happy\n\nsub/a1.bvh,sad\na1,sad\n", 5, "listed twice (first on line 2)"),
    (b"name,mood,mood\na1,x,y\n", 1, "appears twice"),
    (b"name,,mood\na1,x,y\n", 1, "column 2 of the header has no name"),
    (b'name,mood\na1,"happy\n', 2, "malformed CSV"),
    (b'name,mood\na1,"happy"x\n', 2, "malformed CSV"),
    (b"name,mood\na1,hap\x00py\n", 2, "NUL byte"),
    (b"", 1, "empty file"),
    (b"name,mood\n", 1, "no rows"),
]


@pytest.mark.parametrize("content, line, words", CSV_CASES, ids=[c[2] for c in CSV_CASES])
def test_labels_csv_errors_name_file_and_line(bvh_src, tmp_path, content, line, words):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_bytes(content)
    with pytest.raises(FormatError) as e:
        prepare(bvh_src, "bvh-folder", tmp_path / "c", labels=csv_path, progress=False)
    assert e.value.path == str(csv_path) and e.value.line == line and words in str(e.value)
    assert str(e.value).startswith(f"{csv_path}:{line}: ")
    assert not (tmp_path / "c").exists()


def test_labels_csv_good_one_still_reads(bvh_src, tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_bytes(b"\xef\xbb\xbfname,mood,speed\r\na1,happy,slow\r\n\r\n\"b2.bvh\",\"s,ad\",\r\n")
    cache = prepare(bvh_src, "bvh-folder", tmp_path / "c", labels=csv_path, workers=1, progress=False)
    assert {t.name: t.labels for t in cache.takes} == {"a1": {"mood": "happy", "speed": "slow"},
                                                       "b2": {"mood": "s,ad"}, "c3": {}}


def test_cli_prepare_with_bad_labels_exits_2(bvh_src, tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_bytes(b"name,mood\na1,happy,extra\n")
    code, out, err = run_cli("data", "prepare", bvh_src, "--dataset", "bvh-folder", "--out", tmp_path / "c",
                             "--labels", csv_path, "--no-progress")
    assert_one_line_error(code, err, f"{csv_path}:2:", "3 fields")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".c", "c"))]


# ---- Bandai Namco label files ----------------------------------------------------------------------------------------
def test_bandai_label_files(tmp_path):
    root = tmp_path / "bandai-namco-2"
    (root / "data").mkdir(parents=True)
    (root / "cfg").mkdir()
    (root / "cfg/content_label.txt").write_bytes(b"dataset-2_walk\ndataset-2_run\n")
    (root / "cfg/style_label.txt").write_bytes(b"dataset-2_active\ndataset-2_n\xe9rmal\n")
    labels = {"ok": {"content": 1, "style": 0}, "neg": {"content": -1, "style": 0},
              "big": {"content": 0, "style": 5}, "float": {"content": 0.5, "style": 0}, "list": [1, 2],
              "inf": {"content": 1e400, "style": 0}}
    for i, (name, ids) in enumerate(labels.items()):
        write_bvh(good_motion(20, i), root / "data" / f"{name}.bvh")
        (root / "data" / f"{name}.json").write_text(json.dumps(ids).replace("1e+400", "1e400"))
    (root / "data" / "utf16.bvh").write_bytes((root / "data" / "ok.bvh").read_bytes())
    (root / "data" / "utf16.json").write_bytes('{"content": 0, "style": 0}'.encode("utf-16"))
    with pytest.raises(FormatError) as e:
        prepare(root, "bandai-namco", tmp_path / "c", progress=False)
    assert str(e.value).startswith(f"{root / 'cfg/style_label.txt'}:2: not UTF-8")
    (root / "cfg/style_label.txt").write_bytes(b"dataset-2_active\ndataset-2_normal\n")
    cache = prepare(root, "bandai-namco", tmp_path / "c", workers=1, progress=False)
    assert [t.name for t in cache.takes] == ["ok"]
    assert {s["name"] for s in cache.skipped} == {"neg", "big", "float", "list", "inf", "utf16"}
    assert all(s["reason"].startswith("bad label file") for s in cache.skipped)


# ---- a prepared cache folder -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    src = root / "src"
    src.mkdir()
    for i in range(4):
        write_bvh(good_motion(20 + i, i), src / f"t{i}.bvh")
    prepare(src, "bvh-folder", root / "cache", workers=1, progress=False)
    return root / "cache"


def _copy_cache(cache: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(cache, to)
    return to


def _meta(cache: Path) -> dict:
    return json.loads((cache / "meta.json").read_text())


META_CASES = {
    "not json": lambda m: "{oops",
    "a list": lambda m: "[1, 2]",
    "no takes": lambda m: json.dumps({k: v for k, v in m.items() if k != "takes"}),
    "take outside": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "length": 10 ** 6}] + m["takes"][1:]}),
    "take negative": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "start": -5}] + m["takes"][1:]}),
    "take text": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "start": "0"}] + m["takes"][1:]}),
    "take extra key": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "x": 1}] + m["takes"][1:]}),
    "take not dict": lambda m: json.dumps({**m, "takes": [3] + m["takes"][1:]}),
    "bad split": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "split": "dev"}] + m["takes"][1:]}),
    "bad labels": lambda m: json.dumps({**m, "takes": [{**m["takes"][0], "labels": [1]}] + m["takes"][1:]}),
    "fps text": lambda m: json.dumps({**m, "fps": "30"}),
    "fps inf": lambda m: json.dumps({**m, "fps": 1e400}).replace("Infinity", "1e400"),
    "frames": lambda m: json.dumps({**m, "counts": {**m["counts"], "frames": m["counts"]["frames"] + 1}}),
    "counts list": lambda m: json.dumps({**m, "counts": []}),
    "label names": lambda m: json.dumps({**m, "label_names": [1]}),
    "skipped": lambda m: json.dumps({**m, "skipped": "none"}),
    "feature dim": lambda m: json.dumps({**m, "feature_dim": 3}),
    "offsets flag": lambda m: json.dumps({**m, "per_take_offsets": True}),
    "version": lambda m: json.dumps({**m, "version": 99}),
    "not utf8": lambda m: b"\xff\xfe{}",
}


def _exercise(path: Path) -> None:
    """Open a cache and use it the ways commands do; MotionsynthError is the only acceptable failure."""
    cache = MotionCache(path)
    cache.info()
    for i in range(len(cache.takes)):
        cache.motion(i)
    _ = cache.stats


@pytest.mark.parametrize("case", list(META_CASES))
def test_damaged_meta_json(small_cache, tmp_path, case):
    c = _copy_cache(small_cache, tmp_path / "c")
    text = META_CASES[case](_meta(c))
    (c / "meta.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(MotionsynthError) as e:
        _exercise(c)
    assert str(c) in str(e.value)
    code, _, err = run_cli("data", "info", c)
    assert_one_line_error(code, err, str(c))


def _npy_cases(cache: Path) -> dict:
    rot = np.load(cache / "rotations.npy")
    N = len(rot)
    nan_rot = rot.copy()
    nan_rot[3, 2, 1] = np.nan
    zero_rot = rot.copy()
    zero_rot[4, 1] = 0
    return {
        ("rotations.npy", "shape"): rot[:, :, :3],
        ("rotations.npy", "short"): rot[:-1],
        ("rotations.npy", "ints"): rot.astype(np.int32),
        ("rotations.npy", "text"): np.full(rot.shape, "a"),
        ("rotations.npy", "objects"): np.array([None] * N, dtype=object),
        ("rotations.npy", "nan"): nan_rot,
        ("rotations.npy", "zero quaternion"): zero_rot,
        ("root_positions.npy", "shape"): np.zeros((N, 2), np.float32),
        ("root_positions.npy", "inf"): np.full((N, 3), np.inf, np.float32),
        ("features.npy", "1-d"): np.zeros(N, np.float32),
        ("features.npy", "other D"): np.zeros((N, 3), np.float32),
        ("stats.npz", "garbage"): b"not a zip",
        ("stats.npz", "wrong D"): {"mean": np.zeros(3), "std": np.ones(3)},
        ("stats.npz", "nan"): {"mean": np.full(np.load(cache / "features.npy").shape[1], np.nan),
                               "std": np.ones(np.load(cache / "features.npy").shape[1])},
        ("stats.npz", "no std"): {"mean": np.zeros(3)},
        ("skeleton.json", "garbage"): b"{",
        ("skeleton.json", "list"): b"[]",
        ("skeleton.json", "bad end sites"): json.dumps({**json.loads((cache / "skeleton.json").read_text()),
                                                        "end_sites": [1]}).encode(),
        ("rotations.npy", "garbage"): b"\x93NUMPY garbage",
    }


@pytest.mark.parametrize("index", range(19))
def test_damaged_cache_arrays(small_cache, tmp_path, index):
    c = _copy_cache(small_cache, tmp_path / "c")
    (name, what), value = list(_npy_cases(c).items())[index]
    if isinstance(value, bytes):
        (c / name).write_bytes(value)
    elif isinstance(value, dict):
        np.savez(c / name, **value)
    else:
        np.save(c / name, value, allow_pickle=True)
    with pytest.raises(MotionsynthError) as e:
        _exercise(c)
    assert str(c) in str(e.value), (name, what)


def test_cache_files_with_corrupted_bytes(small_cache, tmp_path):
    """Seeded byte damage to every file of a cache: opening and using it fails only with MotionsynthError."""
    failures = 0
    for k, name in enumerate(["meta.json", "skeleton.json", "rotations.npy", "root_positions.npy", "features.npy",
                              "stats.npz"]):
        data = (small_cache / name).read_bytes()
        for seed in range(12):
            c = _copy_cache(small_cache, tmp_path / f"c{k}_{seed}")
            (c / name).write_bytes(mutated_bytes(data, seed))
            try:
                _exercise(c)
            except MotionsynthError:
                failures += 1
    assert failures > 20


# ---- the command line: exit 2, one line naming the file, nothing written ---------------------------------------------
def _bad_motion_npz(path: Path, case: str) -> Path:
    m = good_motion()
    if case == "nan rotations":
        save_npz(m, path)
        arrays = dict(np.load(path))
        arrays["rotations"] = NAN_ROT
    elif case == "inf root positions":
        save_npz(m, path)
        arrays = dict(np.load(path))
        arrays["root_positions"][5, 1] = np.inf
    elif case == "fps inf":
        save_npz(m, path)
        arrays = dict(np.load(path))
        arrays["fps"] = np.array(np.inf)
    elif case == "zero quaternions":
        save_npz(m, path)
        arrays = dict(np.load(path))
        arrays["rotations"] = np.zeros_like(arrays["rotations"])
    else:
        raise AssertionError(case)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case, words", [("nan rotations", "rotations hold NaN"),
                                         ("inf root positions", "root_positions hold NaN or infinite"),
                                         ("fps inf", "fps must be finite and positive"),
                                         ("zero quaternions", "zero-norm quaternions")])
@pytest.mark.parametrize("out_name", ["out.bvh", "out.npz"])
def test_cli_convert_refuses_bad_motion_npz(tmp_path, case, words, out_name):
    src = _bad_motion_npz(tmp_path / "bad.npz", case)
    code, out, err = run_cli("convert", src, tmp_path / out_name)
    assert_one_line_error(code, err, str(src), words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


@pytest.mark.parametrize("case", ["poses", "trans", "rate"])
def test_cli_convert_refuses_bad_amass(tmp_path, case):
    arrays = amass_arrays()
    if case == "rate":
        arrays["mocap_framerate"] = np.array("sixty")
    else:
        arrays[case] = arrays[case] * 1e300
    np.savez(tmp_path / "clip.npz", **arrays)
    code, _, err = run_cli("convert", tmp_path / "clip.npz", tmp_path / "out.bvh")
    assert_one_line_error(code, err, str(tmp_path / "clip.npz"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.npz"]


def test_cli_convert_refuses_infinite_fps_option(tmp_path):
    save_npz(good_motion(), tmp_path / "m.npz")
    code, _, err = run_cli("convert", tmp_path / "m.npz", tmp_path / "out.bvh", "--fps", "inf")
    assert_one_line_error(code, err, "inf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.slow
def test_cli_convert_bad_bytes_exit_2(tmp_path):
    save_npz(good_motion(), tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    for seed in range(0, 30, 3):
        (tmp_path / "x.npz").write_bytes(mutated_bytes(data, seed))
        code, _, err = run_cli("convert", tmp_path / "x.npz", tmp_path / "out.bvh")
        if code:
            assert_one_line_error(code, err, "x.npz")
            assert not (tmp_path / "out.bvh").exists()
        else:  # the damage missed everything that matters: the output reads back
            assert load_motion(tmp_path / "out.bvh").num_frames == T
            (tmp_path / "out.bvh").unlink()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_take_in_a_dataset_is_skipped_with_its_file_named(tmp_path):
    src = tmp_path / "amass"
    src.mkdir()
    np.savez(src / "good.npz", **amass_arrays())
    bad = amass_arrays()
    bad["poses"] = bad["poses"] * 1e300
    np.savez(src / "huge.npz", **bad)
    cache = prepare(src, "amass", tmp_path / "c", workers=1, progress=False)
    assert [t.name for t in cache.takes] == ["good"]
    assert cache.skipped[0]["name"] == "huge" and "huge.npz" in cache.skipped[0]["reason"]


def test_load_take_names_the_file_of_an_invalid_motion(tmp_path, monkeypatch):
    """A reader whose Motion is refused (InvalidMotionError carries no file name) is reported with the file."""
    import motionsynth.io.bvh as bvh
    from motionsynth.data.adapters import TakeRef, load_take

    def refuse(path):
        raise InvalidMotionError("motion 'x': fps must be finite and positive, got inf")

    monkeypatch.setattr(bvh, "read_bvh", refuse)
    with pytest.raises(FormatError) as e:
        load_take(TakeRef("x", str(tmp_path / "x.bvh")))
    assert str(e.value).startswith(f"{tmp_path / 'x.bvh'}: ") and "fps must be finite" in str(e.value)
