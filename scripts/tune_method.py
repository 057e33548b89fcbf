"""Tune a learned method's inference options on the VALIDATION split, as the harness tunes the filters.

    .venv/bin/python scripts/tune_method.py denoise --data cache/bandai2 --model runs/meva/best \
        --grid root_sigma=1,2,3 --grid smooth_sigma=0,1,2 -s noise_models=[mixed] [--windows 64] [--json OUT]
    .venv/bin/python scripts/tune_method.py inbetween --data cache/bandai2 --model runs/hmvae/best \
        --grid phase1_iters=25,50,100 --grid phase2_iters=0,100 -s gaps=[30] --windows 16

Every combination of the ``--grid`` values (keyword arguments of the family's Method, `checkpoint.load_method`) is
scored by `motionsynth.bench` (protocol settings overridden by ``-s KEY=VALUE``) on ``--windows`` evenly spaced
validation windows. The chosen one has the lowest ``--objective`` (default per task: denoise ``mpjpe_cm``,
inbetween ``l2p``, complete ``mpjpe_rel_cm``; averaged over the result rows, rounded to 0.001), ties broken by
acceleration error where there is one — the filters' rule. ``--max-accel A`` first drops the combinations whose
acceleration error is above A (e.g. the best tuned filter's on the same validation windows, so that the chosen
setting is at least as smooth). The test split is never touched.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

OBJECTIVES = {"denoise": "mpjpe_cm", "inbetween": "l2p", "complete": "mpjpe_rel_cm"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=sorted(OBJECTIVES))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--grid", action="append", default=[], help="NAME=V1,V2,... (YAML values)")
    ap.add_argument("-s", "--setting", action="append", default=[], help="protocol setting KEY=VALUE (YAML)")
    ap.add_argument("--objective", help="result column to minimise (default: per task)")
    ap.add_argument("--max-accel", type=float, help="only settings with an acceleration error at most this")
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from motionsynth.bench import run_benchmark
    from motionsynth.bench.protocol import open_cache
    from motionsynth.config import parse_key_values, parse_value
    from motionsynth.registry import load_checkpoint, load_method

    objective = args.objective or OBJECTIVES[args.task]
    settings = parse_key_values(args.setting, "--setting")
    names, values = [], []
    for g in args.grid:
        name, _, text = g.partition("=")
        names.append(name)
        values.append([parse_value(v) for v in text.split(",")])
    cache, ckpt = open_cache(args.data), load_checkpoint(args.model)
    scores = []
    for combo in itertools.product(*values):
        options = dict(zip(names, combo))
        t0 = time.perf_counter()
        record = run_benchmark(args.task, cache, model=str(args.model), method=load_method(ckpt, **options),
                               settings=settings, limit=args.windows, split="val", progress=False)
        rows = [r for r in record["results"] if isinstance(r.get(objective), (int, float))]
        score = {"options": options, objective: sum(r[objective] for r in rows) / len(rows),
                 "accel_error": sum(r.get("accel_error", 0.0) for r in rows) / len(rows),
                 "seconds": round(time.perf_counter() - t0, 1), "rows": rows}
        scores.append(score)
        print(json.dumps({k: v for k, v in score.items() if k != "rows"}), flush=True)
    allowed = [s for s in scores if args.max_accel is None or s["accel_error"] <= args.max_accel]
    if not allowed:
        raise SystemExit(f"no setting has an acceleration error at most {args.max_accel}")
    best = min(allowed, key=lambda s: (round(s[objective], 3), s["accel_error"]))
    print("chosen:", json.dumps(best["options"]))
    if args.json:
        from motionsynth.io.atomic import atomic_open

        with atomic_open(args.json) as f:
            f.write(json.dumps({"task": args.task, "split": "val", "windows": args.windows, "settings": settings,
                                "model": str(args.model), "objective": objective, "max_accel": args.max_accel,
                                "chosen": best["options"],
                                "grid": scores}, indent=2) + "\n")


if __name__ == "__main__":
    main()
