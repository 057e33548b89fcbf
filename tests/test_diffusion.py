"""The motion diffusion family (models/diffusion.py) and its task method (methods/diffusion.py): shapes, labels and
guidance, both predictions, geometric losses, overfitting, the trainer, checkpoints, every task at every length by
inpainting, SDEdit denoising, samples, seeds, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motionsynth import tasks
from motionsynth.data.features import FeatureStats, encode
from motionsynth.errors import MotionsynthError
from motionsynth.kinematics import foot_joints
from motionsynth.methods.diffusion import DiffusionMethod
from motionsynth.models.diffusion import DiffusionConfig, MotionDiffusion
from motionsynth.registry import build_model, load_checkpoint, load_method, model_config
from motionsynth.train import load_yaml, resolve_config, train

from helpers import (
    TINY_MODELS,
    FakeCache,
    assert_refused_without_output,
    biped_motion,
    biped_skeleton,
    feature_batch,
    labelled_batch,
    make_motion,
    make_skeleton,
)

TINY = dict(window=32, d_model=32, layers=1, heads=2, ff=64, T=20, label_slots=4)
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "motionsynth" / "configs"
LABELS = {"content": ["walk", "run", "wave"]}


def tiny(**kw) -> tuple[MotionDiffusion, torch.Tensor]:
    sk = make_skeleton()
    x, stats = feature_batch(sk, 6, 32)
    torch.manual_seed(0)
    model = MotionDiffusion(DiffusionConfig(**{**TINY, **kw}), sk)
    model.set_stats(stats)
    torch.nn.init.normal_(model.out.weight, std=0.05)  # a non-trivial output head (it starts at zero)
    return model, x


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A few steps of a network conditioned on the observation, through the one trainer (with EMA)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("diffusion") / "run"
    over = {"model": {**{k: v for k, v in TINY.items() if k != "window"}, "condition_on_observed": True},
            "train": {"window": 32, "stride": 8, "batch_size": 4, "steps": 6, "val_every": 3, "val_batches": 1,
                      "ckpt_every": 3, "log_every": 1, "accelerator": "cpu", "ema": 0.5, "lr": 3e-3,
                      "warmup_steps": 0}}
    train("diffusion", "synthetic", out, overrides=over, cache=FakeCache(LABELS, "diff0001"), progress=False,
          command="test")
    return out


@pytest.fixture(scope="module")
def method(run) -> DiffusionMethod:
    return load_method(run / "model", steps=4)


# ---- the network ---------------------------------------------------------------------------------------------------
def test_config_presets_and_checks():
    cpu, gpu = model_config("diffusion", "cpu"), model_config("diffusion", "paper")
    assert (cpu.d_model, cpu.layers, cpu.prediction, cpu.schedule) == (128, 4, "x0", "cosine")
    assert gpu.d_model == 512 and DiffusionConfig.preset("gpu").layers == 8
    for bad in ({"schedule": "quadratic"}, {"prediction": "v"}, {"d_model": 30, "heads": 4},
                {"mask_probs": {"nope": 1.0}}, {"label_dropout": 1.5}):
        with pytest.raises(ValueError):
            DiffusionConfig(**bad)
    sk = make_skeleton()
    small, big = (sum(p.numel() for p in MotionDiffusion(c, sk).parameters()) for c in (cpu, gpu))
    assert small < 1_000_000 < 10_000_000 < big
    assert build_model("diffusion", TINY_MODELS["diffusion"](), sk).variant == "diffusion-x0"
    train_cfg, model_cfg, _ = resolve_config("diffusion", None, load_yaml(CONFIGS / "diffusion-gpu.yaml"))
    assert model_cfg.d_model == 512 and model_cfg.window == train_cfg.window == 120 and train_cfg.ema > 0


def test_denoiser_shapes_labels_and_observation():
    model, x = tiny(condition_on_observed=True)
    model.eval()
    t = torch.tensor([0, 5, 19, 3, 7, 11])
    plain = model(x, t)
    assert plain.shape == x.shape and torch.isfinite(plain).all()
    labelled = model(x, t, {"label": {"content": torch.tensor([1] * 6)}})
    assert not torch.allclose(plain, labelled)
    assert torch.allclose(model(x, t, {"label": {"content": torch.full((6,), -1)}}), plain)  # -1 is "no label"
    fmask = torch.zeros_like(x)
    fmask[:, :5] = 1.0
    assert not torch.allclose(model(x, t, {"observed": x, "mask": fmask}), plain)  # the observation is read
    assert torch.allclose(model(x, t, {"observed": x, "mask": torch.zeros_like(x)}), plain)  # nothing observed = no observation
    with pytest.raises(ValueError, match="label_slots"):
        model.label_index({"content": torch.tensor([9] * 6)}, 6)
    assert model.label_index(None, 2).tolist() == [[4, 4], [4, 4]]


def test_label_dropout_hides_labels_in_training_only():
    model, x = tiny(label_dropout=1.0)
    batch = labelled_batch(x)
    _, _, _, labels, _, _ = model._draw(batch, None)
    assert (labels["content"] == -1).all()  # all dropped: the unconditional model for guidance
    _, _, _, kept, _, _ = model._draw(batch, torch.Generator().manual_seed(0))
    assert torch.equal(kept["content"], batch["labels"]["content"])


def test_foot_steps_are_the_world_displacements_of_the_feet():
    """The foot-contact term's displacements (root velocity + local positions turned by the heading change) equal
    the feet's world displacements by forward kinematics, in length."""
    sk = biped_skeleton()
    motion = biped_motion(sk, 40)
    feats = encode(motion)
    stats = FeatureStats.from_arrays([feats])
    model = MotionDiffusion(DiffusionConfig(**TINY), sk)
    model.set_stats(stats)
    assert foot_joints(sk) == model.feet == [sk.names.index("LeftToe"), sk.names.index("RightToe")]
    steps = model.foot_steps(torch.as_tensor(stats.normalize(feats)[None], dtype=torch.float32))[0].numpy()
    world = motion.global_positions()[:, model.feet]
    true = (world[1:] - world[:-1]) / 100.0
    assert np.allclose(np.linalg.norm(steps, axis=-1), np.linalg.norm(true, axis=-1), atol=1e-5)
    assert np.allclose(steps[..., 1], true[..., 1], atol=1e-5)  # the vertical part needs no heading


@pytest.mark.parametrize("prediction", ["x0", "eps"])
def test_every_loss_is_finite_and_reaches_the_network(prediction):
    model, x = tiny(prediction=prediction, condition_on_observed=True)
    loss, logs = model.training_step(labelled_batch(x), 0)
    assert {"simple", "pos", "vel", "foot", "x0_mse", "loss"} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values()) and float(logs["foot"]) >= 0
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    assert model.inp.weight.grad.abs().sum() > 0 and model.labels[0].weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    x0_hat = model(x, torch.full((6,), 3))  # the geometric terms alone reach the network
    geo = model.geometric_losses(x0_hat, x)
    (geo["pos"] + geo["vel"] + geo["foot"]).backward()
    assert model.inp.weight.grad.abs().sum() > 0
    model.eval()  # as the trainer validates
    val = model.validation_step(labelled_batch(x))
    assert float(val["loss"]) == float(model.validation_step(labelled_batch(x))["loss"])  # a fixed draw


@pytest.mark.slow
def test_overfitting_one_batch_reduces_the_loss():
    model, x = tiny(d_model=64, ff=128, layers=2, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batch = labelled_batch(x)
    before = float(model.eval().validation_step(batch)["loss"])
    model.train()
    torch.manual_seed(1)
    for step in range(60):
        loss, _ = model.training_step(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.eval().validation_step(batch)["loss"]) < 0.5 * before


# ---- training through the one trainer ----------------------------------------------------------------------------------
def test_trainer_exports_and_the_checkpoint_roundtrips(run):
    ckpt = load_checkpoint(run / "model")
    assert ckpt.family == "diffusion" and ckpt.labels == LABELS and (run / "best").is_dir()
    assert ckpt.config["train"]["ema"] == 0.5 and ckpt.config["model"]["condition_on_observed"] is True
    model = build_model("diffusion", ckpt.config["model"], ckpt.skeleton)
    model.load_state_dict(dict(ckpt.model.state_dict()))
    model.eval()
    x = torch.as_tensor(ckpt.stats.normalize(encode(make_motion(ckpt.skeleton, 32, seed=9)))[None])
    assert float(model.validation_step({"features": x})["loss"]) == \
        float(ckpt.model.validation_step({"features": x})["loss"])


# ---- the method --------------------------------------------------------------------------------------------------------
def _masks(T: int, sk) -> dict[str, tasks.Mask]:
    J = len(sk)
    return {"inbetween": tasks.inbetween_mask(T, J, 5, T - 7), "complete": tasks.joints_mask(T, sk, "upper"),
            "predict": tasks.predict_mask(T, J, 6), "generate": tasks.generate_mask(T, J)}


@pytest.mark.parametrize("T", [20, 32, 90])  # shorter than, exactly and longer than the window (32)
def test_method_completes_every_task_at_every_length(method, T):
    motion = make_motion(method.skeleton, T, seed=4)
    for kind, mask in _masks(T, method.skeleton).items():
        result = method.complete(motion, mask, n_samples=2, seed=1)
        assert len(result) == 2 and len(result.objective) == 2 and result.objective[0] <= result.objective[1]
        for s in result:
            assert s.num_frames == T and s.skeleton is motion.skeleton and np.isfinite(s.rotations).all()
            assert np.array_equal(s.rotations[mask.joints], motion.rotations[mask.joints]), kind
            assert np.array_equal(s.root_positions[mask.root], motion.root_positions[mask.root]), kind
        missing = ~mask.joints
        assert not np.allclose(result[0].rotations[missing], result[1].rotations[missing]), kind  # distinct
        expected = "continue" if kind in ("predict", "generate") and T > 32 else "windows"
        assert result.options["long"] == expected and result.options["inpaint"] == "condition"


def test_inpainting_modes_samplers_and_seeds(method):
    motion = make_motion(method.skeleton, 70, seed=5)
    mask = tasks.predict_mask(70, len(method.skeleton), 10)
    a = method.complete(motion, mask, n_samples=2, seed=3)
    b = method.complete(motion, mask, n_samples=2, seed=3)
    c = method.complete(motion, mask, n_samples=2, seed=4)
    assert all(np.array_equal(x.rotations, y.rotations) for x, y in zip(a, b))
    assert not np.allclose(a[0].rotations, c[0].rotations)
    for options in ({"inpaint": "impose"}, {"inpaint": "condition"}, {"long": "windows"},
                    {"sampler": "ddpm"}, {"eta": 1.0, "steps": 3}, {"clip": 5.0}):
        out = DiffusionMethod(method.ckpt, **options).complete(motion, mask, seed=3)
        assert out[0].num_frames == 70 and np.array_equal(out[0].rotations[:10], motion.rotations[:10]), options
        assert all(out.options[k] == v for k, v in options.items() if k != "steps")
    assert DiffusionMethod(method.ckpt, sampler="ddpm").params["steps"] == 20
    # the network's conditioning alone does not reproduce the observation exactly, re-imposition does
    cond = DiffusionMethod(method.ckpt, inpaint="condition", steps=4).complete(motion, mask, seed=3)
    imposed = DiffusionMethod(method.ckpt, inpaint="impose", steps=4).complete(motion, mask, seed=3)
    assert cond.objective[0] > 0 and imposed.objective[0] < 1e-5


def test_generation_with_a_label_and_guidance(method, run):
    motion = make_motion(method.skeleton, 40, seed=6)
    mask = tasks.generate_mask(40, len(method.skeleton))
    plain = method.complete(motion, mask, seed=0)[0]
    run_ = method.complete(motion, mask, label={"content": "run"}, seed=0)[0]
    assert not np.allclose(plain.rotations, run_.rotations)
    strong = DiffusionMethod(method.ckpt, steps=4, guidance=4.0).complete(motion, mask, label={"content": "run"},
                                                                         seed=0)
    none = DiffusionMethod(method.ckpt, steps=4, guidance=0.0).complete(motion, mask, label={"content": "run"},
                                                                       seed=0)
    assert not np.allclose(strong[0].rotations, none[0].rotations)
    assert strong.options["guidance"] == 4.0
    with pytest.raises(MotionsynthError, match="no label kind 'style'"):
        method.complete(motion, mask, label={"style": "happy"})
    with pytest.raises(MotionsynthError, match="knows no content 'jump'"):
        method.complete(motion, mask, label={"content": "jump"})
    unconditioned = load_checkpoint(run / "model")
    unconditioned.labels = {}
    with pytest.raises(MotionsynthError, match="not conditioned"):
        DiffusionMethod(unconditioned).complete(motion, mask, label={"content": "run"})


@pytest.mark.parametrize("T", [20, 75])
def test_denoising_by_sdedit(method, T):
    motion = make_motion(method.skeleton, T, seed=8)
    noisy = motion.copy()
    noisy.rotations = noisy.rotations + np.random.default_rng(0).normal(0, 0.02, noisy.rotations.shape)
    noisy.rotations /= np.linalg.norm(noisy.rotations, axis=-1, keepdims=True)
    out = method.complete(noisy, tasks.denoise_mask(T, len(method.skeleton)), n_samples=2, seed=0)
    assert len(out) == 2 and out.options["long"] == "denoise"
    assert all(s.num_frames == T and np.isfinite(s.rotations).all() for s in out)
    assert not np.allclose(out[0].rotations, out[1].rotations)
    low = DiffusionMethod(method.ckpt, denoise_level=0.05).complete(noisy, tasks.denoise_mask(T, 22), seed=0)
    assert low[0].num_frames == T


def test_bad_inputs_are_clear_errors(method, run):
    motion = make_motion(method.skeleton, 32, seed=7)
    with pytest.raises(MotionsynthError, match="n_samples"):
        method.complete(motion, tasks.generate_mask(32, len(method.skeleton)), n_samples=0)
    with pytest.raises(MotionsynthError, match="fps"):
        method.complete(make_motion(method.skeleton, 32, fps=60.0), tasks.generate_mask(32, len(method.skeleton)))
    for bad, match in (({"steps": 0}, "steps"), ({"steps": 21}, "steps"), ({"guidance": -1.0}, "guidance"),
                       ({"sampler": "euler"}, "sampler"), ({"denoise_level": 0.0}, "denoise_level"),
                       ({"overlap": 32}, "overlap"), ({"inpaint": "paste"}, "inpaint")):
        with pytest.raises(MotionsynthError, match=match):
            load_method(run / "model", **bad)
    with pytest.raises(MotionsynthError, match="bad option"):
        load_method(run / "model", temperature=1.0)
    sk = make_skeleton()
    _, stats = feature_batch(sk, 2, 32)
    from helpers import tiny_checkpoint

    plain = tiny_checkpoint(Path(run) / "plain", "diffusion", sk, stats)
    assert load_method(plain).inpaint == "impose"
    with pytest.raises(MotionsynthError, match="condition_on_observed"):
        load_method(plain, inpaint="both")


def test_generate_command_with_a_label(run, tmp_path, capsys):
    from motionsynth.cli import main

    args = ["generate", "--model", str(run / "model"), "-o", str(tmp_path / "g"), "--n", "2", "--frames", "50",
            "--label", "content=run", "--option", "steps=3"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code in (0, None), capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "g").iterdir())[:2] == ["sample_000.bvh", "sample_000.npz"]
    with pytest.raises(SystemExit) as e:
        main([*args[:-2], "--option", "guidance=-1"])
    assert e.value.code == 2 and "guidance" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["inbetween", "{clip}", "--keyframes", "0,39", "--label", "content=jump"],  # a label the model does not know
    ["inbetween", "{clip}", "--keyframes", "0,39", "--option", "guidance=-0.5"],
    ["inbetween", "{clip}", "--keyframes", "0,39", "--option", "steps=0"],
    ["inbetween", "{clip}", "--keyframes", "0,39", "--option", "steps=100000"],
    ["inbetween", "{creature}", "--keyframes", "0,39"],  # not a humanoid: nothing to retarget
])
def test_bad_input_through_the_commands_exits_2_without_output(run, tmp_path, capsys, args):
    assert_refused_without_output(run / "model", args, tmp_path, capsys)
