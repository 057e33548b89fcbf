"""The one timing harness of methods: what the bench summary (`bench.summary`) and ``scripts/bench_speed.py`` measure
with, so that their latencies mean the same thing.

- `Timed` wraps a `tasks.Method`: each ``complete`` call appends ``(seconds, frames, samples)`` to a list.
- `timing` turns those calls into latency and throughput; the first call (lazy imports, initialisation, CUDA
  kernels) is the warm-up: left out when there are others, and recorded apart.
- `median_call_s`: one method on one input, ``repeats`` timed calls after one warm-up → the median seconds.
- `rss_peak_mb` and `machine_info`: the process's peak memory and where the numbers were measured.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["Timed", "timing", "median_call_s", "rss_peak_mb", "machine_info"]


class Timed:
    """A `tasks.Method` whose ``complete`` calls are timed: each appends ``(seconds, frames, samples)`` to ``calls``;
    every other attribute is the wrapped method's."""

    def __init__(self, method, calls: list):
        self.method, self.calls = method, calls

    def __getattr__(self, name):
        return getattr(self.method, name)

    def complete(self, motion, mask, *args, **kwargs):
        start = time.perf_counter()
        out = self.method.complete(motion, mask, *args, **kwargs)
        self.calls.append((time.perf_counter() - start, int(motion.num_frames), len(out)))
        return out


def timing(calls: list) -> dict:
    """Latency and throughput of timed calls (`Timed`): the first call is left out of ``latency_ms`` (per sample),
    ``median_call_ms`` and ``frames_per_s`` when there are others, and recorded apart (``first_call_ms``)."""
    if not calls:
        return {"calls": 0, "method_s": 0.0, "latency_ms": None, "frames_per_s": None}
    steady = calls[1:] or calls
    total = sum(c[0] for c in steady)
    samples, frames = sum(c[2] for c in steady), sum(c[1] * c[2] for c in steady)
    return {"calls": len(calls), "samples": sum(c[2] for c in calls), "method_s": sum(c[0] for c in calls),
            "timed_calls": len(steady), "latency_ms": 1000.0 * total / samples,
            "median_call_ms": 1000.0 * statistics.median(c[0] for c in steady), "first_call_ms": 1000.0 * calls[0][0],
            "frames_per_s": frames / total if total > 0 else None}


def median_call_s(method, motion, mask, repeats: int = 3, **kwargs) -> float:
    """Median wall seconds of ``method.complete(motion, mask, **kwargs)`` over ``repeats`` calls after one warm-up
    call (`Timed`, `timing`)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    calls: list = []
    timed = Timed(method, calls)
    for _ in range(repeats + 1):
        timed.complete(motion, mask, **kwargs)
    return timing(calls)["median_call_ms"] / 1000.0


def rss_peak_mb() -> float:
    """The peak resident set size of this process so far, MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)  # bytes on macOS, KiB on Linux


def machine_info(device: str = "cpu", threads: int | None = None) -> dict:
    """Where the numbers were measured: CPU model and cores, torch / numpy / Python versions, torch threads (set to
    ``threads`` when given), the device (and GPU name), the load average, the git commit of the working tree."""
    import numpy
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    info = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "numpy": numpy.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": device,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
            "git": _git()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> str | None:
    """``<commit>`` of the source tree, ``+ local changes`` when tracked files differ; None outside a checkout."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit.stdout.strip() + (" + local changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
