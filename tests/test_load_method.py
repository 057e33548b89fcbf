"""`checkpoint.load_method`: a checkpoint folder → its family's `tasks.Method`, and `motionsynth bench --model`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionsynth.checkpoint import Checkpoint
from motionsynth.cli import main
from motionsynth.errors import MotionsynthError
from motionsynth.methods.meva import MEVAMethod
from motionsynth.methods.prior import PriorMethod
from motionsynth.registry import FAMILIES, load_checkpoint, load_method, names
from motionsynth.tasks import Method, denoise_mask

from helpers import biped_motion, other_skeleton, tiny_checkpoint


@pytest.mark.parametrize("family", ["hmvae", "hmvae-m", "hmvae-tcn"])
def test_hmvae_families_give_the_prior_method(family, cache, tmp_path):
    folder = tiny_checkpoint(tmp_path / family, family, cache.skeleton, cache.stats)
    method = load_method(folder, restarts=7, lr=0.01)
    assert isinstance(method, PriorMethod) and isinstance(method, Method)
    assert isinstance(method.ckpt, Checkpoint) and method.ckpt.family == family
    assert method.restarts == 7 and method.lr == 0.01 and method.name == family


@pytest.mark.slow
def test_every_method_family_loads_through_the_registry(cache, tmp_path):
    """The registry is the one table: each family of role 'method' gives its own method class."""
    assert set(names()) == set(FAMILIES)
    for name in names("method"):
        method = load_method(tiny_checkpoint(tmp_path / name, name, cache.skeleton, cache.stats))
        assert isinstance(method, FAMILIES[name].method) and isinstance(method, Method)
        assert method.skeleton is not None and method.needs_fit is False
        assert method.checkpoint_hash == load_checkpoint(tmp_path / name).weights_hash


def test_meva_gives_the_denoiser(cache, tmp_path):
    folder = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    method = load_method(folder, overlap=4, batch_size=3)
    assert isinstance(method, MEVAMethod) and (method.overlap, method.batch_size) == (4, 3)
    assert method.checkpoint_hash == method.ckpt.weights_hash
    again = load_method(load_checkpoint(folder))  # an already loaded checkpoint works too
    assert isinstance(again, MEVAMethod) and again.overlap == 16
    motion = biped_motion(cache.skeleton, T=40)
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


def test_bench_scores_a_model_of_another_rig_in_the_datas_rig(cache, tmp_path, capsys):
    folder = tiny_checkpoint(tmp_path / "meva", "meva", other_skeleton(), cache.stats)
    code, out, err = _cli(capsys, "denoise", "--data", str(cache.path), "--model", str(folder), "--limit", "2",
                          "--json", str(tmp_path / "r.json"))
    assert code == 0, err
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["results"] and all(np.isfinite(r["mpjpe_cm"]) for r in record["results"] if "mpjpe_cm" in r)


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


def test_loading_draws_no_initial_weights_and_restores_torch_init(cache, tmp_path, monkeypatch):
    import torch

    calls = []
    real = torch.nn.init.kaiming_uniform_
    def counted(tensor, *args, **kwargs):
        if not tensor.is_meta:  # the loader sizes the network on the meta device first: nothing is drawn there
            calls.append(tuple(tensor.shape))
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", counted)
    folder = tiny_checkpoint(tmp_path / "cvae", "cvae", cache.skeleton, cache.stats)
    calls.clear()
    ckpt = load_checkpoint(folder)
    assert calls == []  # every Linear / Conv would have drawn its weights here
    assert torch.nn.init.kaiming_uniform_ is counted
    torch.nn.Linear(3, 3)
    assert calls == [(3, 3)]  # outside the loader, layers initialise as usual
    state = ckpt.model.state_dict()
    again = load_checkpoint(folder).model.state_dict()
    assert all(torch.equal(state[k], again[k]) for k in state)
