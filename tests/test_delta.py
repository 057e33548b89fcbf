"""The Δ-interpolator (models/delta.py) and its method (methods/delta.py): shapes, the interpolation it starts from,
observed entries kept, training masks, a loss that falls, checkpoints, the trainer with --resume, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionsynth import tasks
from motionsynth.checkpoint import read_checkpoint
from motionsynth.errors import MotionsynthError
from motionsynth.io.bvh import read_bvh, write_bvh
from motionsynth.methods.delta import DeltaMethod
from motionsynth.models.common import interpolate_gaps
from motionsynth.models.cvae import feature_mask
from motionsynth.models.delta import DeltaConfig, DeltaInterpolator, draw_keyframes
from motionsynth.registry import check_serves, load_checkpoint, load_method, model_config
from motionsynth.train import load_yaml, resolve_config

from helpers import TINY_MODELS, biped_motion, feature_batch, make_skeleton, run_cli, tiny_checkpoint

TINY = TINY_MODELS["delta"]()
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "motionsynth" / "configs"


def tiny(**kw) -> tuple[DeltaInterpolator, torch.Tensor]:
    sk = make_skeleton()
    x, stats = feature_batch(sk, 6, 32)
    torch.manual_seed(0)
    model = DeltaInterpolator(DeltaConfig(**{**TINY, **kw}), sk)
    model.set_stats(stats)
    return model, x


def keyframe_fmask(model: DeltaInterpolator, B: int, T: int, keys) -> torch.Tensor:
    frames = torch.zeros(B, T, dtype=torch.bool)
    frames[:, keys] = True
    return feature_mask(frames[..., None].expand(-1, -1, len(model.skeleton)), frames, model.skeleton)


def test_config_presets_and_checks():
    assert model_config("delta", "cpu").d_model == 128
    assert model_config("delta", "paper").d_model == 256
    for bad in ({"d_model": 30, "heads": 4}, {"gaps": [10, 5]}, {"gaps": [5]}, {"p_more": 1.0}, {"pos_weight": -1}):
        with pytest.raises(ValueError):
            DeltaConfig(**bad)


@pytest.mark.parametrize("name,check", [
    ("delta", lambda t, m: t.steps == 20000 and t.threads == 1 and m.d_model == 128 and m.window == 64),
    ("delta-gpu", lambda t, m: t.batch_size == 64 and m.d_model == 256 and m.layers == 6),
])
def test_config_files_resolve(name, check):
    train_cfg, model_cfg, _ = resolve_config("delta", None, load_yaml(CONFIGS / f"{name}.yaml"))
    assert check(train_cfg, model_cfg)
    assert resolve_config("delta")[0].steps == 20000  # the family's default: the same run as delta.yaml


def test_forward_shapes_observed_kept_and_untrained_is_the_interpolation():
    model, x = tiny()
    fmask = keyframe_fmask(model, 6, 32, [0, 1, 2, 20, 31])
    with torch.no_grad():
        out = model({"observed": x, "mask": fmask})
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.equal(out[fmask > 0], x[fmask > 0])
    fill, extra = model.fill(x, fmask)
    assert extra.shape == (6, 32, 5)
    torch.testing.assert_close(out, torch.where(fmask > 0, x, fill))  # Δ starts at zero
    assert not torch.allclose(fill, interpolate_gaps(x, fmask))  # root velocities from the track's linear path
    with torch.no_grad():
        torch.nn.init.normal_(model.out.weight, std=0.1)
        out = model({"observed": x[:, :20], "mask": fmask[:, :20]})  # shorter than the window
    assert out.shape == (6, 20, x.shape[-1]) and torch.equal(out[fmask[:, :20] > 0], x[:, :20][fmask[:, :20] > 0])
    with pytest.raises(ValueError, match="at most 32"):
        model({"observed": torch.cat([x, x], 1), "mask": torch.cat([fmask, fmask], 1)})


def test_training_masks_are_inbetweening_windows():
    cfg = DeltaConfig(window=64, p_more=0.0, p_late=0.0)
    frames = draw_keyframes(200, 64, cfg, torch.Generator().manual_seed(0))
    for f in frames:
        keys = torch.nonzero(f)[:, 0]
        context = int(f.long().cumprod(0).sum())  # the leading observed frames
        assert 1 <= context <= 10
        assert len(keys) == context + 1  # the context and one target
        assert 5 <= int(keys[-1]) - context <= 45
    late = draw_keyframes(100, 64, DeltaConfig(p_late=1.0), torch.Generator().manual_seed(0))
    assert all(int(torch.nonzero(f)[0, 0]) <= 45 for f in late) and (~late[:, 0]).any()


def test_a_few_steps_reduce_the_loss():
    model, x = tiny()
    batch = {"features": x}
    first = float(model.validation_step(batch)["loss"])
    assert first == pytest.approx(float(model.validation_step(batch)["fill_loss"]))  # untrained: the interpolation
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss, logs = model.training_step(batch)  # fresh key frames
    assert loss.requires_grad and set(logs) >= {"loss", "feat", "pos", "fill_loss"}
    for _ in range(30):  # the validation's key frames (seed 0): the loss on this batch falls
        loss, _ = model.losses(batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.validation_step(batch)["loss"]) < 0.8 * first


def test_checkpoint_round_trip_and_the_method(cache, tmp_path):
    folder = tiny_checkpoint(tmp_path / "delta", "delta", cache.skeleton, cache.stats, seed=1)
    ckpt = load_checkpoint(folder)
    assert isinstance(ckpt.model, DeltaInterpolator) and ckpt.family == "delta"
    with torch.no_grad():
        torch.nn.init.normal_(ckpt.model.out.weight, std=0.05)  # a residual that is not zero
    method = load_method(ckpt, overlap=8)
    assert isinstance(method, DeltaMethod) and method.tasks == ("inbetween",) and method.overlap == 8
    for T in (20, 75):  # shorter than the window (padded), longer (windows cross-faded)
        motion = biped_motion(cache.skeleton, T=T)
        mask = tasks.keyframe_mask(T, len(cache.skeleton), [0, 1, T // 2, T - 1])
        out = method.complete(motion, mask, n_samples=2, seed=3)
        assert len(out) == 2 and out[0].num_frames == T and np.isfinite(out[0].rotations).all()
        np.testing.assert_allclose(out[0].rotations, out[1].rotations)  # deterministic: samples alike
        seen = mask.joints[:, 0]
        np.testing.assert_allclose(out[0].root_positions[seen], motion.root_positions[seen], atol=1e-4)
        assert not np.allclose(out[0].rotations[~seen], motion.rotations[~seen], atol=1e-3)
    saved, loaded = read_checkpoint(folder).state, load_checkpoint(folder).model.state_dict()
    assert saved is not None and set(saved) == set(loaded)
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    with pytest.raises(MotionsynthError, match="cannot do"):  # in-betweening only
        check_serves(method, "complete")
    with pytest.raises(MotionsynthError, match="not conditioned on labels"):
        method.complete(biped_motion(cache.skeleton, T=40), tasks.keyframe_mask(40, len(cache.skeleton), [0, 39]),
                        label={"content": "walk"})


@pytest.mark.slow
def test_train_resume_and_inbetween_on_the_command_line(cache, tmp_path):
    run = tmp_path / "run"
    common = ["--data", cache.path, "--out", run, "--no-progress", "--set", "train.window=32", "--set",
              "train.ckpt_every=1", "--set", "train.val_every=2", "--set", "train.batch_size=4",
              "--set", "model.d_model=16", "--set", "model.layers=1", "--set", "model.heads=2", "--set", "model.ff=32"]
    assert run_cli("train", "delta", *common, "--max-steps", "2") == 0
    assert run_cli("train", "delta", *common, "--resume", "--max-steps", "3") == 0
    assert load_checkpoint(run / "model").config["final_step"] == 3
    clip = tmp_path / "walk.bvh"
    write_bvh(biped_motion(cache.skeleton, T=50), clip)
    assert run_cli("inbetween", clip, "--model", run, "--keyframes", "0,1,30,end", "-o", tmp_path / "o.bvh") == 0
    out = read_bvh(tmp_path / "o.bvh")
    assert out.num_frames == 50 and np.isfinite(out.rotations).all()
