"""The Δ-denoiser (models/delta_denoise.py) and its method (methods/delta_denoise.py): the untrained model is the
filter, noisy inputs are deterministic, a loss that falls, the batched filter, checkpoints, the method on long and
short clips, the trainer and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionsynth import tasks
from motionsynth.data.noise import add_noise
from motionsynth.io.bvh import read_bvh, write_bvh
from motionsynth.methods.delta_denoise import DeltaDenoiseMethod
from motionsynth.models.delta_denoise import DeltaDenoiseConfig, DeltaDenoiser
from motionsynth.postprocess import smooth_motion, smooth_motions
from motionsynth.registry import check_serves, load_checkpoint, load_method, model_config

from helpers import TINY_MODELS, biped_motion, feature_batch, make_skeleton, run_cli, tiny_checkpoint

TINY = TINY_MODELS["delta-denoise"]()


def tiny(**kw) -> tuple[DeltaDenoiser, torch.Tensor]:
    sk = make_skeleton()
    x, stats = feature_batch(sk, 4, 32)
    torch.manual_seed(0)
    model = DeltaDenoiser(DeltaDenoiseConfig(**{**TINY, **kw}), sk)
    model.set_stats(stats)
    return model, x


def test_config_presets_and_checks():
    assert model_config("delta-denoise", "cpu").d_model == 128
    assert model_config("delta-denoise", "gpu").layers == 6
    for bad in ({"noise_models": ["snow"]}, {"noise_models": []}, {"filter_weight": 0}, {"filter_norm": "l1"},
                {"d_model": 30, "heads": 4}, {"window": 2}, {"accel_weight": -1}):
        with pytest.raises(ValueError):
            DeltaDenoiseConfig(**bad)
    assert DeltaDenoiseConfig(noise_models="spikes").noise_models == ["spikes"]


def test_smooth_motions_is_smooth_motion_of_each():
    sk = make_skeleton()
    motions = [add_noise(biped_motion(sk, T=T, seed=i), "gaussian", i) for i, T in enumerate((40, 40, 25))]
    for one, many in zip([smooth_motion(m, 0.5) for m in motions], smooth_motions(motions, 0.5)):
        np.testing.assert_allclose(many.rotations, one.rotations, atol=1e-12)
        np.testing.assert_allclose(many.root_positions, one.root_positions, atol=1e-9)
    assert smooth_motions([]) == []


def test_untrained_is_the_filter_and_corruption_is_deterministic():
    model, x = tiny()
    seeds = [[0, 7, b] for b in range(4)]
    a, b = model.corrupt(x, seeds), model.corrupt(x, seeds)
    assert set(a) == {"noisy", "filtered"} and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["noisy"], model.corrupt(x, [[0, 8, i] for i in range(4)])["noisy"])
    assert not torch.allclose(a["noisy"], x) and not torch.allclose(a["filtered"], a["noisy"])
    with torch.no_grad():
        out = model(a)
    assert out.shape == x.shape
    torch.testing.assert_close(out, a["filtered"])  # Δ starts at zero
    with pytest.raises(ValueError, match="at most 32"):
        model({k: torch.cat([v, v], 1) for k, v in a.items()})


def test_a_few_steps_reduce_the_loss_below_the_filter():
    model, x = tiny(noise_models=["gaussian"], accel_weight=1.0)
    batch = {"features": x}
    logs = model.validation_step(batch)
    assert float(logs["loss"]) == pytest.approx(float(logs["filter_loss"]))
    cond = model.corrupt(x, [[1, b] for b in range(4)])  # the validation's corruption (no take/start in the batch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss, train_logs = model.training_step(batch, step=3)
    assert loss.requires_grad and {"mpjpe_cm", "filter_mpjpe_cm", "accel", "filter_accel"} <= set(train_logs)
    for _ in range(40):
        loss, _ = model.losses(cond, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.validation_step(batch)
    assert float(after["loss"]) < 0.8 * float(after["filter_loss"])
    assert float(after["mpjpe_cm"]) < float(after["filter_mpjpe_cm"])


def test_checkpoint_and_the_method(cache, tmp_path):
    folder = tiny_checkpoint(tmp_path / "dd", "delta-denoise", cache.skeleton, cache.stats, seed=1)
    method = load_method(load_checkpoint(folder), overlap=8, smooth_sigma=0.0)
    assert isinstance(method, DeltaDenoiseMethod) and method.tasks == ("denoise",)
    check_serves(method, "denoise")
    with pytest.raises(Exception, match="cannot do"):
        check_serves(method, "inbetween")
    for T in (20, 75):  # shorter than the window (padded), longer (windows cross-faded)
        clean = biped_motion(cache.skeleton, T=T)
        noisy = add_noise(clean, "gaussian", 3)
        out = method.complete(noisy, tasks.denoise_mask(T, len(cache.skeleton)), n_samples=2)
        filtered = smooth_motion(noisy, method.model.config.filter_weight, method.model.config.filter_iters)
        assert len(out) == 2 and out[0].num_frames == T and out[0].fps == noisy.fps
        np.testing.assert_allclose(out[0].rotations, out[1].rotations)
        # untrained: the filter's motion — its root path as it is, the joints' rotations through the features (the
        # root's tilt is a constant channel in this cache's data: normalisation maps the noisy tilt to the constant)
        np.testing.assert_allclose(out[0].root_positions, filtered.root_positions, atol=1e-4)
        np.testing.assert_allclose(out[0].rotations[:, 2:], filtered.rotations[:, 2:], atol=1e-5)
    trained = load_method(load_checkpoint(folder), residual_sigma=0.0, smooth_sigma=0.0)
    with torch.no_grad():
        torch.nn.init.normal_(trained.model.out.weight, std=0.05)  # a residual that is not zero
    noisy = add_noise(biped_motion(cache.skeleton, T=75), "gaussian", 3)
    jerky = trained.complete(noisy, tasks.denoise_mask(75, len(cache.skeleton)))[0]
    mask = tasks.denoise_mask(75, len(cache.skeleton))
    smooth = load_method(trained.ckpt, residual_sigma=3.0, smooth_sigma=0.0).complete(noisy, mask)[0]
    smoother = load_method(trained.ckpt, residual_sigma=3.0, smooth_sigma=2.0).complete(noisy, mask)[0]

    def jerk(m):
        return np.abs(np.diff(m.global_positions(), 2, axis=0)).mean()

    assert jerk(smoother) < jerk(smooth) < jerk(jerky)  # the residual smoothed in time, then the whole result
    slow = add_noise(biped_motion(cache.skeleton, T=60, fps=60.0), "spikes", 1)  # resampled to 30 fps and back
    out = method.complete(slow, tasks.denoise_mask(60, len(cache.skeleton)))[0]
    assert out.num_frames == 60 and out.fps == 60.0


def test_bad_options_are_clear(cache, tmp_path):
    ckpt = load_checkpoint(tiny_checkpoint(tmp_path / "dd", "delta-denoise", cache.skeleton, cache.stats))
    for bad in ({"overlap": 32}, {"batch_size": 0}, {"residual_sigma": -1}, {"smooth_sigma": -1}):
        with pytest.raises(Exception, match="overlap|batch_size|residual_sigma"):
            load_method(ckpt, **bad)


@pytest.mark.slow
def test_train_resume_and_denoise_on_the_command_line(cache, tmp_path):
    run = tmp_path / "run"
    common = ["--data", cache.path, "--out", run, "--no-progress", "--set", "train.window=32", "--set",
              "train.ckpt_every=1", "--set", "train.val_every=2", "--set", "train.val_batches=1", "--set",
              "train.batch_size=4", "--set", "model.d_model=16", "--set", "model.layers=1", "--set", "model.heads=2",
              "--set", "model.ff=32", "--set", "model.filter_iters=5", "--set", "model.noise_models=[spikes,dropped]"]
    assert run_cli("train", "delta-denoise", *common, "--max-steps", "2") == 0
    assert run_cli("train", "delta-denoise", *common, "--resume", "--max-steps", "3") == 0
    assert load_checkpoint(run / "model").config["final_step"] == 3
    clip = tmp_path / "noisy.bvh"
    write_bvh(add_noise(biped_motion(cache.skeleton, T=50), "mixed", 0), clip)
    assert run_cli("denoise", clip, "--model", run, "-o", tmp_path / "o.bvh") == 0
    out = read_bvh(tmp_path / "o.bvh")
    assert out.num_frames == 50 and np.isfinite(out.rotations).all()
