"""The action classifier: the network, training through the one trainer, the checkpoint, `motionsynth classify`,
`bench classify` and `bench generate` (generation metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motionsynth.bench import run_benchmark
from motionsynth.bench.generation import interval, proportional
from motionsynth.bench.recognition import Recognizer
from motionsynth.cli import main
from motionsynth.errors import MotionsynthError
from motionsynth.io import save_motion
from motionsynth.models.classifier import ActionClassifier, ClassifierConfig
from motionsynth.registry import family, load_checkpoint, load_method
from motionsynth.tasks import Completion, check_label
from motionsynth.train import train

from helpers import LABELS, biped_motion, feature_batch, other_skeleton, tiny_checkpoint

TINY = {"model": {"channels": 8, "layers": 2, "kernel": 3, "embedding": 8},
        "train": {"window": 32, "stride": 8, "batch_size": 8, "steps": 4, "warmup_steps": 1, "val_every": 2,
                  "val_batches": 1, "ckpt_every": 4, "log_every": 1, "accelerator": "cpu"}}


@pytest.fixture(scope="module")
def lcache(tmp_path_factory):
    from helpers import labelled_cache

    return labelled_cache(tmp_path_factory.mktemp("labelled"), per_split=4, frames=72)


@pytest.fixture(scope="module")
def clf(lcache, tmp_path_factory):
    """A tiny classifier trained 4 steps by the one trainer on the labelled cache → its exported model folder."""
    run = tmp_path_factory.mktemp("clf") / "run"
    return train("classifier", lcache.path, run, overrides=TINY, cache=lcache, progress=False, command="test")


# ---- the network -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["conv", "gru", "transformer"])
def test_network_shapes_probabilities_and_loss(arch):
    from helpers import biped_skeleton

    sk = biped_skeleton()
    x, stats = feature_batch(sk, n=5, T=32)
    model = ActionClassifier(ClassifierConfig(arch=arch, window=32, channels=8, layers=2, kernel=3, embedding=6,
                                              classes={"content": 3, "style": 2}), sk)
    model.set_stats(stats)
    model.eval()
    assert model.features(x).shape == (5, 6)
    probs = model.predict(x)
    assert set(probs) == {"content", "style"} and probs["content"].shape == (5, 3) and probs["style"].shape == (5, 2)
    for p in probs.values():
        torch.testing.assert_close(p.sum(-1), torch.ones(5))
    model.train()
    labels = {"content": torch.tensor([0, 1, 2, -1, 0]), "style": torch.tensor([-1, -1, -1, -1, -1])}
    loss, logs = model.training_step({"features": x, "labels": labels})
    loss.backward()
    assert torch.isfinite(loss) and "acc_content" in logs and "loss_style" not in logs  # unknown labels left out
    assert all(p.grad is not None for p in model.heads["content"].parameters())


def test_config_checks_and_data_sizing(lcache, cache):
    with pytest.raises(ValueError, match="arch"):
        ClassifierConfig(arch="lstm")
    with pytest.raises(ValueError, match="odd"):
        ClassifierConfig(kernel=4)
    cfg = ActionClassifier.config_from_data(ClassifierConfig(), lcache)
    assert cfg.classes == {k: len(v) for k, v in LABELS.items()}
    with pytest.raises(MotionsynthError, match="no label kind"):  # the shared fixture's takes carry no labels
        ActionClassifier.config_from_data(ClassifierConfig(), cache)
    with pytest.raises(MotionsynthError, match="cache's labels"):
        ActionClassifier.config_from_data(ClassifierConfig(classes={"content": 5, "style": 2}), lcache)


# ---- training, checkpoint, registry ----------------------------------------------------------------------------------
def test_trains_and_round_trips_through_the_registry(clf, lcache):
    ck = load_checkpoint(clf)
    assert ck.family == "classifier" and isinstance(ck.model, ActionClassifier) and not ck.model.training
    assert ck.labels == LABELS and ck.model.config.classes == {"content": 3, "style": 2}
    assert ck.model.config.window == 32
    x = torch.as_tensor(lcache.stats.normalize(np.asarray(lcache.features[:64], np.float32)).reshape(2, 32, -1))
    a, b = ck.model.predict(x), load_checkpoint(clf).model.predict(x)
    for kind in a:
        torch.testing.assert_close(a[kind], b[kind], rtol=0, atol=0)
    assert family("classifier").role == "evaluator"
    with pytest.raises(MotionsynthError, match="evaluator.*motionsynth classify"):
        load_method(clf)
    with pytest.raises(MotionsynthError, match="evaluator"):
        load_method(ck)


def test_recognizer_windows_and_refusals(clf, lcache, tmp_path):
    rec = Recognizer(clf)
    assert rec.window == 32 and rec.stride == 16 and rec.min_frames == 8 and rec.kinds == ["content", "style"]
    assert rec.starts(32).tolist() == [0] and rec.starts(70).tolist() == [0, 16, 32, 38]
    assert rec.starts(10).tolist() == [0]
    feats = np.asarray(lcache.features[:70], np.float32)
    assert rec.windows(feats).shape == (4, 32, feats.shape[1])
    assert rec.windows(feats[:10]).shape == (1, 32, feats.shape[1])  # padded by holding the last frame
    np.testing.assert_array_equal(rec.windows(feats[:10])[0, 9:], np.repeat(feats[9:10], 23, 0))
    with pytest.raises(MotionsynthError, match="too short"):
        rec.windows(feats[:5])
    probs, emb = rec.score_clips([feats, feats[:20]])
    assert emb.shape == (2, 8) and probs["content"].shape == (2, 3)
    np.testing.assert_allclose(probs["style"].sum(-1), 1.0, rtol=1e-5)
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", lcache.skeleton, lcache.stats)
    with pytest.raises(MotionsynthError, match="hmvae checkpoint is not an action classifier"):
        Recognizer(hm)


# ---- motionsynth classify ------------------------------------------------------------------------------------------
def _classify(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["classify", *map(str, args)])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_classify_command(clf, lcache, tmp_path, capsys):
    clip = tmp_path / "clip.bvh"
    save_motion(lcache.motion(0), clip)
    code, out, err = _classify(capsys, clip, "--model", clf, "--top", "2")
    assert code in (0, None), err
    lines = out.strip().splitlines()
    assert "72 frames; 4 windows of 32 frames" in lines[0]
    for kind, line in zip(["content", "style"], lines[1:]):
        parts = line.split()
        assert parts[0] == kind and len(parts) == 5
        names, probs = parts[1::2], [float(p) for p in parts[2::2]]
        assert set(names) <= set(LABELS[kind]) and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001
    short = tmp_path / "short.npz"
    save_motion(lcache.motion(0)[:12], short)
    code, out, _ = _classify(capsys, short, "--model", clf)
    assert code in (0, None) and "12 frames, padded to 32" in out


def test_classify_command_errors(clf, lcache, tmp_path, capsys):
    def one_line_error(*args, match):
        code, out, err = _classify(capsys, *args)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err

    clip = tmp_path / "clip.bvh"
    save_motion(lcache.motion(0), clip)
    other = tmp_path / "other.bvh"
    save_motion(biped_motion(other_skeleton(), T=40), other)
    one_line_error(other, "--model", clf, match="skeleton")
    tiny = tmp_path / "tiny.bvh"
    save_motion(lcache.motion(0)[:5], tiny)
    one_line_error(tiny, "--model", clf, match="too short to classify")
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", lcache.skeleton, lcache.stats)
    one_line_error(clip, "--model", hm, match="not an action classifier")
    one_line_error(tmp_path / "missing.bvh", "--model", clf, match="no such file")
    one_line_error(clip, "--model", tmp_path / "nothing", match="no such checkpoint")
    one_line_error(clip, "--model", clf, "--top", "0", match="--top")
    fast = lcache.motion(0)
    fast.fps = 60.0
    save_motion(fast, tmp_path / "fast.bvh")
    one_line_error(tmp_path / "fast.bvh", "--model", clf, match="60 fps")


# ---- bench classify ------------------------------------------------------------------------------------------------
def test_bench_classify_record(clf, lcache, tmp_path, capsys):
    rec = run_benchmark("classify", lcache, model=str(clf), progress=False)
    rows = {(r["kind"], r["unit"]): r for r in rec["results"]}
    assert set(rows) == {(k, u) for k in LABELS for u in ("window", "take")}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows.values())
    takes = len(lcache.split("test"))
    assert rows[("content", "take")]["takes"] == takes
    conf = rec["settings"]["confusion"]["content"]
    assert conf["names"] == LABELS["content"] and np.asarray(conf["take"]).sum() == takes
    assert np.asarray(conf["window"]).sum() == rows[("content", "window")]["windows"]
    assert rec["settings"]["speed"]["windows_per_s"] > 0 and rec["checkpoint_hash"] == load_checkpoint(clf).weights_hash
    with pytest.raises(SystemExit) as e:
        main(["bench", "classify", "--data", str(lcache.path), "--model", str(clf), "--no-progress",
              "--json", str(tmp_path / "c.json")])
    assert e.value.code in (0, None)
    assert "| content | take |" in capsys.readouterr().out and (tmp_path / "c.json").is_file()
    with pytest.raises(SystemExit) as e:
        main(["bench", "classify", "--data", str(lcache.path), "--method", "slerp"])
    assert e.value.code == 2


def test_confusion_plot(clf, lcache, tmp_path):
    from motionsynth.viz.plots import plot_confusion

    rec = run_benchmark("classify", lcache, model=str(clf), progress=False)
    conf = rec["settings"]["confusion"]["content"]
    out = plot_confusion(np.asarray(conf["take"]), conf["names"], tmp_path / "c.png", title="content")
    assert out.is_file() and out.stat().st_size > 1000
    with pytest.raises(MotionsynthError, match="square"):
        plot_confusion(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")


# ---- bench generate ------------------------------------------------------------------------------------------------
class LabelledGenerator:
    """A conditional generator for the test: labelled real takes of the cache, a random window of a take with the
    asked label (any take without one)."""

    name, params, checkpoint_hash, needs_fit = "fake-conditional", {}, None, False
    tasks, window = ("generate",), None

    def __init__(self, cache):
        self.cache, self.skeleton = cache, cache.skeleton
        self.vocabulary = {k: list(v) for k, v in cache.label_names.items()}

    def fit(self, motions):
        pass

    def complete(self, motion, mask, label=None, n_samples=1, seed=None):
        check_label(label, self.vocabulary, self.name)
        rng = np.random.default_rng(seed)
        takes = [i for i in self.cache.split("train")
                 if label is None or all(self.cache.takes[i].labels.get(k) == v for k, v in label.items())]
        out = []
        for _ in range(n_samples):
            m = self.cache.motion(int(rng.choice(takes)))
            start = int(rng.integers(0, m.num_frames - motion.num_frames + 1))
            out.append(m[start:start + motion.num_frames])
        return Completion(out)


def _finite_or_none(row, *keys):
    return all(row[k] is None or math.isfinite(row[k]) for k in keys)


def test_bench_generate_unconditional_hmvae(clf, lcache, tmp_path):
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", lcache.skeleton, lcache.stats)
    rec = run_benchmark("generate", lcache, model=str(hm), progress=False,
                        settings={"classifier": str(clf), "samples_per_label": 3, "repetitions": 2})
    s = rec["settings"]
    assert s["conditional"] is False and s["frames"] == 32 and s["kind"] == "content" and s["classifier"] == str(clf)
    assert len(s["per_repetition"]) == 2
    rows = {r["data"]: r for r in rec["results"]}
    assert set(rows) == {"generated", "real"}  # no per-label rows without labels
    gen, real = rows["generated"], rows["real"]
    assert gen["accuracy"] is None and gen["multimodality"] is None and gen["samples"] == 9
    for key in ("fid", "diversity", "foot_skate"):
        assert gen[key] is not None and math.isfinite(gen[key]) and gen[f"{key}_ci95"] >= 0
    assert 0.0 <= real["accuracy"] <= 1.0 and math.isfinite(real["fid"]) and real["diversity"] > 0
    assert _finite_or_none(real, "multimodality", "foot_skate")
    json_ready = __import__("json").dumps(rec)  # the whole record is plain JSON
    assert "Recognizer" not in json_ready


def test_bench_generate_conditional_accuracy_per_label(clf, lcache):
    rec = run_benchmark("generate", lcache, method=LabelledGenerator(lcache), progress=False,
                        settings={"classifier": Recognizer(clf), "samples_per_label": 4, "repetitions": 3})
    assert rec["settings"]["conditional"] is True
    per_label = [r for r in rec["results"] if r["data"] == "generated" and r["label"] != "all"]
    assert [r["label"] for r in per_label] == LABELS["content"]
    for r in per_label:
        assert 0.0 <= r["accuracy"] <= 1.0 and r["samples"] == 4 and _finite_or_none(r, "multimodality", "foot_skate")
    total = next(r for r in rec["results"] if r["data"] == "generated" and r["label"] == "all")
    assert total["samples"] == 12 and 0.0 <= total["accuracy"] <= 1.0 and total["multimodality"] >= 0
    again = run_benchmark("generate", lcache, method=LabelledGenerator(lcache), progress=False,
                          settings={"classifier": Recognizer(clf), "samples_per_label": 4, "repetitions": 3})
    assert again["results"] == rec["results"]  # seeded
    style = run_benchmark("generate", lcache, method=LabelledGenerator(lcache), progress=False,
                          settings={"classifier": str(clf), "samples_per_label": 2, "repetitions": 1,
                                    "kind": "style"})
    assert [r["label"] for r in style["results"] if r["data"] == "generated"] == LABELS["style"] + ["all"]


def test_proportional_shares_sum_to_the_total_and_follow_the_weights():
    rng = np.random.default_rng(0)
    for _ in range(50):
        w = rng.integers(0, 50, size=int(rng.integers(1, 12)))
        total = int(rng.integers(0, 300))
        out = proportional(w, total)
        assert out.dtype == np.int64 and out.shape == w.shape and (out >= 0).all()
        if w.sum() == 0:
            assert (out == 0).all()
            continue
        assert out.sum() == total and (out[w == 0] == 0).all()
        assert np.abs(out - w / w.sum() * total).max() < 1.0  # largest remainders: never a whole sample off
    assert proportional([1, 1, 2], 8).tolist() == [2, 2, 4] and proportional([1, 1], 3).tolist() == [2, 1]


def test_bench_generate_label_weights_split_follows_the_split(clf, lcache):
    from motionsynth.bench.clips import split_windows

    settings = {"classifier": str(clf), "samples_per_label": 3, "repetitions": 1, "label_weights": "split",
                "kind": "style"}
    rec = run_benchmark("generate", lcache, method=LabelledGenerator(lcache), progress=False, settings=settings)
    wins = split_windows(lcache, "test", 32, 16, None, None)
    real = [sum(lcache.takes[t].labels["style"] == n for t, _ in wins) for n in LABELS["style"]]
    expected = dict(zip(LABELS["style"], proportional(real, 3 * len(LABELS["style"])).tolist()))
    per_label = {r["label"]: r["samples"] for r in rec["results"] if r["data"] == "generated" and r["label"] != "all"}
    assert per_label == {n: k for n, k in expected.items() if k > 0}
    assert rec["settings"]["label_weights"] == "split" and rec["settings"]["samples_per_name"] == expected
    total = next(r for r in rec["results"] if r["data"] == "generated" and r["label"] == "all")
    assert total["samples"] == 3 * len(LABELS["style"])
    with pytest.raises(MotionsynthError, match="label_weights must be uniform or split"):
        run_benchmark("generate", lcache, method=LabelledGenerator(lcache), progress=False,
                      settings={**settings, "label_weights": "balanced"})


def test_interval_is_actors():
    mean, ci = interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and ci == pytest.approx(1.96 * np.std([1, 2, 3]) / np.sqrt(3))
    assert interval([]) == (None, None) and interval([4.0]) == (4.0, 0.0)


def test_bench_generate_errors(clf, lcache, tmp_path, capsys):
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", lcache.skeleton, lcache.stats)
    with pytest.raises(MotionsynthError, match="generate needs an action classifier"):
        run_benchmark("generate", lcache, model=str(hm))
    with pytest.raises(MotionsynthError, match="not an action classifier"):
        run_benchmark("generate", lcache, model=str(hm), settings={"classifier": str(hm)})
    with pytest.raises(MotionsynthError, match="cannot do generation"):  # a baseline is no generator
        run_benchmark("generate", lcache, "slerp", settings={"classifier": str(clf)}, progress=False)
    with pytest.raises(MotionsynthError, match="no label kind 'mood'"):
        run_benchmark("generate", lcache, model=str(hm), settings={"classifier": str(clf), "kind": "mood"},
                      progress=False)

    def cli(*args):
        with pytest.raises(SystemExit) as e:
            main(["bench", "generate", "--data", str(lcache.path), *map(str, args), "--no-progress"])
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    code, _, err = cli("--model", hm)
    assert code == 2 and "--classifier" in err
    code, _, err = cli("--model", hm, "--classifier", hm)
    assert code == 2 and "not an action classifier" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("--model", clf, "--classifier", clf, "--samples-per-label", "2", "--repetitions", "1")
    assert code == 2 and "evaluator" in err
    code, _, err = _cli_bench(capsys, "predict", "--data", lcache.path, "--method", "zero-velocity", "--classifier", clf)
    assert code == 2 and "belong to bench generate" in err
    code, out, err = cli("--model", hm, "--classifier", clf, "--samples-per-label", "2", "--repetitions", "1",
                         "--json", tmp_path / "g.json")
    assert code in (0, None), err
    assert "| generated | all |" in out and "| real | all |" in out and (tmp_path / "g.json").is_file()
    assert "| fid |" in out and "fid_ci95" not in out and " ± " in out  # mean ± 95 % interval in one cell


def _cli_bench(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["bench", *map(str, args)])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err
