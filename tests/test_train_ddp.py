"""Training beyond one process: `motionsynth train … --devices 2 --accelerator cpu` is a real two-process DDP run
(Lightning re-runs ``python -m motionsynth …`` for rank 1; gloo on the CPU), and ``--resume`` continues it exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file

from helpers import TINY_MODELS, biped_motion, biped_skeleton, cli_output

# the two-process runs take about 12 s each, the option checks about 2 s; one xdist worker (`make test`'s
# --dist loadgroup) runs the module, so that the uninterrupted run (a module fixture) is made once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-ddp")]

# cvae: its GAN trains in two optimiser phases, each leaving the other's parameters out of its loss (the case DDP
# must be told about); a constant schedule, so that a run of 2 steps resumed to 4 is the 4-step run
STEPS, BATCH = 4, 4
TRAIN = {"window": 32, "batch_size": BATCH, "ckpt_every": 2, "log_every": 1, "warmup_steps": 0,
         "schedule": "constant", "val_every": STEPS, "val_batches": 1}


def _train(cache, config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "motionsynth", "train", "cvae", "--data", str(cache.path), "--out", str(out),
            "--devices", "2", "--accelerator", "cpu", "--no-progress", *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stderr and "distributed_backend=gloo" in proc.stderr, proc.stderr
    assert proc.stdout.count("model: ") == 1, proc.stdout  # said once, by rank 0
    return proc


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "tiny-cvae.yaml"
    path.write_text(yaml.safe_dump({"train": TRAIN, "model": TINY_MODELS["cvae"]()}))
    return path


@pytest.fixture(scope="module")
def run(cache, config, tmp_path_factory) -> Path:
    """An uninterrupted two-process run of `STEPS` steps."""
    out = tmp_path_factory.mktemp("ddp-run") / "run"
    _train(cache, config, out, "--config", str(config), "--max-steps", str(STEPS))
    return out


def test_two_processes_train_one_model_that_completes_a_motion(run, tmp_path, capsys):
    from motionsynth.io import read_bvh, write_bvh

    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "best" / "weights.safetensors").is_file()
    hparams = yaml.safe_load(next((run / "logs").glob("version_*/hparams.yaml")).read_text())
    assert hparams == {"world_size": 2, "batch_size": BATCH, "samples_per_step": 2 * BATCH}  # both ranks trained
    saved = yaml.safe_load((run / "model" / "config.yaml").read_text())
    assert saved["final_step"] == STEPS and saved["train"]["devices"] == 2 and saved["train"]["accelerator"] == "cpu"
    steps = {int(r.split(",")[1]) for r in (run / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[1:]}
    assert steps == set(range(STEPS))

    clip = tmp_path / "clip.bvh"
    write_bvh(biped_motion(biped_skeleton(), T=60, seed=7), clip)
    code, _, err = cli_output(capsys, "inbetween", clip, "--model", run / "model", "--keyframes", "0,30,end",
                              "-o", tmp_path / "filled.bvh")
    assert code == 0, err
    filled = read_bvh(tmp_path / "filled.bvh")
    assert filled.num_frames == 60 and np.isfinite(filled.rotations).all()


def test_resume_continues_a_two_process_run_exactly(run, cache, config, tmp_path):
    """2 steps, then ``--resume`` to `STEPS` (two processes each time): the weights of the uninterrupted run."""
    out = tmp_path / "run"
    _train(cache, config, out, "--config", str(config), "--max-steps", "2")
    _train(cache, config, out, "--resume", "--max-steps", str(STEPS))
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["version_0", "version_1"]
    assert yaml.safe_load((out / "model" / "config.yaml").read_text())["final_step"] == STEPS
    a, b = (load_file(str(r / "model" / "weights.safetensors")) for r in (run, out))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_device_options_are_checked_before_anything_is_written(cache, config, tmp_path, capsys):
    import torch

    bad = [(["--devices", "0"], "train.devices must be at least 1, got 0"),
           (["--num-nodes", "0"], "train.num_nodes must be at least 1, got 0"),
           (["--accelerator", "abacus"], "cannot set up training with devices=1, num_nodes=1, accelerator='abacus'")]
    if not torch.cuda.is_available():
        bad.append((["--accelerator", "gpu", "--devices", "2"], "accelerator='gpu'"))
    for extra, match in bad:
        code, _, err = cli_output(capsys, "train", "cvae", "--data", cache.path, "--out", tmp_path / "x", "--config",
                                  config, "--no-progress", *extra)
        assert code == 2 and match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not (tmp_path / "x").exists()
