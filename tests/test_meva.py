"""MEVA family: the motion VAE, the VME + MRR estimator, window blending, the denoising Method, and a tiny
end-to-end `motionsynth train mvae` / `train meva` on a cache prepared from BVH files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from motionsynth.data.cache import prepare, split_of
from motionsynth.data.features import feature_dim
from motionsynth.data.noise import add_noise
from motionsynth.errors import MotionsynthError, SkeletonMismatchError
from motionsynth.methods.meva import MEVAMethod
from motionsynth.methods.root import smooth_path, world_root
from motionsynth.models.meva import MEVA, MEVAConfig, MotionVAE, MotionVAEConfig
from motionsynth.ops import blend_weights
from motionsynth.registry import load_checkpoint, load_method
from motionsynth.tasks import denoise_mask, predict_mask

from helpers import MEVA_VAE, TINY_MEVA, feature_batch, make_motion, make_skeleton, meva_checkpoint, tiny_meva

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "motionsynth" / "configs"


# ---- motion VAE ---------------------------------------------------------------------------------------------------
def test_motion_vae_shapes_and_steps():
    sk = make_skeleton()
    x, stats = feature_batch(sk, n=3, T=32)
    vae = MotionVAE.from_config(MEVA_VAE, sk)
    vae.set_stats(stats)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (3, 8)
    assert vae.decode(mu).shape == (3, 32, feature_dim(sk))
    assert vae.sample(2, torch.Generator().manual_seed(0)).shape == (2, 32, feature_dim(sk))
    loss, logs = vae.training_step({"features": x}, step=0)
    assert loss.ndim == 0 and torch.isfinite(loss) and {"rot", "root", "kl", "loss"} <= set(logs)
    loss.backward()
    assert all(p.grad is not None for p in vae.parameters())
    val = vae.validation_step({"features": x})
    assert torch.isfinite(val["loss"]) and val["mpjpe_cm"] > 0
    assert MotionVAE.from_config(vae.config_dict(), sk).config == vae.config


def test_motion_vae_config_presets_and_validation():
    assert MotionVAEConfig.preset("paper").window == 90
    with pytest.raises(ValueError):
        MotionVAEConfig(hidden=0)
    with pytest.raises(KeyError):
        MotionVAEConfig.preset("huge")


@pytest.mark.slow
def test_motion_vae_overfits_one_batch():
    sk = make_skeleton()
    x, stats = feature_batch(sk, n=4, T=32)
    torch.manual_seed(0)
    vae = MotionVAE(MotionVAEConfig(**{**MEVA_VAE, "hidden": 64, "latent": 16}), sk)
    vae.set_stats(stats)
    first = float(vae.validation_step({"features": x})["loss"])
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    for step in range(100):
        loss, _ = vae.training_step({"features": x}, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(vae.validation_step({"features": x})["loss"])
    assert last < first / 10, (first, last)


# ---- MEVA -------------------------------------------------------------------------------------------------------
def test_meva_forward_backward_with_frozen_vae(tmp_path):
    model, x, _ = tiny_meva(tmp_path)
    saved = load_checkpoint(tmp_path / "vae").model.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in model.vae.state_dict().items())  # pretrained weights loaded
    assert model.config.vae["latent"] == 8  # the VAE's hyper-parameters are kept in MEVA's config
    coarse, refined = model(x)
    assert coarse.shape == refined.shape == x.shape
    assert torch.allclose(coarse, refined)  # the MRR starts as the identity
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    model.train()
    assert not model.vae.training
    for step in range(2):
        loss, logs = model.training_step({"features": x}, step)
        assert torch.isfinite(loss) and {"rot", "root", "joints", "coarse_rot", "loss"} <= set(logs)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in model.vae.parameters())
        assert model.ste.weight_ih_l0.grad is not None and model.mrr[-1].weight.grad is not None
        opt.step()
    assert all(torch.equal(v, before[k]) for k, v in model.vae.state_dict().items())
    windows = {"take": torch.tensor([0, 0, 1, 1]), "start": torch.tensor([0, 8, 0, 8])}
    val = model.validation_step({"features": x, **windows})
    assert {"mpjpe_cm_refined", "accel_cm_coarse", "mpjpe_cm_input"} <= set(val)
    assert val["mpjpe_cm_input"] > 0


def test_meva_corruption_is_deterministic_noise(tmp_path):
    model, x, _ = tiny_meva(tmp_path)
    a = model.corrupt(x, [[0, 5, b] for b in range(4)])
    b = model.corrupt(x, [[0, 5, b] for b in range(4)])
    c = model.corrupt(x, [[0, 6, b] for b in range(4)])
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).abs().mean() > 1e-3


def test_meva_vme_only_and_config_errors(tmp_path):
    model, x, _ = tiny_meva(tmp_path, mrr_iterations=0)
    coarse, refined = model(x)
    assert torch.equal(coarse, refined)
    with pytest.raises(MotionsynthError, match="vae_checkpoint"):
        MEVA.from_config(MEVAConfig(**TINY_MEVA), make_skeleton())
    with pytest.raises(ValueError, match="window"):
        MEVAConfig(**{**TINY_MEVA, "window": 64, "vae_checkpoint": str(tmp_path / "vae")})
    with pytest.raises(ValueError, match="noise_models"):
        MEVAConfig(noise_models=["loud"])
    with pytest.raises(MotionsynthError, match="not a checkpoint"):
        MEVAConfig(vae_checkpoint=str(tmp_path / "nowhere"))


# ---- the Method ------------------------------------------------------------------------------------------
def test_meva_method_denoises_a_long_motion_window_by_window(tmp_path):
    folder, _ = meva_checkpoint(tmp_path)
    sk = make_skeleton()
    clean = make_motion(sk, 300, seed=3)
    noisy = add_noise(clean, "mixed", [0, 1])
    method = load_method(folder, batch_size=2, root_sigma=2.0, smooth_sigma=0.0)
    sizes = []
    method.model.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape))
    results = method.complete(noisy, denoise_mask(300, len(sk)), n_samples=2)
    assert len(results) == 2
    out = results[0]
    assert out.num_frames == 300 and out.skeleton is noisy.skeleton and out.fps == noisy.fps
    assert np.isfinite(out.rotations).all() and np.isfinite(out.root_positions).all()
    # streamed: 300 frames in windows of 32 with overlap 16 → 18 windows, at most 2 per forward pass
    assert sum(s[0] for s in sizes) == len(blend_weights(300, 32, 16)[0]) and max(s[0] for s in sizes) <= 2
    assert all(tuple(s[1:]) == (32, feature_dim(sk)) for s in sizes)
    # root="smooth": the input's planar path, median- and Gaussian-smoothed
    r = sk.root
    path = smooth_path(world_root(noisy)[0], 2.0)
    np.testing.assert_allclose(out.global_positions()[:, r, [0, 2]], path[:, [0, 2]], atol=1e-3)
    assert not np.allclose(out.rotations, noisy.rotations, atol=1e-3)
    # root="model": integrated from MEVA's velocities, starting where the input does
    integrated = load_method(folder, root="model", smooth_sigma=0.0).denoise(noisy)
    np.testing.assert_allclose(integrated.global_positions()[0, r, [0, 2]], noisy.global_positions()[0, r, [0, 2]],
                               atol=1e-3)


def test_meva_method_short_motion_other_fps_and_errors(tmp_path):
    folder, _ = meva_checkpoint(tmp_path)
    sk = make_skeleton()
    method = load_method(folder)
    short = make_motion(sk, 20, seed=4)
    assert method.complete(short, denoise_mask(20, len(sk)))[0].num_frames == 20
    fast = make_motion(sk, 90, seed=5, fps=60.0)
    out = method.complete(fast, denoise_mask(90, len(sk)))[0]
    assert out.num_frames == 90 and out.fps == 60.0
    with pytest.raises(MotionsynthError, match="noisy"):
        method.complete(short, predict_mask(20, len(sk), 10))
    other = make_motion(make_skeleton(offset_scale=2.0), 40)
    with pytest.raises(SkeletonMismatchError):
        method.complete(other, denoise_mask(40, len(sk)))
    with pytest.raises(MotionsynthError, match="needs a MEVA network"):
        MEVAMethod(load_checkpoint(tmp_path / "vae"))
    with pytest.raises(MotionsynthError, match="component"):
        load_method(tmp_path / "vae")


# ---- end to end: prepare a cache from BVH, `motionsynth train mvae`, then `train meva` ------------------------------
def bvh_folder(folder: Path, takes: int = 6, frames: int = 60) -> Path:
    """BVH takes whose names put at least one take in the val split and the rest mostly in train."""
    from motionsynth.io.bvh import write_bvh

    folder.mkdir()
    sk = make_skeleton()
    names = [f"take_{i:03d}" for i in range(200)]
    val = [n for n in names if split_of(n) == "val"][:1]
    train = [n for n in names if split_of(n) == "train"][:takes - 1]
    for i, name in enumerate(train + val):
        write_bvh(make_motion(sk, frames, seed=i), folder / f"{name}.bvh")
    return folder


@pytest.mark.slow
def test_train_mvae_then_meva_end_to_end(tmp_path):
    from motionsynth.cli import app
    from motionsynth.train import train

    cache = prepare(bvh_folder(tmp_path / "bvh"), "bvh-folder", tmp_path / "cache", workers=1, progress=False)
    assert cache.split("train") and cache.split("val")
    common = ["--set", "model.hidden=16", "--set", "model.latent=4", "--set", "train.window=16",
              "--set", "train.batch_size=2", "--set", "train.val_every=2", "--set", "train.val_batches=1",
              "--set", "train.ckpt_every=2", "--set", "train.accelerator=cpu", "--set", "train.log_every=1"]
    result = CliRunner().invoke(app, ["train", "mvae", "--data", str(tmp_path / "cache"), "--out",
                                      str(tmp_path / "mvae"), "--config", str(CONFIGS / "mvae.yaml"),
                                      "--max-steps", "3", "--no-progress", *common])
    assert result.exit_code == 0, result.output + repr(result.exception)
    ckpt = load_checkpoint(tmp_path / "mvae" / "model")
    assert isinstance(ckpt.model, MotionVAE) and ckpt.config["train"]["augment"]["full_sphere"] is False
    assert ckpt.config["model"]["window"] == 16

    over = {"train": {"steps": 2, "window": 16, "batch_size": 2, "val_every": 2, "val_batches": 1, "ckpt_every": 2,
                      "accelerator": "cpu"},
            "model": {"vae_checkpoint": str(tmp_path / "mvae" / "model"), "hidden": 8, "layers": 1, "mrr_hidden": 16}}
    folder = train("meva", tmp_path / "cache", tmp_path / "meva", config_file=CONFIGS / "meva.yaml", overrides=over,
                   progress=False, command="test")
    meva = load_checkpoint(folder)
    assert isinstance(meva.model, MEVA) and meva.config["model"]["vae"]["latent"] == 4
    vae_weights = ckpt.model.state_dict()
    assert all(torch.equal(v, vae_weights[k]) for k, v in meva.model.vae.state_dict().items())
    motion = make_motion(make_skeleton(), 50, seed=9)
    assert load_method(meva).complete(motion, denoise_mask(50, 22))[0].num_frames == 50


def test_config_files_parse():
    from motionsynth.train import load_yaml, resolve_config

    noaug, _, _ = resolve_config("mvae", None, load_yaml(CONFIGS / "mvae-noaug.yaml"), {})
    assert not noaug.augment
    paper, mcfg, preset = resolve_config("mvae", None, load_yaml(CONFIGS / "mvae-paper.yaml"), {})
    assert preset == "paper" and paper.window == 90 and mcfg.window == 90 and paper.augment["yaw"]
