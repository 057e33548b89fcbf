"""scripts/keypoint_bench.py: the keypoint denoising benchmark scores every row end to end — the filters tuned on the
tuning split, a learned denoiser through the fitted rig (`--model`, a tiny untrained MEVA), clips shorter than its
window padded and cut back — with finite numbers of the right shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionsynth.registry import open_method

from helpers import load_script, tiny_checkpoint

kb = load_script("keypoint_bench")

# H36M point → joint of the test cache's 20-joint biped (its three-joint arms: clavicle, shoulder, hand).
BIPED_TO_H36M = {
    "Hip": "Hips", "RHip": "RightUpLeg", "RKnee": "RightLeg", "RFoot": "RightFoot", "LHip": "LeftUpLeg",
    "LKnee": "LeftLeg", "LFoot": "LeftFoot", "Spine": "Chest", "Thorax": "Neck", "Neck/Nose": "Head",
    "Head": "Head+top", "LShoulder": "LeftShoulder", "LElbow": "LeftArm", "LWrist": "LeftHand",
    "RShoulder": "RightShoulder", "RElbow": "RightArm", "RWrist": "RightHand",
}


@pytest.fixture()
def biped_points(monkeypatch):
    monkeypatch.setattr(kb, "BANDAI_TO_H36M", BIPED_TO_H36M)


@pytest.fixture()
def meva(cache, tmp_path):
    return tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)


def test_bench_scores_every_row_with_a_model(cache, meva, biped_points, tmp_path, capsys):
    out = tmp_path / "kp.json"
    kb.main(["--data", str(cache.path), "--model", str(meva), "--limit", "2", "--tune-limit", "1",
             "--json", str(out)])
    result = json.loads(out.read_text())
    rows = {r["method"]: r for r in result["results"]}
    assert {"noisy", "fit", "meva", "fit (clean input)", "meva (clean input)"} <= set(rows)
    assert any(n.startswith("gaussian(") and n.endswith("+meva") for n in rows)
    assert any(n.startswith("meva+gaussian(") for n in rows)
    for r in rows.values():
        assert np.isfinite([r["mpjpe_mm"], r["accel_mm"], r["ms_per_1k_frames"], r["mpjpe_long_mm"]]).all(), r
        assert r["mpjpe_mm"] >= 0 and r["accel_mm"] >= 0
    assert rows["fit (clean input)"]["mpjpe_mm"] < rows["noisy"]["mpjpe_mm"]  # the fit of clean points is close
    assert "| meva |" in capsys.readouterr().out


def test_model_path_pads_short_clips_and_keeps_shapes(cache, meva, biped_points):
    model = open_method(str(meva), "denoise")
    denoise = kb.model_denoiser(model)
    clean = kb.clean_keypoints(cache.motion(cache.split("test")[0]))
    assert clean.shape[1:] == (17, 3)
    args = type("Args", (), dict(sigma_cm=2.0, spike_rate=0.02, spike_cm=(10.0, 30.0), drop_rate=0.2))
    noisy = kb.add_noise(clean, np.random.default_rng(0), args)
    for frames in (model.window // 2 + 3, model.window, len(clean)):  # shorter than the window: padded, cut back
        out = denoise(noisy[:frames], 30.0, kb.LAYOUT)
        assert out.shape == (frames, 17, 3) and np.isfinite(out).all()
    scores = kb.score(denoise, [(clean[:20], noisy[:20]), (clean, noisy)], 30.0, model.window)
    assert np.isfinite([scores["mpjpe_mm"], scores["accel_mm"], scores["mpjpe_long_mm"]]).all()
