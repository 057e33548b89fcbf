"""The trainer: a tiny run end to end, exact resume after an interruption, configuration, the CLI."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from motionsynth.data.features import FeatureStats, encode
from motionsynth.errors import MotionsynthError
from motionsynth.train import StreamSampler, TrainConfig, lr_factor, parse_overrides, resolve_config, train
from test_hmvae import make_motion, make_skeleton, one_thread  # noqa: F401  (autouse fixture)


class FakeCache:
    """The parts of `MotionCache` the trainer reads, over a few synthetic takes held in memory."""

    def __init__(self, takes: int = 6, frames: int = 80):
        self.skeleton = make_skeleton()
        self.fps, self.dataset, self.data_hash = 30.0, "synthetic", "feedc0de"
        self.label_names = {"style": ["a", "b"]}
        motions = [make_motion(self.skeleton, frames, seed=i) for i in range(takes)]
        feats = [encode(m) for m in motions]
        self.features = np.concatenate(feats)
        self.stats = FeatureStats.from_arrays(feats)
        starts = np.cumsum([0] + [len(f) for f in feats])
        splits = ["val" if i == takes - 1 else "train" for i in range(takes)]
        self.takes = [SimpleNamespace(name=f"take_{i}", start=int(starts[i]), length=len(feats[i]), split=splits[i],
                                      labels={"style": "ab"[i % 2]}) for i in range(takes)]
        self._motions = motions

    def split(self, name):
        return [i for i, t in enumerate(self.takes) if t.split == name]

    def motion(self, i):
        return self._motions[i]


TINY = {"model": {"channels": [4, 4, 8, 8], "kernel": 3, "local_latent": 2, "global_latent": 4,
                  "progressive_steps": 3, "traj": {"channels": [2, 2, 4, 4], "kernel": 3}},
        "train": {"window": 32, "stride": 8, "batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "val_every": 4,
                  "val_batches": 2, "ckpt_every": 4, "log_every": 1, "accelerator": "cpu"}}


def _run(tmp: Path, steps: int, cache, resume=False, callbacks=None):
    over = {"train": {**TINY["train"], "steps": steps}, "model": TINY["model"]}
    return train("hmvae", "synthetic", tmp, overrides=over, resume=resume, cache=cache, progress=False,
                 callbacks=callbacks, command="test")


def _losses(run: Path) -> dict[int, float]:
    """Training loss per step over every start of the run (a later start overrides an earlier one)."""
    out = {}
    for path in sorted((run / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])):
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("train/loss"):
                    out[int(row["step"])] = float(row["train/loss"])
    return out


class _Kill(L.Callback):
    """Stops the run abruptly (an exception) after global step ``at``."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.at:
            raise RuntimeError("killed")


def test_tiny_run_writes_run_folder(tmp_path):
    cache = FakeCache()
    model_dir = _run(tmp_path / "run", 6, cache)
    run = tmp_path / "run"
    assert model_dir == run / "model"
    for f in ("config.yaml", "weights.safetensors", "skeleton.json", "stats.npz", "labels.json", "card.md",
              "data_hash"):
        assert (run / "model" / f).is_file(), f
    assert (run / "best" / "weights.safetensors").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["family"] == "hmvae" and cfg["train"]["steps"] == 6 and cfg["model"]["window"] == 32
    assert cfg["model"]["channels"] == [4, 4, 8, 8] and cfg["data"]["data_hash"] == "feedc0de"
    assert sorted(_losses(run)) == list(range(6))
    card = (run / "best" / "card.md").read_text()
    assert "Validation split, step 4" in card and "- loss:" in card
    with pytest.raises(MotionsynthError, match="already holds a run"):
        _run(tmp_path / "run", 6, cache)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    cache = FakeCache()
    _run(tmp_path / "full", 12, cache)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path / "cut", 12, cache, callbacks=[_Kill(6)])
    assert not (tmp_path / "cut" / "model").exists()
    _run(tmp_path / "cut", 12, cache, resume=True)
    full, cut = _losses(tmp_path / "full"), _losses(tmp_path / "cut")
    assert sorted(cut) == sorted(full) == list(range(12))
    for step in range(12):
        assert cut[step] == pytest.approx(full[step], rel=1e-5, abs=1e-7), step
    a = load_file(str(tmp_path / "full" / "model" / "weights.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model" / "weights.safetensors"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_resume_needs_a_run(tmp_path):
    with pytest.raises(MotionsynthError, match="nothing to resume"):
        _run(tmp_path / "none", 4, FakeCache(3), resume=True)


def test_stream_sampler_is_deterministic_and_resumable():
    s = StreamSampler(5, 13, seed=3)
    items = list(s)
    assert len(items) == 13 and list(StreamSampler(5, 13, seed=3)) == items
    assert sorted(k for _, k in items[:5]) == list(range(5))  # each pass is a permutation
    assert [p for p, _ in items] == [0] * 5 + [1] * 5 + [2] * 3
    assert list(StreamSampler(5, 13, seed=3, start=lambda: 7)) == items[7:]
    shards = [list(StreamSampler(5, 13, seed=3, start=lambda: 2, shard=lambda r=r: (r, 2))) for r in range(2)]
    assert shards[0] == items[2::2] and shards[1] == items[3::2]
    assert len(StreamSampler(5, 13, seed=3, start=lambda: 2, shard=lambda: (1, 2))) == len(shards[1])


def test_config_resolution_and_overrides(tmp_path):
    over = parse_overrides(["train.lr=0.01", "model.channels=[4,4,8,8]", "train.window=32"])
    assert over == {"train": {"lr": 0.01, "window": 32}, "model": {"channels": [4, 4, 8, 8]}}
    tc, mc, preset = resolve_config("hmvae-m", None, {"train": {"steps": 7}}, over)
    assert (tc.steps, tc.lr, mc.window, mc.variant, preset) == (7, 0.01, 32, "m", "cpu")
    tc, mc, _ = resolve_config("hmvae", "paper")
    assert (tc.batch_size, tc.lr, tc.steps, mc.kernel) == (8, 1e-4, 250_000, 15)
    with pytest.raises(MotionsynthError, match="unknown training setting"):
        resolve_config("hmvae", None, {"train": {"nope": 1}})
    with pytest.raises(MotionsynthError, match="no setting"):
        resolve_config("hmvae", None, {"model": {"nope": 1}})
    with pytest.raises(MotionsynthError, match="unknown model"):
        resolve_config("vae9000")
    with pytest.raises(MotionsynthError, match="--set"):
        parse_overrides(["lr"])


def test_lr_schedules():
    cfg = TrainConfig(steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 10) == pytest.approx(1.0)
    assert lr_factor(cfg, 100) == pytest.approx(0.1)
    step = TrainConfig(schedule="step", warmup_steps=0, step_size=10, step_gamma=0.5)
    assert lr_factor(step, 25) == pytest.approx(0.25)


# ---- command line -------------------------------------------------------------------------------------------------
def _cli(argv) -> int:
    from motionsynth.cli import main

    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    return e.value.code or 0


@pytest.fixture(scope="module")
def bvh_cache(tmp_path_factory):
    """A real motion cache (`prepare`, bvh-folder adapter) of six tiny synthetic BVH takes."""
    from motionsynth.data.cache import prepare
    from motionsynth.io import write_bvh

    root = tmp_path_factory.mktemp("cache")
    sk = make_skeleton()
    (root / "bvh").mkdir()
    for i in range(6):
        write_bvh(make_motion(sk, 70, seed=i), root / "bvh" / f"take_{i}.bvh")
    prepare(root / "bvh", "bvh-folder", root / "cache", workers=1, progress=False)
    return root / "cache"


def test_cli_errors_exit_2(tmp_path, bvh_cache, capsys):
    assert _cli(["train", "vae9000", "--data", bvh_cache, "--out", tmp_path / "r"]) == 2
    assert "unknown model 'vae9000'" in capsys.readouterr().err
    assert _cli(["train", "hmvae", "--data", tmp_path / "nocache", "--out", tmp_path / "r"]) == 2
    assert "no such motion cache" in capsys.readouterr().err
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", tmp_path / "r", "--preset", "huge"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", tmp_path / "r", "--config", tmp_path / "no.yaml"]) == 2
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", tmp_path / "r", "--precision", "fp7",
                 "--set", "train.window=32"]) == 2
    assert "precision='fp7'" in capsys.readouterr().err
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", tmp_path / "r", "--set", "model.window=40",
                 "--set", "train.window=40"]) == 2
    assert "divisible by 16" in capsys.readouterr().err
    assert _cli(["generate", "--model", tmp_path / "nomodel", "-o", tmp_path / "g"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_cli_train_then_generate(tmp_path, bvh_cache):
    from motionsynth.io import read_bvh, load_motion

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"train": {**TINY["train"], "val_every": 0}, "model": TINY["model"]}))
    run = tmp_path / "run"
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", run, "--config", cfg, "--max-steps", 3,
                 "--no-progress", "--set", "model.beta=0.01"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 3 and saved["model"]["beta"] == 0.01 and saved["preset"] == "cpu"
    card = (run / "model" / "card.md").read_text()
    assert "## Licence" in card and "## Command" in card
    out = tmp_path / "gen"
    assert _cli(["generate", "--model", run / "model", "--n", 3, "--frames", 80, "-o", out, "--seed", 1]) == 0
    bvhs = sorted(out.glob("*.bvh"))
    assert len(bvhs) == 3 and len(list(out.glob("*.npz"))) == 3
    m = read_bvh(bvhs[0])
    assert m.num_frames == 80 and len(m.skeleton) == 22
    assert load_motion(out / "sample_000.npz").num_frames == 80
    # --resume continues the run to more steps
    assert _cli(["train", "hmvae", "--data", bvh_cache, "--out", run, "--resume", "--max-steps", 5,
                 "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 5


def test_bf16_mixed_precision_and_augmentation_run(tmp_path):
    over = {"train": {**TINY["train"], "steps": 3, "val_every": 0, "precision": "bf16-mixed",
                      "augment": {"p_mirror": 0.5, "speed_range": None}}, "model": TINY["model"]}
    folder = train("hmvae-m", "synthetic", tmp_path / "run", overrides=over, cache=FakeCache(), progress=False)
    from motionsynth.checkpoint import load_checkpoint

    ck = load_checkpoint(folder)
    assert ck.family == "hmvae-m" and ck.config["train"]["precision"] == "bf16-mixed"
    assert ck.model.config.variant == "m"
    assert not (tmp_path / "run" / "best").exists()  # no validation, no best export


def test_trajectory_family_trains_alone(tmp_path):
    over = {"train": {**TINY["train"], "steps": 2, "val_every": 2}, "model": {"channels": [2, 2, 4, 4], "kernel": 3}}
    folder = train("trajectory", "synthetic", tmp_path / "run", overrides=over, cache=FakeCache(), progress=False)
    from motionsynth.checkpoint import load_checkpoint
    from motionsynth.cli.train import sample_motions

    ck = load_checkpoint(folder)
    assert ck.family == "trajectory" and ck.config["model"]["channels"] == [2, 2, 4, 4]
    with pytest.raises(MotionsynthError, match="cannot generate"):
        sample_motions(ck, 1)
