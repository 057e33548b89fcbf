"""`motionsynth bench augment` (`bench.augment`): regimes, the composed training data, a tiny run end to end with
its resume, and the refusals."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from motionsynth.bench.augment import (
    CLASSIC,
    ComposedCache,
    Regime,
    SyntheticTake,
    class_takes,
    default_cut_class,
    parse_numbers,
    parse_regimes,
    select_regime,
    synthetic_counts,
)
from motionsynth.cli import main
from motionsynth.data.augment import Augment
from motionsynth.data.features import encode
from motionsynth.data.windows import WindowDataset
from motionsynth.errors import MotionsynthError

from helpers import LABELS, biped_motion, tiny_checkpoint

CLASSES = {"walk": 20, "wave-left-hand": 10, "wave-right-hand": 7}


def fake_cache():
    """Train takes per class as in `CLASSES` (plus a val and an unlabelled take): what regimes read."""
    takes = [SimpleNamespace(labels={"content": n}, split="train") for n, k in CLASSES.items() for _ in range(k)]
    takes += [SimpleNamespace(labels={"content": "walk"}, split="val"), SimpleNamespace(labels={}, split="train")]
    return SimpleNamespace(takes=takes, label_names={"content": list(CLASSES)},
                           split=lambda s: [i for i, t in enumerate(takes) if t.split == s])


@pytest.fixture(scope="module")
def lcache(tmp_path_factory):
    from helpers import labelled_cache

    return labelled_cache(tmp_path_factory.mktemp("labelled"), per_split=6, frames=72)


@pytest.fixture(scope="module")
def generator(lcache, tmp_path_factory):
    """A tiny untrained CVAE conditioned on the labels of `LABELS` (window 32)."""
    folder = tiny_checkpoint(tmp_path_factory.mktemp("gen") / "cvae", "cvae", lcache.skeleton, lcache.stats)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    return folder


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["bench", "augment", *map(str, args)])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


# ---- regimes ---------------------------------------------------------------------------------------------------------
def test_regimes_counts_seeds_and_nesting():
    cache = fake_cache()
    assert [r.name for r in parse_regimes("5%, 10%,25%,cut5,5%")] == ["5%", "10%", "25%", "cut5"]
    assert parse_regimes("12.5%")[0] == Regime("12.5%", fraction=0.125) and Regime("5%", 0.05).key == "p5"
    counts = lambda sel: {n: len(v) for n, v in sel.items()}
    assert counts(select_regime(cache, Regime("5%", 0.05), 0)) == {n: 1 for n in CLASSES}  # at least one each
    assert counts(select_regime(cache, Regime("25%", 0.25), 0)) == {"walk": 5, "wave-left-hand": 2,
                                                                    "wave-right-hand": 2}
    assert default_cut_class(cache) == "wave-right-hand"  # the fewest train takes
    cut = select_regime(cache, Regime("cut5", cut=5), 0)
    assert counts(cut) == {"walk": 20, "wave-left-hand": 10, "wave-right-hand": 5}
    assert counts(select_regime(cache, Regime("cut5", cut=5), 0, cut_class="walk"))["walk"] == 5
    a, b = select_regime(cache, Regime("25%", 0.25), 0), select_regime(cache, Regime("25%", 0.25), 1)
    assert a != b and a == select_regime(cache, Regime("25%", 0.25), 0)  # seeded
    small = select_regime(cache, Regime("10%", 0.1), 0)
    assert all(set(small[n]) <= set(a[n]) for n in CLASSES)  # one seed: 10 % ⊂ 25 %
    for sel in (a, b, cut):
        assert all(cache.takes[i].split == "train" and cache.takes[i].labels["content"] == n
                   for n, v in sel.items() for i in v)
    assert synthetic_counts(a, Regime("25%", 0.25), 4, "walk") == {"walk": 20, "wave-left-hand": 8,
                                                                   "wave-right-hand": 8}
    assert synthetic_counts(cut, Regime("cut5", cut=5), 2, "wave-right-hand") == {"walk": 0, "wave-left-hand": 0,
                                                                                   "wave-right-hand": 10}
    for bad in ("5", "0%", "cut0", "half", "150%"):
        with pytest.raises(MotionsynthError, match="unknown regime"):
            parse_regimes(bad)
    assert parse_numbers("1, 4,1", "--ratios", float) == [1.0, 4.0]
    with pytest.raises(MotionsynthError, match="--seeds"):
        parse_numbers("0,x", "--seeds")


# ---- the composed training data --------------------------------------------------------------------------------------
def test_composed_cache_takes_labels_and_real_stats(lcache):
    train = lcache.split("train")[:3]
    motions = [biped_motion(lcache.skeleton, T=40, seed=50 + k, name=f"s{k}") for k in range(2)]
    synth = [SyntheticTake(m.name, {"content": "walk"}, m.rotations.astype(np.float32),
                           m.root_positions.astype(np.float32), encode(m, dtype=np.float32)) for m in motions]
    view = ComposedCache(lcache, train, synth)
    names = [view.takes[i].name for i in view.split("train")]
    assert names == [lcache.takes[i].name for i in train] + ["s0", "s1"]
    assert [view.takes[i].name for i in view.split("val")] == [lcache.takes[i].name for i in lcache.split("val")]
    assert view.split("test") == [] and view.stats is lcache.stats and view.label_names == lcache.label_names
    assert view.data_hash != lcache.data_hash and view.fps == lcache.fps
    t0 = view.split("train")[0]
    np.testing.assert_array_equal(view.features[view.rows(t0)], lcache.features[lcache.rows(train[0])])
    s1 = view.split("train")[-1]
    assert view.takes[s1].labels == {"content": "walk"}
    np.testing.assert_array_equal(view.features[view.rows(s1)], synth[1].features)
    np.testing.assert_allclose(view.motion(s1).rotations, synth[1].rotations, atol=1e-6)
    with pytest.raises(IndexError):  # rows across two parts are never read
        view.features[lcache.num_frames - 2: lcache.num_frames + 2]
    with pytest.raises(MotionsynthError, match="test take"):
        ComposedCache(lcache, lcache.split("test")[:1])

    plain = WindowDataset(view, "train", 32, 8)
    item = plain[len(plain) - 1]  # a synthetic window, normalised with the real stats
    np.testing.assert_allclose(item["features"].numpy(), lcache.stats.normalize(synth[1].features[8:40]), atol=1e-5)
    assert item["labels"]["content"] == LABELS["content"].index("walk") and item["labels"]["style"] == -1
    mirrored = WindowDataset(view, "train", 32, 8, augment=Augment(p_mirror=1.0))
    assert mirrored[len(mirrored) - 1]["features"].shape == (32, lcache.feature_dim)


# ---- end to end ------------------------------------------------------------------------------------------------------
TINY = ["--set", "model.channels=8", "--set", "model.layers=2", "--set", "model.embedding=8",
        "--set", "train.batch_size=8", "--set", "train.stride=16"]


@pytest.mark.slow
def test_end_to_end_record_plot_and_resume(lcache, generator, tmp_path, capsys, monkeypatch):
    out = tmp_path / "aug"
    args = ["--generator", generator, "--data", lcache.path, "--out", out, "--regimes", "50%", "--seeds", "0",
            "--ratios", "1", "--no-classic", "--steps", "3", *TINY, "--no-progress", "--json", tmp_path / "r.json",
            "--plot", tmp_path / "p.png"]
    code, text, err = _cli(capsys, *args)
    assert code == 0, err
    rec = json.loads((tmp_path / "r.json").read_text())
    assert rec == json.loads((out / "record.json").read_text()) and rec["task"] == "augment"
    assert [(r["setting"], r["data"], r["seeds"]) for r in rec["results"]] == [("50%", "real", 1),
                                                                               ("50%", "synthetic-x1", 1)]
    real, syn = rec["results"]
    n = sum(max(1, round(0.5 * len(v))) for v in class_takes(lcache).values())
    assert real["real_takes"] == syn["real_takes"] == n and real["synthetic_takes"] == 0
    assert syn["synthetic_takes"] == n  # one per real take of each class
    assert all(0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["take_accuracy"] <= 1.0 for r in rec["results"])
    assert len(list((out / "synthetic").glob("*.npz"))) == n and (out / "synthetic" / "manifest.csv").is_file()
    assert (tmp_path / "p.png").stat().st_size > 0 and f"| 50% | {n} |" in text and "synthetic-x1" in text
    assert not (out / "runs" / "p50_real_s0" / "checkpoints").exists()

    import motionsynth.train

    def no_training(*a, **k):
        raise AssertionError("retrained a finished unit")

    monkeypatch.setattr(motionsynth.train, "train", no_training)
    before = {p.name: p.read_bytes() for p in (out / "results").iterdir()}
    code, text2, err = _cli(capsys, *args)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (out / "results").iterdir()} == before
    assert json.loads((out / "record.json").read_text())["results"] == rec["results"]
    code, _, err = _cli(capsys, *[a if a != "3" else "4" for a in args])  # other steps: refused, not mixed
    assert code == 2 and "other settings (steps" in err


def test_combined_condition_is_the_synthetic_takes_under_classic_augmentation(lcache, generator, tmp_path, capsys):
    out = tmp_path / "aug"
    code, _, err = _cli(capsys, "--generator", generator, "--data", lcache.path, "--out", out, "--regimes", "50%",
                        "--seeds", "0", "--ratios", "1", "--no-classic", "--combined", "--steps", "3", *TINY,
                        "--no-progress")
    assert code == 0, err
    rec = json.loads((out / "record.json").read_text())
    assert [r["data"] for r in rec["results"]] == ["real", "synthetic-x1", "classic+synthetic-x1"]
    units = {c: json.loads((out / "results" / f"p50_{c}_s0.json").read_text())
             for c in ("synthetic-x1", "classic+synthetic-x1")}
    assert units["classic+synthetic-x1"]["synthetic_takes"] == units["synthetic-x1"]["synthetic_takes"] > 0
    trained = {c: yaml.safe_load((out / "runs" / f"p50_{c}_s0" / "config.yaml").read_text())["train"]["augment"]
               for c in units}
    assert trained["synthetic-x1"] is None and trained["classic+synthetic-x1"] == CLASSIC


@pytest.mark.slow
def test_errors_exit_2(lcache, generator, tmp_path, capsys):
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", lcache.skeleton, lcache.stats)
    base = ["--data", lcache.path, "--out", tmp_path / "o", "--no-progress"]
    for args, match in [(["--generator", hm], "not conditioned on content labels"),
                        (["--generator", generator, "--regimes", "5%,most"], "unknown regime 'most'"),
                        (["--generator", generator, "--ratios", "-1"], "--ratios"),
                        (["--generator", generator, "--cut-class", "run"], "--cut-class 'run'"),
                        (["--generator", generator, "--filter-threshold", "0.5"], "go together")]:
        code, _, err = _cli(capsys, *args, *base)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()
