"""A CVAE checkpoint whose decoder output heads are zero: its completion is the model's fill alone (the column
interpolation of the observed features, the root along the interpolated track) — the starting point the trained
residual improves on. Used for the "fill alone" row of docs/BENCHMARKS.md (Two-branch CVAE).

    .venv/bin/python scripts/cvae_fill_only.py --data cache/bandai2 --out runs/cvae-fill-only
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import torch

from motionsynth.checkpoint import save_checkpoint
from motionsynth.data.cache import MotionCache
from motionsynth.models.cvae import CVAEConfig
from motionsynth.registry import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cache = MotionCache(args.data)
    model = build_model("cvae", asdict(CVAEConfig()), cache.skeleton)
    model.set_stats(cache.stats)
    for head in model.decoder.heads:
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    config = {"family": "cvae", "model": model.config_dict(), "fps": cache.fps}
    save_checkpoint(args.out, model, config, cache.skeleton, cache.stats, data_hash=cache.data_hash,
                    labels=cache.label_names)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
