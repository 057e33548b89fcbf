"""Issue 22's reader and smoothing measurements, each printed as a markdown table (docs/BENCHMARKS.md).

    .venv/bin/python scripts/hardening_bench.py readers
    .venv/bin/python scripts/hardening_bench.py smooth --frames 1000,10000,200000 [--data ../shared/data]
    .venv/bin/python scripts/hardening_bench.py smooth-all --data ../shared/data [--iters 50]

``readers``: crafted files (a BVH header claiming 99,999,999 frames, a motion npz whose ``rotations`` header claims
10^13 frames, a deflated 1,000,000-frame SMPL-H AMASS file of 1.2 MB) read with `io.load_motion`: the error, the
peak of Python's traced memory and the time (in process, after imports). ``smooth``: `postprocess.smooth_motion`
on 22-joint Bandai Namco 2 takes laid end to end, per length and norm. ``smooth-all``: every take of both Bandai
datasets and every clip of ``rigs/`` smoothed with the defaults: failures, takes, joint-frames, wall time.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import tracemalloc
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np


def crafted_files(folder: Path) -> list[Path]:
    """The three crafted inputs, written into ``folder`` (the AMASS file streamed: never 1.2 GB in memory)."""
    from motionsynth.io.amass import smpl_skeleton
    from motionsynth.io.bvh import format_bvh
    from motionsynth.io.npz import save_npz
    from motionsynth.ops import rest_motion

    clip = rest_motion(smpl_skeleton(), 10, 30.0, name="m")
    lines = format_bvh(clip[:1]).splitlines()
    lines[next(i for i, line in enumerate(lines) if line.startswith("Frames:"))] = "Frames: 99999999"
    (folder / "huge_frames.bvh").write_text("\n".join(lines) + "\n")
    save_npz(clip, folder / "m.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**13, 22, 4)})
    with zipfile.ZipFile(folder / "m.npz") as src, zipfile.ZipFile(folder / "claims_1e13.npz", "w") as dst:
        for name in src.namelist():
            dst.writestr(name, header.getvalue() + bytes(64) if name == "rotations.npy" else src.read(name))
    frames = 1_000_000
    with zipfile.ZipFile(folder / "amass_1M.npz", "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("poses.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (frames, 156)})
            for _ in range(frames // 10_000):
                f.write(bytes(156 * 8 * 10_000))
        for key, value in {"trans": np.zeros((frames, 3)), "mocap_framerate": np.array(60.0),
                           "betas": np.zeros(16), "gender": np.array("neutral")}.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value)
            z.writestr(f"{key}.npy", buffer.getvalue())
    return [folder / n for n in ("huge_frames.bvh", "claims_1e13.npz", "amass_1M.npz")]


def readers() -> None:
    from motionsynth.io import load_motion

    print("| file | size | refused with | peak traced memory | time |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in crafted_files(Path(tmp)):
            tracemalloc.start()
            start = time.perf_counter()
            try:
                load_motion(path)
                outcome = "nothing: loaded"
            except Exception as e:  # the outcome is what is measured
                outcome = f"{type(e).__name__}: {str(e).replace(tmp + '/', '')}"
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"| {path.name} | {path.stat().st_size / 1024:,.0f} KiB | {outcome} | {peak / 1024:,.0f} KiB | "
                  f"{seconds * 1e3:.1f} ms |")


def bandai_clip(data: Path, frames: int):
    """``frames`` frames of the first 40 Bandai Namco 2 takes laid end to end (repeated as needed)."""
    from motionsynth.io.bvh import parse_bvh

    with zipfile.ZipFile(data / "bandai-namco-motion-2.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".bvh"))[:40]
        takes = [parse_bvh(z.read(n), n) for n in names]
    rot = np.concatenate([t.rotations for t in takes])
    root = np.concatenate([t.root_positions for t in takes])
    reps = -(-frames // len(rot))
    return replace(takes[0], rotations=np.tile(rot, (reps, 1, 1))[:frames],
                   root_positions=np.tile(root, (reps, 1))[:frames], translations=None)


def smooth(data: Path, lengths: list[int]) -> None:
    from motionsynth.postprocess import smooth_motion

    smooth_motion(bandai_clip(data, 100))  # warm-up: imports
    print("| frames x joints | norm | wall |\n|---|---|---|")
    for frames in lengths:
        clip = bandai_clip(data, frames)
        for norm in ("l2", "squared"):
            start = time.perf_counter()
            smooth_motion(clip, norm=norm)
            print(f"| {frames:,} x {len(clip.skeleton)} | {norm} | {time.perf_counter() - start:.2f} s |", flush=True)


def smooth_all(data: Path, iters: int) -> None:
    from motionsynth.io.bvh import iter_bvh
    from motionsynth.postprocess import smooth_motion

    print("| source | takes | joint-frames | failures | largest mean joint move | wall |\n|---|---|---|---|---|---|")
    for source in ("bandai-namco-motion-1.zip", "bandai-namco-motion-2.zip", "rigs"):
        start, takes, size, failures, moved = time.perf_counter(), 0, 0, [], 0.0
        for name, motion in iter_bvh(data / source):
            takes += 1
            try:
                out = smooth_motion(motion, iters=iters)
            except Exception as e:  # failures are what is counted
                failures.append(f"{name}: {type(e).__name__}: {e}")
                continue
            size += motion.num_frames * len(motion.skeleton)
            shift = np.linalg.norm(out.global_positions() - motion.global_positions(), axis=-1).mean()
            moved = max(moved, float(shift))
        print(f"| {source} | {takes:,} | {size:,} | {len(failures)} | {moved:.2f} cm | "
              f"{time.perf_counter() - start:.0f} s |", flush=True)
        for line in failures[:5]:
            print(f"  {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("readers", "smooth", "smooth-all"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--frames", default="1000,10000,200000", help="smooth: clip lengths, comma-separated")
    parser.add_argument("--iters", type=int, default=50, help="smooth-all: reweighting steps")
    args = parser.parse_args(argv)
    if args.what == "readers":
        readers()
    elif args.what == "smooth":
        smooth(args.data, [int(n) for n in args.frames.split(",")])
    else:
        smooth_all(args.data, args.iters)


if __name__ == "__main__":
    main()
