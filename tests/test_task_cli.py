"""`motionsynth inbetween / complete / denoise / predict` with a tiny randomly initialised HM-VAE checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.io import load_motion, save_motion
from motionsynth.tasks import load_mask

from helpers import creature_skeleton, make_motion, make_skeleton, meva_checkpoint, run_cli, save_tiny

FAST = ["--restarts", "2", "--iters", "3,2"]




@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("taskcli")
    sk = make_skeleton()
    save_motion(make_motion(sk, 40, seed=1), d / "walk.bvh")
    save_motion(make_motion(sk, 20, seed=2), d / "short.npz")
    other = make_skeleton(offset_scale=2.0)
    save_motion(make_motion(other, 40, seed=3), d / "other.bvh")
    save_motion(make_motion(creature_skeleton(), 40, seed=4), d / "creature.bvh")
    return {"dir": d, "model": save_tiny(d / "model"), "walk": d / "walk.bvh", "short": d / "short.npz",
            "other": d / "other.bvh", "creature": d / "creature.bvh"}


def test_inbetween_writes_bvh_preview_and_mask(files, tmp_path):
    out, gif, mask = tmp_path / "out.bvh", tmp_path / "preview.gif", tmp_path / "mask.npz"
    code = run_cli("inbetween", files["walk"], "--model", files["model"], "--keyframes", "0,1,20,39", *FAST,
                   "-o", out, "--preview", gif, "--mask-out", mask)
    assert code == 0
    given, result = load_motion(files["walk"]), load_motion(out)
    assert result.num_frames == 40 and result.skeleton.names == given.skeleton.names
    np.testing.assert_allclose(result.global_positions()[[0, 20]], given.global_positions()[[0, 20]], atol=1e-3)
    assert gif.stat().st_size > 0 and load_mask(mask).frames.sum() == 4


def test_inbetween_samples_and_short_clip(files, tmp_path):
    out = tmp_path / "s.npz"
    assert run_cli("inbetween", files["short"], "--model", files["model"], "--keyframes", "0,19", "--samples", "2",
                   "--seed", "3", "--init", "interpolate", *FAST, "-o", out) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_000.npz", "s_001.npz"]
    assert load_motion(tmp_path / "s_001.npz").num_frames == 20


def test_complete_and_predict(files, tmp_path):
    out = tmp_path / "c.bvh"
    assert run_cli("complete", files["walk"], "--model", files["model"], "--observe", "upper", "--frames", "5:35",
                   *FAST, "-o", out, "--preview", tmp_path / "c.png") == 0
    given, result = load_motion(files["walk"]), load_motion(out)
    assert result.num_frames == 40
    np.testing.assert_allclose(result.global_positions()[:5], given.global_positions()[:5], atol=1e-3)
    assert (tmp_path / "c.png").is_file()
    assert run_cli("predict", files["walk"], "--model", files["model"], "--given", "10", "--frames", "50", *FAST,
                   "-o", tmp_path / "p.bvh") == 0
    assert load_motion(tmp_path / "p.bvh").num_frames == 50


def test_complete_from_retrieval(files, tmp_path, capsys):
    """--init nearest --data CACHE: the pose database is the cache's train split (the same skeleton as the model)."""
    from motionsynth.data.cache import prepare, split_of

    src = tmp_path / "bvh"
    src.mkdir()
    names = [n for n in (f"take{i:03d}" for i in range(40)) if split_of(n) == "train"][:3]
    for k, name in enumerate(names):
        save_motion(make_motion(load_motion(files["walk"]).skeleton, 50, seed=20 + k), src / f"{name}.bvh")
    cache = prepare(src, "bvh-folder", tmp_path / "cache", workers=1, progress=False)
    out = tmp_path / "c.bvh"
    assert run_cli("complete", files["walk"], "--model", files["model"], "--observe", "upper", "--init", "nearest",
                   "--data", cache.path, "-o", out) == 0
    assert "pose database: 150 frames from 3 training takes" in capsys.readouterr().err
    given, result = load_motion(files["walk"]), load_motion(out)
    upper = given.skeleton.groups["upper"]
    np.testing.assert_allclose(np.abs((result.rotations[:, upper] * given.rotations[:, upper]).sum(-1)), 1.0,
                               atol=1e-5)


@pytest.mark.parametrize("method", ["window", "overlap"])
def test_denoise(files, tmp_path, method):
    out = tmp_path / "d.bvh"
    assert run_cli("denoise", files["walk"], "--model", files["model"], "--refine", method, "-o", out,
                   "--preview", tmp_path / "d.gif") == 0
    assert load_motion(out).num_frames == 40 and (tmp_path / "d.gif").is_file()
    smoothed = tmp_path / "s.bvh"
    assert run_cli("denoise", files["walk"], "--model", files["model"], "--refine", method, "--smooth", "3",
                   "-o", smoothed) == 0
    plain, smooth = (load_motion(p).global_positions() for p in (out, smoothed))
    assert not np.allclose(plain, smooth, atol=1e-3)  # the output filter took effect (its effect: test_denoising)
    assert run_cli("denoise", files["walk"], "--model", files["model"], "--refine", method, "--despike", "5",
                   "-o", tmp_path / "m.bvh") == 0


@pytest.mark.parametrize("args", [
    ["inbetween", "{walk}", "--keyframes", "0,40"],  # out of range
    ["inbetween", "{walk}", "--keyframes", "20,10"],  # unsorted
    ["inbetween", "{walk}", "--keyframes", "a,b"],  # not numbers
    ["inbetween", "{walk}", "--keyframes", ","],  # nothing observed
    ["inbetween", "{creature}", "--keyframes", "0,39"],  # not a humanoid: nothing to retarget
    ["inbetween", "{dir}/missing.bvh", "--keyframes", "0,9"],  # missing file
    ["inbetween", "{walk}", "--keyframes", "0,39", "--iters", "5"],  # bad --iters
    ["inbetween", "{walk}", "--keyframes", "0,39", "--samples", "0"],
    ["complete", "{walk}", "--observe", "Tail"],  # unknown joint
    ["complete", "{walk}", "--observe", "upper", "--frames", "30:10"],
    ["denoise", "{short}"],  # shorter than the model's window
    ["denoise", "{walk}", "--refine", "median"],
    ["denoise", "{walk}", "--option", "refine_iters=-1"],
    ["inbetween", "{walk}", "--keyframes", "0,39", "--option", "windw=3"],  # not an option of the method
    ["inbetween", "{walk}", "--keyframes", "0,39", "--label", "content=walk"],  # the HM-VAE takes no labels
    ["inbetween", "{walk}", "--keyframes", "0,39", "--label", "walk"],  # not KIND=NAME
    ["denoise", "{walk}", "--root", "spline"],
    ["denoise", "{walk}", "--despike", "4"],  # even
    ["denoise", "{walk}", "--smooth", "-1"],
    ["inbetween", "{walk}", "--keyframes", "0,39", "--init", "zeros"],
    ["complete", "{walk}", "--observe", "upper", "--init", "nearest"],  # no pose database (--data)
    ["complete", "{walk}", "--observe", "upper", "--data", "{dir}"],  # --data without --init nearest
    ["predict", "{walk}", "--given", "0"],
    ["predict", "{walk}", "--given", "10", "--frames", "8"],
])
def test_bad_input_exits_2_without_output(files, tmp_path, capsys, args):
    out = tmp_path / "out.bvh"
    args = [a.format(**files) for a in args]
    args = args[:2] + (FAST if args[0] != "denoise" else []) + args[2:]  # the test's own options come last
    assert run_cli(*args, "--model", files["model"], "-o", out, "--preview", tmp_path / "p.gif") == 2
    assert "error:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_model_and_output_exit_2(files, tmp_path, capsys):
    assert run_cli("inbetween", files["walk"], "--model", tmp_path / "nope", "--keyframes", "0,39",
                   "-o", tmp_path / "o.bvh") == 2
    assert run_cli("inbetween", files["walk"], "--model", files["model"], "--keyframes", "0,39",
                   "-o", tmp_path / "o.txt") == 2
    assert run_cli("inbetween", files["walk"], "--model", files["model"], "--keyframes", "0,39",
                   "-o", tmp_path / "o.bvh", "--preview", tmp_path / "p.jpg") == 2
    assert list(tmp_path.iterdir()) == []


def test_denoise_with_a_meva_checkpoint(files, tmp_path, capsys):
    folder, _ = meva_checkpoint(tmp_path / "meva")
    out = tmp_path / "out" / "d.npz"
    assert run_cli("denoise", files["walk"], "--model", folder, "-o", out, "--smooth", "0") == 0  # the family decides
    assert load_motion(out).num_frames == 40
    assert run_cli("denoise", files["walk"], "--model", folder, "--refine", "window", "-o", tmp_path / "w.bvh") == 2
    assert "bad option for the meva method" in capsys.readouterr().err
    assert run_cli("inbetween", files["walk"], "--model", folder, "--keyframes", "0,39", "-o", tmp_path / "i.bvh") == 2
    err = capsys.readouterr().err  # refused before any work, naming what can do it
    assert "a meva model cannot do in-betweening (it does denoising)" in err and "slerp" in err and "cvae" in err
    assert not (tmp_path / "w.bvh").exists() and not (tmp_path / "i.bvh").exists()


def test_model_may_be_a_training_run_folder(files, tmp_path, capsys):
    """--model RUN picks RUN/best, else RUN/model (as `motionsynth train --out RUN` leaves them)."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    save_tiny(run / "model")
    out = tmp_path / "r.bvh"
    assert run_cli("inbetween", files["walk"], "--model", run, "--keyframes", "0,39", *FAST, "-o", out) == 0
    assert load_motion(out).num_frames == 40
    capsys.readouterr()
    assert run_cli("inbetween", files["walk"], "--model", tmp_path / "run" / "checkpoints", "--keyframes", "0,39",
                   "-o", out) == 2
    assert "nor a training run folder" in capsys.readouterr().err


def test_a_model_takes_a_motion_of_another_rig_and_answers_on_that_rig(files, tmp_path, capsys):
    """The model's skeleton differs (bone lengths ×2): retargeted in and out; the keyframes come back exactly."""
    out = tmp_path / "o.bvh"
    assert run_cli("inbetween", files["other"], "--keyframes", "0,20,39", *FAST, "--model", files["model"],
                   "-o", out) == 0
    given, result = load_motion(files["other"]), load_motion(out)
    assert result.skeleton.names == given.skeleton.names
    np.testing.assert_allclose(result.skeleton.offsets, given.skeleton.offsets)
    for k in (0, 20, 39):
        np.testing.assert_allclose(result.rotations[k], given.rotations[k], atol=1e-6)
        np.testing.assert_allclose(result.root_positions[k], given.root_positions[k], atol=1e-4)
    assert not np.allclose(result.rotations[10], given.rotations[10], atol=1e-3)  # made, not copied
    capsys.readouterr()
    assert run_cli("inbetween", files["creature"], "--keyframes", "0,39", *FAST, "--model", files["model"],
                   "-o", out) == 2
    assert "not a humanoid" in capsys.readouterr().err
