"""scripts/inbetween_frontier.py: the quality / latency table and frontier plot of the in-betweening settings, on the
baselines and the tiny cache."""

from __future__ import annotations

import json

import pytest

from helpers import load_script

frontier = load_script("inbetween_frontier")
BASELINES = [s for s in frontier.SETTINGS if s["name"] in ("slerp", "zero-velocity")]


def test_collect_table_and_plot(cache, tmp_path):
    summaries = frontier.collect(cache, BASELINES, limit=2, json_dir=tmp_path, gaps=[5, 15, 30], log=lambda *_: None)
    assert [s["name"] for s in summaries] == ["slerp", "zero-velocity"]
    for s in summaries:
        assert set(s["l2p"]) == {"5", "15", "30"} and all(v >= 0 for v in s["l2p"].values())
        assert s["windows"] >= 1 and s["ms_per_window"]["30"] > 0 and s["ms_per_window"]["all"] > 0
        on_disk = json.loads((tmp_path / f"frontier_{s['name']}.json").read_text())
        assert on_disk["l2p"] == s["l2p"] and on_disk["record"]["task"] == "inbetween"
    text = frontier.table(summaries, gaps=[5, 15, 30])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| setting | L2P 5 | L2P 15 | L2P 30 |")
    assert "| SLERP |" in text and "| 1.00 |" in text  # SLERP against itself
    out = frontier.plot(summaries, tmp_path / "frontier.png")
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_reuses_matching_records(cache, tmp_path):
    slerp = BASELINES[:1]
    first = frontier.collect(cache, slerp, limit=1, json_dir=tmp_path, gaps=[30], log=lambda *_: None)
    said: list = []
    again = frontier.collect(cache, slerp, limit=1, json_dir=tmp_path, gaps=[30], resume=True, log=said.append)
    assert again[0]["ms_per_window"] == first[0]["ms_per_window"] and "reused" in said[0]
    said.clear()
    frontier.collect(cache, slerp, limit=2, json_dir=tmp_path, gaps=[30], resume=True, log=said.append)
    assert "reused" not in said[0]  # other windows: measured again


def test_frontier_and_optional_settings(tmp_path):
    pts = [(1.0, 1.7, "a"), (3.0, 1.0, "b"), (20.0, 1.2, "c"), (30.0, 0.6, "d"), (400.0, 0.65, "e")]
    assert [p[2] for p in frontier.frontier(pts)] == ["a", "b", "d"]
    missing = {"name": "x", "model": str(tmp_path / "nope"), "optional": True}
    kept, notes = frontier.available([BASELINES[0], missing])
    assert kept == [BASELINES[0]] and "does not exist" in notes[0]


def test_plot_needs_slerp(cache, tmp_path):
    from motionsynth.errors import MotionsynthError

    zero = frontier.collect(cache, BASELINES[1:], limit=1, gaps=[30], log=lambda *_: None)
    with pytest.raises(MotionsynthError, match="slerp"):
        frontier.plot(zero, tmp_path / "f.png")
