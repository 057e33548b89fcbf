"""CPU speed of every task method: in-betweening one window, completion one window, denoising throughput.

    .venv/bin/python scripts/bench_speed.py --data cache/bandai2 [--prior runs/hmvae/best] [--meva runs/meva/best] \
        [--cvae runs/cvae/best] [--tasks inbetween,complete,denoise] [--threads 1] [--repeats 3] [--frames 3000] \
        [--json docs/bench/speed.json]

- in-betweening: the first 65-frame test window, 10 context frames, a 45-frame gap, the target frame after it
  (the harness's `inbetween` layout); zero-velocity, SLERP, the HM-VAE prior (its defaults: 50 + 100
  iterations, 16 restarts) and the CVAE: one sample (the prior's mean), and batched — 64 samples of the window in
  one call (the mean and 63 draws, each the best of 1 or 32 candidate latents), reported per sample.
- completion: the first 64-frame test window with the lower body missing; mean pose, nearest neighbour (fitted on
  the train split first, fit time reported apart), the prior from sampled latents (100 + 200 iterations,
  64 restarts) and the prior from the retrieved completion (``init="nearest"``: 1 restart, no iterations; fitted
  like nearest neighbour).
- denoising: the test takes concatenated to ``--frames`` frames, corrupted with the ``mixed`` noise model; the
  filters with the parameters the harness tuned for ``mixed`` (docs/BENCHMARKS.md), HM-VAE window and overlap
  refinement, MEVA. Throughput in frames/s.

Each figure is the median wall time of ``--repeats`` runs after one warm-up (`bench.timing.median_call_s`, the
harness the bench summary times with), with ``--threads`` torch threads; the JSON records the machine
(`bench.timing.machine_info`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

FILTERS = {"savgol": {"window": 21, "order": 3}, "gaussian": {"sigma": 3.0},
           "one-euro": {"min_cutoff": 4.0, "beta": 0.1, "d_cutoff": 1.0}}  # tuned on val for `mixed`


def long_sequence(cache, frames: int):
    """Test takes end to end (each continuing where the previous one stopped) until ``frames`` frames."""
    from motionsynth.bench.protocol import split_takes
    from motionsynth.ops import concat

    parts, total = [], 0
    for take in split_takes(cache, "test"):
        m = cache.motion(int(take))
        m.translations = None
        if parts:
            m.root_positions = m.root_positions - m.root_positions[0] + parts[-1].root_positions[-1]
        parts.append(m)
        total += m.num_frames
        if total >= frames:
            break
    return concat(parts)[:frames]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--prior", type=Path, help="HM-VAE checkpoint folder")
    ap.add_argument("--cvae", type=Path, help="CVAE checkpoint folder")
    ap.add_argument("--meva", type=Path, help="MEVA checkpoint folder")
    ap.add_argument("--tasks", default="inbetween,complete,denoise", help="comma-separated tasks to time")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tasks = set(args.tasks.split(","))
    if tasks - {"inbetween", "complete", "denoise"}:
        ap.error(f"--tasks: choose from inbetween, complete, denoise; got {args.tasks}")

    import torch

    torch.set_num_threads(args.threads)
    from motionsynth.bench.protocol import fit_method, iter_clips, open_cache, split_windows
    from motionsynth.bench.timing import machine_info, median_call_s
    from motionsynth.data.noise import add_noise
    from motionsynth.methods.baselines import make_baseline
    from motionsynth.registry import load_checkpoint, load_method
    from motionsynth.tasks import denoise_mask, inbetween_mask, joints_mask

    cache = open_cache(args.data)
    sk = cache.skeleton
    J = len(sk)
    rows = []

    def add(task, method, seconds, unit_count=None, unit=None):
        row = {"task": task, "method": method, "seconds": round(seconds, 4)}
        if unit_count is not None:
            row[unit] = round(unit_count / seconds, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    window = next(iter_clips(cache, split_windows(cache, "test", 65, 40, 1), 65))
    mask = inbetween_mask(65, J, context=10, gap=45)
    task = "inbetween, one 65-frame window (45-frame gap)"
    if "inbetween" not in tasks:
        window = None
    prior_ckpt = load_checkpoint(args.prior) if args.prior else None
    prior = load_method(prior_ckpt) if prior_ckpt else None
    for name, m in (("zero-velocity", make_baseline("zero-velocity")), ("slerp", make_baseline("slerp")),
                    ("hmvae prior", prior)):
        if m is not None and window is not None:
            add(task, name, median_call_s(m, window, mask, args.repeats, seed=0))
    if args.cvae and window is not None:
        batch = 64
        cvae = load_method(args.cvae)
        add(task, "cvae, one sample (the prior's mean)", median_call_s(cvae, window, mask, args.repeats, seed=0))
        for candidates in (1, 32):
            cvae = load_method(args.cvae, candidates=candidates)
            seconds = median_call_s(cvae, window, mask, args.repeats, n_samples=batch, seed=0)
            add(task, f"cvae, {batch} samples in one call (the mean + draws, best of {candidates}), per sample",
                seconds / batch)
            rows[-1]["batch_seconds"] = round(seconds, 4)

    if prior is not None and "complete" in tasks:
        window = next(iter_clips(cache, split_windows(cache, "test", 64, 40, 1), 64))
        mask = joints_mask(64, sk, sk.groups["upper"])
        methods = [("mean-pose", make_baseline("mean-pose")), ("nearest-neighbour", make_baseline("nearest-neighbour")),
                   ("hmvae prior", prior), ("hmvae prior, init nearest", load_method(prior_ckpt, init="nearest"))]
        for name, m in methods:
            fit_s = None
            if m.needs_fit:
                t0 = time.perf_counter()
                fit_method(m, cache, None, 0)
                fit_s = time.perf_counter() - t0
            add("complete, one 64-frame window (lower body missing)", name,
                median_call_s(m, window, mask, args.repeats, seed=0))
            if fit_s is not None:
                rows[-1]["fit_seconds"] = round(fit_s, 1)
    if prior is None or "denoise" not in tasks:
        return _write(args, rows, machine_info(threads=args.threads))

    seq = long_sequence(cache, args.frames)
    noisy = add_noise(seq, "mixed", 0)
    mask = denoise_mask(seq.num_frames, J)
    methods = [(n, make_baseline(n, **p)) for n, p in FILTERS.items()]
    methods += [("hmvae window", load_method(prior_ckpt, refine="window")),
                ("hmvae overlap", load_method(prior_ckpt, refine="overlap"))]
    if args.meva:
        methods.append(("meva", load_method(args.meva)))
    for name, m in methods:
        add(f"denoise, {seq.num_frames} frames (mixed noise)", name,
            median_call_s(m, noisy, mask, args.repeats, seed=0), seq.num_frames, "frames_per_s")
    _write(args, rows, machine_info(threads=args.threads))


def _write(args, rows: list, machine: dict) -> None:
    record = {"threads": args.threads, "repeats": args.repeats, "cpu": machine["cpu"], "torch": machine["torch"],
              "machine": machine, "rows": rows}
    print("\n| task | method | wall s | frames/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['method']} | {r['seconds']:.3g} | {r.get('frames_per_s', '')} |")
    if args.json:
        from motionsynth.io.atomic import atomic_open

        with atomic_open(args.json) as f:
            f.write(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
