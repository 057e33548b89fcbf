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

from motionsynth.config import parse_key_values
from motionsynth.data.features import FeatureStats, encode
from motionsynth.errors import MotionsynthError
from motionsynth.train import StreamSampler, TrainConfig, lr_factor, resolve_config, train

from helpers import make_motion, make_skeleton


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


@pytest.mark.slow
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
    over = parse_key_values(["train.lr=0.01", "model.channels=[4,4,8,8]", "train.window=32"], "--set", nested=True)
    assert over == {"train": {"lr": 0.01, "window": 32}, "model": {"channels": [4, 4, 8, 8]}}
    tc, mc, preset = resolve_config("hmvae-m", None, {"train": {"steps": 7}}, over)
    assert (tc.steps, tc.lr, mc.window, mc.variant, preset) == (7, 0.01, 32, "m", "cpu")
    tc, mc, _ = resolve_config("hmvae", "paper")
    assert (tc.batch_size, tc.lr, tc.steps, mc.kernel) == (8, 1e-4, 250_000, 15)
    with pytest.raises(MotionsynthError, match="unknown training setting"):
        resolve_config("hmvae", None, {"train": {"nope": 1}})
    with pytest.raises(MotionsynthError, match="no setting"):
        resolve_config("hmvae", None, {"model": {"nope": 1}})
    with pytest.raises(MotionsynthError, match="unknown model family"):
        resolve_config("vae9000")
    with pytest.raises(MotionsynthError, match="--set"):
        parse_key_values(["lr"], "--set", nested=True)


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


@pytest.mark.slow
def test_cli_errors_exit_2(tmp_path, bvh_cache, capsys):
    assert _cli(["train", "vae9000", "--data", bvh_cache, "--out", tmp_path / "r"]) == 2
    assert "unknown model family 'vae9000'" in capsys.readouterr().err
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


@pytest.mark.slow
def test_cli_train_then_generate(tmp_path, bvh_cache):
    from motionsynth.io import load_motion, read_bvh

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


@pytest.mark.slow
def test_bf16_mixed_precision_and_augmentation_run(tmp_path):
    over = {"train": {**TINY["train"], "steps": 3, "val_every": 0, "precision": "bf16-mixed",
                      "augment": {"p_mirror": 0.5, "speed_range": None}}, "model": TINY["model"]}
    folder = train("hmvae-m", "synthetic", tmp_path / "run", overrides=over, cache=FakeCache(), progress=False)
    from motionsynth.registry import load_checkpoint

    ck = load_checkpoint(folder)
    assert ck.family == "hmvae-m" and ck.config["train"]["precision"] == "bf16-mixed"
    assert ck.model.config.variant == "m"
    assert not (tmp_path / "run" / "best").exists()  # no validation, no best export


def test_trajectory_family_trains_alone(tmp_path):
    over = {"train": {**TINY["train"], "steps": 2, "val_every": 2}, "model": {"channels": [2, 2, 4, 4], "kernel": 3}}
    folder = train("trajectory", "synthetic", tmp_path / "run", overrides=over, cache=FakeCache(), progress=False)
    from motionsynth.registry import load_checkpoint, load_method

    ck = load_checkpoint(folder)
    assert ck.family == "trajectory" and ck.config["model"]["channels"] == [2, 2, 4, 4]
    with pytest.raises(MotionsynthError, match="component"):
        load_method(ck)  # a component family has no task method (so it cannot generate either)


def test_family_train_defaults_deep_merge_with_overrides():
    """--set train.augment.p_mirror=0.2 changes that key only: the family's other augmentation keys stay."""
    from motionsynth.models.meva import AUGMENT

    over = parse_key_values(["train.augment.p_mirror=0.2"], "--set", nested=True)
    train_cfg, _, _ = resolve_config("mvae", overrides=over)
    assert train_cfg.augment == {**AUGMENT, "p_mirror": 0.2}
    assert resolve_config("mvae")[0].augment == AUGMENT


class TwoPhase(torch.nn.Module):
    """A toy network with its own optimisers (a GAN's two players): phase "d" fits ``d`` to 1, phase "g" fits ``g``
    to 2; each phase must step only its own parameter."""

    def __init__(self, config=None, skeleton=None):
        super().__init__()
        self.g, self.d = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("feat_mean", torch.zeros(1))
        self.calls = []

    def set_stats(self, stats):
        pass

    def configure_optimizers(self, cfg):
        return {"d": torch.optim.Adam([self.d], lr=0.1, betas=(0.0, 0.99)),
                "g": torch.optim.Adam([self.g], lr=0.1, betas=(0.0, 0.99))}

    def training_step(self, batch, step=0, phase=None):
        self.calls.append((step, phase))
        loss = ((self.d - 1) ** 2).sum() if phase == "d" else ((self.g - 2) ** 2).sum()
        return loss, {"loss": loss.detach()}

    def validation_step(self, batch):
        return {"loss": ((self.d - 1) ** 2 + (self.g - 2) ** 2).sum().detach()}


def test_family_optimisers_run_in_phases_and_count_steps():
    from motionsynth.train import make_lightning_module

    model = TwoPhase()
    cfg = TrainConfig(steps=5, warmup_steps=0, schedule="constant", grad_clip=1.0)
    lit = make_lightning_module(model, cfg)
    assert lit.automatic_optimization is False
    batch = {"features": torch.zeros(2, 4, 1)}
    loader = torch.utils.data.DataLoader([batch["features"][0]] * 20, batch_size=2,
                                         collate_fn=lambda xs: {"features": torch.stack(xs)})
    trainer = L.Trainer(max_steps=cfg.steps * 2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(lit, train_dataloaders=loader)
    assert model.calls == [(s, p) for s in range(5) for p in ("d", "g")]  # phases in order, one step per batch
    assert lit.steps_done == 5 and trainer.global_step == 10  # Lightning counts optimizer steps
    assert 0 < float(model.d) <= 1.0 and 0 < float(model.g) <= 2.0


@pytest.mark.slow
def test_ema_weights_are_exported_and_resume(tmp_path):
    """train.ema: the exported weights are the moving average (not the last step's), and resume continues it."""
    from motionsynth.train import EMA

    model = torch.nn.Linear(2, 1)
    ema = EMA(model, 0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    # float32 lerp vs float32 add: equal within an ulp (rtol 1e-7 failed for some initial weights)
    np.testing.assert_allclose(ema.shadow["weight"], start["weight"] + 0.5, rtol=1e-6)
    with ema.applied(model):
        np.testing.assert_allclose(model.weight.detach(), start["weight"] + 0.5, rtol=1e-6)
    np.testing.assert_allclose(model.weight.detach(), start["weight"] + 1.0)  # restored after the block
    with pytest.raises(MotionsynthError, match="ema"):
        EMA(model, 1.5)
    cache = FakeCache()
    over = {"train": {**TINY["train"], "steps": 4, "ema": 0.9}, "model": TINY["model"]}
    folder = train("hmvae", "synthetic", tmp_path / "ema", overrides=over, cache=cache, progress=False)
    plain = _run(tmp_path / "plain", 4, cache)
    ema_w, raw_w = load_file(str(folder / "weights.safetensors")), load_file(str(plain / "weights.safetensors"))
    assert any(not torch.allclose(ema_w[k], raw_w[k]) for k in raw_w if raw_w[k].is_floating_point())
    # killed after 2 steps and resumed: the same average as the uninterrupted run
    over2 = {"train": {**TINY["train"], "steps": 2, "ema": 0.9}, "model": TINY["model"]}
    train("hmvae", "synthetic", tmp_path / "ema2", overrides=over2, cache=cache, progress=False)
    resumed = train("hmvae", "synthetic", tmp_path / "ema2", overrides=over, cache=cache, progress=False,
                    resume=True)
    again = load_file(str(resumed / "weights.safetensors"))
    assert all(torch.allclose(ema_w[k], again[k], atol=1e-6) for k in ema_w)


def test_hold_out_on_the_command_line_and_in_a_config_file():
    forms = (["train.hold_out.content=[run,raise-up-*]"], ["train.hold_out={content: [run, raise-up-*]}"])
    for argv in forms:
        over = parse_key_values(argv, "--set", nested=True)
        assert over == {"train": {"hold_out": {"content": ["run", "raise-up-*"]}}}
        assert resolve_config("hmvae", None, None, over)[0].hold_out == {"content": ["run", "raise-up-*"]}
    file_config = {"train": {"hold_out": {"content": ["walk"]}}}
    assert resolve_config("hmvae", None, file_config, over)[0].hold_out == {"content": ["run", "raise-up-*"]}
    assert resolve_config("hmvae")[0].hold_out is None


class _Takes(L.Callback):
    """Records the takes of every training and validation batch."""

    def __init__(self):
        self.train, self.val = set(), set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train |= {int(t) for t in batch["take"]}

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val |= {int(t) for t in batch["take"]}


def test_hold_out_leaves_takes_out_of_train_and_val_and_is_saved(tmp_path):
    cache = FakeCache(takes=8)
    cache.takes[6].split = "val"  # train: takes 0-5 (styles a, b, a, …); val: 6 (a, held out) and 7 (b)
    seen = _Takes()
    over = {"train": {**TINY["train"], "steps": 4, "hold_out": {"style": "a"}}, "model": TINY["model"]}
    folder = train("hmvae", "synthetic", tmp_path / "run", overrides=over, cache=cache, progress=False,
                   callbacks=[seen])
    assert seen.train == {1, 3, 5} and seen.val == {7}
    for path in (tmp_path / "run" / "config.yaml", folder / "config.yaml"):
        assert yaml.safe_load(path.read_text())["train"]["hold_out"] == {"style": ["a"]}
    bad = {"train": {**over["train"], "hold_out": {"style": ["c*"]}}, "model": TINY["model"]}
    with pytest.raises(MotionsynthError, match="train.hold_out: style pattern 'c\\*' matches no style label"):
        train("hmvae", "synthetic", tmp_path / "bad", overrides=bad, cache=cache, progress=False)


def test_hold_out_must_include_the_mirrors_of_held_out_actions(tmp_path):
    cache = FakeCache()
    cache.label_names = {"style": ["wave-left", "wave-right"]}
    for i, t in enumerate(cache.takes):
        t.labels = {"style": ["wave-left", "wave-right"][i % 2]}
    over = {"train": {**TINY["train"], "steps": 2, "val_every": 0, "hold_out": {"style": ["wave-left"]},
                      "augment": {"p_mirror": 0.5, "speed_range": None}}, "model": TINY["model"]}
    with pytest.raises(MotionsynthError, match="turns the kept style labels wave-right into held-out ones"):
        train("hmvae", "synthetic", tmp_path / "run", overrides=over, cache=cache, progress=False)
    over["train"]["hold_out"] = {"style": ["wave-*"]}
    with pytest.raises(MotionsynthError, match="no training windows .* once train.hold_out is left out"):
        train("hmvae", "synthetic", tmp_path / "run", overrides=over, cache=cache, progress=False)


@pytest.mark.slow
def test_init_starts_from_another_runs_weights(tmp_path):
    cache = FakeCache()
    _run(tmp_path / "first", 4, cache)
    over = {"train": {**TINY["train"], "steps": 1, "lr": 0.0, "warmup_steps": 0,
                      "init": str(tmp_path / "first" / "model")}, "model": TINY["model"]}
    train("hmvae", "synthetic", tmp_path / "second", overrides=over, cache=cache, progress=False, command="test")
    a = load_file(str(tmp_path / "first" / "model" / "weights.safetensors"))
    b = load_file(str(tmp_path / "second" / "model" / "weights.safetensors"))
    for k in a:  # a step at learning rate 0 leaves the initial weights (counters such as a step count move on)
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k])
    over["train"]["init"] = str(tmp_path / "nowhere")
    with pytest.raises(MotionsynthError, match="nowhere"):
        train("hmvae", "synthetic", tmp_path / "third", overrides=over, cache=cache, progress=False)
    over["train"]["init"] = str(tmp_path / "first" / "model")
    over["model"] = {**TINY["model"], "channels": [4, 4, 8, 16]}
    with pytest.raises(MotionsynthError, match="train.init: the weights .* do not fit"):
        train("hmvae", "synthetic", tmp_path / "fourth", overrides=over, cache=cache, progress=False)
