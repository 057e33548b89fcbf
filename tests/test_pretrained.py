"""Shipped models and the one `--model` resolver: checkpoint folders, training run folders and shipped names resolve
alike everywhere; `motionsynth models export` (fp16 weights loading back as float32) and `motionsynth models`.
Every test exports into its own temporary pretrained folder, never into the source tree."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

import motionsynth
from motionsynth import tasks
from motionsynth.checkpoint import (
    INDEX,
    PRETRAINED_ENV,
    card_figures,
    export_model,
    model_table,
    pretrained_dir,
    read_checkpoint,
    resolve_model,
    shipped_models,
)
from motionsynth.errors import MotionsynthError
from motionsynth.registry import FAMILIES, load_checkpoint, load_method

from helpers import biped_motion, cli_output, feature_batch, make_skeleton, tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    sk = make_skeleton()
    x, stats = feature_batch(sk, 2, 32)
    return sk, x, stats, tmp_path_factory.mktemp("tiny")


def _run(tmp_path, family, sk, stats, best=True, model=True):
    """A training run folder as `motionsynth train` leaves it (config.yaml, checkpoints/, model/, best/)."""
    run = tmp_path / f"run-{family}"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"family": family, "preset": "cpu", "train": {}, "model": {}}))
    if model:
        tiny_checkpoint(run / "model", family, sk, stats, seed=0)
    if best:
        tiny_checkpoint(run / "best", family, sk, stats, seed=1)
    return run




# ---- resolving --model ----------------------------------------------------------------------------------------
def test_checkpoint_and_run_folders_resolve(tiny, tmp_path):
    sk, _, stats, _ = tiny
    ckpt = tiny_checkpoint(tmp_path / "ckpt", "hmvae", sk, stats)
    assert resolve_model(ckpt) == ckpt
    run = _run(tmp_path, "hmvae", sk, stats)
    assert resolve_model(run) == run / "best"  # best/ first
    assert read_checkpoint(run).path == run / "best"
    assert load_checkpoint(str(run)).weights_hash == load_checkpoint(run / "best").weights_hash
    only_model = _run(tmp_path / "b", "hmvae", sk, stats, best=False)
    assert resolve_model(only_model) == only_model / "model"  # else model/


def test_unusable_values_are_clear_errors(tiny, tmp_path, pretrained):
    sk, _, stats, _ = tiny
    with pytest.raises(MotionsynthError, match=r"no such checkpoint folder, training run folder or shipped model; "
                                               r"no models ship with this installation yet"):
        resolve_model("hmvae-bandai")
    with pytest.raises(MotionsynthError, match="no exported model yet"):
        resolve_model(_run(tmp_path, "hmvae", sk, stats, best=False, model=False))
    (tmp_path / "last.ckpt").write_bytes(b"x")
    with pytest.raises(MotionsynthError, match="Lightning .ckpt is for resuming"):
        resolve_model(tmp_path / "last.ckpt")
    with pytest.raises(MotionsynthError, match="resuming"):  # even when it does not exist
        resolve_model(tmp_path / "gone.ckpt")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(MotionsynthError, match="not a folder"):
        resolve_model(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MotionsynthError, match="not a checkpoint folder .* nor a training run folder"):
        resolve_model(tmp_path / "empty")
    # a folder with config.yaml but no weights is a checkpoint that read_checkpoint says is incomplete
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("family: hmvae\nmodel: {}\n")
    with pytest.raises(MotionsynthError, match="missing weights.safetensors"):
        load_checkpoint(tmp_path / "half")


def test_shipped_names_resolve_and_unknown_names_list_them(tiny, tmp_path, pretrained):
    sk, _, stats, _ = tiny
    export_model(tiny_checkpoint(tmp_path / "c", "cvae", sk, stats), "cvae-tiny", purpose="every task")
    export_model(_run(tmp_path, "hmvae", sk, stats), "hmvae-tiny")
    assert list(shipped_models()) == ["cvae-tiny", "hmvae-tiny"]
    assert resolve_model("cvae-tiny") == pretrained / "cvae-tiny"
    assert load_checkpoint("hmvae-tiny").family == "hmvae"
    with pytest.raises(MotionsynthError, match=r"hmvae-bandai: no such .* shipped models: cvae-tiny, hmvae-tiny "
                                               r"\(`motionsynth models`\)"):
        load_method("hmvae-bandai")
    # a folder on disk wins over a shipped name
    local = tiny_checkpoint(tmp_path / "cvae-tiny", "cvae", sk, stats, seed=5)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert resolve_model("cvae-tiny").resolve() == local.resolve()
    finally:
        os.chdir(cwd)
    # a listed model whose folder is gone: a broken installation, said so
    shutil.rmtree(pretrained / "cvae-tiny")
    with pytest.raises(MotionsynthError, match="folder .* is missing"):
        resolve_model("cvae-tiny")
    assert next(r for r in model_table() if r["name"] == "cvae-tiny")["missing"]


def test_root_argument_overrides_the_environment(tiny, tmp_path, pretrained):
    sk, _, stats, _ = tiny
    other = tmp_path / "other"
    export_model(tiny_checkpoint(tmp_path / "c", "cvae", sk, stats), "x", root=other)
    assert pretrained_dir() == pretrained and pretrained_dir(other) == other
    assert resolve_model("x", root=other) == other / "x"
    assert shipped_models() == {} and not pretrained.exists()


def test_package_index_is_consistent(monkeypatch):
    """The pretrained folder in the source tree: a readable index, and a complete checkpoint for every name."""
    monkeypatch.delenv(PRETRAINED_ENV, raising=False)
    root = pretrained_dir()
    assert (root / INDEX).is_file()
    for name, entry in shipped_models().items():
        assert entry.get("family") in FAMILIES and entry.get("for"), name
        assert read_checkpoint(name).family == entry["family"]


# ---- export, fp16 ---------------------------------------------------------------------------------------------
def test_fp16_export_loads_as_float32_and_gives_close_outputs(tiny, tmp_path, pretrained):
    sk, x, stats, _ = tiny
    src = tiny_checkpoint(tmp_path / "hm", "hmvae", sk, stats)
    full = export_model(src, "hm32", purpose="fp32 copy")
    half = export_model(src, "hm16", fp16=True, purpose="fp16 copy")
    with safe_open(str(half / "weights.safetensors"), framework="pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
        assert f.metadata()["dtype"] == "float16" and f.metadata()["family"] == "hmvae"
    assert "F16" in dtypes.values() and dtypes["feat_mean"] == "F32"  # matrices halved, statistics kept
    assert (half / "weights.safetensors").stat().st_size < 0.6 * (full / "weights.safetensors").stat().st_size
    state = read_checkpoint("hm16").state
    assert all(v.dtype != torch.float16 for v in state.values())
    a, b = load_checkpoint("hm32"), load_checkpoint("hm16")
    assert a.weights_hash == load_checkpoint(src).weights_hash  # an fp32 export copies the weights bit for bit
    assert all(p.dtype == torch.float32 for p in b.model.parameters())
    with torch.no_grad():
        ra, rb = a.model.reconstruct(x), b.model.reconstruct(x)
    assert not torch.equal(ra, rb)
    torch.testing.assert_close(rb, ra, rtol=0, atol=5e-3 * float(ra.abs().max()))
    for f in ("skeleton.json", "labels.json", "data_hash", "config.yaml"):
        assert (half / f).read_bytes() == (src / f).read_bytes()
    assert "float16" in (half / "card.md").read_text()


@pytest.mark.slow
def test_fp16_every_family_loads_and_a_method_completes_alike(tiny, cache, tmp_path, pretrained):
    sk, _, stats, _ = tiny
    for family in FAMILIES:
        export_model(tiny_checkpoint(tmp_path / family, family, sk, stats), f"{family}-16", fp16=True)
        assert load_checkpoint(f"{family}-16").family == family
    src = tiny_checkpoint(tmp_path / "cvae-biped", "cvae", cache.skeleton, cache.stats)
    export_model(src, "cvae-biped", fp16=True)
    motion = biped_motion(cache.skeleton, T=40)
    mask = tasks.keyframe_mask(40, len(cache.skeleton), [0, 39])
    a = load_method(src).complete(motion, mask, seed=0).samples[0].global_positions()
    b = load_method("cvae-biped").complete(motion, mask, seed=0).samples[0].global_positions()
    assert np.abs(a - b).max() < 0.5  # cm


@pytest.mark.slow
def test_export_replaces_atomically_and_checks_its_input(tiny, tmp_path, pretrained):
    sk, _, stats, _ = tiny
    src = tiny_checkpoint(tmp_path / "c", "cvae", sk, stats)
    first = load_checkpoint(export_model(src, "m", purpose="first")).weights_hash
    export_model(tiny_checkpoint(tmp_path / "d", "cvae", sk, stats, seed=3), "m", fp16=True)
    assert load_checkpoint("m").weights_hash != first
    assert shipped_models()["m"] == {"family": "cvae", "for": "first", "source": str(tmp_path / "d"),
                                     "dtype": "float16"}
    assert sorted(p.name for p in pretrained.iterdir()) == [INDEX, "m"]  # no temporary folders left
    assert (pretrained / "m" / "card.md").read_text().count("## Distribution") == 1
    with pytest.raises(MotionsynthError, match="`name` 'Bad/Name'"):
        export_model(src, "Bad/Name")
    with pytest.raises(MotionsynthError, match="no such checkpoint folder"):
        export_model(tmp_path / "missing", "n")
    broken = tiny_checkpoint(tmp_path / "broken", "cvae", sk, stats)
    (broken / "stats.npz").unlink()
    with pytest.raises(MotionsynthError, match="missing stats.npz"):
        export_model(broken, "n")
    assert sorted(p.name for p in pretrained.iterdir()) == [INDEX, "m"]
    with pytest.raises(MotionsynthError, match="already the shipped model"):
        export_model("m", "m")


def test_card_figures():
    assert card_figures("# x\n## Test figures\n(none yet)\n") == ""
    card = "## Test figures\nValidation split, step 10:\n- loss: 0.5\n- pos: 0.1\n\n## Distribution\nfp16\n"
    assert card_figures(card) == "Validation split, step 10: loss: 0.5; pos: 0.1"
    assert card_figures("## Test figures\n" + "x" * 300).endswith("…")


def test_shipped_cards_show_test_figures_not_validation_losses():
    """`motionsynth models` shows each shipped card's test-split figures: no validation losses, no issue numbers."""
    root = Path(motionsynth.__file__).parent / "pretrained"
    rows = model_table(root)
    assert rows
    for row in rows:
        assert row["figures"] and "alidation" not in row["figures"] and "loss" not in row["figures"], row
        assert not re.search(r"\bissue\b|#\d", row["for"] + row["figures"]), row


# ---- the command line -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_models_cli_export_and_list(tiny, cache, tmp_path, pretrained, capsys):
    sk, _, stats, _ = tiny
    code, out, _ = cli_output(capsys, "models")
    assert code == 0 and "no shipped models yet" in out
    run = _run(tmp_path, "meva", cache.skeleton, cache.stats)
    card = run / "best" / "card.md"
    card.write_text(card.read_text().replace("(none yet)", "denoising, mixed noise: MPJPE 4.33 cm"))
    code, out, err = cli_output(capsys, "models", "export", run, "--name", "meva-tiny", "--fp16", "--for",
                          "denoising pose estimates")
    assert code == 0, err
    assert f"exported {run / 'best'} as meva-tiny (meva" in out and "float16" in out
    code, out, _ = cli_output(capsys, "models")
    assert code == 0 and "meva-tiny" in out and "fp16" in out and "denoising pose estimates" in out
    assert "test: denoising, mixed noise: MPJPE 4.33 cm" in out and "1 model," in out
    code, out, _ = cli_output(capsys, "models", "list", "--json")
    [row] = json.loads(out)
    assert row["name"] == "meva-tiny" and row["family"] == "meva" and row["bytes"] > 0
    # every command takes the name, the run folder and the checkpoint folder
    for model in ("meva-tiny", run, run / "model"):
        code, out, err = cli_output(capsys, "bench", "denoise", "--data", cache.path, "--model", model, "--limit", "1",
                              "--no-progress", "-s", "noise_models=[gaussian]")
        assert code == 0 and "**denoise** — meva" in out, err
    code, out, err = cli_output(capsys, "bench", "denoise", "--data", cache.path, "--model", "meva-bandai")
    assert code == 2 and "shipped models: meva-tiny" in err and "Traceback" not in err
    code, out, err = cli_output(capsys, "models", "export", tmp_path / "nothing", "--name", "x")
    assert code == 2 and "no such checkpoint folder" in err
