"""What retargeting adds to one task call of each model: in-betweening of the first 121 frames of the CMU rig clip
(keyframes every 30 frames) through `methods.rig.on_skeleton`, wall time and `Completion.timings["retarget_s"]`.

usage: OMP_NUM_THREADS=1 python scripts/rig_latency.py [--clip ../shared/data/rigs/cmu1_jumping_jacks.bvh]
"""

from __future__ import annotations

import argparse
import time

from motionsynth.io import load_motion
from motionsynth.methods.rig import on_skeleton
from motionsynth.registry import open_method
from motionsynth.tasks import TASKS, Request

MODELS = [("cvae-bandai", {}), ("diffusion-cond-bandai", {}), ("hmvae-bandai", {"restarts": 4})]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", default="../shared/data/rigs/cmu1_jumping_jacks.bvh")
    args = p.parse_args()
    clip = load_motion(args.clip)[:121]
    work = TASKS["inbetween"].make(Request(motion=clip, keyframes=list(range(0, 121, 30))))
    print("| model | call s | retargeting ms | share |\n|---|---|---|---|")
    for name, options in MODELS:
        method = on_skeleton(open_method(name, "inbetween", **options), clip.skeleton, "inbetween", clip.fps)
        method.complete(work.motion, work.mask, seed=0)  # warm
        start = time.perf_counter()
        completion = method.complete(work.motion, work.mask, seed=0)
        seconds = time.perf_counter() - start
        spent = completion.timings["retarget_s"]
        print(f"| {name} | {seconds:.3f} | {1000 * spent:.1f} | {100 * spent / seconds:.2f} % |")


if __name__ == "__main__":
    main()
