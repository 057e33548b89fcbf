"""Retargeting benchmark: each shared rig (and SMPL) → Bandai Namco skeleton → back.

Per rig: joints mapped with no hand-written map; bone-direction error of the exactly mapped bones after retargeting
to Bandai (median, p95, degrees); foot skating (mean foot speed while in contact, cm/s in Bandai units) before and
after; round-trip error rig → Bandai → rig on hands, feet and head (median, p95, max over frames and the five end
joints, % of the rig's height; the worst frame's index); timings: building a `Retargeter` (body maps included,
first time for a skeleton / again), ms per 1,000 frames (the clip cycled to 1,000 frames; rig → Bandai and back)
and ms for one 65-frame window (the in-betweening task's) there and back. Prints a markdown table.

    MOTIONSYNTH_DATA_DIR=../shared/data .venv/bin/python scripts/retarget_bench.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from motionsynth import rotations as R
from motionsynth.io.amass import smpl_skeleton
from motionsynth.io.bvh import iter_bvh_members, read_bvh
from motionsynth.kinematics import foot_contacts
from motionsynth.motion import Motion
from motionsynth.retarget import Retargeter, bone_direction_errors
from motionsynth.skeleton import Skeleton

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import end_positions, make_motion


def skating(positions: np.ndarray, feet: list[int], fps: float, up_q: np.ndarray, scale: float) -> float:
    """Mean foot speed (cm/s) over the frames a foot is in contact (height test only: within 5 cm of the floor)."""
    p = R.quat_apply(up_q, positions[:, feet]) * scale
    contact = foot_contacts(p[:, :, None].reshape(len(p), len(feet), 3), list(range(len(feet))), fps=fps,
                            max_speed=None, max_height=5.0)
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
    c = contact[1:]
    return float(speed[c].mean()) if c.any() else float("nan")


def cycled(motion: Motion, frames: int) -> Motion:
    """``motion`` cycled (or cut) to ``frames`` frames."""
    idx = np.arange(frames) % motion.num_frames
    tr = None if motion.translations is None else motion.translations[idx]
    return Motion(motion.skeleton, motion.rotations[idx], motion.root_positions[idx], motion.fps, translations=tr)


def best_ms(fn, repeats: int = 7) -> float:
    """Best wall time of ``repeats`` calls (ms), after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def fresh(skeleton: Skeleton) -> Skeleton:
    """A new skeleton object equal to ``skeleton`` (no cached body map)."""
    return Skeleton.from_dict(skeleton.to_dict())


def row(name: str, motion: Motion, bandai: Skeleton) -> str:
    src, tgt = fresh(motion.skeleton), fresh(bandai)
    start = time.perf_counter()
    there = Retargeter(src, tgt)
    build_cold = 1e3 * (time.perf_counter() - start)
    build_again = best_ms(lambda: Retargeter(src, tgt))
    motion = Motion(src, motion.rotations, motion.root_positions, motion.fps, translations=motion.translations)
    out = there(motion)
    back = Retargeter(there.target, there.source)
    again = back(out)
    long, window = cycled(motion, 1000), cycled(motion, 65)
    long_out = there(long)
    ms_there, ms_back = best_ms(lambda: there(long)), best_ms(lambda: back(long_out))
    ms_window = best_ms(lambda: back(there(window)))

    err = bone_direction_errors(there, motion, out)
    k = there.scale  # source units → Bandai cm
    rt = np.linalg.norm(end_positions(there.source, again) - end_positions(there.source, motion), axis=-1)
    rt = 100 * rt / there.source.height
    worst = int(np.unravel_index(np.argmax(rt), rt.shape)[0])
    src_feet = [there.source.joint(f"{s}_{r}") for s in ("left", "right") for r in ("foot", "toe")]
    tgt_feet = [there.target.joint(f"{s}_{r}") for s in ("left", "right") for r in ("foot", "toe")]
    before = skating(motion.global_positions(), [j for j in src_feet if j is not None], motion.fps, there.C, k)
    after = skating(out.global_positions(), [j for j in tgt_feet if j is not None], out.fps, R.quat_identity(), 1)
    mapped = f"{int(there.mapped.sum())}/{len(bandai)} → Bandai, {len(motion.skeleton) - len(there.source.unmapped)}"
    return (f"| {name} | {len(motion.skeleton)} | {there.source.convention} | {mapped} | {np.median(err):.2g} | "
            f"{np.percentile(err, 95):.2g} | {before:.1f} → {after:.1f} | {np.median(rt):.3f} / "
            f"{np.percentile(rt, 95):.3f} / {rt.max():.3f} (frame {worst} of {motion.num_frames}) | "
            f"{build_cold:.0f} / {build_again:.3f} | {ms_there:.1f} / {ms_back:.1f} | {ms_window:.2f} |")


def main() -> None:
    data = Path(os.environ.get("MOTIONSYNTH_DATA_DIR", "../shared/data"))
    _, bandai = next(iter_bvh_members(data / "bandai-namco-motion-2.zip",
                                      ["bandai-namco-2/data/dataset-2_walk_normal_001.bvh"]))
    assert isinstance(bandai, Motion)
    Retargeter(smpl_skeleton(), bandai.skeleton)(make_motion(smpl_skeleton(), 10))  # imports, first-call costs
    print("| rig | joints | convention | joints mapped (Bandai fed / rig with a role) | bone dir. median ° | "
          "p95 ° | foot skating cm/s before → after | round trip hands, feet, head: % of height median / p95 / "
          "max (worst frame) | build ms first / again | ms / 1,000 frames to Bandai / back | ms per 65-frame "
          "window there + back |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in sorted((data / "rigs").glob("*.bvh")):
        print(row(path.name, read_bvh(path), bandai.skeleton), flush=True)
    print(row("SMPL (`smpl_skeleton()`, synthetic motion)", make_motion(smpl_skeleton(), 300), bandai.skeleton))


if __name__ == "__main__":
    main()
