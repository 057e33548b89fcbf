"""The HTML report: the page builder (`viz.report`), `motionsynth report` on a user's clip, and the demo's choice of
a model per task with and without shipped models (`demo.choose_models`). Tiny data only; the full demo on the
Bandai Namco data is run by hand (`make demo`)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from motionsynth import demo
from motionsynth.checkpoint import export_model
from motionsynth.errors import MotionsynthError
from motionsynth.io import save_motion
from motionsynth.viz.render import render
from motionsynth.viz.report import Media, Section, Table, fmt, page_html, staged, write_page

from helpers import (
    biped_motion,
    biped_skeleton,
    creature_skeleton,
    feature_batch,
    other_skeleton,
    run_cli,
    tiny_checkpoint,
)


def referenced_files(page: Path) -> list[Path]:
    text = page.read_text()
    return [page.parent / unquote(src) for src in re.findall(r'(?:src|href)="([^"#]+)"', text)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A biped clip (BVH), a clip of another skeleton, and tiny untrained checkpoints of the biped skeleton."""
    d = tmp_path_factory.mktemp("report")
    sk = biped_skeleton()
    _, stats = feature_batch(sk, n=4, T=32)
    save_motion(biped_motion(sk, T=40, seed=1, name="walk"), d / "walk.bvh")
    save_motion(biped_motion(other_skeleton(), T=40, seed=2), d / "other.bvh")
    save_motion(biped_motion(creature_skeleton(), T=40, seed=2), d / "creature.bvh")
    return {"dir": d, "clip": d / "walk.bvh", "other": d / "other.bvh", "creature": d / "creature.bvh",
            "cvae": tiny_checkpoint(d / "cvae", "cvae", sk, stats),
            "diffusion": tiny_checkpoint(d / "diffusion", "diffusion", sk, stats),
            "meva": tiny_checkpoint(d / "meva", "meva", sk, stats),
            "classifier": tiny_checkpoint(d / "classifier", "classifier", sk, stats)}


# ---- the page builder ------------------------------------------------------------------------------------------------
def test_page_has_sections_media_tables_and_escapes_text(tmp_path):
    sk = biped_skeleton()
    gif = render([biped_motion(sk, T=6)], tmp_path / "a b.gif", size=(64, 64))
    (tmp_path / "files").mkdir()
    bvh = tmp_path / "files" / "x.bvh"
    save_motion(biped_motion(sk, T=4), bvh)
    section = Section("In-betweening <b>", notes=["note & <script>alert(1)</script>"], warnings=["no model"],
                      media=[Media(gif, "caption <i>")], files=[Media(bvh, "result (BVH)")],
                      tables=[Table(["method", "MPJPE cm"], [["slerp", 1.23456], ["<learned>", None]], caption="t")],
                      anchor="inbetween")
    page = write_page(tmp_path, "title & co", [section], intro=["intro"], footer=["licence"])
    text = page.read_text()
    assert page == tmp_path / "index.html"
    assert "<script>" not in text and "&lt;script&gt;" in text and "title &amp; co" in text
    assert 'src="a%20b.gif"' in text and 'href="files/x.bvh"' in text and 'href="#inbetween"' in text
    assert "<td>1.235</td>" in text and "<td>&lt;learned&gt;</td>" in text and "<td>–</td>" in text
    assert all(p.is_file() for p in referenced_files(page))


def test_page_refuses_missing_files_and_files_outside_its_folder(tmp_path):
    with pytest.raises(MotionsynthError, match="missing"):
        write_page(tmp_path, "t", [Section("s", media=[Media(tmp_path / "nothing.gif")])])
    assert not (tmp_path / "index.html").exists()
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    (tmp_path / "page").mkdir()
    with pytest.raises(MotionsynthError, match="inside its folder"):
        page_html("t", [Section("s", media=[Media(outside)])], tmp_path / "page")


def test_fmt():
    import numpy as np

    assert [fmt(x) for x in (None, float("nan"), 3, np.int64(4), 0.12345, 12.345, 12345.6, "a", True)] == \
        ["–", "–", "3", "4", "0.123", "12.35", "12346", "a", "yes"]


def test_staged_moves_a_complete_folder_into_place_or_nothing(tmp_path):
    out = tmp_path / "out" / "report"
    with pytest.raises(RuntimeError):
        with staged(out) as folder:
            (folder / "index.html").write_text("half")
            raise RuntimeError("boom")
    assert not out.exists() and list((tmp_path / "out").iterdir()) == []
    with staged(out) as folder:
        (folder / "sub").mkdir()
        (folder / "sub" / "a.txt").write_text("a")
        (folder / "index.html").write_text("page")
    assert (out / "index.html").read_text() == "page" and (out / "sub" / "a.txt").read_text() == "a"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(MotionsynthError, match="not a folder"):
        with staged(tmp_path / "file"):
            pass


# ---- motionsynth report ---------------------------------------------------------------------------------------------
def _check_page(out: Path) -> str:
    page = out / "index.html"
    assert page.is_file()
    files = referenced_files(page)
    assert files and all(p.is_file() for p in files)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    return page.read_text()


@pytest.mark.slow
def test_report_with_the_baseline_alone(tiny, tmp_path, pretrained, capsys):
    out = tmp_path / "r"
    assert run_cli("report", tiny["clip"], "--task", "inbetween", "--keyframes", "0,20,39", "-o", out) == 0
    text = _check_page(out)
    assert "slerp" in text and "no shipped model for in-betweening" in text and "clip_error.png" in text
    assert "note: no shipped model" in capsys.readouterr().out
    out = tmp_path / "p"
    assert run_cli("report", tiny["clip"], "--task", "predict", "--given", "10", "-o", out) == 0
    assert "constant-velocity" in _check_page(out)


@pytest.mark.slow
def test_report_with_a_tiny_checkpoint(tiny, tmp_path, pretrained):
    out = tmp_path / "r"
    assert run_cli("report", tiny["clip"], "--task", "complete", "--observe", "upper", "--frames", "5:35",
                   "--model", tiny["cvae"], "--samples", "2", "-o", out) == 0
    text = _check_page(out)
    assert "cvae #1" in text and "cvae #2" in text and "clip_error.png" in text
    assert len(list((out / "files").glob("*.bvh"))) == 4  # truth, baseline, two samples


def test_report_denoise_has_no_truth_and_no_curves(tiny, tmp_path, pretrained):
    out = tmp_path / "d"
    assert run_cli("report", tiny["clip"], "--task", "denoise", "--model", tiny["meva"], "-o", out) == 0
    text = _check_page(out)
    assert "error.png" not in text and "no error curves" in text and "ACCEL" in text


@pytest.mark.slow
def test_report_uses_the_shipped_model_by_default(tiny, tmp_path, pretrained):
    export_model(tiny["cvae"], "cvae-bandai")
    out = tmp_path / "s"
    assert run_cli("report", tiny["clip"], "--task", "predict", "--given", "10", "-o", out) == 0
    text = _check_page(out)
    assert "cvae-bandai" in text and "no shipped model" not in text


@pytest.mark.parametrize("args, message", [
    (["--task", "fly"], "--task must be one of"),
    (["--task", "inbetween"], "needs --keyframes"),
    (["--task", "inbetween", "--keyframes", "0,99"], "out of range"),
    (["--task", "inbetween", "--keyframes", "0,a"], "comma-separated"),
    (["--task", "predict", "--given", "10", "--keyframes", "0,5"], "--keyframes is for --task inbetween"),
    (["--task", "complete", "--observe", "tail"], "--observe"),
    (["--task", "complete", "--observe", "upper", "--baseline", "nearest-neighbour"], "give --data"),
    (["--task", "predict", "--given", "10", "--baseline", "magic"], "unknown method"),
    (["--task", "predict", "--given", "10", "--option", "x=1"], "give --model"),
    (["--task", "predict", "--given", "10", "--model", "no-such-model"], "no such checkpoint"),
])
def test_report_bad_input_is_one_line_and_writes_nothing(tiny, tmp_path, pretrained, capsys, args, message):
    out = tmp_path / "out" / "r"
    assert run_cli("report", tiny["clip"], *args, "-o", out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_report_refuses_a_model_of_another_skeleton_and_a_missing_clip(tiny, tmp_path, pretrained, capsys):
    out = tmp_path / "r"
    assert run_cli("report", tiny["creature"], "--task", "predict", "--given", "5", "--model", tiny["cvae"],
                   "-o", out) == 2  # not a humanoid: no retargeting into the model's body
    assert run_cli("report", tmp_path / "none.bvh", "--task", "predict", "--given", "5", "-o", out) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2 and not out.exists()


def test_report_failing_midway_leaves_no_output(tiny, tmp_path, pretrained, monkeypatch):
    def boom(*a, **k):
        raise MotionsynthError("render failed")

    monkeypatch.setattr(demo, "clip_section", boom)
    out = tmp_path / "out" / "r"
    assert run_cli("report", tiny["clip"], "--task", "predict", "--given", "10", "-o", out) == 2
    assert list((tmp_path / "out").iterdir()) == []


# ---- the demo's choice of models -------------------------------------------------------------------------------------
def test_demo_without_shipped_models_says_so(pretrained):
    choices = demo.choose_models()
    assert set(choices) == set(demo.roles())
    assert all(c.path is None and c.note.startswith("no shipped model") for c in choices.values())
    assert "meva-bandai" in choices["denoise"].note


def test_demo_picks_a_shipped_model_per_task(tiny, pretrained):
    export_model(tiny["diffusion"], "diffusion-bandai")
    export_model(tiny["classifier"], "classifier-bandai")
    export_model(tiny["meva"], "cvae-bandai")  # a preferred name of the wrong family is passed over
    choices = demo.choose_models()
    assert {t: c.value for t, c in choices.items()} == {
        "inbetween": "diffusion-bandai", "complete": "diffusion-bandai", "denoise": "diffusion-bandai",
        "predict": "diffusion-bandai", "generate": "diffusion-bandai", "classify": "classifier-bandai"}
    assert choices["inbetween"].path == pretrained / "diffusion-bandai" and choices["inbetween"].family == "diffusion"
    export_model(tiny["cvae"], "cvae-bandai")
    export_model(tiny["meva"], "meva-bandai")
    choices = demo.choose_models()
    assert [choices[t].value for t in ("inbetween", "denoise", "predict", "generate")] == \
        ["cvae-bandai", "meva-bandai", "cvae-bandai", "diffusion-bandai"]


def test_demo_model_overrides(tiny, pretrained):
    overrides = demo.parse_model_overrides([f"inbetween={tiny['cvae']}", f"classify={tiny['classifier']}"])
    choices = demo.choose_models(overrides)
    assert choices["inbetween"].path == tiny["cvae"] and choices["inbetween"].family == "cvae"
    assert choices["complete"].path is None
    with pytest.raises(MotionsynthError, match="cannot be used for denoising"):
        demo.choose_models({"denoise": str(tiny["cvae"])})
    with pytest.raises(MotionsynthError, match="unknown task"):
        demo.parse_model_overrides(["fly=x"])
    with pytest.raises(MotionsynthError, match="KEY=VALUE"):
        demo.parse_model_overrides(["inbetween"])
    with pytest.raises(MotionsynthError, match="no such checkpoint"):
        demo.choose_models({"predict": "nothing-here"})


@pytest.mark.slow
def test_demo_runs_without_models_on_a_tiny_cache(cache, tmp_path, pretrained):
    """Nothing ships: every section still shows its baseline (and says so); generation has nothing to show."""
    page = demo.run_demo(cache, tmp_path / "demo", windows=1)
    text = _check_page(page.parent)
    assert "no shipped model for in-betweening" in text and "no shipped model for generation" in text
    assert "inbetween.gif" in text and (page.parent / "numbers.json").is_file()


@pytest.mark.slow
def test_demo_with_shipped_models_on_a_tiny_cache(tiny, cache, tmp_path, pretrained):
    """Shipped (tiny, untrained) models: each section shows the learned model beside the baseline, with numbers."""
    export_model(tiny["cvae"], "cvae-bandai")
    export_model(tiny["meva"], "meva-bandai")
    export_model(tiny["diffusion"], "diffusion-bandai")
    page = demo.run_demo(cache, tmp_path / "demo", windows=1, tasks=("inbetween", "denoise", "generate"))
    text = _check_page(page.parent)
    assert "no shipped model for in-betweening" not in text and "no shipped model for denoising" not in text
    assert "cvae-bandai (cvae)" in text and "meva-bandai (meva)" in text and "generate.gif" in text
    assert "no shipped model for action recognition" in text  # no classifier: generation is not scored
