"""Fuzzing the BVH reader, property-based: a mutated BVH text gives `FormatError`, or a motion whose values are finite
and consistent (shapes, unit quaternions) and which is written and read back with the same forward kinematics.

The seed texts, the mutations and the property are those of scripts/fuzz_bvh.py (one copy, imported from there),
which also runs the long fuzz outside the suite (figures in docs/BENCHMARKS.md). Any exception other than
`FormatError` fails a test here, and hypothesis shrinks it to a small example.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import load_script

fuzz = load_script("fuzz_bvh")
SEEDS = fuzz.seed_texts()
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_seed_texts_are_valid_and_round_trip():
    assert [fuzz.outcome(s) for s in SEEDS] == ["ok"] * len(SEEDS)
    assert fuzz.outcome(fuzz.deep_chain(1200)) == "ok"


@settings(FUZZ, max_examples=300)
@given(base=st.integers(0, len(SEEDS) - 1), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3))
def test_fuzz_mutations(base, seed, n):
    fuzz.outcome(fuzz.mutate(SEEDS[base], random.Random(seed), n))


@settings(FUZZ, max_examples=100)
@given(base=st.integers(0, len(SEEDS) - 1), at=st.floats(0, 1), payload=st.binary(min_size=1, max_size=16),
       replace=st.booleans())
def test_fuzz_arbitrary_bytes(base, at, payload, replace):
    data = SEEDS[base]
    i = int(at * len(data))
    fuzz.outcome(data[:i] + payload + data[i + (len(payload) if replace else 0):])


@settings(FUZZ, max_examples=100)
@given(base=st.integers(0, len(SEEDS) - 1), which=st.floats(0, 1), text=st.text(max_size=12))
def test_fuzz_token_replaced_by_any_text(base, which, text):
    data = SEEDS[base]
    spans = fuzz._tokens(data)
    a, b = spans[min(int(which * len(spans)), len(spans) - 1)]
    fuzz.outcome(data[:a] + text.encode("utf-8", "surrogatepass") + data[b:])


@pytest.mark.parametrize("mutation", fuzz.MUTATIONS, ids=lambda m: m.__name__)
def test_each_mutation_kind(mutation):
    """Every mutation, 10 times on every seed text."""
    for k, base in enumerate(SEEDS):
        for i in range(10):
            assert fuzz.outcome(mutation(base, random.Random(1000 * k + i))) in ("ok", "format_error")


@pytest.mark.slow
def test_mutated_inputs_both_parse_and_fail():
    """The property is not vacuous: some mutated inputs are still read (and round-trip), most are refused."""
    outcomes = [fuzz.outcome(fuzz.make_input(7, i)) for i in range(200)]
    assert 10 <= outcomes.count("ok") <= 190 and outcomes.count("ok") + outcomes.count("format_error") == 200
