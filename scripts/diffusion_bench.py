"""Benchmarks of a diffusion checkpoint (issue 14): sampler steps, guidance scale, seams of long clips.

    .venv/bin/python scripts/diffusion_bench.py sampling --data cache/bandai2 --model runs/diffusion/best \
        --classifier runs/classifier/model --samplers ddpm,ddim:100,ddim:50,ddim:20,ddim:10 [--repetitions 1] \
        [--json docs/bench/diffusion_sampling.json]
    .venv/bin/python scripts/diffusion_bench.py guidance --data cache/bandai2 --model runs/diffusion/best \
        --classifier runs/classifier/model --scales 0,0.5,1,1.5,2.5,4 --split val \
        [--plot docs/img/diffusion_guidance.png] [--json docs/bench/diffusion_guidance.json]
    .venv/bin/python scripts/diffusion_bench.py seams --data cache/bandai2 --model runs/diffusion/best \
        --seconds 60 --labels walk,run,wave-both-hands [--json docs/bench/diffusion_seams.json]

- ``sampling``: per sampler (``ddpm``: ancestral, all T steps; ``ddim:N``: N DDIM steps, η = 0) the ``generate``
  protocol of `bench.generation` (FID, accuracy, diversity, multimodality, foot skating; ``--repetitions`` ×
  ``--samples-per-label`` samples per label) and the latency of one 120-frame clip (``--frames``) for a label, one
  sample per call, and per clip with ``--batch`` samples in one call (median of ``--repeats`` after a warm-up; DDPM
  batched only with ``--batch-ddpm``).
- ``guidance``: the ``generate`` protocol per classifier-free guidance scale w; the table and a plot of FID and
  recognition accuracy against w, and the chosen w (``chosen_guidance``: the lowest FID among the scales recognised
  at ≥ 0.9 × the real accuracy, else the most recognised). Run it on ``--split val`` (the test split is for the
  chosen one).
- ``seams``: one ``--seconds`` clip per label (window after window, each continuing the frames already made:
  ``long="continue"``); per frame the mean joint acceleration (cm/frame²) and per step the foot speed in contact
  (cm/s, `metrics.foot_contact_speed`, toes and ankles, 5 cm above the clip's lowest foot point); both averaged
  over the seams — the frames two consecutive windows share, widened by ``--radius`` on each side — and over the
  rest of the clip.

Everything runs on ``--threads`` torch threads on the CPU; the JSON records the machine and the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from motionsynth.bench.timing import median_call_s


def generate_row(args, method, split: str) -> dict:
    """The ``generate`` protocol for ``method`` → its 'all' row (the real row's FID beside it)."""
    from motionsynth.bench.protocol import run_benchmark

    settings = {"classifier": args.classifier, "samples_per_label": args.samples_per_label,
                "repetitions": args.repetitions, "label_weights": args.label_weights}
    rec = run_benchmark("generate", args.data, model=str(args.model), method=method, settings=settings,
                        split=split, progress=False)
    rows = {r["data"]: r for r in rec["results"] if r["label"] == "all"}
    gen, real = rows["generated"], rows["real"]
    keys = ("accuracy", "fid", "diversity", "multimodality", "foot_skate")
    return {**{k: gen[k] for k in keys}, **{f"{k}_ci95": gen[f"{k}_ci95"] for k in keys},
            "real_accuracy": real["accuracy"], "real_fid": real["fid"], "samples": gen["samples"]}


def sampler_options(spec: str) -> dict:
    if spec == "ddpm":
        return {"sampler": "ddpm"}
    name, _, steps = spec.partition(":")
    if name != "ddim" or not steps.isdigit():
        raise SystemExit(f"--samplers: expected ddpm or ddim:N, got {spec!r}")
    return {"sampler": "ddim", "steps": int(steps)}


def cmd_sampling(args, ckpt, label) -> list[dict]:
    from motionsynth.ops import rest_motion
    from motionsynth.registry import load_method
    from motionsynth.tasks import generate_mask

    sk = ckpt.skeleton
    clip = rest_motion(sk, args.frames, ckpt.fps)
    mask = generate_mask(args.frames, len(sk))
    rows = []
    for spec in args.samplers.split(","):
        method = load_method(ckpt, **sampler_options(spec), guidance=args.guidance)
        one = median_call_s(method, clip, mask, args.repeats, label=label, seed=0)
        row = {"sampler": spec, "clip_s": round(one, 3), "batched_clip_s": None, "batch": args.batch}
        if spec != "ddpm" or args.batch_ddpm:  # batched DDPM: T / N times a batched N-step DDIM; minutes here
            batch = median_call_s(method, clip, mask, args.repeats, label=label, n_samples=args.batch, seed=0)
            row["batched_clip_s"] = round(batch / args.batch, 4)
        t0 = time.perf_counter()
        row.update(generate_row(args, method, args.split))
        row["generate_wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def cmd_guidance(args, ckpt, label) -> list[dict]:
    from motionsynth.registry import load_method

    rows = []
    for w in [float(v) for v in args.scales.split(",")]:
        method = load_method(ckpt, guidance=w, **sampler_options(args.sampler))
        row = {"guidance": w, **generate_row(args, method, args.split)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.plot:
        plot_guidance(rows, args.plot)
    return rows


def choose_guidance(rows: list[dict]) -> float:
    """The scale with the lowest FID among those whose samples are recognised at ≥ 0.9 × the real accuracy; if none
    is, the scale with the highest accuracy."""
    good = [r for r in rows if r["accuracy"] >= 0.9 * r["real_accuracy"]]
    return (min(good, key=lambda r: r["fid"]) if good else max(rows, key=lambda r: r["accuracy"]))["guidance"]


def plot_guidance(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from motionsynth.io.atomic import atomic_path

    w = [r["guidance"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.errorbar(w, [r["fid"] for r in rows], [r["fid_ci95"] for r in rows], color="tab:red", marker="o",
                label="FID")
    ax.set_xlabel("guidance scale w (sample = (1 + w) f(label) − w f(∅))")
    ax.set_ylabel("FID (lower is better)", color="tab:red")
    right = ax.twinx()
    right.errorbar(w, [100 * r["accuracy"] for r in rows], [100 * r["accuracy_ci95"] for r in rows],
                   color="tab:blue", marker="s", label="accuracy")
    right.axhline(90 * rows[0]["real_accuracy"], color="tab:blue", ls=":", lw=1)
    right.set_ylabel("recognised as its label, % (dotted: 0.9 × real)", color="tab:blue")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)


def cmd_seams(args, ckpt, label) -> list[dict]:
    from motionsynth.bench.clips import global_transforms
    from motionsynth.kinematics import foot_joints
    from motionsynth.metrics import accel, foot_contact_speed
    from motionsynth.ops import blend_weights, rest_motion
    from motionsynth.registry import load_method
    from motionsynth.tasks import generate_mask

    sk = ckpt.skeleton
    method = load_method(ckpt, long="continue", guidance=args.guidance, **sampler_options(args.sampler))
    frames = int(round(args.seconds * ckpt.fps))
    starts, _ = blend_weights(frames, method.window, method.overlap)
    seams = list(zip(starts[1:].tolist(), (starts[:-1] + method.window).tolist()))  # where two windows overlap
    t = np.arange(frames)
    near = np.zeros(frames, bool)
    for a, b in seams:
        near |= (t >= a - args.radius) & (t < b + args.radius)
    rows = []
    for name in args.labels.split(","):
        t0 = time.perf_counter()
        motion = method.complete(rest_motion(sk, frames, ckpt.fps), generate_mask(frames, len(sk)),
                                 label={args.kind: name}, seed=0)[0]
        wall = time.perf_counter() - t0
        _, pos = global_transforms([motion])
        acc = accel(pos[0], reduce=False)  # (T-2,), frame i centred on i+1
        speed, contact = foot_contact_speed(pos[0], foot_joints(sk, ankles=True), fps=ckpt.fps)  # (T-1, F), step t → t+1
        a_near, s_near = near[1:-1], near[:-1] | near[1:]

        def skate(where, speed=speed, contact=contact):
            c = contact[where]
            return float((speed[where] * c).sum() / max(c.sum(), 1))

        row = {"label": name, "frames": frames, "seams": len(seams), "wall_s": round(wall, 1),
               "accel_seams": float(acc[a_near].mean()), "accel_rest": float(acc[~a_near].mean()),
               "skate_seams": skate(s_near), "skate_rest": skate(~s_near)}
        row["accel_ratio"] = row["accel_seams"] / row["accel_rest"]
        row["skate_ratio"] = row["skate_seams"] / max(row["skate_rest"], 1e-9)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["sampling", "guidance", "seams"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--classifier", type=Path, help="action classifier (sampling, guidance)")
    ap.add_argument("--split", default="test", help="evaluation split of the generate protocol")
    ap.add_argument("--samplers", default="ddpm,ddim:100,ddim:50,ddim:20,ddim:10")
    ap.add_argument("--sampler", default="ddim:50", help="the sampler of guidance and seams")
    ap.add_argument("--scales", default="0,0.5,1,1.5,2.5,4")
    ap.add_argument("--guidance", type=float, default=1.5, help="guidance scale of sampling and seams")
    ap.add_argument("--samples-per-label", type=int, default=100)
    ap.add_argument("--label-weights", default="uniform", choices=("uniform", "split"),
                    help="samples per label: as many for each (uniform) or in the evaluation split's label mix")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--frames", type=int, default=120, help="clip length of the latency figures")
    ap.add_argument("--batch", type=int, default=16, help="samples per call of the batched latency")
    ap.add_argument("--batch-ddpm", action="store_true", help="time batched DDPM too (slow on a CPU)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--labels", default="walk,run,wave-both-hands")
    ap.add_argument("--kind", default="content")
    ap.add_argument("--label", default="walk", help="the label of the latency clips")
    ap.add_argument("--radius", type=int, default=2, help="frames either side of a seam counted as the seam")
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.what in ("sampling", "guidance") and not args.classifier:
        ap.error(f"{args.what} needs --classifier")

    import torch

    torch.set_num_threads(args.threads)
    from motionsynth.io.atomic import atomic_open
    from motionsynth.registry import load_checkpoint

    ckpt = load_checkpoint(args.model)
    t0 = time.perf_counter()
    rows = {"sampling": cmd_sampling, "guidance": cmd_guidance, "seams": cmd_seams}[args.what](
        args, ckpt, {args.kind: args.label})
    record = {"what": args.what, **({"chosen_guidance": choose_guidance(rows)} if args.what == "guidance" else {}), "model": str(args.model), "checkpoint_hash": ckpt.weights_hash,
              "final_step": ckpt.config.get("final_step"), "best": ckpt.config.get("best"),
              "settings": {k: str(v) for k, v in vars(args).items()},
              "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "torch": torch.__version__}, "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}
    if args.json:
        with atomic_open(args.json) as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
