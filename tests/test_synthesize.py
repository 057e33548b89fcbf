"""`motionsynth synthesize`: synthetic datasets (takes + manifest), their round trip through `data prepare`, seeds,
resume after an interruption, and the refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from motionsynth.cli import main
from motionsynth.errors import MotionsynthError
from motionsynth.synthesize import MANIFEST, label_targets, plan_takes, read_manifest, synthesize, take_seed
from motionsynth.tasks import Completion, check_label

from helpers import LABELS, biped_motion, biped_skeleton, feature_batch, tiny_checkpoint


class FakeConditional:
    """A labelled generator for the tests: a smooth biped motion drawn from the seed (the label checked)."""

    name, params, needs_fit = "fake-conditional", {}, False
    checkpoint_hash = "f" * 64

    def __init__(self):
        self.skeleton = biped_skeleton()
        self.vocabulary = {k: list(v) for k, v in LABELS.items()}
        self.calls: list[tuple[dict, int]] = []

    def fit(self, motions):
        pass

    def complete(self, motion, mask, label=None, n_samples=1, seed=None):
        assert mask.empty and motion.skeleton is self.skeleton
        check_label(label, self.vocabulary, self.name)
        self.calls.append((dict(label or {}), seed))
        return Completion([biped_motion(self.skeleton, T=motion.num_frames, fps=motion.fps, seed=seed)
                           for _ in range(n_samples)])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _rows(folder: Path) -> list[dict]:
    with open(folder / MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([*map(str, args)])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


@pytest.fixture(scope="module")
def hmvae(tmp_path_factory):
    """Two tiny unconditional generators (different weights, so different model hashes)."""
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    folder = tmp_path_factory.mktemp("gen")
    return tiny_checkpoint(folder / "a", "hmvae", sk, stats, seed=0), tiny_checkpoint(folder / "b", "hmvae", sk,
                                                                                        stats, seed=1)


# ---- plan ------------------------------------------------------------------------------------------------------------
def test_seeds_names_and_targets():
    walk = {"content": "walk"}
    assert take_seed(0, walk, 3) == take_seed(0, walk, 3)
    assert len({take_seed(0, walk, 3), take_seed(1, walk, 3), take_seed(0, walk, 4),
                take_seed(0, {"content": "wave-left-hand"}, 3)}) == 4
    takes = plan_takes([walk, {"content": "wave-left-hand"}], 2, seed=7)
    assert [t.name for t in takes] == ["walk_0000", "walk_0001", "wave-left-hand_0000", "wave-left-hand_0001"]
    assert takes[1].seed == take_seed(7, walk, 1)
    assert plan_takes([None], 12000, 0)[-1].name == "sample_11999"
    vocab = {k: list(v) for k, v in LABELS.items()}
    assert label_targets(vocab) == [{"content": n} for n in LABELS["content"]]
    assert label_targets(vocab, kind="style") == [{"style": "calm"}, {"style": "brisk"}]
    assert label_targets(vocab, ["content=walk,content=wave-left-hand"], style="calm") == [
        {"content": "walk", "style": "calm"}, {"content": "wave-left-hand", "style": "calm"}]
    assert plan_takes(label_targets(vocab, ["content=walk"], style="calm"), 1, 0)[0].name == "walk_calm_0000"
    for args, match in [((vocab, ["content=run"]), "knows no content 'run'"),
                        ((vocab, None, "mood"), "no label kind 'mood'"),
                        ((vocab, ["content=walk,content=walk"]), "asked for twice"),
                        ((vocab, ["walk"]), "KIND=NAME"),
                        ((vocab, None, "style", "calm"), "`style` is added"),
                        (({}, ["content=walk"], None, None, "the hmvae model M"), "hmvae model M is not conditioned")]:
        with pytest.raises(MotionsynthError, match=match):
            label_targets(*args)


# ---- the dataset and its round trip ----------------------------------------------------------------------------------
def test_labelled_dataset_round_trips_through_data_prepare(tmp_path, capsys):
    gen = FakeConditional()
    out = tmp_path / "synth"
    summary = synthesize(gen, out, frames=40, fps=30.0, per_label=4, style="calm", seed=3, batch_size=5)
    assert summary["written"] == summary["takes"] == 12 and summary["kept"] == 0
    rows = _rows(out)
    assert list(rows[0]) == ["name", "file", "content", "style", "seed", "frames", "model_hash"]
    assert sorted(r["file"] for r in rows) == sorted(p.name for p in out.glob("*.bvh")) and len(rows) == 12
    row = next(r for r in rows if r["name"] == "wave-right-hand_calm_0002")
    assert row == {"name": "wave-right-hand_calm_0002", "file": "wave-right-hand_calm_0002.bvh", "content": "wave-right-hand",
                   "style": "calm", "seed": str(take_seed(3, {"content": "wave-right-hand", "style": "calm"}, 2)),
                   "frames": "40", "model_hash": "f" * 64}
    assert sorted(s for _, s in gen.calls) == sorted(int(r["seed"]) for r in rows)  # one call per take, its seed

    cache = tmp_path / "cache"
    code, _, err = _cli(capsys, "data", "prepare", out, "--dataset", "bvh-folder", "--labels", out / MANIFEST,
                        "--out", cache, "--no-progress", "--workers", "1")
    assert code == 0, err
    code, text, err = _cli(capsys, "data", "info", cache, "--json")
    assert code == 0, err
    info = json.loads(text)
    assert info["takes"] == 12 and info["frames"] == 12 * 40
    assert info["labels"] == {"content": {n: 4 for n in LABELS["content"]}, "style": {"calm": 12}}  # no bookkeeping


def test_rerun_is_identical_and_resume_after_interruption(tmp_path):
    full = tmp_path / "full"
    synthesize(FakeConditional(), full, frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    again = synthesize(FakeConditional(), full, frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    assert again["written"] == 0 and again["kept"] == 9

    part = tmp_path / "part"

    def interrupt(done, total):
        if done >= 4:
            raise KeyboardInterrupt  # as if killed between two manifest updates

    with pytest.raises(KeyboardInterrupt):
        synthesize(FakeConditional(), part, frames=36, fps=30.0, per_label=3, seed=1, batch_size=2,
                   on_batch=interrupt)
    assert len(_rows(part)) == 4
    # what a kill -9 can leave besides: a take written after the last manifest update (here: garbage, as if cut
    # short by something else), io.atomic's temporary of the take being written, and a take listed but lost
    listed = sorted(r["file"] for r in _rows(part))
    unlisted = sorted(set(_files(full)) - set(listed) - {MANIFEST})[0]
    (part / unlisted).write_text("HIERARCHY\nROOT Hips\n{")
    (part / f".{Path(unlisted).stem}.k9x2ab.bvh").write_text("HIERARCHY\n")
    (part / ".manifest.q1w2e3.csv").write_text("name,fi")
    (part / listed[0]).unlink()

    gen = FakeConditional()
    resumed = synthesize(gen, part, frames=36, fps=30.0, per_label=3, seed=1, batch_size=4)
    assert resumed["kept"] == 3 and resumed["written"] == 6 and len(gen.calls) == 6
    assert _files(part) == _files(full)  # same files, same bytes, same manifest; no temporaries, no duplicates

    more = synthesize(FakeConditional(), part, frames=36, fps=30.0, per_label=4, seed=1)
    assert more["written"] == 3 and len(_rows(part)) == 12
    assert all(_files(part)[name] == data for name, data in _files(full).items() if name != MANIFEST)


def test_library_refusals_write_nothing(tmp_path):
    gen = FakeConditional()
    out = tmp_path / "synth"
    synthesize(gen, out, frames=32, fps=30.0, per_label=1, seed=0)
    before = _files(out)
    for kw, match in [(dict(per_label=1, labels=["content=run"]), "knows no content 'run'"),
                      (dict(per_label=1, seed=5), "another `seed`"),
                      (dict(per_label=1, frames=40), "rerun with `frames` 32"),
                      (dict(per_label=1, fmt="npz"), "bvh takes"),
                      (dict(per_label=1, fmt="gif"), "`format`"),
                      (dict(per_label=0), "`per_label` must be at least 1"),
                      (dict(count=0), "`count` must be at least 1"),
                      (dict(per_label=1, frames=0), "`frames` must be at least 1"),
                      (dict(per_label=1, count=1), "exactly one"),
                      (dict(count=2, labels=["content=walk"]), "`count` writes unlabelled"),
                      (dict(per_label=1, model_hash="0" * 64), "another model")]:
        args = {"frames": 32, "fps": 30.0, "seed": 0, **kw}
        with pytest.raises(MotionsynthError, match=match):
            synthesize(gen, out, **args)
    assert _files(out) == before
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(MotionsynthError, match="not empty and holds no manifest.csv"):
        synthesize(gen, tmp_path / "busy", frames=32, fps=30.0, per_label=1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MANIFEST).write_text("name,content\nx,walk\n")
    with pytest.raises(MotionsynthError, match="not a motionsynth synthesize manifest"):
        synthesize(gen, tmp_path / "other", frames=32, fps=30.0, per_label=1)
    assert (tmp_path / "other" / MANIFEST).read_text() == "name,content\nx,walk\n"


# ---- the command -----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_command_unconditional_generator(hmvae, tmp_path, capsys):
    a, b = hmvae
    out = tmp_path / "synth"
    code, text, err = _cli(capsys, "synthesize", "--model", a, "--count", "3", "--out", out, "--no-progress",
                           "--batch-size", "2")
    assert code == 0, err
    assert "wrote 3 takes of 32 frames (0 already there" in text and "unlabelled" in text
    rows = _rows(out)
    assert [r["name"] for r in rows] == ["sample_0000", "sample_0001", "sample_0002"]
    assert list(rows[0]) == ["name", "file", "seed", "frames", "model_hash"]
    first = _files(out)
    code, text, _ = _cli(capsys, "synthesize", "--model", a, "--count", "3", "--out", out, "--no-progress")
    assert code == 0 and "wrote 0 takes" in text and "3 already there" in text and _files(out) == first

    def one_line_error(*args, match):
        code, _, err = _cli(capsys, "synthesize", "--model", a, "--out", out, "--no-progress", *args)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert _files(out) == first

    one_line_error("--per-label", "2", match=f"the hmvae model {a} is not conditioned on labels")
    one_line_error("--per-label", "2", "--labels", "content=walk", match="is not conditioned on labels")
    one_line_error("--count", "3", "--labels", "content=walk", match="--count writes unlabelled")
    one_line_error("--per-label", "0", match="--per-label must be at least 1")
    one_line_error("--count", "0", match="--count must be at least 1")
    one_line_error("--count", "3", "--frames", "0", match="--frames must be at least 1")
    one_line_error("--count", "3", "--format", "fbx", match="--format must be one of bvh, npz")
    one_line_error(match="exactly one of --per-label")
    code, _, err = _cli(capsys, "synthesize", "--model", b, "--count", "3", "--out", out, "--no-progress")
    assert code == 2 and "holds takes of another model" in err and len(err.strip().splitlines()) == 1
    assert _files(out) == first


def test_command_labelled_generator(hmvae, tmp_path, capsys, monkeypatch):
    """The command with a conditional method (the registry's door replaced by the fake one): labels, npz, errors."""
    import motionsynth.registry as registry

    gen = FakeConditional()
    monkeypatch.setattr(registry, "load_method", lambda ckpt, **options: gen)
    out = tmp_path / "synth"
    code, text, err = _cli(capsys, "synthesize", "--model", hmvae[0], "--per-label", "2", "--labels",
                           "content=walk,content=wave-left-hand", "--style", "brisk", "--frames", "33",
                           "--format", "npz", "--out", out, "--no-progress")
    assert code == 0, err
    assert "content=walk,style=brisk" in text
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "walk_brisk_0000.npz", "walk_brisk_0001.npz",
                                                     "wave-left-hand_brisk_0000.npz", "wave-left-hand_brisk_0001.npz"]
    from motionsynth.io import load_motion

    assert load_motion(out / "walk_brisk_0001.npz").num_frames == 33
    code, _, err = _cli(capsys, "synthesize", "--model", hmvae[0], "--per-label", "2", "--labels", "content=run",
                        "--out", tmp_path / "x", "--no-progress")
    assert code == 2 and "knows no content 'run'" in err and not (tmp_path / "x").exists()


CHILD = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import motionsynth.synthesize as S
from test_synthesize import FakeConditional

real, calls = S.save_motion, []


def dying_save(motion, path):
    calls.append(path)
    if len(calls) == 6:  # killed while writing the 6th take: its temporary half-written
        (path.parent / f".{{path.stem}}.k9x2ab{{path.suffix}}").write_text("HIERARCHY\\nROOT Hi")
        os.kill(os.getpid(), signal.SIGKILL)
    real(motion, path)


S.save_motion = dying_save
S.synthesize(FakeConditional(), Path({out!r}), frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
"""


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    """A real ``kill -9`` in the middle of writing a take, then a rerun: the uninterrupted run's files exactly."""
    import signal
    import subprocess
    import sys

    full, part = tmp_path / "full", tmp_path / "part"
    synthesize(FakeConditional(), full, frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent), out=str(part)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    bvh = [p.name for p in part.glob("*.bvh")]
    assert len(_rows(part)) == 4 and len([n for n in bvh if not n.startswith(".")]) == 5
    assert [n for n in bvh if n.startswith(".")]  # the half-written temporary
    resumed = synthesize(FakeConditional(), part, frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    assert resumed["kept"] == 4 and resumed["written"] == 5
    assert _files(part) == _files(full)


def test_classifier_filter(tmp_path):
    """--classifier / --min-prob: takes below the threshold are redrawn (next seeds), the probability recorded."""
    from motionsynth.bench.recognition import Recognizer

    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    folder = tiny_checkpoint(tmp_path / "clf", "classifier", sk, stats)
    (folder / "labels.json").write_text(json.dumps(LABELS))
    rec = Recognizer(folder)
    kw = dict(frames=36, fps=30.0, per_label=3, seed=2, classifier=rec, max_tries=4)
    anything = synthesize(FakeConditional(), tmp_path / "all", min_prob=0.0, **kw)
    rows = _rows(tmp_path / "all")
    assert anything["written"] == 9 and anything["rejected"] == 0 and list(rows[0])[-1] == "probability"
    probs = sorted(float(r["probability"]) for r in rows)
    assert all(0.0 < p < 1.0 for p in probs)
    assert all(r["seed"] == str(take_seed(2, {"content": r["content"]}, int(r["name"][-4:]))) for r in rows)

    threshold = probs[4]  # the median first draw: some takes need redraws, some are given up
    gen = FakeConditional()
    some = synthesize(gen, tmp_path / "some", min_prob=threshold, **kw)
    rows = _rows(tmp_path / "some")
    assert some["written"] + some["rejected"] == 9 and some["written"] >= 5 and len(gen.calls) > 9
    assert all(float(r["probability"]) >= threshold - 1e-4 for r in rows)
    assert all(r["seed"] in {str(take_seed(2, {"content": r["content"]}, int(r["name"][-4:]), a)) for a in range(4)}
               for r in rows)
    before = _files(tmp_path / "some")
    again = synthesize(FakeConditional(), tmp_path / "some", min_prob=threshold, **kw)
    assert again["written"] == 0 and again["rejected"] == some["rejected"] and _files(tmp_path / "some") == before

    none = synthesize(FakeConditional(), tmp_path / "none", min_prob=1.0, **kw)
    assert none["written"] == 0 and none["rejected"] == 9 and _rows(tmp_path / "none") == []
    with pytest.raises(MotionsynthError, match="use it with `per_label`"):
        synthesize(FakeConditional(), tmp_path / "x", frames=36, fps=30.0, count=2, classifier=rec)
    with pytest.raises(MotionsynthError, match="`min_prob` must be in 0..1"):
        synthesize(FakeConditional(), tmp_path / "x", min_prob=1.5, **{**kw, "classifier": rec})


@pytest.mark.slow
def test_command_with_a_cvae_checkpoint(tmp_path, capsys):
    """The command end to end with a real conditional family (a tiny untrained CVAE given the labels of `LABELS`):
    takes per label with a style, a rerun that writes nothing, classifier filtering, an unknown label."""
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    model = tiny_checkpoint(tmp_path / "cvae", "cvae", sk, stats)
    (model / "labels.json").write_text(json.dumps(LABELS))
    clf = tiny_checkpoint(tmp_path / "clf", "classifier", sk, stats)
    (clf / "labels.json").write_text(json.dumps(LABELS))
    out = tmp_path / "synth"
    args = ["synthesize", "--model", model, "--per-label", "2", "--kind", "content", "--style", "brisk", "--out", out,
            "--no-progress", "--seed", "4"]
    code, text, err = _cli(capsys, *args)
    assert code == 0, err
    assert "wrote 6 takes of 32 frames" in text
    rows = _rows(out)
    assert {r["content"] for r in rows} == set(LABELS["content"]) and {r["style"] for r in rows} == {"brisk"}
    first = _files(out)
    code, text, _ = _cli(capsys, *args)
    assert code == 0 and "wrote 0 takes" in text and _files(out) == first

    code, text, err = _cli(capsys, "synthesize", "--model", model, "--per-label", "1", "--labels", "content=walk",
                           "--classifier", clf, "--min-prob", "0", "--out", tmp_path / "filtered", "--no-progress")
    assert code == 0, err
    [row] = _rows(tmp_path / "filtered")
    assert row["name"] == "walk_0000" and 0.0 < float(row["probability"]) < 1.0

    for extra, match in [(["--labels", "content=run"], "knows no content 'run'"),
                         (["--kind", "mood"], "no label kind 'mood'"),
                         (["--labels", "content=walk", "--classifier", model], "not an action classifier"),
                         (["--labels", "content=walk", "--min-prob", "2"], "--min-prob must be in 0..1")]:
        code, _, err = _cli(capsys, "synthesize", "--model", model, "--per-label", "1", *extra, "--out",
                            tmp_path / "bad", "--no-progress")
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()


# ---- several processes (shards) --------------------------------------------------------------------------------------
def test_two_shards_write_what_one_process_writes(tmp_path):
    """Rank r of 2 writes the takes r::2 and lists them in its own partial manifest; rank 0 merges: the files and the
    manifest of one process, whichever rank runs first (here one after the other, the barrier a no-op)."""
    kw = dict(frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    full = tmp_path / "full"
    synthesize(FakeConditional(), full, **kw)

    ranks_first = tmp_path / "a"  # rank 1 first: rank 0 merges both lists at the end
    gens = [FakeConditional(), FakeConditional()]
    one = synthesize(gens[1], ranks_first, shard=(1, 2), **kw)
    assert one["written"] == 4 and not (ranks_first / MANIFEST).exists()
    assert sorted(p.name for p in ranks_first.glob(".manifest-rank*.csv")) == [".manifest-rank1.csv"]
    zero = synthesize(gens[0], ranks_first, shard=(0, 2), **kw)
    assert zero["written"] == 5 and zero["kept"] == 4 and zero["rejected"] == 0  # rank 1 ran before: kept here
    assert len(gens[0].calls) == 5 and not {s for _, s in gens[0].calls} & {s for _, s in gens[1].calls}
    assert _files(ranks_first) == _files(full)  # no partial manifest left, the same bytes

    zero_first = tmp_path / "b"  # rank 0 first: its manifest lacks rank 1's takes until the next merge
    synthesize(FakeConditional(), zero_first, shard=(0, 2), **kw)
    synthesize(FakeConditional(), zero_first, shard=(1, 2), **kw)
    assert len(_rows(zero_first)) == 5 and (zero_first / ".manifest-rank1.csv").is_file()
    gen = FakeConditional()
    merged = synthesize(gen, zero_first, **kw)  # a rerun with one process: nothing to write, the lists merged
    assert merged["written"] == 0 and merged["kept"] == 9 and not gen.calls
    assert _files(zero_first) == _files(full)
    with pytest.raises(MotionsynthError, match="shard must be"):
        synthesize(FakeConditional(), tmp_path / "c", shard=(2, 2), **kw)


def test_resume_after_a_killed_shard(tmp_path):
    """A rank killed between two updates of its list (manifest.csv absent, or stale): a rerun with one process or
    with two completes the dataset without writing any take twice."""
    kw = dict(frames=36, fps=30.0, per_label=3, seed=1, batch_size=2)
    full = tmp_path / "full"
    synthesize(FakeConditional(), full, **kw)

    def interrupt(done, total):
        if done >= 2:
            raise KeyboardInterrupt

    def killed_rank_1(out):
        with pytest.raises(KeyboardInterrupt):
            synthesize(FakeConditional(), out, shard=(1, 2), on_batch=interrupt, **kw)
        assert len(read_manifest(out / ".manifest-rank1.csv")) == 2
        (out / ".walk_0001.k9x2ab.bvh").write_text("HIERARCHY\n")  # temporaries: a take's, the list's
        (out / "..manifest-rank1.q1w2e3.csv").write_text("name,fi")

    absent = tmp_path / "absent"
    killed_rank_1(absent)
    assert not (absent / MANIFEST).exists()
    gen = FakeConditional()
    again = synthesize(gen, absent, **kw)
    assert again["kept"] == 2 and again["written"] == 7 and len(gen.calls) == 7
    assert _files(absent) == _files(full)

    stale = tmp_path / "stale"
    synthesize(FakeConditional(), stale, shard=(0, 2), **kw)  # rank 0 done and merged: manifest.csv lacks rank 1's
    killed_rank_1(stale)
    gens = [FakeConditional(), FakeConditional()]
    synthesize(gens[1], stale, shard=(1, 2), **kw)
    done = synthesize(gens[0], stale, shard=(0, 2), **kw)
    assert len(gens[1].calls) == 2 and not gens[0].calls and done["kept"] == 9 and done["written"] == 0
    assert _files(stale) == _files(full)


def test_command_device_errors(hmvae, tmp_path, capsys):
    import torch

    bad = [(["--devices", "0"], "--devices must be at least 1, got 0"),
           (["--num-nodes", "0"], "--num-nodes must be at least 1, got 0"),
           (["--accelerator", "abacus"], "cannot set up synthesis with devices=1, num_nodes=1, accelerator='abacus'")]
    if not torch.cuda.is_available():
        bad.append((["--accelerator", "gpu"], "accelerator='gpu'"))
    for extra, match in bad:
        code, _, err = _cli(capsys, "synthesize", "--model", hmvae[0], "--count", "2", "--out", tmp_path / "x",
                            "--no-progress", *extra)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_command_two_processes(tmp_path, capsys):
    """A real run of two processes on the CPU (Lightning's launcher re-runs ``python -m motionsynth …`` for rank 1):
    the takes and the manifest of one process, printed once."""
    import subprocess
    import sys

    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    model = tiny_checkpoint(tmp_path / "cvae", "cvae", sk, stats)
    (model / "labels.json").write_text(json.dumps(LABELS))
    args = ["synthesize", "--model", model, "--per-label", "3", "--no-progress", "--accelerator", "cpu",
            "--batch-size", "2"]
    code, _, err = _cli(capsys, *args, "--out", tmp_path / "one")
    assert code == 0, err
    proc = subprocess.run([sys.executable, "-m", "motionsynth", *map(str, args), "--out", str(tmp_path / "two"),
                           "--devices", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Starting with 2 processes" in proc.stderr and proc.stdout.count("wrote 9 takes") == 1, proc.stdout
    assert _files(tmp_path / "two") == _files(tmp_path / "one")
