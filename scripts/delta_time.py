"""Milliseconds per in-betweening window (the harness's layout: 10 context frames, a 30-frame gap, the target; 41
frames) on 9 test windows, each the median of 20 calls after one warm-up, one torch thread.

usage: python scripts/delta_time.py MODEL [MODEL ...]     e.g. delta-bandai cvae-bandai slerp
"""

from __future__ import annotations

import sys

import torch

from motionsynth.bench.protocol import hide, iter_clips, split_windows
from motionsynth.bench.timing import median_call_s
from motionsynth.data.cache import MotionCache
from motionsynth.registry import open_method
from motionsynth.tasks import inbetween_mask

torch.set_num_threads(1)
cache = MotionCache("cache/bandai2")
wins = split_windows(cache, "test", 65, 40, 9, None)
clips = list(iter_clips(cache, wins, 65))
mask = inbetween_mask(41, len(cache.skeleton), 10, 30)
for model in sys.argv[1:]:
    m = open_method(model, "inbetween")
    ms = [1000 * median_call_s(m, hide(c[:41], mask), mask, repeats=20) for c in clips]
    print(f"{model}: {sorted(ms)[len(ms) // 2]:.1f} ms per window (median over {len(ms)} windows: {', '.join(f'{x:.1f}' for x in ms)})")
