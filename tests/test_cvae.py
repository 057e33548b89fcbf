"""The two-branch CVAE (models/cvae.py) and its task method (methods/cvae.py): shapes, masks, losses, the GAN phases
through the trainer, overfitting, every kind of mask at every length, samples, seeds, labels, checkpoints."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from motionsynth import tasks
from motionsynth.data.features import encode
from motionsynth.errors import MotionsynthError
from motionsynth.methods.completion import feature_mask as np_feature_mask
from motionsynth.methods.cvae import CVAEMethod
from motionsynth.models.cvae import CVAE, MASK_KINDS, CVAEConfig, draw_masks, feature_mask
from motionsynth.registry import build_model, load_checkpoint, load_method, model_config
from motionsynth.train import load_yaml, resolve_config, train

from helpers import (
    TINY_MODELS,
    FakeCache,
    assert_refused_without_output,
    feature_batch,
    labelled_batch,
    make_motion,
    make_skeleton,
)

TINY = dict(window=32, channels=[8, 16], latent=4, label_slots=4)
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "motionsynth" / "configs"
LABELS = {"content": ["walk", "run", "wave"]}


def tiny(**kw) -> tuple[CVAE, torch.Tensor]:
    sk = make_skeleton()
    x, stats = feature_batch(sk, 6, 32)
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(**{**TINY, **kw}), sk)
    model.set_stats(stats)
    return model, x


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A few GAN steps through the one trainer: the run folder (RUN/model is the checkpoint)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cvae") / "run"
    over = {"model": {k: v for k, v in TINY.items() if k != "window"},
            "train": {"window": 32, "stride": 8, "batch_size": 4, "steps": 6, "val_every": 3, "val_batches": 1,
                      "ckpt_every": 3, "log_every": 1, "accelerator": "cpu"}}
    train("cvae", "synthetic", out, overrides=over, cache=FakeCache(LABELS, "cvae0001"), progress=False,
          command="test")
    return out


@pytest.fixture(scope="module")
def method(run) -> CVAEMethod:
    return load_method(run / "model")


# ---- the network ---------------------------------------------------------------------------------------------------
def test_config_presets_and_checks():
    assert model_config("cvae", "paper").channels == [128, 256]
    assert model_config("cvae", "cpu").window == 64
    for bad in ({"window": 36}, {"channels": [8]}, {"branches": 3}, {"mask_probs": {"nope": 1.0}},
                {"fill": "mean"}):
        with pytest.raises(ValueError):
            CVAEConfig(**bad)
    assert build_model("cvae", TINY_MODELS["cvae"](), make_skeleton()).variant == "cvae"


@pytest.mark.parametrize("name,check", [
    ("cvae-paper", lambda t, m: t.window == m.window == 128 and m.channels == [128, 256] and t.lr == 1e-4),
    ("cvae-1branch", lambda t, m: m.branches == 1),
    ("cvae-nogan", lambda t, m: m.gan_weight == 0),
    ("cvae-noaction", lambda t, m: m.action_weight == 0),
])
def test_config_files_resolve(name, check):
    train_cfg, model_cfg, _ = resolve_config("cvae", None, load_yaml(CONFIGS / f"{name}.yaml"))
    assert train_cfg.schedule == "constant" and check(train_cfg, model_cfg)


def test_feature_mask_is_the_methods_feature_mask():
    sk = make_skeleton()
    joints, root = draw_masks(12, 32, sk, {k: 1.0 for k in MASK_KINDS}, torch.Generator().manual_seed(3))
    for b in range(12):
        expected = np_feature_mask(tasks.Mask(joints[b].numpy(), root[b].numpy()), sk)
        assert np.array_equal(feature_mask(joints[b], root[b], sk).numpy().astype(bool), expected)


def test_mask_curriculum_draws_every_kind():
    sk = make_skeleton()
    T = 32
    for kind in MASK_KINDS:
        joints, root = draw_masks(16, T, sk, {kind: 1.0}, torch.Generator().manual_seed(0))
        assert joints.shape == (16, T, len(sk)) and root.shape == (16, T)
        assert torch.equal(root, joints[..., sk.root])
        per_frame_whole = (joints.all(-1) | ~joints.any(-1)).all()
        if kind == "generate":
            assert not joints.any()
        elif kind == "predict":  # a prefix of whole frames
            seen = joints.all(-1)
            assert per_frame_whole and seen[:, 0].all() and (seen[:, 1:] <= seen[:, :-1]).all()
        elif kind in ("inbetween", "keyframes"):
            assert per_frame_whole and joints.any(-1).any(-1).all()
        else:  # body parts missing within frames, from the skeleton's groups
            assert not per_frame_whole
            groups = [set(g) for g in sk.groups.values()]
            for b in range(16):
                missing = set(np.flatnonzero(~joints[b].numpy().all(0)).tolist())
                assert missing and any(g <= missing for g in groups)


def test_sample_shapes_and_labels_condition():
    model, x = tiny()
    model.eval()
    fmask = feature_mask(*draw_masks(6, 32, model.skeleton, {"inbetween": 1.0}), model.skeleton)
    out = model.sample({"observed": x, "mask": fmask}, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    onehot = model.one_hot({"content": torch.tensor([1] * 6)}, 6)
    assert onehot.shape == (6, 2 * 4) and onehot.sum() == 6
    labelled = model.sample({"observed": x, "mask": fmask, "label": onehot},
                            generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(out, labelled)
    with pytest.raises(ValueError, match="label_slots"):
        model.one_hot({"content": torch.tensor([9] * 6)}, 6)


def _zero_heads(model: CVAE) -> CVAE:
    for head in model.decoder.heads:
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    return model


@pytest.mark.parametrize("fill", ["interpolate", "zero"])
def test_the_decoder_adds_to_the_fill(fill):
    """With the decoder's output heads at zero, the completion is the fill itself: the interpolation of the observed
    entries (``fill="interpolate"``, at every scale) or zero (the document's ``"zero"``)."""
    from motionsynth.models.common import interpolate_gaps

    model, x = tiny(fill=fill, track=False)
    _zero_heads(model)
    fmask = feature_mask(*draw_masks(6, 32, model.skeleton, {"keyframes": 1.0}), model.skeleton)
    out = model.sample({"observed": x, "mask": fmask}, temperature=0.0)
    expected = interpolate_gaps(x, fmask) if fill == "interpolate" else torch.zeros_like(x)
    assert torch.allclose(out, expected, atol=1e-6)


def test_the_root_fill_follows_the_track_to_the_target():
    """In-betweening with the root track: the fill's root velocities between the last context frame and the target
    integrate to the target's true position and heading, along a straight line."""
    from motionsynth.data.features import root_track

    model, x = tiny(fill="interpolate", track=True)
    _zero_heads(model)
    joints = torch.zeros(6, 32, len(model.skeleton), dtype=torch.bool)
    joints[:, :10] = joints[:, 30] = True
    fmask = feature_mask(joints, joints[..., model.skeleton.root], model.skeleton)
    out = model.sample({"observed": x, "mask": fmask}, temperature=0.0)
    path, truth = (root_track(model.denormalize(v)[..., model.rot_dim:]) for v in (out, x))
    assert torch.allclose(path[:, :10], truth[:, :10], atol=1e-3)  # the observed context
    assert torch.allclose(path[:, 30, :2], truth[:, 30, :2], atol=1e-2)  # reaches the target's position
    turn = path[:, 30, 2] - truth[:, 30, 2]
    assert torch.allclose(torch.atan2(turn.sin(), turn.cos()), torch.zeros(6), atol=1e-3)  # and heading
    line = truth[:, 9, :2] + (truth[:, 30, :2] - truth[:, 9, :2]) * (20 - 9) / (30 - 9)
    assert torch.allclose(path[:, 20, :2], line, atol=1e-2)
    # the track is what tells the model where the target is: moving it changes the prior's input
    far = root_track(model.denormalize(x)[..., model.rot_dim:]).clone()
    far[:, 30, 0] += 300.0
    assert not torch.allclose(model.sample({"observed": x, "mask": fmask, "track": far}, temperature=0.0), out)


def test_every_loss_is_finite_and_reaches_its_networks():
    model, x = tiny()
    batch = labelled_batch(x)
    loss, logs = model.training_step(batch, 0, phase="discriminator")
    assert torch.isfinite(loss) and {"d_real", "d_fake", "action_real"} <= set(logs)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.classifier.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())  # the fake is made without gradient
    model.zero_grad(set_to_none=True)
    loss, logs = model.training_step(batch, 0, phase="generator")
    assert {"rec", "kl", "pos", "vel", "app_gen", "gan", "action", "loss"} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    loss.backward()
    for part in (model.prior, model.posterior, model.decoder):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
    val = model.validation_step(batch)
    assert {"loss", "missing_l1", "missing_pos", "observed_l1", "rec", "kl"} <= set(val)
    assert float(val["loss"]) == float(model.validation_step(batch)["loss"])  # fixed validation masks


def test_missing_weight_adds_a_loss_on_the_unobserved_entries():
    model, x = tiny(missing_weight=0.0)
    assert "mean_missing" not in model.training_step(labelled_batch(x), 0)[1]
    model, x = tiny(missing_weight=2.0)
    batch = labelled_batch(x)
    model.training_step(batch, 0)  # draws step 0's masks (kept for the step's other calls)
    torch.manual_seed(1)
    loss, logs = model.training_step(batch, 0)
    assert float(logs["mean_missing"]) > 0
    model.config.missing_weight = 0.0
    torch.manual_seed(1)
    without = model.training_step(batch, 0)[0]  # the same masks and draws: only the new term differs
    assert float(loss - without) == pytest.approx(2.0 * float(logs["mean_missing"]), rel=1e-4)


@pytest.mark.parametrize("switch,variant,phases,absent", [
    ({"branches": 1}, "cvae-1branch", ["discriminator", "generator"], "app_gen"),
    ({"gan_weight": 0.0}, "cvae-nogan", ["discriminator", "generator"], "gan"),
    ({"action_weight": 0.0}, "cvae-noaction", ["discriminator", "generator"], "action"),
    ({"gan_weight": 0.0, "action_weight": 0.0}, "cvae-nogan-noaction", ["generator"], "gan"),
])
def test_ablations_are_config_switches(switch, variant, phases, absent):
    model, x = tiny(**switch)
    assert model.variant == variant
    assert list(model.configure_optimizers(SimpleNamespace(lr=1e-3))) == phases
    for phase in phases:
        loss, logs = model.training_step(labelled_batch(x), 0, phase=phase)
        assert torch.isfinite(loss)
    assert absent not in logs


@pytest.mark.slow
def test_overfitting_one_batch_reduces_the_reconstruction_loss():
    model, x = tiny(gan_weight=0.0, action_weight=0.0, channels=[16, 32], latent=8)
    opt = model.configure_optimizers(SimpleNamespace(lr=3e-3))["generator"]
    batch = labelled_batch(x)
    before = float(model.validation_step(batch)["rec"])  # posterior mean, fixed masks
    for step in range(80):
        loss, _ = model.training_step(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.validation_step(batch)["rec"]) < 0.8 * before


# ---- training through the one trainer ----------------------------------------------------------------------------------
def test_trainer_runs_both_gan_phases_and_exports(run):
    rows = list(csv.DictReader(next((run / "logs").glob("version_*/metrics.csv")).read_text().splitlines()))
    columns = set(rows[0])
    assert {"train/discriminator_loss", "train/generator_loss", "train/generator_gan", "val/loss"} <= columns
    steps = {r["step"] for r in rows if r.get("train/generator_loss")}
    assert len(steps) == 6  # one row per training step (both phases each step)
    ckpt = load_checkpoint(run / "model")
    assert ckpt.family == "cvae" and ckpt.labels == LABELS and (run / "best").is_dir()


@pytest.mark.slow
def test_checkpoint_roundtrip_gives_the_same_model(run, tmp_path):
    ckpt = load_checkpoint(run / "model")
    model = build_model("cvae", ckpt.config["model"], ckpt.skeleton)
    model.load_state_dict(dict(load_checkpoint(run / "model").model.state_dict()))
    model.eval()
    x = torch.as_tensor(ckpt.stats.normalize(encode(make_motion(ckpt.skeleton, 32, seed=9)))[None])
    assert float(model.validation_step({"features": x})["loss"]) == \
        float(ckpt.model.validation_step({"features": x})["loss"])
    with pytest.raises(MotionsynthError, match="bad option"):
        load_method(run / "model", restarts=3)
    with pytest.raises(MotionsynthError, match="temperature"):
        load_method(run / "model", temperature=-1)


# ---- the method --------------------------------------------------------------------------------------------------------
def _masks(T: int, sk) -> dict[str, tasks.Mask]:
    J = len(sk)
    return {"inbetween": tasks.inbetween_mask(T, J, 5, T - 7), "complete": tasks.joints_mask(T, sk, "upper"),
            "predict": tasks.predict_mask(T, J, 6), "generate": tasks.generate_mask(T, J)}


@pytest.mark.slow
@pytest.mark.parametrize("T", [20, 32, 90])  # shorter than, exactly and longer than the window (32)
def test_method_completes_every_task_at_every_length(method, T):
    motion = make_motion(method.skeleton, T, seed=4)
    for kind, mask in _masks(T, method.skeleton).items():
        result = method.complete(motion, mask, n_samples=3, seed=1)  # the prior's mean, then draws best first
        assert len(result) == 3 and len(result.objective) == 3 and result.objective[1] <= result.objective[2]
        for s in result:
            assert s.num_frames == T and s.skeleton is motion.skeleton and np.isfinite(s.rotations).all()
            assert np.array_equal(s.rotations[mask.joints], motion.rotations[mask.joints]), kind
            assert np.array_equal(s.root_positions[mask.root], motion.root_positions[mask.root]), kind
        missing = ~mask.joints
        assert not np.allclose(result[0].rotations[missing], result[1].rotations[missing]), kind  # distinct
        expected = "continue" if kind in ("predict", "generate") and T > 32 else None
        assert expected is None or result.options["long"] == expected


def test_long_clips_both_ways_and_seeds(method):
    motion = make_motion(method.skeleton, 80, seed=5)
    mask = tasks.predict_mask(80, len(method.skeleton), 10)
    a = method.complete(motion, mask, n_samples=2, seed=3)
    b = method.complete(motion, mask, n_samples=2, seed=3)
    c = method.complete(motion, mask, n_samples=2, seed=4)
    assert all(np.array_equal(x.rotations, y.rotations) for x, y in zip(a, b))
    assert np.array_equal(a[0].rotations, c[0].rotations)  # sample 0 is the prior's mean, whatever the seed
    assert not np.allclose(a[1].rotations, c[1].rotations)  # the draws follow the seed
    windows = CVAEMethod(method.ckpt, long="windows", candidates=3).complete(motion, mask, seed=3)
    assert windows.options["long"] == "windows" and windows.options["candidates"] == 3
    assert np.array_equal(windows[0].rotations[:10], motion.rotations[:10])
    mean = CVAEMethod(method.ckpt, temperature=0.0, mean_first=False).complete(motion, mask, n_samples=2, seed=0)
    assert np.allclose(mean[0].rotations, mean[1].rotations)  # the prior's mean: one completion
    assert np.allclose(mean[0].rotations, a[0].rotations, atol=1e-6)


def test_labels_are_checked_against_the_checkpoint(method, run):
    motion = make_motion(method.skeleton, 32, seed=6)
    mask = tasks.generate_mask(32, len(method.skeleton))
    plain = method.complete(motion, mask, seed=0)[0]
    run_ = method.complete(motion, mask, label={"content": "run"}, seed=0)[0]
    assert not np.allclose(plain.rotations, run_.rotations)
    with pytest.raises(MotionsynthError, match="no label kind 'style'"):
        method.complete(motion, mask, label={"style": "happy"})
    with pytest.raises(MotionsynthError, match="knows no content 'jump'"):
        method.complete(motion, mask, label={"content": "jump"})
    unconditioned = load_checkpoint(run / "model")
    unconditioned.labels = {}
    with pytest.raises(MotionsynthError, match="not conditioned"):
        CVAEMethod(unconditioned).complete(motion, mask, label={"content": "run"})


def test_denoising_and_bad_inputs_are_clear_errors(method):
    motion = make_motion(method.skeleton, 32, seed=7)
    with pytest.raises(MotionsynthError, match="noisy"):
        method.complete(motion, tasks.denoise_mask(32, len(method.skeleton)))
    with pytest.raises(MotionsynthError, match="n_samples"):
        method.complete(motion, tasks.generate_mask(32, len(method.skeleton)), n_samples=0)
    with pytest.raises(MotionsynthError, match="fps"):
        method.complete(make_motion(method.skeleton, 32, fps=60.0), tasks.generate_mask(32, len(method.skeleton)))


@pytest.mark.slow
def test_generate_command_with_a_label(run, tmp_path, capsys):
    from motionsynth.cli import main

    args = ["generate", "--model", str(run / "model"), "-o", str(tmp_path / "g"), "--n", "2", "--frames", "50",
            "--label", "content=run", "--option", "candidates=2"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code in (0, None), capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "g").iterdir())[:2] == ["sample_000.bvh", "sample_000.npz"]
    with pytest.raises(SystemExit) as e:
        main([*args[:-4], "--label", "content=jump"])
    assert e.value.code == 2 and "knows no content 'jump'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["inbetween", "{clip}", "--keyframes", "0,39", "--label", "content=jump"],  # a label the checkpoint lacks
    ["inbetween", "{clip}", "--keyframes", "0,39", "--label", "style=happy"],  # a kind it is not conditioned on
    ["inbetween", "{clip}", "--keyframes", "0,39", "--samples", "0"],
    ["inbetween", "{creature}", "--keyframes", "0,39"],  # not a humanoid: nothing to retarget
    ["predict", "{clip}", "--given", "10", "--option", "candidates=0"],
])
def test_bad_input_through_the_commands_exits_2_without_output(run, tmp_path, capsys, args):
    assert_refused_without_output(run / "model", args, tmp_path, capsys)


def test_generation_draws_every_sample(method):
    """Nothing observed: no sample is the prior's mean, so one-sample calls with other seeds (synthesize) differ."""
    rest = make_motion(method.skeleton, 32, seed=8)
    mask = tasks.generate_mask(32, len(method.skeleton))
    a, b = (method.complete(rest, mask, n_samples=1, seed=s)[0] for s in (1, 2))
    assert not np.allclose(a.rotations, b.rotations)
