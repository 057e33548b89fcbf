"""Checkpoint folders: save/load round trip, skeleton check, clear errors for bad folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from motionsynth.checkpoint import FILES, Checkpoint, read_checkpoint, save_checkpoint
from motionsynth.errors import MotionsynthError, SkeletonMismatchError
from motionsynth.models import HMVAE
from motionsynth.registry import FAMILIES, build_model, load_checkpoint
from motionsynth.skeleton import Skeleton

from helpers import BANDAI_NAMES, TINY_MODELS, feature_batch, make_skeleton, tiny_checkpoint, tiny_config


def _saved(tmp_path, variant="hmvae"):
    sk = make_skeleton()
    x, stats = feature_batch(sk, 2, 32)
    torch.manual_seed(0)
    model = HMVAE(tiny_config(variant), sk)
    model.set_stats(stats)
    config = {"family": "hmvae", "model": model.config_dict(), "fps": 30.0}
    folder = save_checkpoint(tmp_path / "ckpt", model, config, sk, stats, {"style": ["a", "b"]}, "abc123",
                             card="# card\nCC BY-NC 4.0\n")
    return folder, model, x, sk


def test_roundtrip_gives_identical_outputs(tmp_path):
    folder, model, x, sk = _saved(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    ck = load_checkpoint(folder)
    assert isinstance(ck, Checkpoint) and ck.family == "hmvae" and not ck.model.training
    assert ck.labels == {"style": ["a", "b"]} and ck.data_hash == "abc123" and len(ck.weights_hash) == 64
    assert ck.skeleton.names == sk.names and ck.fps == 30.0
    np.testing.assert_array_equal(ck.stats.mean, model.feat_mean.numpy())
    model.eval()
    torch.testing.assert_close(ck.model.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(ck.model.sample(2, g1), model.sample(2, g2), rtol=0, atol=0)


def test_resave_replaces_atomically(tmp_path):
    folder, model, _, sk = _saved(tmp_path)
    before = load_checkpoint(folder).weights_hash
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(folder, model, {"family": "hmvae", "model": model.config_dict()}, sk,
                    load_checkpoint(folder).stats)
    assert load_checkpoint(folder).weights_hash != before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folders left


def test_refuses_other_skeleton(tmp_path):
    folder, *_ = _saved(tmp_path)
    ck = load_checkpoint(folder)
    ck.check_skeleton(make_skeleton())
    other = Skeleton(BANDAI_NAMES[:5], [-1, 0, 1, 2, 3], np.ones((5, 3)))
    with pytest.raises(SkeletonMismatchError, match="trained on a 22-joint skeleton"):
        ck.check_skeleton(other)
    longer = make_skeleton(offset_scale=2.0)
    with pytest.raises(SkeletonMismatchError, match="bone lengths"):
        ck.check_skeleton(longer)


def test_clear_errors_for_bad_folders(tmp_path):
    with pytest.raises(MotionsynthError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(MotionsynthError, match="resuming"):
        load_checkpoint(tmp_path / "last.ckpt")
    folder, *_ = _saved(tmp_path)
    (folder / "weights.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(MotionsynthError, match="damaged weights"):
        load_checkpoint(folder)
    folder, *_ = _saved(tmp_path)
    (folder / "stats.npz").unlink()
    with pytest.raises(MotionsynthError, match="missing stats.npz"):
        load_checkpoint(folder)
    folder, *_ = _saved(tmp_path)
    cfg = yaml.safe_load((folder / "config.yaml").read_text())
    (folder / "config.yaml").write_text(yaml.safe_dump({**cfg, "family": "nonsense"}))
    with pytest.raises(MotionsynthError, match="unknown model family"):
        load_checkpoint(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump({**cfg, "model": {**cfg["model"], "channels": [8, 8, 8, 8]}}))
    with pytest.raises(MotionsynthError, match="do not fit"):
        load_checkpoint(folder)


@pytest.mark.slow
def test_every_family_roundtrips(tmp_path):
    sk = make_skeleton()
    x, stats = feature_batch(sk, 2, 32)
    for family in FAMILIES:
        folder = tiny_checkpoint(tmp_path / family, family, sk, stats)
        model = build_model(family, TINY_MODELS[family](), sk)
        model.load_state_dict(read_checkpoint(folder).state)
        ck = load_checkpoint(folder)
        assert ck.family == family and ck.state is None
        model.eval()
        torch.manual_seed(0)
        a = model.validation_step({"features": x})["loss"]
        torch.manual_seed(0)
        b = ck.model.validation_step({"features": x})["loss"]
        assert float(a) == float(b), family


@pytest.mark.parametrize("damage,match", [
    (lambda f: np.savez(f / "stats.npz", mean=np.zeros(7), std=np.ones(7)), "stats.npz: 'mean' has shape"),
    (lambda f: np.savez(f / "stats.npz", mean=np.full(136, np.nan), std=np.ones(136)), "NaN"),
    (lambda f: np.savez(f / "stats.npz", mean=np.zeros(136), std=-np.ones(136)), "negative"),
    (lambda f: np.savez(f / "stats.npz", mean=np.array(["a"] * 136), std=np.ones(136)), "stats.npz"),
    (lambda f: (f / "labels.json").write_text('{"content": "walk"}'), "labels.json"),
    (lambda f: (f / "config.yaml").write_text("- a list\n"), "config.yaml"),
    (lambda f: (f / "skeleton.json").write_text("{}"), "skeleton.json"),
    (lambda f: (f / "weights.safetensors").write_bytes(b"\x00" * 10), "weights.safetensors"),
])
def test_damaged_checkpoint_contents_are_refused_on_load(tmp_path, damage, match):
    """Contents are checked against the config and skeleton when the folder is read, not later in use."""
    sk = make_skeleton()
    _, stats = feature_batch(sk, 2, 32)
    folder = tiny_checkpoint(tmp_path / "ck", "hmvae", sk, stats)
    assert len(stats.mean) == 136  # 22 joints × 6 + 4: the sizes the cases above damage
    damage(folder)
    with pytest.raises(MotionsynthError, match=match):
        load_checkpoint(folder)


def test_half_precision_weights_load_as_float32(tmp_path):
    """An fp16 safetensors file (a shipped model's) loads into the fp32 model: tensors cast on load, no pickle."""
    from safetensors.torch import load_file, save_file

    folder, model, x, _ = _saved(tmp_path)
    state = load_file(str(folder / "weights.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              str(folder / "weights.safetensors"))
    read = read_checkpoint(folder).state
    assert all(v.dtype == state[k].dtype for k, v in read.items())
    ck = load_checkpoint(folder)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ck.model.reconstruct(x), model.reconstruct(x), rtol=0, atol=0.05)
