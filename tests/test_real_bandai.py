"""The whole Bandai Namco dataset 2 zip, prepared once for this module (about 30 s on 2 cores), and the union of
datasets 2 and 1 in one cache (about 40 s more)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from motionsynth.cli import main
from motionsynth.data.cache import SPLITS, MotionCache, prepare
from motionsynth.data.windows import WindowDataset, windows
from motionsynth.io.bvh import parse_bvh

pytestmark = pytest.mark.real_data


def test_info_json_reports_the_published_dataset(bandai_cache, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "info", str(bandai_cache.path), "--json"])
    assert e.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["takes"] == 2902 and info["frames"] == 384931 and info["fps"] == 30 and info["joints"] == 22
    assert len(info["labels"]["content"]) == 10 and len(info["labels"]["style"]) == 7
    assert "walk" in info["labels"]["content"] and "elderly" in info["labels"]["style"]
    assert sum(info["labels"]["content"].values()) == 2902 and sum(info["labels"]["style"].values()) == 2902
    assert sum(s["takes"] for s in info["splits"].values()) == 2902
    assert sum(s["frames"] for s in info["splits"].values()) == 384931
    assert all(info["splits"][s]["takes"] > 0 for s in SPLITS)
    assert info["skipped"] == 0


def test_splits_are_disjoint_by_name(bandai_cache):
    names = {s: {bandai_cache.takes[i].name for i in bandai_cache.split(s)} for s in SPLITS}
    assert not names["train"] & names["val"] and not names["train"] & names["test"]
    assert not names["val"] & names["test"]
    assert sum(map(len, names.values())) == len({t.name for t in bandai_cache.takes}) == 2902
    test_takes = set(bandai_cache.split("test"))
    assert not test_takes & set(windows(bandai_cache, "train", 65, 8)[:, 0].tolist())


def test_reopen_matches_the_source(bandai_cache, bandai_zip):
    cache = MotionCache(bandai_cache.path)
    assert cache.data_hash == bandai_cache.data_hash and cache.skeleton.names[cache.skeleton.root] == "Hips"
    assert cache.offsets is None  # only the (ignored) root offset differs between takes
    with zipfile.ZipFile(bandai_zip) as z:
        for i in (0, 1234, len(cache.takes) - 1):
            take = cache.takes[i]
            src = parse_bvh(z.read(f"bandai-namco-2/data/{take.name}.bvh"), take.name)
            src.translations = None
            m = cache.motion(i)
            assert len(m) == len(src) and set(m.labels) == {"content", "style"}
            assert np.abs(m.global_positions() - src.global_positions()).max() < 1e-3
    ds = WindowDataset(cache, "train", 65, 65)
    item = ds[len(ds) // 2]
    assert item["features"].shape == (65, cache.feature_dim) and abs(float(item["features"].mean())) < 5


@pytest.fixture(scope="module")
def union_cache(bandai_zip, data_dir, tmp_path_factory):
    """Datasets 2 and 1 (in that order) prepared into one cache, once per run (shared by xdist workers)."""
    from filelock import FileLock

    one = data_dir / "bandai-namco-motion-1.zip"
    if not one.is_file():
        pytest.fail(f"{one} is missing: real_data tests need the Bandai Namco dataset 1 zip")
    shared = tmp_path_factory.getbasetemp().parent
    cache = shared / "bandai12-cache"
    with FileLock(str(shared / "bandai12-cache.lock")):
        if not (cache / "meta.json").is_file():
            prepare([bandai_zip, one], None, cache, workers=2, progress=False)
    return MotionCache(cache)


def test_union_of_both_datasets_counts_per_source(union_cache, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "info", str(union_cache.path), "--json"])
    assert e.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert [(s["file"], s["dataset"], s["takes"], s["frames"], s["retargeted"], s["renamed"], s["skipped"])
            for s in info["sources"]] == [
        ("bandai-namco-motion-2.zip", "bandai-namco-2", 2902, 384931, 0, 0, 0),
        ("bandai-namco-motion-1.zip", "bandai-namco-1", 174, 31914, 0, 0, 0)]
    assert info["takes"] == 3076 and info["frames"] == 384931 + 31914 and info["skipped"] == 0
    content, style = info["labels"]["content"], info["labels"]["style"]
    assert len(content) == 25 and len(style) == 16  # walk, run and six styles shared or merged
    assert content["walk"] == 205 and content["run"] == 332 and content["punch"] == 2
    assert {n for n in style} >= {"elderly", "exhausted", "masculine", "childish", "youthful", "chimpira"}
    assert not {"old", "tired", "masculinity"} & set(style)
    assert sum(content.values()) == sum(style.values()) == 3076


def test_union_keeps_every_dataset_2_take_its_split_and_data(union_cache, bandai_cache):
    alone = {t.name: t.split for t in bandai_cache.takes}
    union = {t.name: t.split for t in union_cache.takes if t.source == 0}
    assert union == alone  # every one of the 2,902 takes, same name, same split
    assert all(t.name == t.original and t.name.startswith("dataset-1_") for t in union_cache.takes if t.source == 1)
    for i in (0, 1500, len(bandai_cache.takes) - 1):  # dataset 2 is stored as it was: same rows, same numbers
        a, b = bandai_cache.takes[i], union_cache.takes[i]
        assert (a.name, a.start, a.length, a.labels) == (b.name, b.start, b.length, b.labels)
        assert np.array_equal(bandai_cache.rotations[bandai_cache.rows(i)], union_cache.rotations[union_cache.rows(i)])


def test_union_stores_dataset_1_untouched(union_cache, data_dir):
    with zipfile.ZipFile(data_dir / "bandai-namco-motion-1.zip") as z:
        for name in ("dataset-1_punch_normal_001", "dataset-1_walk_old_001"):
            i = union_cache.index(name)
            src = parse_bvh(z.read(f"bandai-namco-1/data/{name}.bvh"), name)
            src.translations = None
            m = union_cache.motion(i)
            assert len(m) == len(src) and np.abs(m.global_positions() - src.global_positions()).max() < 1e-3
    t = union_cache.takes[union_cache.index("dataset-1_walk_old_001")]
    assert t.labels == {"content": "walk", "style": "elderly"} and t.source_labels["style"] == "old"
