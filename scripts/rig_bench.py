"""The shipped models on other rigs: in-betweening and completion on each shared rig clip against interpolation in
the rig's own skeleton, beside the same protocol on the model's own skeleton (Bandai test takes).

usage: python scripts/rig_bench.py --data cache/bandai2 [--model cvae-bandai] [--rigs ../shared/data/rigs]
                                   [--bandai-takes 24] [--json out.json]

Protocol, the same on every rig (lengths in seconds, so a 120 fps rig and a 30 fps model see the same gaps):
- in-betweening: keyframes every ``--gap`` seconds (1 s: 30 frames at 30 fps) from the first frame; the clip is cut
  at its last keyframe. Scored on the frames between keyframes.
- completion: the upper body observed everywhere; the lower body unobserved for ``--span`` seconds in the middle of
  the clip and observed elsewhere (interpolation then fills the span from its ends). Scored on the span's lower body.
Error: mean distance of the scored joints' world positions to the truth, in % of the rig's height (`body.BodyMap`),
so rigs in metres, inches and centimetres compare. ``ratio`` = the model's error / interpolation's (SLERP; lower is
better). Goal (issue 24): on a foreign rig the model's ratio within 1.2x of its ratio on its own skeleton.
``retarget %``: the share of the model call spent retargeting and resampling in and out (`methods.rig.OnRig`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from motionsynth.body import body_map
from motionsynth.data.cache import MotionCache
from motionsynth.io import load_motion
from motionsynth.io.amass import smpl_skeleton
from motionsynth.methods.baselines import make_baseline
from motionsynth.methods.rig import model_body, motion_body, on_skeleton
from motionsynth.motion import Motion
from motionsynth.registry import open_method
from motionsynth.retarget import Retargeter
from motionsynth.tasks import TASKS, Mask, Request


def inbetween_work(motion: Motion, gap_s: float) -> tuple[Motion, Mask, np.ndarray]:
    """The clip cut at its last keyframe, its keyframe mask and the scored (T, J) entries."""
    step = max(2, int(round(gap_s * motion.fps)))
    last = (motion.num_frames - 1) // step * step
    clip = motion[:last + 1]
    work = TASKS["inbetween"].make(Request(motion=clip, keyframes=list(range(0, last + 1, step))))
    scored = np.repeat(~work.mask.frames[:, None], len(motion.skeleton), 1)
    return clip, work.mask, scored


def complete_work(motion: Motion, span_s: float) -> tuple[Motion, Mask, np.ndarray]:
    """Upper body observed; the lower body missing for ``span_s`` seconds mid-clip; the scored entries."""
    n = min(int(round(span_s * motion.fps)), motion.num_frames - 2)
    a = (motion.num_frames - n) // 2
    work = TASKS["complete"].make(Request(motion=motion, observe=["upper body"], span=(a, a + n)))
    scored = ~work.mask.joints
    return motion, work.mask, scored


def error_pct(result: Motion, truth: Motion, scored: np.ndarray, height: float) -> float:
    """Mean position error of the scored (frame, joint) entries, % of ``height``."""
    d = np.linalg.norm(result.global_positions() - truth.global_positions(), axis=-1)
    return float(100.0 * d[scored].mean() / height) if scored.any() else float("nan")


def run(method, motion: Motion, task: str, make, setting: float) -> dict:
    clip, mask, scored = make(motion, setting)
    height = body_map(clip.skeleton).height
    start = time.perf_counter()
    completion = method.complete(clip, mask, seed=0)
    seconds = time.perf_counter() - start
    [slerp] = make_baseline("slerp").complete(clip, mask)
    model, base = error_pct(completion[0], clip, scored, height), error_pct(slerp, clip, scored, height)
    return {"task": task, "frames": clip.num_frames, "model_pct": model, "slerp_pct": base, "seconds": seconds,
            "retarget_s": completion.timings.get("retarget_s", 0.0)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("cache/bandai2"))
    p.add_argument("--model", default="cvae-bandai")
    p.add_argument("--rigs", type=Path, default=Path("../shared/data/rigs"))
    p.add_argument("--bandai-takes", type=int, default=24, help="test takes of --data on the model's own skeleton")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between keyframes")
    p.add_argument("--span", type=float, default=1.0, help="seconds of missing lower body (completion)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    cache = MotionCache(args.data)
    takes = [cache.motion(i) for i in cache.split("test")[:args.bandai_takes]]
    rigs = [(path.stem, load_motion(path)) for path in sorted(args.rigs.glob("*.bvh"))]
    rows = []
    for task, make, setting in (("inbetween", inbetween_work, args.gap), ("complete", complete_work, args.span)):
        base = open_method(args.model, task)
        clips = [(f"Bandai test ({len(takes)} takes)", takes)]
        # the same test takes on each rig (moved there from the model's body): the rig's effect alone
        clips += [(f"{name}: the Bandai takes", [Retargeter(model_body(base), motion_body(clip))(m) for m in takes])
                  for name, clip in rigs]
        smpl = smpl_skeleton()  # SMPL's body (no clip of its own is shared: the Bandai takes only)
        clips += [("SMPL body: the Bandai takes", [Retargeter(model_body(base), smpl)(m) for m in takes])]
        clips += [(f"{name}: its own clip", [clip]) for name, clip in rigs]  # motions no model here has seen
        for name, motions in clips:
            method = on_skeleton(base, motions[0].skeleton, task, motions[0].fps)
            parts = [run(method, m, task, make, setting) for m in motions]
            row = {k: float(np.mean([r[k] for r in parts])) for k in ("model_pct", "slerp_pct")}
            row["ratio"] = row["model_pct"] / row["slerp_pct"]
            row.update(task=task, clip=name, joints=len(motions[0].skeleton), fps=motions[0].fps,
                       frames=int(sum(r["frames"] for r in parts)))
            row["retarget_pct"] = 100.0 * sum(r["retarget_s"] for r in parts) / sum(r["seconds"] for r in parts)
            rows.append(row)
            print(f"{task:9s} {name:40s} model {row['model_pct']:6.2f} %  slerp {row['slerp_pct']:6.2f} %  "
                  f"ratio {row['ratio']:.2f}  retarget {row['retarget_pct']:.0f} %", flush=True)
    own = {r["task"]: r["ratio"] for r in rows if r["clip"].startswith("Bandai")}
    print("\n| task | clip | joints | fps | model error (% height) | SLERP error | ratio | ratio / own ratio | "
          "retarget % of the call |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['clip']} | {r['joints']} | {r['fps']:g} | {r['model_pct']:.2f} | "
              f"{r['slerp_pct']:.2f} | {r['ratio']:.2f} | {r['ratio'] / own[r['task']]:.2f} | "
              f"{r['retarget_pct']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "gap_s": args.gap, "span_s": args.span,
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
