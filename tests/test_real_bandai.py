"""The whole Bandai Namco dataset 2 zip, prepared once for this module (about 30 s on 2 cores)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from motionsynth.cli import main
from motionsynth.data.cache import SPLITS, MotionCache
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
