"""Adapters, the memory-mapped motion cache, splits, windows and WindowDataset, on tiny hand-made data."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from motionsynth import rotations as R
from motionsynth.cli import main
from motionsynth.data.cache import SPLITS, MotionCache, prepare, split_of
from motionsynth.data.features import rot6d_slice
from motionsynth.data.windows import WindowDataset, windows
from motionsynth.errors import MotionsynthError
from motionsynth.io.bvh import parse_bvh, read_bvh, write_bvh
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

from helpers import HUMANOID_BANDAI as BANDAI_HUMANOID
from helpers import humanoid, make_motion

NAMES = ["Hips", "Spine", "Head", "LeftUpLeg", "LeftFoot", "RightUpLeg", "RightFoot"]
PARENTS = [-1, 0, 1, 0, 3, 0, 5]
OFFSETS = [[0, 90, 0], [0, 10, 0], [0, 30, 0], [10, -5, 0], [0, -80, 0], [-10, -5, 0], [0, -80, 0]]


def skeleton(scale: float = 1.0, names=NAMES) -> Skeleton:
    offsets = np.array(OFFSETS, dtype=float) * scale
    return Skeleton(names, PARENTS, offsets)


def motion(T: int, seed: int, scale: float = 1.0, fps: float = 30.0, names=NAMES) -> Motion:
    """A smooth random motion: joint angles are low-frequency sines, the root walks forward."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None, None] / fps
    amp, freq, phase = rng.uniform(5, 40, (1, 7, 3)), rng.uniform(0.3, 2, (1, 7, 3)), rng.uniform(0, 6, (1, 7, 3))
    angles = amp * np.sin(2 * np.pi * freq * t + phase)
    rot = R.euler_to_quat(angles, "ZYX", degrees=True)
    root = np.stack([np.sin(np.arange(T) / 20) * 10, 90 + np.cos(np.arange(T) / 7), np.arange(T) * 3.0], 1)
    return Motion(skeleton(scale, names), rot, root, fps)


def write_takes(folder: Path, lengths: dict[str, int]) -> dict[str, Motion]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, T) in enumerate(sorted(lengths.items())):
        write_bvh(motion(T, i), folder / f"{name}.bvh")
        out[name] = read_bvh(folder / f"{name}.bvh")
    return out


LENGTHS = {f"{a}_{i:02d}": 20 + 7 * i + (5 if a == "run" else 0) for a in ("walk", "run") for i in range(8)}


@pytest.fixture(scope="module")
def folder_cache(tmp_path_factory):
    """A bvh-folder of 16 good takes + a garbage file + a take on another skeleton, prepared once."""
    root = tmp_path_factory.mktemp("bvh")
    src = root / "takes"
    sources = write_takes(src, LENGTHS)
    (src / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    other = ["Pelvis", "Spine", "Head", "LeftUpLeg", "LeftFoot", "RightUpLeg", "RightFoot"]
    write_bvh(motion(30, 99, names=other), src / "zz_other.bvh")
    cache = prepare(src, "bvh-folder", root / "cache", workers=1, progress=False,
                    label_pattern=r"(?P<action>[a-z]+)_\d+")
    return cache, sources, src


def test_split_is_stable_and_roughly_80_10_10():
    names = [f"take_{i}" for i in range(3000)]
    assert [split_of(n) for n in names] == [split_of(n) for n in names]
    frac = {s: sum(split_of(n) == s for n in names) / len(names) for s in SPLITS}
    assert 0.76 < frac["train"] < 0.84 and 0.07 < frac["val"] < 0.13 and 0.07 < frac["test"] < 0.13


def test_prepare_writes_memmapped_cache(folder_cache):
    cache, sources, _ = folder_cache
    for f in ("meta.json", "skeleton.json", "rotations.npy", "root_positions.npy", "features.npy", "stats.npz"):
        assert (cache.path / f).is_file(), f
    assert not (cache.path / "offsets.npy").exists()
    assert isinstance(cache.features, np.memmap) and isinstance(cache.rotations, np.memmap)
    assert cache.rotations.dtype == np.float32 and cache.features.dtype == np.float32
    assert len(cache.takes) == len(sources) and cache.fps == 30
    assert cache.rotations.shape == (sum(LENGTHS.values()), len(NAMES), 4)
    assert cache.features.shape[0] == cache.root_positions.shape[0] == cache.rotations.shape[0]
    starts = [t.start for t in cache.takes]
    assert starts == sorted(starts) and starts[0] == 0
    assert all(a.start + a.length == b.start for a, b in zip(cache.takes, cache.takes[1:]))
    assert len(cache.data_hash) == 64 and cache.dataset == "bvh-folder"


def test_bad_takes_are_reported_and_skipped(folder_cache):
    cache, _, _ = folder_cache
    skipped = {s["name"]: s["reason"] for s in cache.skipped}
    assert set(skipped) == {"broken", "zz_other"}
    assert "broken.bvh" in skipped["broken"]
    assert "skeleton" in skipped["zz_other"]


def test_cached_takes_equal_the_source(folder_cache):
    cache, sources, _ = folder_cache
    for i, take in enumerate(cache.takes):
        m, src = cache.motion(i), sources[take.name]
        assert m.name == take.name and m.rotations.dtype == np.float64 and len(m) == len(src)
        assert np.abs(np.abs((m.rotations * src.rotations).sum(-1)) - 1).max() < 1e-5
        assert np.abs(m.global_positions() - src.global_positions()).max() < 1e-4
    assert cache.motion(0).labels == {"action": cache.takes[0].name.split("_")[0]}


def test_reopen_and_hash_are_stable(folder_cache, tmp_path):
    cache, _, src = folder_cache
    again = MotionCache(cache.path)
    assert again.data_hash == cache.data_hash and again.takes == cache.takes
    blob = pickle.dumps(WindowDataset(cache, "train", 8, 4))
    assert len(blob) < 20_000  # the cache travels to DataLoader workers by path, not by value
    assert pickle.loads(blob)[0]["features"].shape == (8, cache.feature_dim)
    second = prepare(src, "bvh-folder", tmp_path / "c2", workers=2, progress=False,
                     label_pattern=r"(?P<action>[a-z]+)_\d+")
    assert second.data_hash == cache.data_hash
    assert np.array_equal(np.asarray(second.features), np.asarray(cache.features))


def test_info_counts(folder_cache):
    cache, _, _ = folder_cache
    info = cache.info()
    assert info["takes"] == 16 and info["frames"] == sum(LENGTHS.values()) and info["joints"] == len(NAMES)
    assert info["fps"] == 30 and info["hours"] == pytest.approx(info["frames"] / 30 / 3600, abs=1e-3)
    assert sum(s["takes"] for s in info["splits"].values()) == 16
    assert sum(s["frames"] for s in info["splits"].values()) == info["frames"]
    assert info["labels"] == {"action": {"run": 8, "walk": 8}}
    for t in cache.takes:
        assert t.split == split_of(t.name)


def test_splits_are_disjoint_and_windows_never_cross(folder_cache):
    cache, _, _ = folder_cache
    seen = set()
    for s in SPLITS:
        idx = cache.split(s)
        assert not seen & set(idx)
        seen |= set(idx)
        w = windows(cache, s, 25, 4)
        assert w.dtype == np.int64 and w.shape[1] == 2
        for take, start in w:
            assert take in idx and 0 <= start and start + 25 <= cache.takes[take].length
        long_takes = {i for i in idx if cache.takes[i].length >= 25}
        assert set(w[:, 0].tolist()) == long_takes
    assert seen == set(range(len(cache.takes)))
    with pytest.raises(MotionsynthError):
        cache.split("training")


def test_window_dataset_items_and_normalisation(folder_cache):
    cache, _, _ = folder_cache
    ds = WindowDataset(cache, "train", 16, 5)
    item = ds[0]
    D = cache.feature_dim
    assert item["features"].shape == (16, D) and item["features"].dtype == torch.float32
    take, start = item["take"], item["start"]
    raw = np.asarray(cache.features[cache.takes[take].start + start:][:16])
    assert np.allclose(item["features"].numpy(), (raw - cache.stats.mean) / cache.stats.std, atol=1e-5)
    names = cache.label_names["action"]
    assert names[item["labels"]["action"]] == cache.takes[take].labels["action"]
    # every train frame once: normalised features have zero mean, unit std on the varying channels
    every = WindowDataset(cache, "train", 1, 1)
    x = torch.cat([every[k]["features"] for k in range(len(every))]).numpy()
    varying = cache.stats.std > 1e-3
    assert np.abs(x.mean(0)).max() < 1e-3
    assert np.allclose(x.std(0)[varying], 1, atol=1e-3)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True)))
    assert batch["features"].shape == (4, 16, D) and batch["labels"]["action"].shape == (4,)
    raw_ds = WindowDataset(cache, "train", 16, 5, normalize=False)
    assert np.allclose(raw_ds[0]["features"].numpy(), raw, atol=1e-6)


def test_window_dataset_augment_path(folder_cache):
    from motionsynth.data.augment import Augment

    cache, _, _ = folder_cache
    identity = WindowDataset(cache, "train", 16, 5, augment=lambda m, rng: m)
    plain = WindowDataset(cache, "train", 16, 5)
    rot6d = rot6d_slice(cache.skeleton)
    for k in (0, len(plain) - 1):
        a, b = identity[k]["features"].numpy(), plain[k]["features"].numpy()
        # frame 0's velocities differ by design: re-encoding a window knows no frame before it
        assert np.allclose(a[1:], b[1:], atol=1e-3) and np.allclose(a[0, rot6d], b[0, rot6d], atol=1e-3)
    aug = WindowDataset(cache, "train", 16, 5, augment=Augment(), seed=3)
    a, b = aug[1]["features"], aug[1]["features"]
    assert a.shape == (16, cache.feature_dim) and torch.isfinite(a).all() and torch.equal(a, b)
    aug.set_epoch(1)
    assert not torch.equal(aug[1]["features"], a)


def test_per_take_offsets_and_resampling(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    originals = {}
    for i, scale in enumerate([1.0, 1.004, 0.997]):
        write_bvh(motion(40 + i, i, scale=scale), src / f"t{i}.bvh")
        originals[f"t{i}"] = read_bvh(src / f"t{i}.bvh")
    cache = prepare(src, "bvh-folder", tmp_path / "c", workers=1, progress=False)
    assert (cache.path / "offsets.npy").is_file()
    for i, t in enumerate(cache.takes):
        m = cache.motion(i)
        assert np.allclose(m.skeleton.offsets, originals[t.name].skeleton.offsets, atol=1e-4)
        assert np.abs(m.global_positions() - originals[t.name].global_positions()).max() < 1e-3
    half = prepare(src, "bvh-folder", tmp_path / "c15", fps=15, workers=1, progress=False)
    assert half.fps == 15 and [t.length for t in half.takes] == [20, 21, 21]


def test_other_frame_rate_is_skipped_without_fps(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_bvh(motion(30, 0), src / "a.bvh")
    write_bvh(motion(30, 1, fps=60), src / "b.bvh")
    cache = prepare(src, "bvh-folder", tmp_path / "c", workers=1, progress=False)
    assert [t.name for t in cache.takes] == ["a"]
    assert "fps" in cache.skipped[0]["reason"]


def test_bvh_folder_zip_and_csv_labels(tmp_path):
    src = tmp_path / "src"
    write_takes(src / "sub", {"a1": 30, "b2": 31, "c3": 32})
    archive = tmp_path / "takes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(src.rglob("*.bvh")):
            z.write(p, p.relative_to(src).as_posix())
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("name,mood,speed\na1,happy,slow\nsub/b2.bvh,sad,fast\n")
    cache = prepare(archive, "bvh-folder", tmp_path / "c", workers=1, progress=False, labels=csv_path)
    labels = {t.name: t.labels for t in cache.takes}
    assert labels == {"sub/a1": {"mood": "happy", "speed": "slow"}, "sub/b2": {"mood": "sad", "speed": "fast"},
                      "sub/c3": {}}
    assert cache.label_names == {"mood": ["happy", "sad"], "speed": ["slow", "fast"]}
    ds = WindowDataset(cache, cache.takes[0].split, 10, 10)
    assert all(v in (-1, 0, 1) for v in ds[0]["labels"].values())
    with pytest.raises(MotionsynthError, match="named groups"):
        prepare(src, "bvh-folder", tmp_path / "c2", label_pattern=r"[a-z]\d", progress=False)
    with pytest.raises(MotionsynthError, match="name"):
        (tmp_path / "bad.csv").write_text("file,mood\na1,x\n")
        prepare(src, "bvh-folder", tmp_path / "c3", labels=tmp_path / "bad.csv", progress=False)


def test_labels_csv_rows_matching_no_take_are_warned(tmp_path):
    import warnings

    from motionsynth.data.adapters import BvhFolder

    write_takes(tmp_path / "src" / "sub", {"a1": 20, "b2": 20})
    csv_path = tmp_path / "labels.csv"

    def listing(text: str) -> tuple[dict, list[str]]:
        csv_path.write_text(text)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            takes = BvhFolder(csv_path).list(tmp_path / "src").takes
        return {t.name: t.labels for t in takes}, [str(w.message) for w in caught]

    labels, warned = listing("name,mood\na1,happy\nsub/b2.bvh,sad\n")  # every row matches: silent
    assert labels == {"sub/a1": {"mood": "happy"}, "sub/b2": {"mood": "sad"}} and warned == []
    labels, warned = listing("name,mood\nA1,happy\nb3,sad\n")  # none matches (names are case-sensitive)
    assert labels == {"sub/a1": {}, "sub/b2": {}} and len(warned) == 1
    assert "none of its 2 rows matches a take" in warned[0] and "'sub/a1'" in warned[0] and "'A1'" in warned[0]
    rows = "".join(f"x{i},sad\n" for i in range(7))
    labels, warned = listing(f"name,mood\na1,happy\n{rows}")  # some match: counted, the first five named
    assert labels["sub/a1"] == {"mood": "happy"} and len(warned) == 1
    assert "7 of its 8 rows match no take" in warned[0] and "'x0', 'x1', 'x2', 'x3', 'x4', …" in warned[0]
    assert "'x5'" not in warned[0]


def make_bandai(root: Path, part: int = 2, n: int = 4) -> Path:
    """A fake Bandai Namco layout: data/*.bvh + .json, cfg/*_label.txt (prefixed), with one bad label file."""
    contents, styles = ["walk", "run", "wave-both-hands"], ["active", "normal"]
    (root / "data").mkdir(parents=True)
    (root / "cfg").mkdir()
    (root / "cfg/content_label.txt").write_text("\n".join(f"dataset-{part}_{c}" for c in contents))
    (root / "cfg/style_label.txt").write_text("\n".join(f"dataset-{part}_{s}" for s in styles) + "\n")
    for i in range(n):
        c, s = i % 3, i % 2
        stem = f"dataset-{part}_{contents[c]}_{styles[s]}_{i:03d}"
        write_bvh(motion(30 + i, i), root / "data" / f"{stem}.bvh")
        (root / "data" / f"{stem}.json").write_text(json.dumps({"content": c, "style": s}))
    bad = f"dataset-{part}_run_normal_999"
    write_bvh(motion(30, 7), root / "data" / f"{bad}.bvh")
    (root / "data" / f"{bad}.json").write_text(json.dumps({"content": 9, "style": 0}))
    return root


def zip_folder(folder: Path, archive: Path, top: str) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            z.write(p, f"{top}/{p.relative_to(folder).as_posix()}")
    return archive


def test_bandai_adapter_folder_and_zip(tmp_path):
    folder = make_bandai(tmp_path / "bandai-namco-2")
    archive = zip_folder(folder, tmp_path / "bn.zip", "bandai-namco-2")
    a = prepare(archive, "bandai-namco", tmp_path / "ca", workers=1, progress=False)
    b = prepare(tmp_path, "bandai-namco", tmp_path / "cb", workers=2, progress=False)  # parent folder found too
    assert a.data_hash == b.data_hash and a.takes == b.takes
    assert a.label_names == {"content": ["walk", "run", "wave-both-hands"], "style": ["active", "normal"]}
    assert {t.name: t.labels for t in a.takes}["dataset-2_wave-both-hands_active_002"] == \
        {"content": "wave-both-hands", "style": "active"}
    assert [s["name"] for s in a.skipped] == ["dataset-2_run_normal_999"]
    assert a.info()["labels"]["content"] == {"walk": 2, "run": 1, "wave-both-hands": 1}


def test_amass_adapter(tmp_path):
    src = tmp_path / "amass" / "SubjectA"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, T in enumerate([40, 50]):
        np.savez(src / f"clip_{i}_poses.npz", poses=rng.normal(0, 0.2, (T, 156)), trans=rng.normal(0, 0.1, (T, 3)),
                 mocap_framerate=np.array(60.0), betas=np.zeros(16), gender=np.array("neutral"))
    np.savez(src / "shape.npz", betas=np.zeros(16))
    np.savez(src / "broken_poses.npz", poses=np.zeros((5, 7)), trans=np.zeros((5, 3)), mocap_framerate=60.0)
    cache = prepare(tmp_path / "amass", "amass", tmp_path / "c", fps=30, workers=1, progress=False)
    assert [t.name for t in cache.takes] == ["SubjectA/clip_0_poses", "SubjectA/clip_1_poses"]
    assert [t.length for t in cache.takes] == [20, 25] and cache.fps == 30 and len(cache.skeleton) == 22
    assert [s["name"] for s in cache.skipped] == ["SubjectA/broken_poses"]


def test_prepare_refuses_bad_input(tmp_path):
    with pytest.raises(MotionsynthError, match="no such file"):
        prepare(tmp_path / "missing", "bvh-folder", tmp_path / "c")
    with pytest.raises(MotionsynthError, match="unknown dataset"):
        prepare(tmp_path, "mocap", tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MotionsynthError, match="no .bvh"):
        prepare(tmp_path / "empty", "bvh-folder", tmp_path / "c")
    write_takes(tmp_path / "src", {"a": 30})
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(MotionsynthError, match="not a motion cache"):
        prepare(tmp_path / "src", "bvh-folder", busy, progress=False)
    assert (busy / "keep.txt").read_text() == "mine"
    with pytest.raises(MotionsynthError, match="not a motion cache"):
        MotionCache(busy)
    with pytest.raises(MotionsynthError, match="not a Bandai Namco"):
        prepare(tmp_path / "src", "bandai-namco", tmp_path / "c")
    # an existing cache is replaced, leaving no temporary folders behind
    prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", progress=False)
    prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", fps=15, progress=False)
    assert MotionCache(tmp_path / "c").fps == 15
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def run_cli(args, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_cli_prepare_and_info(tmp_path, capsys):
    write_takes(tmp_path / "src", {"walk_01": 30, "run_02": 40})
    (tmp_path / "src" / "junk.bvh").write_text("not bvh")
    code, out, _ = run_cli(["data", "prepare", tmp_path / "src", "--dataset", "bvh-folder", "--out", tmp_path / "c",
                            "--label-pattern", r"(?P<action>[a-z]+)_\d+", "--workers", "1", "--no-progress"], capsys)
    assert code == 0 and "prepared 2 takes, 70 frames" in out and "junk" in out
    code, out, _ = run_cli(["data", "info", tmp_path / "c", "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["takes"] == 2 and info["frames"] == 70 and info["labels"]["action"] == \
        {"walk": 1, "run": 1}
    code, out, _ = run_cli(["data", "info", tmp_path / "c"], capsys)
    assert code == 0 and "takes 2" in out and "label action" in out

def test_cli_help_texts_render_literally(capsys):
    """Help is plain text: Rich markup would swallow the bracketed parts of the regex and of the install hint."""
    code, out, _ = run_cli(["data", "prepare", "--help"], capsys)
    assert code == 0 and "(?P<action>[a-z]+)" in out and "'motionsynth[smpl]'" in out



@pytest.mark.parametrize("args, message", [
    (["data", "prepare", "{tmp}/nope", "--dataset", "bvh-folder", "--out", "{tmp}/c"], "no such file"),
    (["data", "prepare", "{tmp}", "--dataset", "lafan", "--out", "{tmp}/c"], "unknown dataset"),
    (["data", "info", "{tmp}"], "not a motion cache"),
    (["data", "download", "cmu", "--out", "{tmp}/d"], "unknown dataset"),
])
def test_cli_bad_input_exits_2(tmp_path, capsys, args, message):
    code, _, err = run_cli([a.format(tmp=tmp_path) for a in args], capsys)
    assert code == 2 and "error:" in err and message in err


def test_bandai_adapter_refuses_two_parts_at_once(tmp_path):
    make_bandai(tmp_path / "both" / "bandai-namco-1", 1, 2)
    make_bandai(tmp_path / "both" / "bandai-namco-2", 2, 2)
    with pytest.raises(MotionsynthError, match="several datasets"):
        prepare(tmp_path / "both", "bandai-namco", tmp_path / "c")
    archive = zip_folder(tmp_path / "both", tmp_path / "both.zip", "repo")
    with pytest.raises(MotionsynthError, match="several datasets"):
        prepare(archive, "bandai-namco", tmp_path / "c")
    one = prepare(tmp_path / "both" / "bandai-namco-1", "bandai-namco", tmp_path / "c", progress=False)
    assert all(t.name.startswith("dataset-1_") for t in one.takes) and len(one.takes) == 2


def test_damaged_cache_is_refused_clearly(tmp_path):
    write_takes(tmp_path / "src", {"a": 30, "b": 31})
    cache = prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", progress=False)
    (cache.path / "features.npy").unlink()
    with pytest.raises(MotionsynthError, match="damaged motion cache"):
        MotionCache(cache.path)
    (cache.path / "meta.json").write_text("{not json")
    with pytest.raises(MotionsynthError, match="damaged motion cache"):
        MotionCache(cache.path)


# ---- takes whose files animate different joints of the top chain (issue 11) -----------------------------------------
TOP_NAMES = ["joint_Root", "Hips", "Spine", "Head", "LeftUpLeg", "LeftFoot", "RightUpLeg", "RightFoot"]
TOP_PARENTS = [-1, 0, 1, 2, 1, 4, 1, 6]
TOP_OFFSETS = [[0, 0, 0], [0, 90, 0], [0, 10, 0], [0, 30, 0], [10, -5, 0], [0, -80, 0], [-10, -5, 0], [0, -80, 0]]
SIX = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")


def top_chain_take(T: int, seed: int, moves: str) -> Motion:
    """A take on the Bandai-like skeleton (6 channels on every joint, a joint above Hips). ``moves="Hips"``: a
    static identity joint_Root and Hips carrying the trajectory; ``moves="joint_Root"``: joint_Root carries the
    trajectory and a heading rotation, Hips stays at its offset relative to it (and rotates)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None, None] / 30.0
    angles = rng.uniform(5, 30, (1, 8, 3)) * np.sin(2 * np.pi * rng.uniform(0.3, 2, (1, 8, 3)) * t
                                                     + rng.uniform(0, 6, (1, 8, 3)))
    rot = R.euler_to_quat(angles, "ZXY", degrees=True)
    path = np.stack([np.sin(np.arange(T) / 20) * 10, np.cos(np.arange(T) / 7), np.arange(T) * 3.0], 1)
    root = 0 if moves == "joint_Root" else 1
    skel = Skeleton(TOP_NAMES, TOP_PARENTS, TOP_OFFSETS, channels=[SIX] * 8, root=root)
    if moves == "joint_Root":
        heading = R.euler_to_quat(np.stack([np.zeros(T), np.arange(T) * 2.0, np.zeros(T)], 1), "ZXY", degrees=True)
        rot[:, 0] = heading
        return Motion(skel, rot, path, 30.0)
    rot[:, 0] = R.quat_identity()
    return Motion(skel, rot, path + [0, 90, 0], 30.0)


@pytest.mark.parametrize("root_first", [True, False])
@pytest.mark.parametrize("as_zip", [False, True])
def test_takes_moving_another_top_joint_are_folded_not_skipped(tmp_path, root_first, as_zip):
    src = tmp_path / "src"
    src.mkdir()
    first, second = ("a", "b") if root_first else ("b", "a")
    kinds = {f"{first}_root_{i}": "joint_Root" for i in range(5)} | {f"{second}_hips_{i}": "Hips" for i in range(5)}
    for i, (name, moves) in enumerate(sorted(kinds.items())):
        write_bvh(top_chain_take(30 + i, i, moves), src / f"{name}.bvh")
    files = {name: read_bvh(src / f"{name}.bvh") for name in kinds}
    assert {files[n].skeleton.names[files[n].skeleton.root] for n in kinds} == {"joint_Root", "Hips"}
    source = src
    if as_zip:
        source = tmp_path / "takes.zip"
        with zipfile.ZipFile(source, "w") as z:
            for p in sorted(src.glob("*.bvh")):
                z.write(p, p.name)
    cache = prepare(source, "bvh-folder", tmp_path / "c", workers=2, progress=False)
    assert sorted(t.name for t in cache.takes) == sorted(kinds) and cache.skipped == []
    assert cache.skeleton.names[cache.skeleton.root] == "Hips"
    body = cache.skeleton.subtree(cache.skeleton.index("Hips"))
    for i, take in enumerate(cache.takes):
        m, src_motion = cache.motion(i), files[take.name]
        assert np.abs(m.global_positions()[:, body] - src_motion.global_positions()[:, body]).max() < 1e-3
        assert np.allclose(m.rotations[:, 0], R.quat_identity(), atol=1e-6)  # joint_Root now static, at rest
        if kinds[take.name] == "Hips":  # nothing to fold: every joint as in the file
            assert np.abs(m.global_positions() - src_motion.global_positions()).max() < 1e-3
    # the order takes are read in does not matter: the same data either way
    again = prepare(source, "bvh-folder", tmp_path / "c1", workers=1, progress=False)
    assert again.data_hash == cache.data_hash


def test_data_info_lists_skipped_takes_with_reasons(folder_cache, capsys):
    cache, _, _ = folder_cache
    code, out, _ = run_cli(["data", "info", cache.path, "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["skipped"] == 2 and info["stale_temp"] == []
    reasons = {s["name"]: s["reason"] for s in info["skipped_takes"]}
    assert set(reasons) == {"broken", "zz_other"} and "skeleton" in reasons["zz_other"]
    code, out, _ = run_cli(["data", "info", cache.path], capsys)
    assert code == 0 and "2 take(s) were skipped" in out and "zz_other: " in out and "broken: " in out


# ---- temporary folders of killed prepares (issue 11) -----------------------------------------------------------------
def dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_prepare_removes_stale_temp_folders_and_info_reports_them(tmp_path, capsys):
    import subprocess

    from motionsynth.data.cache import remove_stale_temp_folders, stale_temp_folders

    write_takes(tmp_path / "src", {"a": 30, "b": 31})
    prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", workers=1, progress=False)
    dead = dead_pid()
    stale = tmp_path / f".c.tmp-{dead}-k3j9"
    stale.mkdir()
    (stale / "rotations.npy").write_bytes(b"\0" * 5000)
    (stale / ".lock").write_bytes(b"")  # its writer died: nobody holds the lock
    legacy = tmp_path / ".c.tmp-q8w2e9r1"  # named before writers were recorded
    legacy.mkdir()
    (legacy / "features.npy").write_bytes(b"\0" * 100)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        running = tmp_path / f".c.tmp-{sleeper.pid}-abcd"  # a live writer (no lock yet): kept
        running.mkdir()
        other = tmp_path / f".c2.tmp-{dead}-zzzz"  # another cache's: not ours to judge here
        other.mkdir()
        found = {Path(d["path"]).name: d["bytes"] for d in stale_temp_folders(tmp_path / "c")}
        assert found == {stale.name: 5000, legacy.name: 100}
        code, out, _ = run_cli(["data", "info", tmp_path / "c", "--json"], capsys)
        assert code == 0 and {Path(d["path"]).name for d in json.loads(out)["stale_temp"]} == set(found)
        code, out, _ = run_cli(["data", "info", tmp_path / "c"], capsys)
        assert code == 0 and f"stale temporary folder {stale}" in out and "next `data prepare`" in out
        code, out, _ = run_cli(["data", "prepare", tmp_path / "src", "--dataset", "bvh-folder", "--out",
                                tmp_path / "c", "--workers", "1", "--no-progress"], capsys)
        assert code == 0 and f"removed {stale}" in out
        assert not stale.exists() and not legacy.exists() and running.exists() and other.exists()
        assert MotionCache(tmp_path / "c").info()["stale_temp"] == []
        # a missing cache with a killed prepare's leftovers beside it says so
        (tmp_path / f".d.tmp-{dead}-x1y2").mkdir()
        with pytest.raises(MotionsynthError, match=r"not a motion cache.*1 stale temporary folder"):
            MotionCache(tmp_path / "d")
        assert [d["action"] for d in remove_stale_temp_folders(tmp_path / "d")] == ["removed"]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_cache_set_aside_by_a_killed_replace_is_put_back(tmp_path, capsys):
    write_takes(tmp_path / "src", {"a": 30, "b": 31})
    cache = prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", workers=1, progress=False)
    digest = cache.data_hash
    aside = tmp_path / f".c.old-{dead_pid()}"
    (tmp_path / "c").rename(aside)  # killed between moving the old cache aside and moving the new one in
    code, out, _ = run_cli(["data", "prepare", tmp_path / "src", "--dataset", "bvh-folder", "--out", tmp_path / "c",
                            "--workers", "1", "--no-progress"], capsys)
    assert code == 0 and f"put back the previous cache from {aside}" in out
    assert MotionCache(tmp_path / "c").data_hash == digest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_prepare_killed_with_sigkill_is_cleaned_up_by_the_next_run(tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time

    from motionsynth.data.cache import stale_temp_folders

    write_takes(tmp_path / "src", {"a": 30, "b": 31})
    prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", workers=1, progress=False)
    marker = tmp_path / "writing"
    script = f"""
import time
from pathlib import Path
import motionsynth.data.cache as cache

real = cache._write_cache
def slow(tmp, *args, **kwargs):
    real(tmp, *args, **kwargs)  # the whole cache is written, then the process hangs before the rename
    Path({str(marker)!r}).write_text(str(tmp))
    time.sleep(120)
cache._write_cache = slow
cache.prepare({str(tmp_path / 'src')!r}, "bvh-folder", {str(tmp_path / 'c')!r}, workers=1, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the prepare subprocess never got to writing"
        tmp = Path(marker.read_text())
        assert tmp.name.startswith(f".c.tmp-{proc.pid}-") and (tmp / ".lock").is_file()
        assert stale_temp_folders(tmp_path / "c") == []  # its writer is alive and holds the lock
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert tmp.is_dir() and (tmp / "meta.json").is_file()  # what a kill -9 leaves
    assert [d["path"] for d in MotionCache(tmp_path / "c").info()["stale_temp"]] == [str(tmp)]
    code, out, _ = run_cli(["data", "info", tmp_path / "c"], capsys)
    assert code == 0 and f"stale temporary folder {tmp}" in out
    prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", workers=1, progress=False)
    assert not tmp.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ---- one cache from several sources (issue 25) -----------------------------------------------------------------------
def bandai_source(root: Path, part: int, takes: dict[str, tuple[str, str]], sk: Skeleton) -> Path:
    """A Bandai Namco layout ``root/bandai-namco-PART`` with the given takes (``id → (content, style)``) on ``sk``;
    the label files list the contents and styles in the order first used."""
    folder = root / f"bandai-namco-{part}"
    contents = list(dict.fromkeys(c for c, _ in takes.values()))
    styles = list(dict.fromkeys(s for _, s in takes.values()))
    (folder / "data").mkdir(parents=True)
    (folder / "cfg").mkdir()
    (folder / "cfg/content_label.txt").write_text("\n".join(f"dataset-{part}_{c}" for c in contents))
    (folder / "cfg/style_label.txt").write_text("\n".join(f"dataset-{part}_{s}" for s in styles))
    for i, (take, (c, s)) in enumerate(takes.items()):
        stem = f"dataset-{part}_{c}_{s}_{take}"
        write_bvh(make_motion(sk, 30 + i, seed=part * 100 + i), folder / "data" / f"{stem}.bvh")
        (folder / "data" / f"{stem}.json").write_text(json.dumps({"content": contents.index(c),
                                                                  "style": styles.index(s)}))
    return folder


def bvh_source(folder: Path, names: list[str], sk: Skeleton, seed: int = 50) -> Path:
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        write_bvh(make_motion(sk, 40, seed=seed + i), folder / f"{name}.bvh")
    return folder


@pytest.fixture(scope="module")
def union(tmp_path_factory):
    """Four sources: Bandai-like part 2 (folder) and part 1 (zip) on one humanoid skeleton, a folder of BVH on
    another humanoid (Mixamo names, 3 spine joints: retargeted), and a folder on the first skeleton whose take
    ``clip_a`` clashes with the Mixamo folder's."""
    root = tmp_path_factory.mktemp("union")
    sk, mixamo = humanoid(BANDAI_HUMANOID, bone_axis=True, spine=2), humanoid(spine=3)
    two = bandai_source(root / "two", 2, {"000": ("walk", "normal"), "001": ("run", "elderly"),
                                          "002": ("walk", "masculine"), "003": ("run", "normal")}, sk)
    one = zip_folder(bandai_source(root / "one", 1, {"001": ("walk", "old"), "002": ("dash", "masculinity"),
                                                     "003": ("bow", "happy")}, sk),
                     root / "bandai-namco-motion-1.zip", "bandai-namco-1")
    other = bvh_source(root / "mixamo", ["clip_a", "clip_b"], mixamo)
    same = bvh_source(root / "extra", ["clip_a"], sk, seed=70)
    cache = prepare([two, one, other, same], None, root / "cache", workers=2, progress=False)
    return cache, {"two": two, "one": one, "other": other, "same": same, "sk": sk, "mixamo": mixamo}


def test_several_sources_make_one_cache_with_provenance(union):
    cache, src = union
    assert [(s["file"], s["dataset"], s["adapter"], s["takes"], s["retargeted"], s["renamed"]) for s in cache.sources] \
        == [("bandai-namco-2", "bandai-namco-2", "bandai-namco", 4, 0, 0),
            ("bandai-namco-motion-1.zip", "bandai-namco-1", "bandai-namco", 3, 0, 0),
            ("mixamo", "mixamo", "bvh-folder", 2, 2, 0), ("extra", "extra", "bvh-folder", 1, 0, 1)]
    assert cache.dataset == "bandai-namco+bvh-folder" and cache.skipped == []
    by_name = {t.name: t for t in cache.takes}
    assert by_name["clip_a"].source == 2 and by_name["extra/clip_a"].source == 3  # the later one is renamed
    assert by_name["extra/clip_a"].original == "clip_a" and by_name["clip_b"].original == "clip_b"
    assert all(t.original == t.name for t in cache.takes if t.source < 3)
    assert [t.length for t in cache.takes if t.source == 2] == [40, 40]
    info = cache.info()
    assert [(s["dataset"], s["takes"], s["frames"]) for s in info["sources"]] == [
        ("bandai-namco-2", 4, 30 + 31 + 32 + 33), ("bandai-namco-1", 3, 30 + 31 + 32), ("mixamo", 2, 80),
        ("extra", 1, 40)]
    assert MotionCache(cache.path).takes == cache.takes  # provenance survives a reopen


def test_a_later_source_on_the_same_skeleton_is_stored_untouched(union):
    cache, src = union
    assert sorted(cache.skeleton.names) == sorted(src["sk"].names) and cache.offsets is None
    with zipfile.ZipFile(src["one"]) as z:
        member = "bandai-namco-1/data/dataset-1_dash_masculinity_002.bvh"
        original = parse_bvh(z.read(member).decode(), member)
    m = cache.motion(cache.index("dataset-1_dash_masculinity_002"))
    assert np.abs(m.global_positions() - original.global_positions()).max() < 1e-3
    extra = cache.motion(cache.index("extra/clip_a"))
    assert np.abs(extra.global_positions() - read_bvh(src["same"] / "clip_a.bvh").global_positions()).max() < 1e-3


def test_a_later_source_on_another_humanoid_is_retargeted(union):
    from motionsynth.retarget import retarget

    cache, src = union
    original = read_bvh(src["other"] / "clip_b.bvh")
    assert original.skeleton.names != cache.skeleton.names
    m = cache.motion(cache.index("clip_b"))
    expected = retarget(original, cache.skeleton)
    assert m.skeleton.names == cache.skeleton.names and len(m) == len(original) == 40
    assert np.abs(m.global_positions() - expected.global_positions()).max() < 1e-2
    assert np.isfinite(np.asarray(cache.features[cache.rows(cache.index("clip_b"))])).all()


def test_labels_of_all_sources_share_one_vocabulary(union):
    cache, _ = union
    assert cache.label_names == {"content": ["walk", "run", "dash", "bow"],
                                 "style": ["normal", "elderly", "masculine", "happy"]}
    t = cache.takes[cache.index("dataset-1_walk_old_001")]
    assert t.labels == {"content": "walk", "style": "elderly"}
    assert t.source_labels == {"content": "walk", "style": "old"}  # the source's own names, kept beside
    assert cache.takes[cache.index("dataset-2_run_elderly_001")].source_labels == {}
    assert cache.info()["labels"]["style"] == {"normal": 2, "elderly": 2, "masculine": 2, "happy": 1}


def test_adding_a_source_never_moves_a_take_to_another_split(union, tmp_path):
    cache, src = union
    alone = prepare(src["two"], "bandai-namco", tmp_path / "alone", workers=1, progress=False)
    other = prepare(src["other"], None, tmp_path / "other", workers=1, progress=False)
    union_split = {(t.source, t.original): t.split for t in cache.takes}
    assert {t.name: t.split for t in alone.takes} == {o: s for (k, o), s in union_split.items() if k == 0}
    assert {t.name: t.split for t in other.takes} == {o: s for (k, o), s in union_split.items() if k == 2}
    assert union_split[(3, "clip_a")] == split_of("clip_a")  # a renamed take keeps the split of its own name
    # one source alone gives the cache it always gave (names, hash), with its provenance
    assert alone.data_hash == prepare(src["two"], "bandai-namco", tmp_path / "again", workers=2,
                                      progress=False).data_hash
    assert alone.sources[0]["dataset"] == "bandai-namco-2" and all(t.source == 0 for t in alone.takes)


def test_a_source_that_is_not_humanoid_is_refused_by_name(union, tmp_path):
    _, src = union
    legs = tmp_path / "legs"
    write_takes(legs, {"hop": 30})  # the 7-joint test skeleton: no arms
    with pytest.raises(MotionsynthError, match=r"legs: its skeleton differs .* cannot be retargeted") as e:
        prepare([src["two"], legs], None, tmp_path / "c", workers=1, progress=False)
    assert "hop" in str(e.value) and not (tmp_path / "c").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(MotionsynthError, match="given twice"):
        prepare([src["two"], src["two"] / ".." / "bandai-namco-2"], None, tmp_path / "c")
    with pytest.raises(MotionsynthError, match="no source"):
        prepare([], None, tmp_path / "c")


def test_each_source_is_read_by_its_detected_adapter(union, tmp_path):
    from motionsynth.data.adapters import detect_dataset

    _, src = union
    assert detect_dataset(src["two"]) == detect_dataset(src["two"].parent) == "bandai-namco"
    assert detect_dataset(src["one"]) == "bandai-namco"
    assert detect_dataset(src["other"]) == detect_dataset(src["other"] / "clip_a.bvh") == "bvh-folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(MotionsynthError, match="cannot tell which dataset"):
        detect_dataset(tmp_path / "empty")
    with pytest.raises(MotionsynthError, match="only apply to bvh-folder"):
        prepare([src["two"], src["one"]], None, tmp_path / "c", label_pattern=r"(?P<a>x)")


def test_cli_prepare_several_sources_and_info_per_source(union, tmp_path, capsys):
    _, src = union
    code, out, _ = run_cli(["data", "prepare", src["two"], src["one"], src["other"], "--out", tmp_path / "c",
                            "--workers", "1", "--no-progress"], capsys)
    assert code == 0 and "prepared 9 takes" in out
    assert "source bandai-namco-motion-1.zip (bandai-namco-1, bandai-namco): 3 takes, 93 frames" in out
    assert "source mixamo (mixamo, bvh-folder): 2 takes, 80 frames (2 retargeted)" in out
    code, out, _ = run_cli(["data", "info", tmp_path / "c"], capsys)
    assert code == 0 and "sources (3):" in out and "bandai-namco-2, bandai-namco): 4 takes, 126 frames" in out
    code, out, _ = run_cli(["data", "info", tmp_path / "c", "--json"], capsys)
    assert [s["takes"] for s in json.loads(out)["sources"]] == [4, 3, 2]


def test_a_cache_from_before_several_sources_reads_as_one_source_and_damage_is_refused(tmp_path):
    write_takes(tmp_path / "src", {"a": 30, "b": 31})
    cache = prepare(tmp_path / "src", "bvh-folder", tmp_path / "c", progress=False)
    meta = json.loads((cache.path / "meta.json").read_text())
    old = {**meta, "takes": [{k: t[k] for k in ("name", "start", "length", "split", "labels")} for t in meta["takes"]]}
    del old["sources"]
    (cache.path / "meta.json").write_text(json.dumps(old))
    again = MotionCache(cache.path)
    assert [(t.source, t.original) for t in again.takes] == [(0, ""), (0, "")]
    assert [(s["file"], s["adapter"], s["takes"], s["frames"]) for s in again.info()["sources"]] == [
        ("src", "bvh-folder", 2, 61)]
    for damage in ({"sources": [{"file": "x"}]}, {"takes": [{**meta["takes"][0], "source": 3}, meta["takes"][1]]}):
        (cache.path / "meta.json").write_text(json.dumps({**meta, **damage}))
        with pytest.raises(MotionsynthError, match="damaged motion cache"):
            MotionCache(cache.path)
