"""Benchmark the BVH reader against the `bvhio` package, and check the read → write → read round trip.

    .venv/bin/python scripts/bench_bvh.py [ZIP] [--takes 30] [--roundtrip 200] [--all --workers 2]

- speed: the same N takes (evenly spread over the zip, written to a temporary folder first because bvhio reads
  paths) are read by `motionsynth.io.read_bvh` and by `bvhio.readAsBvh`; prints MB/s of BVH text for each (one core).
- ``--roundtrip N``: max FK joint-position error (file units) of read → write → read over N takes.
- ``--all``: time `iter_bvh` over the whole zip with ``--workers`` processes (unzip + parse, end to end).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def spread(members: list[str], n: int) -> list[str]:
    return [members[i] for i in np.linspace(0, len(members) - 1, min(n, len(members))).astype(int)]


def main() -> None:
    default_zip = Path(os.environ.get("MOTIONSYNTH_DATA_DIR", "/work/shared/data")) / "bandai-namco-motion-2.zip"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("zip", nargs="?", type=Path, default=default_zip)
    ap.add_argument("--takes", type=int, default=30, help="takes to time both parsers on")
    ap.add_argument("--roundtrip", type=int, default=0, help="takes to round-trip (0: skip)")
    ap.add_argument("--all", action="store_true", help="also time iter_bvh over the whole zip")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)  # one core for both parsers
    from motionsynth.io.bvh import format_bvh, iter_bvh, iter_bvh_members, parse_bvh, read_bvh

    with zipfile.ZipFile(args.zip) as z:
        members = sorted(n for n in z.namelist() if n.endswith(".bvh"))
        picked = spread(members, args.takes)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, m in enumerate(picked):
                paths.append(Path(tmp) / f"{i:04d}.bvh")
                paths[-1].write_bytes(z.read(m))
            mb = sum(p.stat().st_size for p in paths) / 1e6
            print(f"{len(paths)} takes, {mb:.1f} MB of BVH text from {args.zip.name}")
            read_bvh(paths[0])  # warm up (imports, torch)
            t0 = time.perf_counter()
            for p in paths:
                read_bvh(p)
            ours = time.perf_counter() - t0
            import bvhio

            t0 = time.perf_counter()
            for p in paths:
                bvhio.readAsBvh(str(p))
            theirs = time.perf_counter() - t0
    print(f"motionsynth read_bvh : {mb / ours:7.1f} MB/s  ({ours:.2f} s)")
    print(f"bvhio.readAsBvh      : {mb / theirs:7.1f} MB/s  ({theirs:.2f} s)")
    print(f"speed-up             : {theirs / ours:7.1f}x")

    if args.roundtrip:
        worst, n = 0.0, 0
        for name, m in iter_bvh_members(args.zip, spread(members, args.roundtrip), workers=args.workers):
            if isinstance(m, Exception):
                print(f"  unreadable {name}: {m}")
                continue
            back = parse_bvh(format_bvh(m))
            worst = max(worst, float(np.abs(back.global_positions() - m.global_positions()).max()))
            n += 1
        print(f"round trip read → write → read over {n} takes: max FK joint error {worst:.2e} file units")

    if args.all:
        with zipfile.ZipFile(args.zip) as z:
            total = sum(z.getinfo(m).file_size for m in members) / 1e6
        t0 = time.perf_counter()
        ok = bad = frames = 0
        for _, m in iter_bvh(args.zip, workers=args.workers):
            if isinstance(m, Exception):
                bad += 1
            else:
                ok += 1
                frames += m.num_frames
        dt = time.perf_counter() - t0
        print(f"iter_bvh whole zip, {args.workers} workers: {ok} takes ({bad} bad), {frames:,} frames, "
              f"{total:.0f} MB in {dt:.1f} s = {total / dt:.1f} MB/s")


if __name__ == "__main__":
    sys.exit(main())
