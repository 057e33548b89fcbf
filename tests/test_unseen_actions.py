"""The unseen-actions protocol: takes chosen by label globs (`data.selection`), windows without held-out takes, and
`motionsynth bench --only` scoring only the matching takes (recorded with the model's ``train.hold_out``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from motionsynth.bench import run_benchmark
from motionsynth.bench.clips import select, split_takes, split_windows
from motionsynth.bench.protocol import make_method
from motionsynth.bench.report import compare_markdown, to_markdown
from motionsynth.cli import main
from motionsynth.data.selection import check_label_filter, select_takes
from motionsynth.data.windows import WindowDataset, windows
from motionsynth.errors import MotionsynthError

from helpers import labelled_cache

WAVES = {"content": ["wave-*"]}


@pytest.fixture(scope="module")
def lcache(tmp_path_factory):
    """4 takes per split of 72 frames; test: wave-left-hand ×2, wave-right-hand, walk."""
    return labelled_cache(tmp_path_factory.mktemp("unseen"), per_split=4, frames=72)


def _content(cache, takes) -> set[str]:
    return {cache.takes[int(t)].labels["content"] for t in takes}


def test_select_takes_by_include_and_exclude_globs(lcache):
    test = lcache.split("test")
    waves = select_takes(lcache, "test", include=WAVES)
    assert waves and _content(lcache, waves) == {"wave-left-hand", "wave-right-hand"}
    rest = select_takes(lcache, "test", exclude=WAVES)
    assert sorted(waves + rest) == test and _content(lcache, rest) == {"walk"}
    # a string value is a comma-separated list; include needs every kind, exclude any kind
    assert select_takes(lcache, "test", include={"content": "walk,wave-left-*"}) == \
        [i for i in test if lcache.takes[i].labels["content"] in ("walk", "wave-left-hand")]
    both = select_takes(lcache, "train", include={"content": ["walk"], "style": ["calm"]})
    assert [lcache.takes[i].labels for i in both] == [{"content": "walk", "style": "calm"}]
    either = select_takes(lcache, "train", exclude={"content": ["walk"], "style": ["calm"]})
    assert all(lcache.takes[i].labels == {"content": "wave-left-hand", "style": "brisk"} for i in either)
    assert select_takes(lcache, "test") == test and select_takes(lcache, "test", {}, None) == test


@pytest.mark.parametrize("filt, message", [
    ({"content": ["wave-*", "rnu"]}, "content pattern 'rnu' matches no content label"),
    ({"action": ["walk"]}, "unknown label kind 'action'"),
    ({"content": []}, "needs a list of name patterns"),
    (["walk"], r"expected \{kind: \[patterns\]\}"),
])
def test_a_filter_that_selects_nothing_by_mistake_is_an_error(lcache, filt, message):
    with pytest.raises(MotionsynthError, match=message):
        select_takes(lcache, "train", exclude=filt)
    with pytest.raises(MotionsynthError, match="^--only: "):
        check_label_filter(filt, lcache.label_names, "--only")


def test_window_dataset_without_excluded_takes(lcache):
    full = WindowDataset(lcache, "train", 16, 8)
    held = WindowDataset(lcache, "train", 16, 8, exclude=WAVES)
    assert 0 < len(held) < len(full)
    assert _content(lcache, {item["take"] for item in held}) == {"walk"}
    assert _content(lcache, held.index[:, 0]) == {"walk"}
    np.testing.assert_array_equal(held.index, windows(lcache, "train", 16, 8, exclude=WAVES))


def test_limit_is_evenly_spaced_over_the_filtered_windows(lcache):
    wins = split_windows(lcache, "test", 16, 4, only=WAVES)
    assert _content(lcache, wins[:, 0]) == {"wave-left-hand", "wave-right-hand"}
    np.testing.assert_array_equal(split_windows(lcache, "test", 16, 4, limit=5, only=WAVES), select(wins, 5))
    assert _content(lcache, split_takes(lcache, "test", only={"content": ["walk"]})) == {"walk"}
    with pytest.raises(MotionsynthError, match="no test take matching --only content=walk is long enough"):
        split_windows(lcache, "test", 100, 4, only={"content": ["walk"]})


def test_bench_scores_only_matching_takes_and_records_the_filter(lcache):
    rec = run_benchmark("inbetween", lcache, "slerp", progress=False, only={"content": "wave-*"})
    assert rec["settings"]["only"] == WAVES and "hold_out" not in rec
    assert all(r["windows"] == 3 for r in rec["results"])  # the 3 wave takes of the test split, one window each
    full = run_benchmark("inbetween", lcache, "slerp", progress=False)
    assert all(r["windows"] == 4 for r in full["results"]) and "only" not in full["settings"]
    assert "only content=wave-*" in to_markdown(rec)
    # a model trained with the same actions held out: its rows are the unseen-actions rows
    method = make_method("slerp")
    method.ckpt = SimpleNamespace(config={"train": {"hold_out": WAVES}})
    rec = run_benchmark("inbetween", lcache, None, model="runs/x/best", method=method, progress=False, only=WAVES)
    assert rec["hold_out"] == WAVES and json.loads(json.dumps(rec))["hold_out"] == WAVES
    assert "unseen actions content=wave-*" in to_markdown(rec)
    assert "[unseen actions content=wave-*]" in compare_markdown([rec, full])


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["bench", *map(str, args)])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_cli_only(lcache, tmp_path, capsys):
    out = tmp_path / "b.json"
    code, stdout, _ = _cli(capsys, "predict", "--data", lcache.path, "--method", "slerp", "--only",
                           "content=wave-*,walk", "--only", "style=calm", "--json", out, "--no-progress")
    rec = json.loads(out.read_text())
    assert code == 0 and rec["settings"]["only"] == {"content": ["wave-*", "walk"], "style": ["calm"]}
    assert all(r["windows"] == 3 for r in rec["results"])  # the calm test takes
    assert "only content=wave-*,walk style=calm" in stdout
    for only, message in (("content=rnu", "--only: content pattern 'rnu' matches no content label"),
                          ("action=walk", "--only: unknown label kind 'action'"),
                          ("content", "expected KEY=VALUE")):
        code, _, err = _cli(capsys, "predict", "--data", lcache.path, "--method", "slerp", "--only", only)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _cli(capsys, "inbetween", "--data", lcache.path, "--method", "slerp", "--only", "content=walk",
                        "--only", "style=brisk")  # fails before any work (no progress bar)
    assert code == 2 and "the cache has no test takes matching --only content=walk style=brisk" in err
    assert len(err.strip().splitlines()) == 1
