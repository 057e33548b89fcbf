"""The one timing harness (`bench.timing`): what the bench summary and scripts/bench_speed.py time methods with."""

from __future__ import annotations

import pytest

from motionsynth.bench.timing import Timed, machine_info, median_call_s, rss_peak_mb, timing
from motionsynth.methods.baselines import make_baseline
from motionsynth.tasks import inbetween_mask

from helpers import make_motion, make_skeleton


def test_timed_calls_leave_the_warm_up_out():
    sk = make_skeleton()
    motion = make_motion(sk, 40)
    mask = inbetween_mask(40, len(sk), context=10, gap=20)
    calls: list = []
    method = Timed(make_baseline("slerp"), calls)
    assert method.name == "slerp"  # every other attribute is the method's
    for n in (1, 2, 2):
        assert len(method.complete(motion, mask, n_samples=n, seed=0)) == n
    assert [(c[1], c[2]) for c in calls] == [(40, 1), (40, 2), (40, 2)]
    t = timing(calls)
    assert t["calls"] == 3 and t["timed_calls"] == 2 and t["samples"] == 5
    assert t["first_call_ms"] == pytest.approx(1000 * calls[0][0])
    assert t["latency_ms"] == pytest.approx(1000 * (calls[1][0] + calls[2][0]) / 4)
    assert t["frames_per_s"] == pytest.approx(160 / (calls[1][0] + calls[2][0]))
    assert timing([])["calls"] == 0
    assert median_call_s(make_baseline("slerp"), motion, mask, 2, seed=0) > 0
    with pytest.raises(ValueError, match="repeats"):
        median_call_s(make_baseline("slerp"), motion, mask, 0)
    info = machine_info()
    assert info["torch"] and info["cpu"] and rss_peak_mb() > 0
