"""The benchmark harness (`motionsynth.bench`) and `motionsynth bench`, on a tiny synthetic cache of BVH takes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionsynth import rotations as R
from motionsynth.bench import NOISE_MODELS, NoiseConfig, add_noise, calibrate_rotation_sigma, run_benchmark
from motionsynth.bench.protocol import tune
from motionsynth.bench.report import compare_markdown, load_records, save_json, to_markdown
from motionsynth.cli import main
from motionsynth.data.noise import dropped_frames
from motionsynth.errors import MotionsynthError
from motionsynth.motion import Motion
from motionsynth.skeleton import Skeleton

from helpers import biped_motion, biped_skeleton

RECORD_KEYS = {"task", "method", "model", "checkpoint_hash", "data_hash", "split", "seed", "settings", "results"}


def _check_record(rec, task, method, n_rows):
    assert set(rec) == RECORD_KEYS
    assert rec["task"] == task and rec["method"] == method and rec["split"] == "test"
    assert len(rec["results"]) == n_rows
    json.dumps(rec, allow_nan=False)  # plain JSON, every number finite
    for row in rec["results"]:
        assert row["windows"] > 0
        assert all(v is None or np.isfinite(v) for v in row.values() if isinstance(v, float))


# ---- tasks -------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_inbetween_slerp_beats_zero_velocity(cache):
    recs = {m: run_benchmark("inbetween", cache, m, limit=6, progress=False) for m in ("zero-velocity", "slerp")}
    for m, rec in recs.items():
        _check_record(rec, "inbetween", m, 4)
        assert [r["gap"] for r in rec["results"]] == [5, 15, 30, 45]
        assert set(rec["results"][0]) >= {"l2q", "l2p", "npss", "mpjpe_cm", "accel", "foot_skate", "windows"}
        moving = cache.skeleton.subtree(cache.skeleton.root)  # the static "Root" joint is not scored
        assert np.array(rec["settings"]["l2p_std"]).shape == (len(moving), 3) == (len(cache.skeleton) - 1, 3)
    for zv, sl in zip(recs["zero-velocity"]["results"], recs["slerp"]["results"]):
        assert sl["l2p"] < zv["l2p"] and sl["l2q"] < zv["l2q"] and sl["mpjpe_cm"] < zv["mpjpe_cm"]
    # the record is deterministic
    again = run_benchmark("inbetween", cache, "slerp", limit=6, progress=False)
    assert again["results"] == recs["slerp"]["results"]


def test_complete_fits_on_train(cache, monkeypatch):
    touched = []
    original = type(cache).motion
    monkeypatch.setattr(type(cache), "motion", lambda self, i: touched.append(i) or original(self, i))
    rec = run_benchmark("complete", cache, "mean-pose", limit=3, progress=False)
    _check_record(rec, "complete", "mean-pose", 3)
    assert rec["settings"]["fit"] == {"split": "train", "takes": len(cache.split("train"))}
    splits = {cache.takes[i].split for i in touched}
    assert splits == {"train", "test"}
    rows = {r["setting"]: r for r in rec["results"]}
    assert set(rows) == {"lower body missing", "upper body missing", "left arm missing"}
    # the static joint above the moving root is not scored
    assert rows["upper body missing"]["missing_joints"] == len(cache.skeleton.groups["upper"])
    assert rows["lower body missing"]["missing_joints"] == len(cache.skeleton.groups["lower"]) - 1
    nn = run_benchmark("complete", cache, "nearest-neighbour", limit=3, progress=False)
    _check_record(nn, "complete", "nearest-neighbour", 3)
    assert nn["settings"]["fit"]["database_frames"] == sum(cache.takes[i].length for i in cache.split("train"))


def test_heading_local_ignores_where_the_character_faces():
    """`heading_local`: turning a whole motion about +Y leaves it unchanged; root-relative positions do change."""
    from motionsynth.bench.protocol import global_transforms, heading_local
    from motionsynth.kinematics import heading_quat

    sk = biped_skeleton()
    m = biped_motion(sk, T=30, seed=4)
    turned = m.copy()
    q = heading_quat(np.full(30, 0.7))
    turned.rotations[:, sk.root] = R.quat_mul(q, m.rotations[:, sk.root])
    turned.root_positions = R.quat_apply(q, m.root_positions)
    rot, pos = global_transforms([m, turned])
    rel = pos - pos[:, :, sk.root:sk.root + 1]
    assert np.abs(rel[0] - rel[1]).max() > 1.0
    local = heading_local(pos, rot, sk.root)
    np.testing.assert_allclose(local[0], local[1], atol=1e-6)
    assert np.abs(local[:, :, sk.root]).max() < 1e-9


def test_complete_fits_a_learned_method_that_needs_it(cache, tmp_path):
    """The prior with init="nearest" is fitted on the TRAIN split like the baselines, and scored the same way."""
    from motionsynth.bench.protocol import load_model
    from motionsynth.checkpoint import save_checkpoint
    from motionsynth.registry import build_model, model_config

    sk = cache.skeleton
    model = build_model("hmvae", model_config("hmvae", "cpu", {}), sk)
    model.set_stats(cache.stats)
    folder = save_checkpoint(tmp_path / "ckpt", model, {"family": "hmvae", "model": model.config_dict(),
                                                        "fps": 30.0}, sk, cache.stats)
    method = load_model(folder, "complete", cache, init="nearest")
    rec = run_benchmark("complete", cache, model=str(folder), method=method, limit=2, progress=False,
                        settings={"missing": ["lower_body"]})
    _check_record(rec, "complete", "hmvae", 1)
    assert rec["settings"]["fit"]["takes"] == len(cache.split("train"))
    assert rec["settings"]["fit"]["database_frames"] == sum(cache.takes[i].length for i in cache.split("train"))
    row = rec["results"][0]
    assert 0 < row["mpjpe_local_cm"] and 0 < row["mpjpe_rel_cm"] <= row["mpjpe_cm"] + 1e-9


def test_predict(cache):
    zv = run_benchmark("predict", cache, "zero-velocity", limit=4, progress=False)
    cv = run_benchmark("predict", cache, "constant-velocity", limit=4, progress=False)
    for rec in (zv, cv):
        _check_record(rec, "predict", rec["method"], 5)
        assert [r["horizon"] for r in rec["results"]] == [5, 10, 20, 30, "1-30"]
        assert rec["results"][-1]["npss"] is not None
    # error grows with the horizon for holding the last frame
    e = [r["mpjpe_cm"] for r in zv["results"][:4]]
    assert e == sorted(e)


@pytest.mark.slow
def test_denoise_tunes_on_val_only(cache, monkeypatch):
    settings = {"noise_models": ["gaussian", "dropped"], "tune_windows": 2}
    rec = run_benchmark("denoise", cache, "gaussian", settings=settings, limit=2, progress=False)
    _check_record(rec, "denoise", "gaussian", 2)
    tuning = rec["settings"]["tuning"]
    assert tuning["split"] == "val"
    for row in rec["results"]:
        chosen = tuning["per_noise_model"][row["noise"]]["chosen"]
        assert row["params"] == chosen
        grid = tuning["per_noise_model"][row["noise"]]["grid"]
        assert min(g["mpjpe_cm"] for g in grid) == pytest.approx(
            next(g["mpjpe_cm"] for g in grid if g["params"] == chosen), abs=1e-3)
        assert row["input_mpjpe_cm"] > 0
    gauss = next(r for r in rec["results"] if r["noise"] == "gaussian")
    assert gauss["accel_error"] < gauss["input_accel_error"]  # the filter smooths

    touched = []
    original = type(cache).motion
    monkeypatch.setattr(type(cache), "motion", lambda self, i: touched.append(i) or original(self, i))
    from motionsynth.bench.protocol import resolve_settings

    tune("savgol", cache, "mixed", resolve_settings("denoise", {"tune_windows": 2}), seed=0)
    assert touched and {cache.takes[i].split for i in touched} == {"val"}


# ---- noise models ----------------------------------------------------------------------------------------------------
def _angles(a: Motion, b: Motion) -> np.ndarray:
    """(T, J) angle (degrees) of the rotation between corresponding local rotations."""
    return np.degrees(np.linalg.norm(R.quat_to_axis_angle(R.quat_mul(R.quat_inv(a.rotations), b.rotations)), axis=-1))


@pytest.mark.parametrize("model", NOISE_MODELS)
def test_noise_is_deterministic_and_spares_static_joints(model):
    m = biped_motion(biped_skeleton(), T=150)
    a, b, c = add_noise(m, model, [0, 1]), add_noise(m, model, [0, 1]), add_noise(m, model, [0, 2])
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_positions, b.root_positions)
    assert not np.array_equal(a.rotations, c.rotations)
    assert np.allclose(a.rotations[:, 0], m.rotations[:, 0])  # static joint above the root untouched
    assert not np.allclose(a.rotations, m.rotations)
    assert np.array_equal(m.rotations, biped_motion(biped_skeleton(), T=150).rotations)  # the input is not modified


def test_noise_magnitudes():
    m = biped_motion(biped_skeleton(), T=3000)
    cfg = NoiseConfig()
    moving = slice(1, None)
    # gaussian: rotation-vector components ~ N(0, σ²), root ~ N(0, σ_root²)
    g = add_noise(m, "gaussian", 0)
    rv = R.quat_to_axis_angle(R.quat_mul(R.quat_inv(m.rotations), g.rotations))[:, moving]
    assert np.degrees(rv.std()) == pytest.approx(cfg.rot_sigma_deg, rel=0.05)
    assert (g.root_positions - m.root_positions).std() == pytest.approx(cfg.root_sigma_cm, rel=0.05)
    # spikes: 2 % of the moving entries, 30–60°
    s = _angles(m, add_noise(m, "spikes", 0))[:, moving]
    hit = s > 1e-6
    assert hit.mean() == pytest.approx(cfg.spike_rate, rel=0.15)
    assert s[hit].min() >= 30 - 1e-6 and s[hit].max() <= 60 + 1e-6
    # dropped: 10 % of the frames hold the previous frame, in runs of 1–5
    d = add_noise(m, "dropped", 0)
    held = np.all(d.rotations == np.roll(d.rotations, 1, axis=0), axis=(1, 2))
    held[0] = False
    assert held.sum() == round(cfg.drop_rate * m.num_frames)
    edges = np.diff(np.r_[0, held.astype(int), 0])
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert runs.min() >= 1 and runs.max() <= 5


def test_dropped_frames_index():
    rng = np.random.default_rng(3)
    idx = dropped_frames(100, rng, 0.1, (1, 5))
    assert idx[0] == 0 and (idx <= np.arange(100)).all() and (np.arange(100) != idx).sum() == 10
    assert np.all(idx[idx != np.arange(100)] == idx[idx[idx != np.arange(100)]])  # held frames are good frames


def test_calibrate_rotation_sigma():
    ms = [biped_motion(biped_skeleton(), T=60, seed=s) for s in range(2)]
    sigma = calibrate_rotation_sigma(ms, target_cm=3.0, steps=14)
    cfg = NoiseConfig(rot_sigma_deg=sigma)
    err = np.mean([np.linalg.norm(add_noise(m, "gaussian", [0, i], cfg).global_positions() - m.global_positions(),
                                  axis=-1).mean() for i, m in enumerate(ms)])
    assert err == pytest.approx(3.0, rel=0.05)


# ---- report ------------------------------------------------------------------------------------------------------
def _record(method="a", l2p=1.0):
    return {"task": "inbetween", "method": method, "model": None, "checkpoint_hash": None, "data_hash": "h",
            "split": "test", "seed": 0, "settings": {},
            "results": [{"gap": 5, "l2p": l2p, "windows": 3}, {"gap": 15, "l2p": 2 * l2p, "windows": 3}]}


def test_report(tmp_path):
    md = to_markdown(_record())
    assert "| gap | l2p | windows |" in md and "| 5 | 1.000 | 3 |" in md
    both = compare_markdown([_record("a", 1.0), _record("b", 0.5)])
    lines = [line for line in both.splitlines() if line.startswith("| ")]
    assert lines[0] == "| gap | method | l2p | windows |"
    assert [line.split(" | ")[1] for line in lines[1:]] == ["a", "b", "a", "b"]
    save_json(_record(), tmp_path / "r.json")
    assert load_records(tmp_path / "r.json") == [_record()]
    save_json([_record("a"), _record("b")], tmp_path / "rs.json")
    assert [r["method"] for r in load_records(tmp_path / "rs.json")] == ["a", "b"]
    with pytest.raises(MotionsynthError):
        save_json({"task": "x"}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


# ---- errors and the command line ------------------------------------------------------------------------------------
def test_bad_input_errors(cache):
    with pytest.raises(MotionsynthError, match="unknown task"):
        run_benchmark("dance", cache, "slerp")
    with pytest.raises(MotionsynthError, match="unknown method 'nope'"):
        run_benchmark("inbetween", cache, "nope")
    with pytest.raises(MotionsynthError, match="no test take is long enough for windows of 500 frames"):
        run_benchmark("predict", cache, "zero-velocity", settings={"window": 500}, progress=False)
    with pytest.raises(MotionsynthError, match="unknown predict setting"):
        run_benchmark("predict", cache, "zero-velocity", settings={"windw": 5})
    with pytest.raises(MotionsynthError, match="generate needs an action classifier"):
        run_benchmark("generate", cache, "slerp")
    with pytest.raises(MotionsynthError, match="reconstruct needs a learned model"):
        run_benchmark("reconstruct", cache, None)
    with pytest.raises(MotionsynthError, match="no such motion cache"):
        run_benchmark("inbetween", "/nonexistent/cache", "slerp")


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_cli(cache, tmp_path, capsys):
    out_json = tmp_path / "b.json"
    try:
        main(["bench", "predict", "--data", str(cache.path), "--method", "zero-velocity,constant-velocity",
              "--limit", "2", "--json", str(out_json), "--no-progress"])
    except SystemExit as e:
        assert e.code in (0, None)
    stdout = capsys.readouterr().out
    assert "| horizon | method | mpjpe_cm |" in stdout
    recs = load_records(out_json)
    assert [r["method"] for r in recs] == ["zero-velocity", "constant-velocity"]
    try:  # --setting overrides the protocol (YAML values)
        main(["bench", "predict", "--data", str(cache.path), "--method", "zero-velocity", "--limit", "2",
              "-s", "horizons=[5]", "--setting", "given=8", "--json", str(out_json), "--no-progress"])
    except SystemExit as e:
        assert e.code in (0, None)
    rec = load_records(out_json)[0]
    assert rec["settings"]["horizons"] == [5] and rec["settings"]["given"] == 8
    assert 5 in [r["horizon"] for r in rec["results"]] and 30 not in [r["horizon"] for r in rec["results"]]
    capsys.readouterr()
    code, _, err = _cli(capsys, "predict", "--data", str(cache.path), "--method", "zero-velocity", "-s", "horizon=5")
    assert code == 2 and "unknown predict setting 'horizon'" in err
    code, _, err = _cli(capsys, "predict", "--data", str(cache.path), "--method", "zero-velocity", "-s", "given")
    assert code == 2 and "expected KEY=VALUE" in err

    code, _, err = _cli(capsys, "dance", "--data", str(cache.path), "--method", "slerp")
    assert code == 2 and "unknown task" in err
    code, _, err = _cli(capsys, "inbetween", "--data", str(cache.path), "--method", "nope")
    assert code == 2 and "unknown method" in err
    code, _, err = _cli(capsys, "inbetween", "--data", str(tmp_path / "missing"), "--method", "slerp")
    assert code == 2 and "no such motion cache" in err
    code, _, err = _cli(capsys, "inbetween", "--data", str(cache.path), "--model", str(tmp_path))
    assert code == 2 and ("learned models are not available yet" in err or "checkpoint" in err)
    code, _, err = _cli(capsys, "generate", "--data", str(cache.path), "--method", "slerp")
    assert code == 2 and "action classifier" in err


def test_cli_model_skeleton_mismatch(cache, tmp_path, capsys):
    from motionsynth.checkpoint import save_checkpoint
    from motionsynth.registry import build_model, model_config

    sk = biped_skeleton()
    other = Skeleton([n if n != "Head" else "Skull" for n in sk.names], sk.parents, sk.offsets, sk.channels,
                     root=sk.root)
    family = "hmvae"
    model = build_model(family, model_config(family, "cpu", {}), other)
    model.set_stats(cache.stats)
    folder = save_checkpoint(tmp_path / "ckpt", model, {"family": family, "model": model.config_dict()}, other,
                             cache.stats)
    code, _, err = _cli(capsys, "reconstruct", "--data", str(cache.path), "--model", str(folder))
    assert code == 2 and "different skeleton" in err  # a reconstructor works on its own skeleton only


@pytest.mark.slow
def test_inbetween_samples_measure_diversity(cache, tmp_path):
    """K samples per window: a deterministic method has no diversity and every sample scores alike; the CVAE's K
    draws differ, and the best of K is never worse than their mean."""
    from helpers import tiny_checkpoint

    settings = {"gaps": [5], "samples": 3}
    slerp = run_benchmark("inbetween", cache, "slerp", limit=2, progress=False, settings=settings)["results"][0]
    assert slerp["samples"] == 3 and slerp["apd_cm"] == 0.0
    assert slerp["l2p_samples"] == pytest.approx(slerp["l2p"]) == pytest.approx(slerp["l2p_best_of_k"])
    ckpt = tiny_checkpoint(tmp_path / "cvae", "cvae", cache.skeleton, cache.stats)
    cvae = run_benchmark("inbetween", cache, model=str(ckpt), limit=2, progress=False, settings=settings)["results"][0]
    assert cvae["apd_cm"] > 0 and cvae["l2p_best_of_k"] <= cvae["l2p_samples"]
    with pytest.raises(MotionsynthError, match="samples"):
        run_benchmark("inbetween", cache, "slerp", limit=2, progress=False, settings={"samples": 0})
