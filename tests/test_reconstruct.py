"""The ``reconstruct`` benchmark (HM-VAE Table 3): encode → decode of test windows, for one or several checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motionsynth.bench import run_benchmark
from motionsynth.bench.protocol import Reconstructor
from motionsynth.bench.report import load_records
from motionsynth.cli import main
from motionsynth.data.windows import windows
from motionsynth.errors import MotionsynthError
from motionsynth.registry import load_checkpoint

from helpers import other_skeleton, tiny_checkpoint

FAMILIES = ("hmvae", "hmvae-m", "hmvae-tcn", "mvae")  # every family with an encoder/decoder
COLUMNS = ["pa_mpjpe_cm", "mpjpe_rel_cm", "mpjpe_cm", "accel", "accel_gt", "accel_error", "windows"]


@pytest.fixture(scope="module")
def folders(cache, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpts")
    return {f: tiny_checkpoint(tmp / f, f, cache.skeleton, cache.stats) for f in FAMILIES}


def _with_reconstruct(folder, fn) -> Reconstructor:
    """A Reconstructor whose model's ``reconstruct`` is ``fn`` (normalised features in and out)."""
    ckpt = load_checkpoint(folder)
    ckpt.model.reconstruct = fn
    return Reconstructor(ckpt)


def test_identity_reconstruction_scores_zero(cache, folders):
    """Decoding the untouched features from each window's origin gives back the window: the pipeline is exact."""
    rec = run_benchmark("reconstruct", cache, method=_with_reconstruct(folders["hmvae"], lambda x: x), progress=False)
    row = rec["results"][0]
    assert list(row) == COLUMNS
    n = len(windows(cache, "test", 32, 32))
    assert row["windows"] == n == 2 * (200 // 32)
    for k in ("pa_mpjpe_cm", "mpjpe_rel_cm", "mpjpe_cm", "accel_error"):
        assert row[k] < 1e-3, k
    assert row["accel"] == pytest.approx(row["accel_gt"], abs=1e-4) and row["accel_gt"] > 0
    assert rec["settings"]["window"] == 32 and rec["settings"]["stride"] == 32


def test_root_block_drives_the_global_trajectory(cache, folders):
    """A root-height error moves every joint: the global MPJPE sees it, the root-relative and PA-MPJPE do not."""
    ckpt = load_checkpoint(folders["hmvae"])
    h = 6 * len(cache.skeleton)  # the root block's height channel
    shift = torch.zeros(ckpt.stats.dim)
    shift[h] = 1.0  # one standard deviation, in normalised units

    rec = run_benchmark("reconstruct", cache, method=_with_reconstruct(folders["hmvae"], lambda x: x + shift),
                        progress=False)
    row = rec["results"][0]
    assert row["mpjpe_cm"] == pytest.approx(float(ckpt.stats.std[h]), rel=1e-3)
    assert row["mpjpe_rel_cm"] < 1e-3 and row["pa_mpjpe_cm"] < 1e-3 and row["accel_error"] < 1e-3


def test_untrained_models_side_by_side(cache, folders, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    args = ["bench", "reconstruct", "--data", str(cache.path), "--limit", "5", "--json", str(out_json),
            "--no-progress"]
    for f in FAMILIES:
        args += ["--model", str(folders[f])]
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None)
    stdout = capsys.readouterr().out
    assert "| method | " + " | ".join(COLUMNS) + " |" in stdout
    recs = load_records(out_json)
    assert [r["method"] for r in recs] == list(FAMILIES)
    for r, f in zip(recs, FAMILIES):
        assert r["task"] == "reconstruct" and r["model"] == str(folders[f]) and r["split"] == "test"
        assert r["checkpoint_hash"] == load_checkpoint(folders[f]).weights_hash
        assert r["data_hash"] == cache.data_hash and r["settings"]["model_data_hash"] == "tiny"
        row = r["results"][0]
        assert row["windows"] == 5
        assert all(np.isfinite(row[k]) and row[k] > 0 for k in COLUMNS)
    json.dumps(recs, allow_nan=False)
    assert [r["settings"]["local_latent"] for r in recs] == [True, False, False, False]


def test_reconstruct_errors(cache, folders, tmp_path, capsys):
    with pytest.raises(MotionsynthError, match="reconstruct needs a learned model"):
        run_benchmark("reconstruct", cache, None)
    with pytest.raises(MotionsynthError, match="reconstructs windows of 32 frames, not 64"):
        run_benchmark("reconstruct", cache, model=folders["mvae"], settings={"window": 64}, progress=False)

    def cli(*args):
        with pytest.raises(SystemExit) as e:
            main(["bench", "reconstruct", "--data", str(cache.path), *args])
        return e.value.code, capsys.readouterr().err

    meva = tiny_checkpoint(tmp_path / "meva", "meva", cache.skeleton, cache.stats)
    code, err = cli("--model", str(meva))
    assert code == 2 and "a meva model cannot reconstruct" in err
    code, err = cli("--method", "slerp")
    assert code == 2 and "baselines cannot reconstruct" in err
    mismatch = tiny_checkpoint(tmp_path / "other", "hmvae", other_skeleton(), cache.stats)
    code, err = cli("--model", str(folders["hmvae"]), "--model", str(mismatch))
    assert code == 2 and "different skeleton" in err
