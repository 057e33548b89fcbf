"""No silent surprises (issue 23, item 6): completion keeps the observed root path unless asked to synthesise it (the
benchmark says which it scores); frames outside the keyframes are refused unless extrapolation is asked for; body
parts by the same names on the command line and in the editor."""

from __future__ import annotations

import numpy as np
import pytest

from motionsynth.bench import protocol
from motionsynth.bench.report import compare_markdown, to_markdown
from motionsynth.io import load_motion, save_motion
from motionsynth.methods import baselines as B
from motionsynth.skeleton import GROUP_TITLES
from motionsynth.tasks import TASKS, Request, RequestError, keyframe_span

from helpers import biped_motion, biped_skeleton, cli_output, feature_batch, tiny_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("surprises")
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    save_motion(biped_motion(sk, T=40, seed=1, name="walk"), d / "walk.npz")
    return {"clip": d / "walk.npz", "cvae": tiny_checkpoint(d / "cvae", "cvae", sk, stats)}


def _root_path(motion) -> tuple[np.ndarray, np.ndarray]:
    """The moving root's world positions and rotations."""
    from motionsynth.kinematics import heading_angle

    root = motion.skeleton.root
    rot, pos = motion.global_rotations(), motion.global_positions()
    return pos[:, root], heading_angle(rot[:, root])


# ---- 1. completion keeps the observed root path ----------------------------------------------------------------
def test_completion_keeps_the_root_path_unless_asked_to_synthesise_it():
    from motionsynth.bench.protocol import hide

    sk = biped_skeleton()
    motion = biped_motion(sk, T=40, seed=3)
    kept = TASKS["complete"].make(Request(motion=motion, observe=["upper"])).mask
    assert kept.root.all() and kept.joints[:, [*sk.ancestors(sk.root), sk.root]].all()
    assert not kept.joints[:, sk.groups["left_leg"]].any()  # the legs are still synthesised
    free = TASKS["complete"].make(Request(motion=motion, observe=["upper"], synthesise_root=True)).mask
    assert not free.root.any() and not free.joints[:, sk.root].any()

    method = B.make_baseline("mean-pose").fit([biped_motion(sk, T=60, seed=s) for s in range(2)])
    [out] = method.complete(hide(motion, kept), kept)
    pos, heading = _root_path(out)
    want_pos, want_heading = _root_path(motion)
    np.testing.assert_allclose(pos, want_pos, atol=1e-6)
    np.testing.assert_allclose(np.cos(heading - want_heading), 1.0, atol=1e-9)
    [synth] = method.complete(hide(motion, free), free)
    assert np.abs(_root_path(synth)[0] - want_pos).max() > 1.0  # synthesised: the mean pose's root


def test_the_complete_command_keeps_the_root_path(files, tmp_path, capsys):
    given = load_motion(files["clip"])
    out = tmp_path / "kept.npz"
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", files["cvae"], "--observe", "upper body",
                              "-o", out)
    assert code == 0, err
    np.testing.assert_allclose(_root_path(load_motion(out))[0], _root_path(given)[0], atol=1e-4)
    free = tmp_path / "free.npz"
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", files["cvae"], "--observe", "upper",
                              "--synthesise-root", "-o", free)
    assert code == 0, err
    assert np.abs(_root_path(load_motion(free))[0] - _root_path(given)[0]).max() > 1e-2
    code, out_text, _ = cli_output(capsys, "complete", "--help")
    assert "--synthesise-root" in out_text


class _Spy:
    """A method that records the masks the harness gives it (and completes with the wrapped one)."""

    def __init__(self, method):
        self.method, self.masks = method, []

    def __getattr__(self, name):
        return getattr(self.method, name)

    def complete(self, motion, mask, **kw):
        self.masks.append(mask)
        return self.method.complete(motion, mask, **kw)


def test_the_benchmark_still_synthesises_the_root_and_says_so(cache):
    spies = []

    def wrap(m):
        spies.append(_Spy(m))
        return spies[-1]

    rec = protocol.run_benchmark("complete", cache, "mean-pose", limit=2, progress=False, wrap=wrap,
                                 settings={"missing": ["lower_body"]})
    assert rec["settings"]["root"] == "synthesised"
    sk, masks = cache.skeleton, spies[0].masks
    assert len(masks) == 2 and all(not m.root.any() and not m.joints[:, sk.root].any() for m in masks)  # as before
    assert "root synthesised" in to_markdown(rec) and "root synthesised" in compare_markdown([rec])
    kept = protocol.run_benchmark("complete", cache, "mean-pose", limit=2, progress=False,
                                  settings={"missing": ["lower_body"], "root": "observed"})
    assert "root observed" in to_markdown(kept)
    assert kept["results"][0]["mpjpe_cm"] < rec["results"][0]["mpjpe_cm"]  # the root path given: a smaller error
    assert kept["results"][0]["missing_joints"] < rec["results"][0]["missing_joints"]
    with pytest.raises(Exception, match="choose synthesised or observed"):
        protocol.run_benchmark("complete", cache, "mean-pose", limit=1, progress=False, settings={"root": "kept"})


# ---- 2. no silent extrapolation ------------------------------------------------------------------------------------
def test_frames_outside_the_keyframes_are_refused_in_the_users_words():
    motion = biped_motion(biped_skeleton(), T=273)
    with pytest.raises(RequestError, match=r"frames 61–272 come after the last keyframe 60: give a keyframe at the end "
                                           r"\(frame 272\), or `extrapolate` to predict them") as e:
        TASKS["inbetween"].make(Request(motion=motion, keyframes=[0, 30, 60]))
    assert e.value.field == "keyframes"
    with pytest.raises(RequestError, match=r"frames 0–9 come before the first keyframe 10 and frame 272 comes after "
                                           r"the last keyframe 271: give a keyframe at both ends"):
        TASKS["inbetween"].make(Request(motion=motion, keyframes=[10, 271]))
    work = TASKS["inbetween"].make(Request(motion=motion, keyframes=[0, 30, 60], extrapolate=True))
    assert work.mask.frames.sum() == 3  # filled only when asked
    TASKS["inbetween"].make(Request(motion=motion, keyframes=[0, 30, 60, 272]))


def test_the_benchmark_windows_have_keyframes_at_both_ends():
    s = protocol.INBETWEEN.settings
    for gap in s["gaps"]:
        n = s["context"] + gap + 1
        keys = np.flatnonzero(protocol.inbetween_mask(n, 3, s["context"], gap).frames)
        keyframe_span(n, keys)  # no frame outside the keyframes: the figures cannot move


def test_the_commands_refuse_extrapolation_unless_asked(files, tmp_path, capsys, pretrained):
    out = tmp_path / "filled.npz"
    code, _, err = cli_output(capsys, "inbetween", files["clip"], "--model", "slerp", "--keyframes", "0,20", "-o", out)
    assert code == 2 and not out.exists()
    assert "frames 21–39 come after the last keyframe 20: give a keyframe at the end (frame 39), or --extrapolate " \
           "to predict them" in err
    code, _, err = cli_output(capsys, "inbetween", files["clip"], "--model", "slerp", "--keyframes", "0,20,end",
                              "-o", out)
    assert code == 0, err
    assert np.allclose(load_motion(out).rotations[39], load_motion(files["clip"]).rotations[39], atol=1e-6)
    code, _, err = cli_output(capsys, "inbetween", files["clip"], "--model", "slerp", "--keyframes", "0,20",
                              "--extrapolate", "-o", out)
    assert code == 0, err
    code, stdout, _ = cli_output(capsys, "inbetween", "--help")
    assert "--extrapolate" in stdout and "prediction" in stdout
    report = tmp_path / "report"
    code, _, err = cli_output(capsys, "report", files["clip"], "--task", "inbetween", "--keyframes", "0,20", "-o",
                              report)
    assert code == 2 and "after the last keyframe 20" in err and "--extrapolate" in err and not report.exists()


# ---- 3. body parts by the same names -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, group", [("left arm", "left_arm"), ("Left-Arm", "left_arm"), ("left_arm", "left_arm"),
                                         ("upper body", "upper"), ("upper", "upper"), ("lower-body", "lower"),
                                         ("right  leg", "right_leg")])
def test_body_parts_by_the_editors_names_or_their_keys(name, group):
    sk = biped_skeleton()
    assert sk.joints(name) == sk.groups[group] == sk.joints([name])


def test_body_part_errors_list_the_valid_names():
    sk = biped_skeleton()
    with pytest.raises(KeyError, match=r"no body part or joint named 'left arms'; body parts: upper body, lower body, "
                                       r"left arm, right arm, left leg, right leg, torso, head"):
        sk.joints("left arms")
    assert sk.joints("left arm, head") == sorted(sk.groups["left_arm"] + sk.groups["head"])
    assert sk.joints("upper head") == sk.groups["upper"]  # space-separated names still work
    assert sk.joints("LeftArm") == [sk.index("LeftArm")]  # a joint's name as written


def test_the_command_line_reads_the_names_the_editor_shows(files, tmp_path, capsys):
    from fastapi.testclient import TestClient

    from motionsynth.serve.app import TOKEN_HEADER, create_app

    app = create_app([], tmp_path / "out")
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as client:
        clip = tmp_path / "walk.bvh"
        save_motion(load_motion(files["clip"]), clip)
        with open(clip, "rb") as f:
            shown = client.post("/api/upload", files={"file": ("walk.bvh", f, "application/octet-stream")}).json()
    sk = load_motion(files["clip"]).skeleton
    names = shown["skeleton"]["part_names"]
    assert names["left_arm"] == GROUP_TITLES["left_arm"] == "left arm"
    for group, title in names.items():
        assert sk.joints(title) == sk.groups[group]
    mask = tmp_path / "mask.npz"
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", files["cvae"], "--observe", "left arm",
                              "--observe", "right arm", "-o", tmp_path / "c.npz", "--mask-out", mask)
    assert code == 0, err
    from motionsynth.tasks import load_mask

    observed = np.flatnonzero(load_mask(mask).joints[0])
    assert set(sk.groups["left_arm"] + sk.groups["right_arm"]) <= set(observed)
    code, _, err = cli_output(capsys, "complete", files["clip"], "--model", files["cvae"], "--observe", "left arms",
                              "-o", tmp_path / "x.npz")
    assert code == 2 and "--observe: no body part or joint named 'left arms'; body parts: upper body" in err


def test_the_editor_refuses_extrapolation_and_can_synthesise_the_root(files, tmp_path):
    from fastapi.testclient import TestClient

    from motionsynth.serve.app import TOKEN_HEADER, create_app

    app = create_app([], tmp_path / "out")
    clip = tmp_path / "walk.bvh"
    save_motion(load_motion(files["clip"]), clip)
    with TestClient(app, headers={TOKEN_HEADER: app.state.token}) as client:
        with open(clip, "rb") as f:
            up = client.post("/api/upload", files={"file": ("walk.bvh", f, "application/octet-stream")}).json()
        body = {"task": "inbetween", "model": "slerp", "upload": up["id"], "keyframes": [0, 20]}
        r = client.post("/api/run", json=body)
        assert r.status_code == 422 and "after the last keyframe 20" in r.json()["error"]
        assert "tick Extrapolate" in r.json()["error"]
        assert client.post("/api/run", json={**body, "extrapolate": True}).status_code == 202


# ---- 4. the demo: metrics explained, losses said, generation metrics at meaningful sizes, progress ------------------
def test_every_column_of_the_demo_is_explained():
    from motionsynth import demo

    columns = [*demo.NO_TRUTH_COLUMNS, "recognised (accuracy)", "real clips' accuracy", "FID", "diversity",
               "multimodality", "foot skate cm/s", "samples", "recognised content", "probability"]
    for task in demo.demo_tasks():
        p = TASKS[task].protocol()
        columns += [c for _, c in p.demo.bench_columns] + list(p.demo.clip_columns)
        if not p.demo.bench_columns and TASKS[task].needs_motion:  # generation: its own table (above)
            columns += [c for c, _ in p.columns(protocol.resolve_settings(task, p.demo.settings))]
    for column in columns:
        m = demo.metric_of(column)
        assert m is not None and m.what and m.unit and m.better in ("lower", "higher", ""), column
    assert demo.metric_of("MPJPE global cm (missing joints)").what.endswith("where the root was put")
    assert demo.metric_of("PA-MPJPE cm").what.startswith("MPJPE after")


def test_where_the_learned_model_loses_is_marked_and_said():
    from motionsynth import demo
    from motionsynth.viz.report import Table, table_html

    table = Table(["method", "MPJPE cm", "diversity", "time s"],
                  [["mean-pose", 10.0, 1.0, 0.01], ["nearest-neighbour", 8.0, 2.0, 0.02], ["model", 9.0, 3.0, 4.0]])
    phrases = demo.loss_note(table, [2], [0, 1], "model")
    assert table.marked == {(2, 1)} and phrases == ["MPJPE cm 9.000 against nearest-neighbour's 8.000"]
    assert table.note.startswith("Red: where model is worse than the best baseline — MPJPE cm 9.000")
    assert 'class="worse">9.000<' in table_html(table)  # time is a cost, never marked
    even = Table(["method", "L2P"], [["slerp", 1.0004], ["model", 1.0001]])
    assert demo.loss_note(even, [1], [0], "model") == [] and "at least as good" in even.note  # not visible: no loss


def test_generation_metrics_only_at_sizes_where_they_mean_something():
    from motionsynth import demo

    def record(n):
        rows = [{"data": "generated", "label": "all", "accuracy": 0.8, "real_accuracy": 0.9, "fid": 5.0,
                 "diversity": 3.0, "multimodality": 2.0, "foot_skate": 1.0, "samples": 10 * n},
                {"data": "real", "label": "all", "accuracy": 0.9, "real_accuracy": 0.9, "fid": 9.0, "diversity": 3.1,
                 "multimodality": 2.1, "foot_skate": 0.5, "samples": 10 * n}]
        return {"results": rows, "settings": {"real_test_clips": 2000}}

    rows, notes = demo.generation_rows(record(4), 4)
    assert [r[3] for r in rows] == [None, None] and [r[5] for r in rows] == [None, None]  # FID, multimodality
    assert "FID is left out" in notes[0] and "1,000 clips" in notes[0] and "Multimodality is left out" in notes[1]
    rows, notes = demo.generation_rows(record(100), 100)
    assert [r[3] for r in rows] == [5.0, 9.0] and [r[5] for r in rows] == [2.0, 2.1] and notes == []


def test_progress_lines_tell_each_step_with_the_time():
    import io

    from motionsynth.progress import Lines, steps

    out = io.StringIO()
    log = Lines(out, every=0.0)
    with log.step("completion: mean-pose on 2 windows"):
        for _ in steps(range(4)):
            pass
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("] completion: mean-pose on 2 windows …") and lines[0].startswith("[  0:0")
    assert any("% done" in line for line in lines[1:-1])
    assert lines[-1].endswith("completion: mean-pose on 2 windows: done in 0 s")
    quiet = io.StringIO()
    with Lines(quiet, quiet=True).step("x"):
        pass
    assert quiet.getvalue() == ""


@pytest.mark.slow
def test_the_demo_says_where_a_learned_model_loses(files, cache, tmp_path, pretrained, capsys):
    """A tiny untrained model shipped as the predictor: its losses are red and said; every column is explained;
    each step is a line with the time."""
    import io

    from motionsynth import demo
    from motionsynth.checkpoint import export_model
    from motionsynth.progress import Lines

    export_model(files["cvae"], "cvae-bandai")
    out = io.StringIO()
    page = demo.run_demo(cache, tmp_path / "demo", windows=1, tasks=("predict",), log=Lines(out))
    text = page.read_text()
    assert "Where cvae-bandai loses to a baseline (red cells)" in text and 'class="worse"' in text
    assert "What the numbers mean" in text and "Red: where cvae-bandai (cvae) is worse than the best baseline" in text
    said = out.getvalue()
    assert "prediction: constant-velocity on 1 test window …" in said and "prediction: cvae-bandai" in said
    assert said.count("done in") >= 3
