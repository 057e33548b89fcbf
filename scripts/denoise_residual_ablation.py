"""What the Δ-denoiser's network adds: a checkpoint scored through the same method path with its residual set to zero
(the output layer zeroed: the filter's motion through the feature round trip), beside the checkpoint as it is.

    OMP_NUM_THREADS=1 python scripts/denoise_residual_ablation.py --data cache/bandai2 \
        runs/dd-gaussian/best:gaussian runs/dd-spikes/best:spikes --json docs/bench/denoise_dd_ablation.json

Each RUN:NOISE is scored on the test split under that noise model with the method's options ``--option K=V``
(default: none, the method's defaults) and its residual zeroed with the same options.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="RUN:NOISE[:K=V,K=V] — a checkpoint, a noise model, method options")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from motionsynth.bench import run_benchmark
    from motionsynth.bench.protocol import open_cache
    from motionsynth.config import parse_key_values
    from motionsynth.registry import load_checkpoint, load_method

    cache, out = open_cache(args.data), []
    for spec in args.runs:
        run, noise, *rest = spec.split(":")
        options = parse_key_values(rest[0].split(",") if rest else [], "options")
        for zeroed in (False, True):
            ckpt = load_checkpoint(run)
            if zeroed:
                with torch.no_grad():
                    ckpt.model.out.weight.zero_()
                    ckpt.model.out.bias.zero_()
            record = run_benchmark("denoise", cache, model=run, method=load_method(ckpt, **options),
                                   settings={"noise_models": [noise]}, split=args.split, progress=False)
            row = {k: v for k, v in record["results"][0].items() if isinstance(v, (int, float, str, dict))}
            out.append({"run": run, "noise": noise, "options": options, "residual": "zero" if zeroed else "trained",
                        **row})
            print(json.dumps(out[-1]), flush=True)
    if args.json:
        from motionsynth.io.atomic import atomic_open

        with atomic_open(args.json) as f:
            f.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
