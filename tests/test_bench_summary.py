"""`make bench`'s summary (`motionsynth.bench.summary`, scripts/bench_summary.py): every method of every task on the
same windows, timed, through the one harness; the markdown section replaced between its markers and nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motionsynth.bench import NOISE_MODELS
from motionsynth.bench.protocol import run_benchmark
from motionsynth.bench.summary import (
    BEGIN,
    END,
    replace_section,
    run_summary,
    save_summary,
    summary_markdown,
    update_markdown,
)
from motionsynth.checkpoint import save_checkpoint
from motionsynth.errors import MotionsynthError
from motionsynth.registry import build_model

from helpers import LABELS, TINY_MODELS, load_script, tiny_checkpoint

FAST = {"tune_windows": 2, "limit": 2}


def _section(text: str) -> str:
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)]


@pytest.fixture(scope="module")
def summary(cache, tmp_path_factory):
    """Baselines and a tiny CVAE (which refuses denoising) on four tasks, in this process."""
    cvae = tiny_checkpoint(tmp_path_factory.mktemp("cvae") / "cvae", "cvae", cache.skeleton, cache.stats)
    return run_summary(cache, models=[str(cvae)], classifier="", tasks=["inbetween", "complete", "predict", "denoise"],
                       isolate=False, command="python scripts/bench_summary.py --test",
                       baselines={"denoise": ["savgol", "gaussian"]}, **FAST)  # smooth's grid costs seconds


@pytest.mark.slow
def test_every_method_of_every_task_on_the_same_windows(summary):
    rows = {(r["task"], r["name"] if r["kind"] == "baseline" else r["family"]): r for r in summary["rows"]}
    assert set(rows) == {("inbetween", "zero-velocity"), ("inbetween", "slerp"), ("inbetween", "cvae"),
                         ("complete", "mean-pose"), ("complete", "nearest-neighbour"), ("complete", "cvae"),
                         ("predict", "zero-velocity"), ("predict", "constant-velocity"), ("predict", "cvae"),
                         ("denoise", "savgol"), ("denoise", "gaussian"), ("denoise", "cvae")}
    for (task, _), r in rows.items():
        if (task, r["family"]) == ("denoise", "cvae"):
            continue
        assert r["status"] == "ok" and r["record"]["task"] == task
        counts = {row["windows"] for row in r["record"]["results"]}
        assert counts == {summary["windows"][task]["kept"]} and summary["windows"][task]["kept"] <= FAST["limit"]
        t = r["timing"]
        assert t["calls"] > 0 and t["latency_ms"] > 0 and t["frames_per_s"] > 0
        assert r["memory"]["rss_peak_mb"] is None  # in-process: not measured
    # the calls the harness makes are the ones timed: 4 gaps × windows for in-betweening
    ib = rows[("inbetween", "slerp")]
    assert ib["timing"]["calls"] == 4 * summary["windows"]["inbetween"]["kept"]
    m = summary["machine"]
    assert m["torch"] and m["cpu"] and m["device"] == "cpu" and m["torch_threads"] >= 1
    json.dumps(summary)  # plain JSON


@pytest.mark.slow
def test_a_refused_task_is_na(summary):
    [row] = [r for r in summary["rows"] if r["task"] == "denoise" and r["kind"] == "model"]
    assert row["status"] == "n/a" and row["record"] is None and "cvae" in row["reason"]
    text = summary_markdown(summary)
    denoise = text[text.index("### Denoising"):]
    line = next(x for x in denoise.splitlines() if x.startswith("| cvae"))
    assert line.count("n/a") == len(NOISE_MODELS)  # one cell per noise model
    assert "- n/a, cvae" in denoise


@pytest.mark.slow
def test_tuned_filter_record_is_the_harness_record(summary, cache):
    """The per-noise-model runs of a tuned filter give the harness's own baseline record (`run_denoise`)."""
    [row] = [r for r in summary["rows"] if r["task"] == "denoise" and r["name"] == "gaussian"]
    own = run_benchmark("denoise", cache, "gaussian", limit=FAST["limit"], progress=False,
                        settings={"tune_windows": FAST["tune_windows"]})
    assert row["record"]["results"] == own["results"]
    assert row["record"]["settings"]["tuning"] == own["settings"]["tuning"]
    assert row["record"]["method"] == own["method"] == "gaussian"
    assert row["timing"]["calls"] == len(own["settings"]["noise_models"]) * summary["windows"]["denoise"]["kept"]


@pytest.mark.slow
def test_markdown_tables(summary):
    text = summary_markdown(summary)
    assert "python scripts/bench_summary.py --test" in text and summary["machine"]["cpu"] in text
    for title in ("### In-betweening", "### Completion", "### Prediction", "### Denoising"):
        assert title in text
    assert "| noisy input (no method) |" in text and "Filter parameters" in text
    header = next(x for x in text.splitlines() if x.startswith("| method | L2P gap 5"))
    assert "latency ms" in header and "frames/s" in header and "peak MB" in header
    assert "Peak memory**: not measured" in text


@pytest.mark.slow
def test_section_replaced_between_markers_only(summary, tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    before, after = "# Benchmarks\n\nintro\n\n", "\n## BVH parsing speed\n\ntext | with | pipes\n"
    doc.write_text(before + BEGIN + "\nold summary\n" + END + "\n" + after)
    body = summary_markdown(summary)
    update_markdown(doc, body)
    text = doc.read_text()
    assert text.startswith(before + BEGIN + "\n") and text.endswith(END + "\n" + after)
    assert _section(text).strip() == body.strip() and "old summary" not in text
    update_markdown(doc, body)  # idempotent
    assert doc.read_text() == text
    update_markdown(doc, "")  # emptied again: just the markers
    assert doc.read_text() == before + BEGIN + "\n" + END + "\n" + after
    assert not [p for p in tmp_path.iterdir() if p.name != "BENCHMARKS.md"]  # no temporary file left


def test_markers_added_after_the_title():
    text = "# Benchmarks\n\n## BVH\n\nbody\n"
    new = replace_section(text, "S")
    assert new == f"# Benchmarks\n\n{BEGIN}\nS\n{END}\n\n## BVH\n\nbody\n"
    assert replace_section(new, "S") == new
    with pytest.raises(MotionsynthError, match="markers"):
        replace_section(f"{BEGIN}\n{BEGIN}\n{END}\n", "x")
    with pytest.raises(MotionsynthError, match="markers"):
        replace_section(f"{END}\n{BEGIN}\n", "x")


@pytest.mark.slow
def test_isolated_rows_measure_peak_memory(cache, tmp_path):
    s = run_summary(cache.path, models=[], classifier="", tasks=["predict"], limit=2, isolate=True,
                    baselines={"predict": ["constant-velocity"]})
    assert [r["name"] for r in s["rows"]] == ["constant-velocity"]
    for r in s["rows"]:
        mem = r["memory"]
        assert r["status"] == "ok" and 0 < mem["rss_base_mb"] <= mem["rss_peak_mb"] and mem["gpu_peak_mb"] is None
        assert r["timing"]["calls"] == 2
    save_summary(s, tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text())["rows"][0]["task"] == "predict"
    assert "Peak memory**: peak resident set size" in summary_markdown(s)


def test_generate_with_a_classifier(tmp_path):
    from helpers import labelled_cache

    lcache = labelled_cache(tmp_path / "l", per_split=2, frames=72)
    clf_model = build_model("classifier", TINY_MODELS["classifier"](), lcache.skeleton)
    clf_model.set_stats(lcache.stats)
    clf = save_checkpoint(tmp_path / "clf", clf_model, {"family": "classifier", "model": clf_model.config_dict(),
                                                        "fps": 30.0}, lcache.skeleton, lcache.stats,
                          labels={k: list(v) for k, v in LABELS.items()})
    cvae = tiny_checkpoint(tmp_path / "cvae", "cvae", lcache.skeleton, lcache.stats)
    s = run_summary(lcache, models=[str(cvae)], classifier=str(clf), tasks=["generate"], isolate=False,
                    generate={"samples_per_label": 2, "repetitions": 1})
    [row] = s["rows"]
    assert row["status"] == "ok" and row["timing"]["samples"] == 6  # 2 per label × 3 labels
    text = summary_markdown(s)
    assert "### Generation" in text and "| real data" in text and "FID" in text
    # without a classifier, generation is skipped with a note
    s = run_summary(lcache, models=[str(cvae)], classifier="", tasks=["generate"], isolate=False)
    assert s["rows"] == [] and "no action classifier" in summary_markdown(s)


def test_errors_before_any_work(cache, tmp_path):
    with pytest.raises(MotionsynthError, match="unknown summary task"):
        run_summary(cache, models=[], tasks=["dance"], isolate=False)
    with pytest.raises(MotionsynthError, match="unknown method 'tween'"):
        run_summary(cache, models=[], tasks=["inbetween"], baselines={"inbetween": ["tween"]}, isolate=False)
    with pytest.raises(MotionsynthError, match="no such|not a checkpoint|shipped"):
        run_summary(cache, models=[str(tmp_path / "nope")], isolate=False)
    clf = tiny_checkpoint(tmp_path / "clf", "classifier", cache.skeleton, cache.stats)
    with pytest.raises(MotionsynthError, match="not a task method"):
        run_summary(cache, models=[str(clf)], isolate=False)


def test_script(cache, tmp_path, capsys):
    script = load_script("bench_summary")
    doc = tmp_path / "B.md"
    doc.write_text("# Benchmarks\n\nrest\n")
    code = script.main(["--data", str(cache.path), "--tasks", "inbetween", "--limit", "2", "--in-process",
                        "--classifier", "", "--model", str(tiny_checkpoint(tmp_path / "m", "cvae", cache.skeleton,
                                                                           cache.stats)),
                        "--json", str(tmp_path / "s.json"), "--markdown", str(doc)])
    assert code == 0
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n" + BEGIN) and text.endswith(END + "\n\nrest\n")
    assert "--tasks inbetween --limit 2" in _section(text)
    rows = json.loads((tmp_path / "s.json").read_text())["rows"]
    assert [r["name"] for r in rows][:2] == ["zero-velocity", "slerp"] and np.isfinite(rows[0]["timing"]["latency_ms"])
    assert script.main(["--data", str(tmp_path / "none"), "--in-process"]) == 2
    assert "no such motion cache" in capsys.readouterr().err


def test_prior_runs_on_fewer_windows_and_says_so(cache, tmp_path):
    hm = tiny_checkpoint(tmp_path / "hm", "hmvae", cache.skeleton, cache.stats)
    cvae = tiny_checkpoint(tmp_path / "cvae", "cvae", cache.skeleton, cache.stats)
    s = run_summary(cache, models=[str(hm), str(cvae)], classifier="", tasks=["predict"], limit=3, prior_limit=2,
                    prior_options={"restarts": 1, "phase1_iters": 1, "phase2_iters": 1}, isolate=False,
                    baselines={"predict": []})
    rows = {r["family"]: r for r in s["rows"]}
    assert rows["hmvae"]["prior"] and not rows["cvae"]["prior"]
    assert rows["hmvae"]["timing"]["calls"] == 2 and rows["cvae"]["timing"]["calls"] == 3
    assert rows["hmvae"]["options"] == {"restarts": 1, "phase1_iters": 1, "phase2_iters": 1} == \
        rows["hmvae"]["record"]["options"] and rows["cvae"]["options"] == {}
    assert s["prior_windows"]["predict"]["subset"] is True  # (3 - 1) is a multiple of (2 - 1)
    text = summary_markdown(s)
    assert "HM-VAE prior** (latent optimisation, the slow one): 2 windows per task, evenly spaced (a subset of" in text
    assert "restarts=1" in text and "| hmvae (`" in text and " † |" in text
