"""The one task table (`tasks.TASKS`): a task registered once is in every front end — the task commands and their
help, the editor's task list, the bench summary — and methods say what they serve, with typed options."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from motionsynth import tasks
from motionsynth.bench import protocol
from motionsynth.errors import MotionsynthError
from motionsynth.io import load_motion, save_motion
from motionsynth.methods import baselines as B
from motionsynth.tasks import TASKS, Request, RequestError, Task, Work

from helpers import biped_motion, biped_skeleton, cli_output, feature_batch, tiny_checkpoint


def _prepare_tail(r: Request, frames: int) -> Work:
    """The toy task: the first half of the motion observed, the second half to synthesise."""
    T, J = r.motion.num_frames, len(r.motion.skeleton)
    return Work(r.motion, tasks.predict_mask(T, J, T // 2))


TAIL_PROTOCOL = protocol.Protocol({"window": 40, "stride": 40, "given": 20, "horizons": [5]}, protocol.run_predict,
                                  "Tail completion — MPJPE cm (lower is better)", protocol._predict_columns)


@pytest.fixture()
def tail(monkeypatch):
    """A toy task ``tail``, registered for the test only, served by the zero-velocity baseline."""
    task = Task("tail", "Tail completion", "tail completion", "Synthesise the second half of IN.", _prepare_tail,
                baseline="zero-velocity", baselines=("zero-velocity",), bench=TAIL_PROTOCOL)
    monkeypatch.setitem(TASKS, "tail", task)
    monkeypatch.setattr(B.ZeroVelocity, "tasks", (*B.ZeroVelocity.tasks, "tail"))
    return task


def test_a_registered_task_is_a_command_with_its_help(tail, tmp_path):
    from motionsynth.cli import tasks as task_commands

    app = typer.Typer()
    task_commands.register(app)  # the commands are made from the table
    runner = CliRunner()
    listing = runner.invoke(app, ["--help"])
    assert listing.exit_code == 0 and "tail" in listing.output and "inbetween" in listing.output
    own = runner.invoke(app, ["tail", "--help"])
    assert own.exit_code == 0 and "second half of IN" in own.output and "--keyframes" not in own.output
    clip = tmp_path / "clip.bvh"
    save_motion(biped_motion(biped_skeleton(), T=30, seed=1), clip)
    out = tmp_path / "out.bvh"
    run = runner.invoke(app, ["tail", str(clip), "--model", "zero-velocity", "-o", str(out)])
    assert run.exit_code == 0, run.output
    result, given = load_motion(out), load_motion(clip)
    np.testing.assert_allclose(result.rotations[:15], given.rotations[:15], atol=1e-6)  # the observed half kept
    np.testing.assert_allclose(result.rotations[15:], given.rotations[14:15].repeat(15, 0), atol=1e-6)  # held


def test_a_registered_task_is_in_the_editors_task_list(tail, tmp_path):
    from fastapi.testclient import TestClient

    from motionsynth.serve.app import create_app

    app = create_app([], tmp_path / "out")
    with TestClient(app, headers={"X-Motionsynth-Token": app.state.token}) as client:
        info = client.get("/api/models").json()
    assert info["tasks"]["tail"] == "Tail completion"
    models = {m["id"]: m for m in info["models"]}
    assert "tail" in models["zero-velocity"]["tasks"] and "tail" not in models["slerp"]["tasks"]


def test_a_registered_task_is_in_the_bench_summary(tail, cache):
    from motionsynth.bench.summary import run_summary, summary_markdown, summary_tasks

    assert "tail" in summary_tasks() and protocol.protocol_of("tail") is TAIL_PROTOCOL
    s = run_summary(cache, models=[], classifier="", tasks=["tail"], limit=2, isolate=False)
    [row] = s["rows"]
    assert row["task"] == "tail" and row["name"] == "zero-velocity" and row["status"] == "ok"
    assert "### Tail completion — MPJPE cm" in summary_markdown(s)


def test_every_front_end_lists_the_table():
    """Without a toy task: the built-in tasks, in the table's order, everywhere."""
    from motionsynth.bench.summary import summary_tasks
    from motionsynth.cli.report import report_tasks
    from motionsynth.demo import demo_tasks
    from motionsynth.serve.app import task_titles

    names = list(TASKS)
    assert names[:5] == ["inbetween", "complete", "predict", "denoise", "generate"]
    assert list(task_titles()) == names and summary_tasks() == names and demo_tasks() == names
    assert report_tasks() == [t for t in names if TASKS[t].needs_motion]
    assert set(protocol.protocol_names()) == {*names, "reconstruct", "classify"}


# ---- requests ----------------------------------------------------------------------------------------------------
def test_a_request_becomes_the_working_motion_and_mask():
    sk = biped_skeleton()
    motion = biped_motion(sk, T=30)
    work = TASKS["inbetween"].make(Request(motion=motion, keyframes=[0, 10, 29]))
    assert work.mask.frames.sum() == 3 and work.motion is motion
    work = TASKS["predict"].make(Request(motion=motion, given=10, length=50))
    assert work.motion.num_frames == 50 and work.mask.frames.sum() == 10
    work = TASKS["complete"].make(Request(motion=motion, observe=["upper"], span=(5, 20)))
    assert work.mask.joints[:5].all() and not work.mask.joints[10].all()
    work = TASKS["generate"].make(Request(skeleton=sk, fps=30.0, window=24, label={"content": "walk"}))
    assert work.motion.num_frames == 24 and work.mask.empty and work.label == {"content": "walk"}
    assert TASKS["denoise"].make(Request(motion=motion)).mask.noisy


@pytest.mark.parametrize("task, request_, field, text", [
    ("inbetween", {}, "keyframes", "in-betweening needs `keyframes`"),
    ("inbetween", {"keyframes": [0, 40]}, "keyframes", "out of range"),
    ("complete", {"observe": ["tail"]}, "observe", "no body part or joint named"),
    ("complete", {"observe": ["upper"], "span": (20, 10)}, "span", "`span` 20:10"),
    ("predict", {"given": 0}, "given", "`given` must be 1..30"),
    ("predict", {"given": 10, "length": 8}, "length", "`length` 8 leaves nothing to predict"),
    ("denoise", {"window": 64}, "motion", "shorter than the model's window of 64 frames"),
])
def test_bad_requests_name_their_field_in_the_librarys_words(task, request_, field, text):
    motion = biped_motion(biped_skeleton(), T=30)
    with pytest.raises(RequestError, match=text) as e:
        TASKS[task].make(Request(motion=motion, **request_))
    assert e.value.field == field and "--" not in str(e.value)


def test_the_command_line_names_its_flags():
    from motionsynth.cli.tasks import flag_error
    from motionsynth.errors import ParamError

    assert str(flag_error(RequestError("keyframes", "in-betweening needs `keyframes`"))) == \
        "in-betweening needs --keyframes"
    assert str(flag_error(RequestError("span", "`span` 20:10: need 0 <= start"))) == "--frames 20:10: need 0 <= start"
    assert str(flag_error(RequestError("observe", "every joint is observed"))) == "--observe: every joint is observed"
    assert str(flag_error(RequestError("motion", "20 frames is short"), "clip.bvh")) == "clip.bvh: 20 frames is short"
    assert str(flag_error(ParamError("give `per_label` or `count`", "per_label", "count"))) == \
        "give --per-label or --count"


# ---- methods: what they serve, their options ---------------------------------------------------------------------
def test_methods_say_what_they_serve_and_are_refused_before_any_work():
    from motionsynth.registry import check_serves, serving

    families, names = serving("denoise")
    assert "meva" in families and "cvae" not in families and "gaussian" in names and "slerp" not in names
    with pytest.raises(MotionsynthError, match=r"a meva model cannot do in-betweening \(it does denoising\); for "
                                               r"in-betweening use a cvae / delta / diffusion / hmvae"):
        check_serves("meva", "inbetween")
    with pytest.raises(MotionsynthError, match="the slerp baseline cannot do denoising.*savgol"):
        check_serves("slerp", "denoise")
    check_serves("constant-velocity", "predict")


def test_options_are_typed_checked_and_described(tmp_path):
    from motionsynth.methods.cvae import CVAEOptions
    from motionsynth.methods.prior import PriorOptions
    from motionsynth.registry import load_method

    assert PriorOptions.build({"restarts": 4}).restarts == 4
    with pytest.raises(MotionsynthError, match="option restarts must be a whole number"):
        PriorOptions.build({"restarts": "many"})
    with pytest.raises(MotionsynthError, match="init must be one of sample, interpolate, nearest, model"):
        PriorOptions.build({"init": "zeros"})
    described = {o["name"]: o for o in CVAEOptions.describe()}
    assert described["temperature"] == {"name": "temperature", "type": "float", "optional": False, "default": 1.0,
                                        "help": described["temperature"]["help"], "choices": None}
    assert described["long"]["choices"] == ["auto", "continue", "windows"]
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    cvae = tiny_checkpoint(tmp_path / "cvae", "cvae", sk, stats)
    with pytest.raises(MotionsynthError, match=r"bad option for the cvae method: 'restarts' is not one of its "
                                               r"options \(candidates, temperature"):
        load_method(cvae, restarts=4)
    with pytest.raises(MotionsynthError, match="bad option for the gaussian method: 'width'"):
        B.make_baseline("gaussian", width=3)


def test_common_checks_run_before_any_work():
    motion = biped_motion(biped_skeleton(), T=20)
    slerp = B.make_baseline("slerp")
    with pytest.raises(MotionsynthError, match="n_samples"):
        slerp.complete(motion, tasks.keyframe_mask(20, len(motion.skeleton), [0, 19]), n_samples=0)
    with pytest.raises(MotionsynthError, match="not conditioned on labels"):
        slerp.complete(motion, tasks.keyframe_mask(20, len(motion.skeleton), [0, 19]), label={"content": "walk"})
    with pytest.raises(MotionsynthError, match="cannot generate from nothing"):
        slerp.complete(motion, tasks.generate_mask(20, len(motion.skeleton)))


# ---- the task commands: baselines like models, one-line refusals ----------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("table")
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    save_motion(biped_motion(sk, T=40, seed=1, name="walk"), d / "walk.bvh")
    return {"clip": d / "walk.bvh", "cvae": tiny_checkpoint(d / "cvae", "cvae", sk, stats)}


def test_baselines_work_in_the_task_commands(files, tmp_path, capsys):
    out = tmp_path / "s.bvh"
    code, stdout, _ = cli_output(capsys, "inbetween", files["clip"], "--model", "slerp", "--keyframes", "0,39",
                                 "-o", out)
    assert code == 0 and out.is_file() and "wrote" in stdout
    code, _, _ = cli_output(capsys, "predict", files["clip"], "--model", "constant-velocity", "--given", "10",
                            "--frames", "60", "-o", tmp_path / "p.bvh")
    assert code == 0 and load_motion(tmp_path / "p.bvh").num_frames == 60
    code, _, _ = cli_output(capsys, "denoise", files["clip"], "--model", "gaussian", "--option", "sigma=1.5",
                            "-o", tmp_path / "d.bvh")
    assert code == 0
    code, _, err = cli_output(capsys, "denoise", files["clip"], "--model", "slerp", "-o", tmp_path / "x.bvh")
    assert code == 2 and "the slerp baseline cannot do denoising" in err and "gaussian" in err
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", "nearest-neighbour", "--observe", "upper",
                              "-o", tmp_path / "x.bvh")
    assert code == 2 and "give --data" in err
    assert not (tmp_path / "x.bvh").exists()


def test_a_baseline_that_learns_is_fitted_on_data(files, cache, tmp_path, capsys):
    out = tmp_path / "n.bvh"
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", "nearest-neighbour", "--observe", "upper",
                              "--data", cache.path, "-o", out)
    assert code == 0 and "pose database" in err
    given, result = load_motion(files["clip"]), load_motion(out)
    upper = given.skeleton.groups["upper"]
    np.testing.assert_allclose(result.rotations[:, upper], given.rotations[:, upper], atol=1e-6)


def test_a_cvae_refuses_the_priors_options_in_one_line(files, tmp_path, capsys):
    code, _, err = cli_output(capsys, "inbetween", files["clip"], "--model", files["cvae"], "--keyframes", "0,39",
                              "--restarts", "4", "-o", tmp_path / "o.bvh")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unexpected keyword" not in err
    assert "'restarts' is not one of its options (candidates, temperature" in err
    code, stdout, _ = cli_output(capsys, "inbetween", files["clip"], "--model", files["cvae"], "--keyframes", "0,39",
                                 "-o", tmp_path / "o.bvh", "--option", "help")
    assert code == 0 and "options of the cvae method" in stdout and "temperature = 1.0" in stdout
    assert not (tmp_path / "o.bvh").exists()
    code, _, err = cli_output(capsys, "inbetween", files["clip"], "--model", files["cvae"], "--keyframes", "0,40",
                              "-o", tmp_path / "o.bvh")
    assert code == 2 and "--keyframes [0, 40] out of range" in err


def test_option_help_needs_only_the_model_and_missing_inputs_are_one_line(files, tmp_path, capsys):
    code, stdout, _ = cli_output(capsys, "inbetween", "--model", files["cvae"], "--option", "help")
    assert code == 0 and "options of the cvae method" in stdout
    code, stdout, _ = cli_output(capsys, "generate", "--model", "slerp", "--option", "help")
    assert code == 0 and "takes no options" in stdout
    for args, missing in [(["--model", "slerp", "-o", tmp_path / "o.bvh"], "argument IN"),
                          ([files["clip"], "--model", "slerp", "-o", tmp_path / "o.bvh"], "option --keyframes"),
                          ([files["clip"], "--model", "slerp", "--keyframes", "0,10"], "option -o / --out")]:
        code, _, err = cli_output(capsys, "inbetween", *args)
        assert code == 2 and err.strip() == f"error: missing {missing} (motionsynth inbetween --help)"
    assert not list(tmp_path.iterdir())
