"""Every in-betweening method and its knobs on the same test windows: L2P per gap against milliseconds per window,
one table and the quality / latency frontier as a plot (issue 25, item 3).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/inbetween_frontier.py --data cache/bandai2 --limit 8 \
        [--only slerp,cvae-bandai,...] [--resume] [--json-dir docs/bench] [--plot docs/img/inbetween_frontier.png]

Each setting (`SETTINGS`: a baseline by name, or a learned model with its ``--option`` values; ``runs/delta/best``
when that folder exists) runs through the one harness (`bench.protocol.run_benchmark`, the `motionsynth bench
inbetween` protocol) on the same ``--limit`` evenly spaced test windows, gaps 5 / 15 / 30 / 45, seed 0, one torch
thread. Every ``complete`` call (one window at one gap) is timed from outside, the same way for every setting
(`bench.timing.Timed`, the bench summary's harness): **ms / window** is the mean wall time of a call, the first call
of the setting (lazy imports, initialisation) left out; it is given at gap 30 (the frontier's x) and over every gap.
The process CPU time of the same calls is recorded beside it (``cpu_ms``): on a loaded machine the wall time grows
with the load, the one-thread CPU time much less.

Writes ``<json-dir>/frontier_<name>.json`` per setting (the setting, its summary and the harness's own record),
prints the markdown table (setting | L2P 5 / 15 / 30 / 45 | × SLERP at 30 | ms / window) and draws the plot: x = ms
per window at gap 30 (log), y = L2P at gap 30 ÷ SLERP's, one labelled point per setting, the Pareto frontier as a
line and the goals (≤ 0.45 × within 20 ms, ≤ 0.40 × within 500 ms, ≤ 0.35 ×). ``--resume`` reuses the JSON of a
setting already measured with the same windows and gaps (and checkpoint), so an interrupted run goes on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

GAPS = [5, 15, 30, 45]
HEAD = 30  # the gap of the frontier
DELTA_RUN = Path("runs/delta/best")
HYBRID = {"init": "model", "init_model": "cvae-bandai", "restarts": 1}
# name → the setting: a baseline (`method`) or a model (`model` + `options`), and its label in the table and plot
SETTINGS: list[dict] = [
    {"name": "slerp", "method": "slerp", "label": "SLERP", "short": "SLERP"},
    {"name": "zero-velocity", "method": "zero-velocity", "label": "zero-velocity", "short": "zero-vel."},
    {"name": "cvae-bandai", "model": "cvae-bandai", "label": "CVAE (cvae-bandai)", "short": "CVAE"},
    {"name": "diffusion-cond-s10", "model": "diffusion-cond-bandai", "options": {"steps": 10},
     "label": "diffusion-cond, 10 DDIM steps", "short": "diff. 10"},
    {"name": "diffusion-cond-s50", "model": "diffusion-cond-bandai", "options": {"steps": 50},
     "label": "diffusion-cond, 50 DDIM steps", "short": "diff. 50"},
    {"name": "hmvae-r1-i10", "model": "hmvae-bandai", "options": {"restarts": 1, "phase1_iters": 5, "phase2_iters": 5},
     "label": "HM-VAE prior, 1 restart, 5 + 5 it.",
     "short": "prior r1 5+5"},
    {"name": "hmvae-r1", "model": "hmvae-bandai", "options": {"restarts": 1},
     "label": "HM-VAE prior, 1 restart, 50 + 100 it.",
     "short": "prior r1 50+100"},
    {"name": "hmvae-r4", "model": "hmvae-bandai", "options": {"restarts": 4},
     "label": "HM-VAE prior, 4 restarts, 50 + 100 it.",
     "short": "prior r4 50+100"},
    {"name": "hybrid-i10", "model": "hmvae-bandai", "options": {**HYBRID, "phase1_iters": 5, "phase2_iters": 5},
     "label": "hybrid (prior from CVAE), 5 + 5 it.",
     "short": "hybrid 5+5"},
    {"name": "hybrid-i30", "model": "hmvae-bandai", "options": {**HYBRID, "phase1_iters": 10, "phase2_iters": 20},
     "label": "hybrid (prior from CVAE), 10 + 20 it.",
     "short": "hybrid 10+20"},
    {"name": "hybrid", "model": "hmvae-bandai", "options": dict(HYBRID),
     "label": "hybrid (prior from CVAE), 50 + 100 it.",
     "short": "hybrid 50+100"},
    {"name": "delta", "model": str(DELTA_RUN), "label": "Δ-interpolator (runs/delta/best)",
     "short": "Δ-interp.", "optional": True},
]
GOALS = [(0.45, 20.0, "0.45× within 20 ms"), (0.40, 500.0, "0.40× within 0.5 s"), (0.35, None, "0.35×")]


class CpuTimed:
    """A `tasks.Method` whose ``complete`` calls are timed like `bench.timing.Timed` (``calls``: ``(wall seconds,
    frames, samples)``) and, beside, by the process CPU clock (``cpu``: seconds)."""

    def __init__(self, method, calls: list, cpu: list):
        self.method, self.calls, self.cpu = method, calls, cpu

    def __getattr__(self, name):
        return getattr(self.method, name)

    def complete(self, motion, mask, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        out = self.method.complete(motion, mask, *args, **kwargs)
        self.cpu.append(time.process_time() - cpu)
        self.calls.append((time.perf_counter() - wall, int(motion.num_frames), len(out)))
        return out


def available(settings: list[dict] | None = None) -> tuple[list[dict], list[str]]:
    """The settings that can run here, and a note for each optional one left out (its model folder is missing)."""
    keep, notes = [], []
    for s in SETTINGS if settings is None else settings:
        if s.get("optional") and not Path(s["model"]).exists():
            notes.append(f"{s['name']}: {s['model']} does not exist, left out")
        else:
            keep.append(s)
    return keep, notes


def _gap_timing(calls: list, cpu: list, frames: int) -> dict:
    """ms per window (wall and CPU) of the calls with ``frames`` frames, the setting's first call left out."""
    idx = [i for i, c in enumerate(calls) if c[1] == frames and (i > 0 or len(calls) == 1)]
    if not idx:
        return {"ms": None, "cpu_ms": None, "calls": 0}
    samples = sum(calls[i][2] for i in idx)
    return {"ms": 1000.0 * sum(calls[i][0] for i in idx) / samples,
            "cpu_ms": 1000.0 * sum(cpu[i] for i in idx) / samples, "calls": len(idx)}


def run_setting(setting: dict, cache, limit: int | None, gaps: list[int], seed: int = 0) -> dict:
    """One setting through the harness on ``limit`` test windows → its summary (L2P per gap, ms per window at each
    gap and over all, the harness's record)."""
    import torch

    from motionsynth.bench.protocol import load_model, resolve_settings, run_benchmark
    from motionsynth.bench.timing import machine_info, timing
    from motionsynth.registry import load_checkpoint

    torch.set_num_threads(1)
    calls: list = []
    cpu: list = []
    settings = {"gaps": list(gaps)}
    options = dict(setting.get("options") or {})
    start = time.perf_counter()
    if "method" in setting:
        record = run_benchmark("inbetween", cache, setting["method"], settings=settings, seed=seed, limit=limit,
                               progress=False, wrap=lambda m: CpuTimed(m, calls, cpu))
    else:
        method = CpuTimed(load_model(load_checkpoint(setting["model"]), "inbetween", cache, **options), calls, cpu)
        record = run_benchmark("inbetween", cache, model=setting["model"], method=method, settings=settings,
                               seed=seed, limit=limit, progress=False)
        if options:
            record["options"] = options
    wall = time.perf_counter() - start
    ctx = resolve_settings("inbetween", settings)["context"]
    rows = {int(r["gap"]): r for r in record["results"]}
    per_gap = {str(g): _gap_timing(calls, cpu, ctx + g + 1) for g in gaps}
    steady = list(range(1, len(calls))) or [0]
    return {
        "name": setting["name"], "label": setting.get("label", setting["name"]),
        "short": setting.get("short", setting.get("label", setting["name"])),
        "method": setting.get("method"), "model": setting.get("model"), "options": options,
        "limit": limit, "gaps": list(gaps), "seed": seed, "windows": rows[gaps[0]]["windows"],
        "checkpoint_hash": record.get("checkpoint_hash"),
        "l2p": {str(g): rows[g]["l2p"] for g in gaps},
        "ms_per_window": {"all": timing(calls)["latency_ms"],
                          "cpu_all": 1000.0 * sum(cpu[i] for i in steady) / sum(calls[i][2] for i in steady),
                          **{g: t["ms"] for g, t in per_gap.items()},
                          **{f"cpu_{g}": t["cpu_ms"] for g, t in per_gap.items()}},
        "timing": timing(calls), "wall_s": wall, "machine": machine_info(threads=1), "record": record,
    }


def _reusable(path: Path, setting: dict, limit, gaps: list[int]) -> dict | None:
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = (old.get("limit") == limit and old.get("gaps") == list(gaps) and old.get("method") == setting.get("method")
            and old.get("model") == setting.get("model") and old.get("options") == dict(setting.get("options") or {}))
    if same and setting.get("model"):  # the same weights (a run still training exports new ones)
        from motionsynth.checkpoint import _file_hash, resolve_model

        same = old.get("checkpoint_hash") == _file_hash(resolve_model(setting["model"]) / "weights.safetensors")
    return old if same else None


def collect(cache, settings: list[dict], limit: int | None, json_dir: Path | None = None, gaps=GAPS,
            resume: bool = False, log=print) -> list[dict]:
    """Run every setting (or reuse its JSON with ``resume``) → the summaries, in the order given; each written to
    ``json_dir/frontier_<name>.json`` when ``json_dir`` is given."""
    from motionsynth.io.atomic import atomic_open

    out = []
    for s in settings:
        path = json_dir / f"frontier_{s['name']}.json" if json_dir is not None else None
        old = _reusable(path, s, limit, gaps) if (resume and path is not None) else None
        if old is not None:
            log(f"{s['name']}: reused {path}")
            out.append(old)
            continue
        summary = run_setting(s, cache, limit, list(gaps))
        log(f"{s['name']}: {summary['wall_s']:.0f} s, L2P@{HEAD} {summary['l2p'].get(str(HEAD))}, "
            f"{summary['ms_per_window'].get(str(HEAD))} ms / window")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "w") as f:
                json.dump(summary, f, indent=1, allow_nan=True)
                f.write("\n")
        out.append(summary)
    return out


def _ratio(summary: dict, reference: dict | None, gap: int = HEAD) -> float | None:
    if reference is None:
        return None
    a, b = summary["l2p"].get(str(gap)), reference["l2p"].get(str(gap))
    return a / b if a is not None and b else None


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}"


def table(summaries: list[dict], gaps=GAPS) -> str:
    """The markdown table: setting | L2P per gap | × SLERP at 30 | ms / window at 30 (CPU ms) | ms over all gaps."""
    ref = next((s for s in summaries if s["name"] == "slerp"), None)
    head = (["setting"] + [f"L2P {g}" for g in gaps] + [f"× SLERP at {HEAD}", f"ms / window, gap {HEAD} (CPU)",
                                                         "ms / window, all gaps"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        ms = s["ms_per_window"]
        r = _ratio(s, ref)
        cells = [s["label"]] + [_num(s["l2p"].get(str(g))) for g in gaps] + [
            "–" if r is None else f"{r:.2f}", f"{_num(ms.get(str(HEAD)))} ({_num(ms.get(f'cpu_{HEAD}'))})",
            _num(ms.get("all"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def frontier(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The Pareto frontier of (ms, ratio, name) points: those no faster point is at least as good as, by ms."""
    best, out = float("inf"), []
    for p in sorted(points, key=lambda p: (p[0], p[1])):
        if p[1] < best:
            out.append(p)
            best = p[1]
    return out


def plot(summaries: list[dict], out: Path, title: str = "") -> Path:
    """x = ms per window at gap 30 (log), y = L2P at 30 ÷ SLERP's; one labelled point per setting, the Pareto
    frontier (a step line), the goals as dashed corners."""
    import numpy as np

    from motionsynth.errors import MotionsynthError
    from motionsynth.viz.plots import _figure, _save

    ref = next((s for s in summaries if s["name"] == "slerp"), None)
    if ref is None:
        raise MotionsynthError("the frontier plot needs the slerp setting (its L2P is the y unit)")
    points = [(s["ms_per_window"][str(HEAD)], _ratio(s, ref), s.get("short", s["label"])) for s in summaries
              if s["ms_per_window"].get(str(HEAD)) and _ratio(s, ref) is not None]
    fig, ax = _figure((7.6, 4.8))
    xs = [p[0] for p in points]
    lo, hi = min(xs + [10.0]) / 2, max(xs + [500.0]) * 2
    front = frontier(points)
    fx = [p[0] for p in front] + [hi]
    fy = [p[1] for p in front] + [front[-1][1]]
    ax.step(fx, fy, where="post", color="tab:blue", linewidth=1.5, alpha=0.7, label="Pareto frontier")
    on = {p[2] for p in front}
    for x, y, name in points:
        ax.scatter([x], [y], s=28, color="tab:blue" if name in on else "tab:gray", zorder=3)
        right = np.log(x / lo) > 0.85 * np.log(hi / lo)  # labels of the slow points to their left, inside the axes
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(-5 if right else 5, 4), fontsize=8,
                    ha="right" if right else "left")
    ys = [p[1] for p in points]
    ymin = min(ys + [0.30]) - 0.05
    for (y, x, text), color in zip(GOALS, ("tab:green", "tab:orange", "tab:red")):
        right = x if x is not None else hi
        ax.plot([lo, right], [y, y], linestyle="--", color=color, linewidth=1.0, label=f"goal {text}")
        if x is not None:
            ax.plot([x, x], [ymin, y], linestyle="--", color=color, linewidth=1.0)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(ymin, max(ys + [1.0]) * 1.05)
    ax.set_xlabel(f"ms per window, gap {HEAD} (one thread, log)")
    ax.set_ylabel(f"L2P at gap {HEAD} ÷ SLERP's")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    return _save(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("cache/bandai2"))
    ap.add_argument("--limit", type=int, default=8, help="evenly spaced test windows (the same for every setting)")
    ap.add_argument("--only", help="comma-separated setting names (default: all available)")
    ap.add_argument("--json-dir", type=Path, default=Path("docs/bench"))
    ap.add_argument("--plot", type=Path, default=Path("docs/img/inbetween_frontier.png"))
    ap.add_argument("--resume", action="store_true", help="reuse the JSON of settings already measured alike")
    args = ap.parse_args()

    from motionsynth.bench.protocol import open_cache

    settings, notes = available()
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - {s["name"] for s in SETTINGS})
        if unknown:
            ap.error(f"unknown settings {unknown}; known: {', '.join(s['name'] for s in SETTINGS)}")
        settings = [s for s in settings if s["name"] in names]
    for n in notes:
        print(n)
    summaries = collect(open_cache(args.data), settings, args.limit, args.json_dir, resume=args.resume)
    print(table(summaries))
    if any(s["name"] == "slerp" for s in summaries):
        n = summaries[0]["windows"]
        print(f"wrote {plot(summaries, args.plot, title=f'in-betweening, {n} test windows, gap {HEAD}')}")


if __name__ == "__main__":
    main()
