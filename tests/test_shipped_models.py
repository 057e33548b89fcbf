"""The shipped models reproduce their figures: each one's index ``check`` (a small benchmark on evenly spaced test
windows, written by scripts/ship_models.py from the shipped fp16 weights) is rerun on the real data."""

from __future__ import annotations

import pytest

from motionsynth.bench.protocol import run_benchmark
from motionsynth.checkpoint import read_checkpoint, shipped_models

pytestmark = pytest.mark.real_data

SHIPPED = {name: entry for name, entry in shipped_models().items() if "check" in entry}


def test_every_shipped_model_has_a_check_and_a_card_with_test_figures():
    for name, entry in shipped_models().items():
        assert "check" in entry, f"{name}: no reproducibility check in the index (scripts/ship_models.py)"
        card = (read_checkpoint(name).path / "card.md").read_text()
        assert "## Test split" in card and "CC BY-NC" in card, name


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_reproduces_its_check(name, bandai_cache):
    check = SHIPPED[name]["check"]
    record = run_benchmark(check["task"], bandai_cache, model=name, settings=check["settings"] or None, seed=0,
                           limit=check["limit"], progress=False)
    value = float(record["results"][0][check["metric"]])
    assert value == pytest.approx(check["value"], rel=check["rel_tol"], abs=1e-6), (name, value, check)
