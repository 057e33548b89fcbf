"""`checkpoint.load_method`: a checkpoint folder → its family's `tasks.Method`, and `motionsynth bench --model`."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from motionsynth.checkpoint import Checkpoint, load_checkpoint, load_method, save_checkpoint
from motionsynth.cli import main
from motionsynth.errors import MotionsynthError
from motionsynth.models import build_model
from motionsynth.models.meva import MEVAMethod, MotionVAEConfig
from motionsynth.skeleton import Skeleton
from motionsynth.tasks import denoise_mask
from test_bench import _motion, _skeleton, cache  # noqa: F401  (module-scoped fixture: a tiny prepared cache)
from test_hmvae import one_thread, tiny_config  # noqa: F401  (autouse fixture)

TINY_VAE = dict(window=32, hidden=16, latent=4, time_channels=4)
TINY = {
    "hmvae": lambda: asdict(tiny_config("hmvae")),
    "hmvae-m": lambda: asdict(tiny_config("m")),
    "hmvae-tcn": lambda: asdict(tiny_config("tcn")),
    "mvae": lambda: dict(TINY_VAE),
    "meva": lambda: dict(window=32, hidden=8, layers=1, mrr_hidden=16, mrr_iterations=1,
                         vae=asdict(MotionVAEConfig(**TINY_VAE))),
    "trajectory": lambda: {"channels": [2, 2, 4, 4], "kernel": 3},
}


def tiny_checkpoint(folder: Path, family: str, skeleton: Skeleton, stats, seed: int = 0) -> Path:
    """An untrained, tiny checkpoint of ``family`` (window 32 where the family has one)."""
    torch.manual_seed(seed)
    model = build_model(family, TINY[family](), skeleton)
    model.set_stats(stats)
    config = {"family": family, "model": model.config_dict(), "fps": 30.0}
    return save_checkpoint(folder, model, config, skeleton, stats, data_hash="tiny")


def other_skeleton() -> Skeleton:
    """The test skeleton with one joint renamed: the same shape, but not compatible."""
    sk = _skeleton()
    return Skeleton([n if n != "Head" else "Skull" for n in sk.names], sk.parents, sk.offsets, sk.channels,
                    root=sk.root)


@pytest.fixture
def fake_prior(monkeypatch):
    """`motionsynth.models.prior` replaced by a stand-in whose PriorMethod records its arguments."""

    class PriorMethod:
        name = "prior"

        def __init__(self, checkpoint, **options):
            self.checkpoint, self.options = checkpoint, options

    module = types.ModuleType("motionsynth.models.prior")
    module.PriorMethod = PriorMethod
    monkeypatch.setitem(sys.modules, "motionsynth.models.prior", module)
    return PriorMethod


@pytest.mark.parametrize("family", ["hmvae", "hmvae-m", "hmvae-tcn"])
def test_hmvae_families_give_the_prior_method(family, cache, tmp_path, fake_prior):
    folder = tiny_checkpoint(tmp_path / family, family, cache.skeleton, cache.stats)
    method = load_method(folder, steps=7)
    assert isinstance(method, fake_prior)
    assert isinstance(method.checkpoint, Checkpoint) and method.checkpoint.family == family
    assert method.options == {"steps": 7}
    assert method.checkpoint_hash == load_checkpoint(folder).weights_hash


def test_meva_gives_the_denoiser(cache, tmp_path):
    folder = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    method = load_method(folder, overlap=4, batch_size=3)
    assert isinstance(method, MEVAMethod) and (method.overlap, method.batch_size) == (4, 3)
    assert method.checkpoint_hash == method.ckpt.weights_hash
    again = load_method(load_checkpoint(folder))  # an already loaded checkpoint works too
    assert isinstance(again, MEVAMethod) and again.overlap == 16
    motion = _motion(cache.skeleton, T=40)
    out = method.complete(motion, denoise_mask(40, len(cache.skeleton)), n_samples=2)
    assert len(out) == 2 and out[0].num_frames == 40 and np.isfinite(out[0].rotations).all()


def test_components_and_bad_options_are_clear_errors(cache, tmp_path):
    mvae = tiny_checkpoint(tmp_path / "mvae", "mvae", cache.skeleton, cache.stats)
    with pytest.raises(MotionsynthError, match=r"mvae family is a component \(motion VAE\) of meva.*train meva"):
        load_method(mvae)
    traj = tiny_checkpoint(tmp_path / "traj", "trajectory", cache.skeleton, cache.stats)
    with pytest.raises(MotionsynthError, match="trajectory family is a component"):
        load_method(traj)
    meva = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    with pytest.raises(MotionsynthError, match="bad option for the meva method.*windw"):
        load_method(meva, windw=3)
    with pytest.raises(MotionsynthError, match="no such checkpoint folder"):
        load_method(tmp_path / "missing")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_bench_model_uses_load_method(cache, tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    code, out, err = _cli(capsys, "denoise", "--data", str(cache.path), "--model", str(folder), "--limit", "1",
                          "--json", str(tmp_path / "d.json"), "--no-progress")
    assert code in (0, None), err
    assert "**denoise** — meva" in out and "| mixed |" in out
    # a component family is refused with the loader's message, exit 2
    mvae = tiny_checkpoint(tmp_path / "mvae", "mvae", cache.skeleton, cache.stats)
    code, _, err = _cli(capsys, "denoise", "--data", str(cache.path), "--model", str(mvae))
    assert code == 2 and "component (motion VAE) of meva" in err


def test_bench_model_skeleton_mismatch_exits_2(cache, tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "meva", "meva", other_skeleton(), cache.stats)
    code, out, err = _cli(capsys, "denoise", "--data", str(cache.path), "--model", str(folder))
    assert code == 2 and "different skeleton" in err and "trained on a 20-joint skeleton" in err
    assert "Traceback" not in err and not out


def test_bench_cli_passes_options_to_the_learned_method(cache, tmp_path, capsys):
    from motionsynth.cli import main

    folder = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    out = tmp_path / "d.json"
    with pytest.raises(SystemExit) as e:
        main(["bench", "denoise", "--data", str(cache.path), "--model", str(folder), "--option", "smooth_sigma=0",
              "--option", "root_sigma=3", "-s", "noise_models=[gaussian]", "--limit", "1", "--no-progress",
              "--json", str(out)])
    assert e.value.code in (0, None)
    params = json.loads(out.read_text())["results"][0]["params"]
    assert params["smooth_sigma"] == 0 and params["root_sigma"] == 3
    with pytest.raises(SystemExit) as e:
        main(["bench", "denoise", "--data", str(cache.path), "--model", str(folder), "--option", "despike=4"])
    assert e.value.code == 2 and "despike" in capsys.readouterr().err
