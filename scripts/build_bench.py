"""Building each shipped model's network for loading: with the usual random initialisation vs without it
(`registry._no_init`, what `registry.load_checkpoint` does), best of 5 warm builds, one CPU thread.

usage: OMP_NUM_THREADS=1 python scripts/build_bench.py
"""

from __future__ import annotations

import contextlib
import time

from motionsynth import registry
from motionsynth.checkpoint import read_checkpoint, resolve_model

MODELS = ("cvae-bandai", "hmvae-bandai", "meva-bandai", "diffusion-bandai", "classifier-bandai")


def best_build_ms(ckpt, skip_init: bool, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with registry._no_init() if skip_init else contextlib.nullcontext():
            registry._build_checked(ckpt)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    print("| model | with random init, ms | without (the loader), ms |\n|---|---|---|")
    for name in MODELS:
        ckpt = read_checkpoint(resolve_model(name))
        registry._build_checked(ckpt)  # warm: imports and first-use kernels
        print(f"| {name} | {best_build_ms(ckpt, False):.0f} | {best_build_ms(ckpt, True):.0f} |")


if __name__ == "__main__":
    main()
