"""`models.prior.PriorMethod`: latent optimisation (in-betweening, completion), refinement, root pinning — with tiny
randomly initialised HM-VAE checkpoints (window 32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motionsynth import rotations as R
from motionsynth.checkpoint import save_checkpoint
from motionsynth.data.features import encode
from motionsynth.errors import MotionsynthError
from motionsynth.methods import prior
from motionsynth.methods.baselines import Interpolation
from motionsynth.methods.completion import place_root
from motionsynth.methods.prior import DEFAULT_RESTARTS, PriorMethod
from motionsynth.models.meva import MotionVAE, MotionVAEConfig
from motionsynth.registry import load_checkpoint, load_method
from motionsynth.tasks import Mask, Method, denoise_mask, joints_mask, keyframe_mask, predict_mask

from helpers import make_motion, make_skeleton, save_tiny

FAST = dict(restarts=2, phase1_iters=4, phase2_iters=3)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return load_checkpoint(save_tiny(tmp_path_factory.mktemp("prior") / "hmvae"))


@pytest.fixture(scope="module")
def skeleton(ckpt):
    return ckpt.skeleton


def same_rotations(a, b, atol=1e-5):
    return np.allclose(np.abs((a * b).sum(-1)), 1.0, atol=atol)


def test_is_a_method_and_loads_from_a_folder(ckpt):
    method = PriorMethod(ckpt, **FAST)
    assert isinstance(method, Method) and method.name == "hmvae" and method.window == 32
    assert method.checkpoint_hash == ckpt.weights_hash
    loaded = load_method(ckpt.path, restarts=3)
    assert isinstance(loaded, PriorMethod) and loaded.restarts == 3


def test_assembly_roundtrips_an_observed_motion(ckpt, skeleton):
    """Fully observed features → the same motion (root trajectory integrated and pinned, heading included)."""
    m = make_motion(skeleton, 40, seed=2)
    full = Mask(np.ones((40, len(skeleton)), bool), np.ones(40, bool))
    out = place_root(encode(m).astype(np.float64), m, full)
    assert same_rotations(out.rotations, m.rotations, 1e-4)
    np.testing.assert_allclose(out.root_positions, m.root_positions, atol=1e-3)


def test_root_is_pinned_to_observed_keyframes(ckpt, skeleton):
    """Before observed values are copied back, the trajectory already passes through the observed root positions
    and headings (a linear-in-time correction of the integrated trajectory)."""
    m = make_motion(skeleton, 40, seed=3)
    feats = encode(make_motion(skeleton, 40, seed=9)).astype(np.float64)  # another motion's features
    mask = keyframe_mask(40, len(skeleton), [0, 15, 39])
    out = place_root(feats, m, mask)
    np.testing.assert_allclose(out.root_positions[mask.root], m.root_positions[mask.root], atol=1e-3)
    from motionsynth.kinematics import heading_angle

    r = skeleton.root
    h_out = heading_angle(out.global_rotations()[mask.root, r])
    h_in = heading_angle(m.global_rotations()[mask.root, r])
    assert np.abs(np.angle(np.exp(1j * (h_out - h_in)))).max() < 1e-4


@pytest.mark.slow
def test_latent_optimisation_reduces_the_objective(ckpt, skeleton):
    m = make_motion(skeleton, 32, seed=4)
    mask = keyframe_mask(32, len(skeleton), [0, 1, 2, 20, 31])
    objective = {}
    for iters in (0, 25):
        method = PriorMethod(ckpt, restarts=2, phase1_iters=iters, phase2_iters=0, lr=0.05)
        objective[iters] = method.complete(m, mask, seed=0).objective[0]
    assert objective[25] < objective[0]
    method = PriorMethod(ckpt, restarts=2, phase1_iters=25, phase2_iters=15, decoder_lr=1e-3)
    result = method.complete(m, mask, seed=0)
    assert result.objective[0] < objective[25]  # phase 2 (decoder fine-tuning) improves the fit further
    assert result.timings["phase1_s"] > 0 and result.timings["phase2_s"] > 0
    assert result.options["phase1_iters"] == 25 and result.options["decoder_lr"] == 1e-3


def test_phase2_leaves_the_shared_model_unchanged(ckpt, skeleton):
    before = {k: v.clone() for k, v in ckpt.model.state_dict().items()}
    m = make_motion(skeleton, 40, seed=5)
    PriorMethod(ckpt, restarts=2, phase1_iters=3, phase2_iters=5, decoder_lr=1e-2).complete(
        m, joints_mask(40, skeleton, "upper"), n_samples=2)
    after = ckpt.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in ckpt.model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("frames", [20, 32, 75])
def test_observed_parts_unchanged_for_short_exact_and_long_clips(ckpt, skeleton, frames):
    m = make_motion(skeleton, frames, seed=frames)
    method = PriorMethod(ckpt, **FAST)
    for mask in (keyframe_mask(frames, len(skeleton), [0, 1, frames // 2, frames - 1]),
                 joints_mask(frames, skeleton, "upper", slice(2, frames - 2))):
        out = method.complete(m, mask, seed=1)
        assert len(out) == 1
        o = out[0]
        assert o.num_frames == frames and o.skeleton is m.skeleton and o.fps == m.fps
        assert np.array_equal(o.rotations[mask.joints], m.rotations[mask.joints])
        assert np.array_equal(o.root_positions[mask.root], m.root_positions[mask.root])
        assert np.isfinite(o.rotations).all() and np.isfinite(o.root_positions).all()
        assert np.allclose(np.linalg.norm(o.rotations, axis=-1), 1.0)


def test_prediction_and_generation_masks(ckpt, skeleton):
    m = make_motion(skeleton, 40, seed=6)
    method = PriorMethod(ckpt, **FAST)
    out = method.complete(m, predict_mask(40, len(skeleton), 10))[0]
    assert np.array_equal(out.rotations[:10], m.rotations[:10]) and out.num_frames == 40
    empty = Mask(np.zeros((40, len(skeleton)), bool), np.zeros(40, bool))
    assert method.complete(m, empty)[0].num_frames == 40  # nothing observed: a sample of the prior
    assert method.kind(empty) == "generate"
    gen = method.complete(m, empty, n_samples=2, seed=1)
    assert gen.timings["restarts"] == 2 and not np.allclose(gen[0].rotations, gen[1].rotations)
    with pytest.raises(MotionsynthError, match="not conditioned on labels"):
        method.complete(m, empty, label={"content": "walk"})
    assert method.kind(keyframe_mask(40, len(skeleton), [0, 39])) == "inbetween"
    assert method.kind(joints_mask(40, skeleton, "lower")) == "complete"


@pytest.mark.slow
def test_n_samples_best_first_and_distinct(ckpt, skeleton, monkeypatch):
    m = make_motion(skeleton, 40, seed=7)
    mask = keyframe_mask(40, len(skeleton), [0, 1, 39])
    method = PriorMethod(ckpt, restarts=2, phase1_iters=5, phase2_iters=2)
    outs = method.complete(m, mask, n_samples=3, seed=3)  # more samples than restarts: restarts raised to 3
    assert len(outs) == 3 and all(o.num_frames == 40 for o in outs)
    assert outs.objective == sorted(outs.objective)
    assert not np.allclose(outs[0].rotations, outs[1].rotations)
    again = method.complete(m, mask, n_samples=3, seed=3)
    assert all(np.array_equal(a.rotations, b.rotations) for a, b in zip(outs, again))  # seeded
    monkeypatch.setattr(prior, "PHASE2_BATCH", 2)  # phase 2 in chunks: every sample has its own decoder copy
    chunked = method.complete(m, mask, n_samples=3, seed=3)
    assert all(np.allclose(a.rotations, b.rotations, atol=1e-4) for a, b in zip(outs, chunked))


@pytest.mark.parametrize("variant", ["m", "tcn"])
def test_one_latent_variants(tmp_path, variant):
    ck = load_checkpoint(save_tiny(tmp_path / variant, variant))
    m = make_motion(ck.skeleton, 40, seed=8)
    mask = joints_mask(40, ck.skeleton, "lower")
    for init in ("sample", "interpolate"):
        out = PriorMethod(ck, init=init, **FAST).complete(m, mask, n_samples=2)
        assert len(out) == 2 and np.array_equal(out[1].rotations[mask.joints], m.rotations[mask.joints])


def test_default_restarts_and_iterations_follow_the_mask(ckpt, skeleton):
    m = make_motion(skeleton, 32, seed=15)
    method = PriorMethod(ckpt, phase1_iters=0, phase2_iters=0)
    result = method.complete(m, keyframe_mask(32, len(skeleton), [0, 31]))
    assert result.timings["restarts"] == result.options["restarts"] == DEFAULT_RESTARTS["inbetween"]
    result = method.complete(m, joints_mask(32, skeleton, skeleton.groups["upper"]))
    assert result.timings["restarts"] == DEFAULT_RESTARTS["complete"] > DEFAULT_RESTARTS["inbetween"]
    method = PriorMethod(ckpt, restarts=3, phase1_iters=0, phase2_iters=0)
    result = method.complete(m, joints_mask(32, skeleton, skeleton.groups["upper"]), n_samples=5)
    assert result.timings["restarts"] == 5  # raised to n_samples


def test_interpolation_init_starts_from_the_encoded_interpolation(ckpt, skeleton):
    """With init="interpolate" and no iterations, restart 0 decodes the encoder's mean of the SLERP fill."""
    m = make_motion(skeleton, 32, seed=14)
    mask = keyframe_mask(32, len(skeleton), [0, 1, 20, 31])
    method = PriorMethod(ckpt, init="interpolate", restarts=1, phase1_iters=0, phase2_iters=0, pin_rotations=False)
    out = method.complete(m, mask, seed=5)[0]
    fill = Interpolation().complete(m, mask)[0]
    rot = _decoded_posterior_mean(ckpt, fill)
    body = [j for j in range(len(skeleton)) if j != skeleton.root and j not in skeleton.ancestors(skeleton.root)]
    missing = ~mask.frames
    assert same_rotations(out.rotations[missing][:, body], rot[missing][:, body], atol=1e-4)
    with pytest.raises(MotionsynthError, match="init"):
        PriorMethod(ckpt, init="zeros")


@pytest.mark.slow
def test_model_init_starts_from_another_methods_completion(ckpt, skeleton, tmp_path):
    """init="model": restart 0 decodes the encoder's mean of ``init_model``'s completion; a path given to
    `load_method` is loaded as that method (here a tiny CVAE on the same skeleton)."""
    from helpers import tiny_checkpoint

    m = make_motion(skeleton, 32, seed=15)
    mask = keyframe_mask(32, len(skeleton), [0, 1, 20, 31])
    cvae = tiny_checkpoint(tmp_path / "cvae", "cvae", skeleton, ckpt.stats)
    method = load_method(ckpt, init="model", init_model=str(cvae), restarts=1, phase1_iters=0, phase2_iters=0,
                         pin_rotations=False)
    assert method.init_model.name == "cvae" and method.options()["init_model"].startswith("cvae ")
    out = method.complete(m, mask, seed=5)[0]
    rot = _decoded_posterior_mean(ckpt, method.init_model.complete(m, mask, seed=0)[0])
    body = [j for j in range(len(skeleton)) if j != skeleton.root and j not in skeleton.ancestors(skeleton.root)]
    assert same_rotations(out.rotations[~mask.frames][:, body], rot[~mask.frames][:, body], atol=1e-4)
    for bad in ({"init": "model"}, {"init_model": method.init_model}):
        with pytest.raises(MotionsynthError, match="init_model"):
            PriorMethod(ckpt, **bad)


@pytest.mark.slow
def test_model_init_through_the_command(ckpt, skeleton, tmp_path, capsys):
    """`motionsynth inbetween --init model --option init_model=CVAE`: the recipe the README gives for the best
    in-betweening runs end to end and keeps the keyframes."""
    from motionsynth.io import load_motion, save_motion

    from helpers import cli_output, tiny_checkpoint

    m = make_motion(skeleton, 32, seed=16)
    save_motion(m, tmp_path / "clip.bvh")
    cvae = tiny_checkpoint(tmp_path / "cvae", "cvae", skeleton, ckpt.stats)
    code, _, err = cli_output(capsys, "inbetween", tmp_path / "clip.bvh", "--model", ckpt.path, "--init", "model",
                              "--option", f"init_model={cvae}", "--restarts", "1", "--iters", "2,2",
                              "--keyframes", "0,20,31", "-o", tmp_path / "filled.bvh")
    assert code == 0, err
    out = load_motion(tmp_path / "filled.bvh")
    assert len(out) == 32 and np.allclose(out.root_positions[[0, 20, 31]], m.root_positions[[0, 20, 31]], atol=1e-3)


def test_nearest_init_projects_the_retrieved_completion(ckpt, skeleton):
    """init="nearest" (fitted first): with the defaults of completion (1 restart, no iterations) the missing joints
    are the decoded posterior mean of the nearest-neighbour fill; more samples are posterior draws, best first."""
    m = make_motion(skeleton, 32, seed=16)
    mask = joints_mask(32, skeleton, skeleton.groups["upper"])
    method = PriorMethod(ckpt, init="nearest")
    assert method.needs_fit and not PriorMethod(ckpt).needs_fit
    with pytest.raises(MotionsynthError, match="fit"):
        method.complete(m, mask)
    assert method.fit([make_motion(skeleton, 50, seed=s) for s in (17, 18)] + [m]) is method
    result = method.complete(m, mask)
    out, t = result[0], result.timings
    assert (t["restarts"], t["phase1_iters"], t["phase2_iters"]) == (DEFAULT_RESTARTS["complete_nearest"], 0, 0)
    fill = method.retrieval.complete(m, mask)[0]
    assert same_rotations(fill.rotations, m.rotations)  # m itself is in the database: retrieved exactly
    legs = [j for j in skeleton.groups["lower"] if j != skeleton.root and j not in skeleton.ancestors(skeleton.root)]
    assert same_rotations(out.rotations[:, legs], _decoded_posterior_mean(ckpt, fill)[:, legs], atol=1e-4)
    assert np.array_equal(out.rotations[mask.joints], m.rotations[mask.joints])
    samples = method.complete(m, mask, n_samples=3, seed=2)
    assert samples.objective == sorted(samples.objective)
    assert not np.allclose(samples[1].rotations, samples[2].rotations)


@pytest.mark.parametrize("refine,extra", [("window", {}), ("overlap", {}), ("overlap", {"refine_iters": 2,
                                                                                         "root": "model"})])
def test_refinement_modes_any_length(ckpt, skeleton, refine, extra):
    m = make_motion(skeleton, 200, seed=10)
    m.translations = np.broadcast_to(skeleton.offsets, (200, len(skeleton), 3)).copy()
    method = PriorMethod(ckpt, refine=refine, batch_size=48, **extra)
    out = method.complete(m, denoise_mask(200, len(skeleton)), n_samples=2)
    assert len(out) == 2 and out.timings["refine_s"] > 0 and out.options["refine"] == refine
    o = out[0]
    assert o.num_frames == 200 and o.fps == m.fps and o.name == m.name
    assert np.isfinite(o.rotations).all() and np.isfinite(o.root_positions).all()
    assert np.array_equal(o.translations, m.translations)
    if extra.get("root", "smooth") == "smooth":  # the input's root, smoothed: close to it
        assert np.abs(o.root_positions - m.root_positions).max() < 10.0
    short = method.complete(m[:20], denoise_mask(20, len(skeleton)))[0]  # shorter than the window: padded
    assert short.num_frames == 20


def test_denoise_at_another_frame_rate(ckpt, skeleton):
    m = make_motion(skeleton, 90, seed=11, fps=60.0)
    out = PriorMethod(ckpt, refine="overlap").complete(m, denoise_mask(90, len(skeleton)))[0]
    assert out.num_frames == 90 and out.fps == 60.0


def test_clear_errors(ckpt, skeleton, tmp_path):
    with pytest.raises(MotionsynthError, match="refine"):
        PriorMethod(ckpt, refine="median")
    with pytest.raises(MotionsynthError, match="restarts"):
        PriorMethod(ckpt, restarts=0)
    with pytest.raises(MotionsynthError, match="no such checkpoint"):
        load_method(tmp_path / "missing")
    vae = MotionVAE(MotionVAEConfig(window=32, hidden=8, latent=4), skeleton)
    folder = save_checkpoint(tmp_path / "mvae", vae, {"family": "mvae", "model": vae.config_dict()}, skeleton,
                             ckpt.stats)
    with pytest.raises(MotionsynthError, match="HM-VAE"):
        PriorMethod(load_checkpoint(folder))
    method = PriorMethod(ckpt, **FAST)
    m = make_motion(skeleton, 40, seed=12)
    with pytest.raises(MotionsynthError, match="n_samples"):
        method.complete(m, keyframe_mask(40, len(skeleton), [0, 39]), n_samples=0)
    with pytest.raises(MotionsynthError, match="fps"):
        method.complete(make_motion(skeleton, 40, fps=60.0), keyframe_mask(40, len(skeleton), [0, 39]))
    with pytest.raises(MotionsynthError, match="mask"):
        method.complete(m, keyframe_mask(30, len(skeleton), [0, 29]))
    other = make_skeleton(offset_scale=2.0)
    with pytest.raises(MotionsynthError, match="bone lengths"):
        method.complete(make_motion(other, 40), keyframe_mask(40, len(other), [0, 39]))


def _decoded_posterior_mean(ckpt, motion) -> np.ndarray:
    """(T, J, 4) rotations the model decodes from the encoder's posterior mean of ``motion`` (one window)."""
    model = ckpt.model
    x = torch.as_tensor(np.asarray(ckpt.stats.normalize(encode(motion, dtype=np.float32)), dtype=np.float32)[None])
    with torch.no_grad():
        mu_l, _, mu_g, _ = model.encode(x)
        rot = model.decode_rotations(mu_l, mu_g)
        feats = ckpt.stats.denormalize(torch.cat([rot, model.root_block(rot)], -1).numpy())[0]
    d6 = feats[:, :6 * len(ckpt.skeleton)].reshape(len(feats), -1, 6)
    return R.sixd_to_quat(d6.astype(np.float64))


def test_rotation_pinning_joins_the_keyframes(ckpt, skeleton):
    """With ``pin_rotations`` the first synthesised frame continues the last observed one (no jump)."""
    m = make_motion(skeleton, 32, seed=13)
    mask = keyframe_mask(32, len(skeleton), [0, 1, 2, 3, 4, 31])

    def jump(pin):
        out = PriorMethod(ckpt, pin_rotations=pin, **FAST).complete(m, mask, seed=2)[0]
        dots = np.abs((out.rotations[5] * out.rotations[4]).sum(-1)).clip(0, 1)
        return (2 * np.arccos(dots)).mean()

    assert jump(True) < jump(False)
