"""Tune a learned denoiser's inference options on the VALIDATION split, as the harness tunes the filters.

    .venv/bin/python scripts/tune_denoise.py --data cache/bandai2 --model runs/meva/best \
        --grid root_sigma=1,2,3,4 --grid smooth_sigma=0,1,2,3 [--noise mixed] [--windows 64] [--json OUT]

Every combination of the ``--grid`` values (keyword arguments of the family's Method, `checkpoint.load_method`) is
scored by `motionsynth.bench` on the first ``--windows`` evenly spaced validation windows of the ``denoise``
protocol; the chosen one has the lowest MPJPE (cm, rounded to 0.001), ties broken by acceleration error — the
filters' rule. The test split is never touched.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--grid", action="append", default=[], help="NAME=V1,V2,... (YAML values)")
    ap.add_argument("--noise", default="mixed")
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from motionsynth.bench import run_benchmark
    from motionsynth.bench.protocol import open_cache
    from motionsynth.checkpoint import load_checkpoint, load_method

    names, values = [], []
    for g in args.grid:
        name, _, text = g.partition("=")
        names.append(name)
        values.append([yaml.safe_load(v) for v in text.split(",")])
    cache, ckpt = open_cache(args.data), load_checkpoint(args.model)
    scores = []
    for combo in itertools.product(*values):
        options = dict(zip(names, combo))
        record = run_benchmark("denoise", cache, model=str(args.model), method=load_method(ckpt, **options),
                               settings={"noise_models": [args.noise]}, limit=args.windows, split="val",
                               progress=False)
        row = record["results"][0]
        scores.append({"options": options, "mpjpe_cm": row["mpjpe_cm"], "pa_mpjpe_cm": row["pa_mpjpe_cm"],
                       "accel_error": row["accel_error"], "input_mpjpe_cm": row["input_mpjpe_cm"],
                       "input_accel_error": row["input_accel_error"]})
        print(json.dumps(scores[-1]), flush=True)
    best = min(scores, key=lambda s: (round(s["mpjpe_cm"], 3), s["accel_error"]))
    print("chosen:", json.dumps(best["options"]))
    if args.json:
        from motionsynth.io.atomic import atomic_open

        with atomic_open(args.json) as f:
            f.write(json.dumps({"split": "val", "windows": args.windows, "noise": args.noise, "model": str(args.model),
                                "chosen": best["options"], "grid": scores}, indent=2) + "\n")


if __name__ == "__main__":
    main()
