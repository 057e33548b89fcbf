"""Keypoint denoising benchmark: noisy H36M-17 keypoints made from Bandai Namco takes → each method → MPJPE (mm) and
acceleration error (mm/frame²) against the clean keypoints; a markdown table on stdout (and ``--json``).

Clean keypoints: the forward kinematics of each take of the prepared cache (``--data``, split ``--split``, test by
default), the H36M points read off Bandai joints by `BANDAI_TO_H36M` (``Head``, the top of the head, is
`HEAD_TOP_CM` beyond the Bandai ``Head`` joint along its bone). Noise, in metres on positions (the project's noise
models, `motionsynth.data.noise`, act on rotations, which cannot add the per-point, bone-length-changing noise of a
pose estimator; only their dropped-frame model is reused): i.i.d. gaussian per axis (``--sigma-cm``), spikes on a
fraction ``--spike-rate`` of the (frame, point) entries (a displacement of ``--spike-cm`` lo–hi in a random
direction), and optionally ``--drop-rate`` of the frames held at the last good one (`noise.dropped_frames`).

Methods:

- ``noisy``: the input as it is.
- ``fit``: `fit_motion` → `motion_keypoints` — fitting alone (constant bone lengths, no temporal model).
- ``fit+smooth``: `postprocess.smooth_motion` on the fitted motion, its weight tuned on ``--tune-split``.
- ``savgol`` / ``gaussian``: a Savitzky–Golay / gaussian filter on the positions along time, tuned likewise;
  ``<best filter>+fit``: that filter, then the fit.
- ``--model NAME`` (repeatable; a shipped name such as ``meva-bandai``, or a checkpoint / run folder): the learned
  denoiser as ``motionsynth denoise kp.npy --layout h36m --model NAME`` runs it — `fit_motion`, the model through
  `methods.rig.on_skeleton` (retargeted into the model's body and back), `motion_keypoints`. A take shorter than the
  model's window (which the denoise task refuses) is padded to the window by mirroring its keypoints in time
  (``numpy.pad`` ``symmetric``) at both ends, and cut back after (the count is printed; the table's last column is
  the MPJPE over the takes of at least one window only). Also ``<tuned gaussian>+NAME`` (the filter's output as the
  model's input) and ``NAME+<tuned gaussian>`` (the filter over the model's output; the σ tuned for the noisy
  input, not re-tuned). With ``--model``, ``fit (clean input)`` and ``NAME (clean input)`` score the same paths
  on the clean keypoints: the error they add by themselves.
- ``--method module:callable`` (repeatable): a learned denoiser or any other, called as
  ``fn(positions (T, 17, 3) metres +Y up, fps, layout_name) -> (T, 17, 3)``.

Timing: ``ms/1k frames`` is the method's wall time over the scored takes per 1,000 frames, after one untimed warm-up
take (one thread under ``OMP_NUM_THREADS=1``).

Tuning reads only the tuning split (validation by default), never the scored one.

    .venv/bin/python scripts/keypoint_bench.py --data cache/bandai2 --json out/keypoint_bench.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import savgol_filter

from motionsynth import metrics
from motionsynth import rotations as R
from motionsynth.data.cache import MotionCache
from motionsynth.data.noise import dropped_frames
from motionsynth.fit import fit_motion, motion_keypoints
from motionsynth.io.keypoints import LAYOUTS
from motionsynth.methods.rig import on_skeleton
from motionsynth.motion import Motion
from motionsynth.postprocess import smooth_motion
from motionsynth.registry import open_method
from motionsynth.tasks import TASKS, Request

LAYOUT = "h36m"
BANDAI_TO_H36M = {
    "Hip": "Hips", "RHip": "UpperLeg_R", "RKnee": "LowerLeg_R", "RFoot": "Foot_R", "LHip": "UpperLeg_L",
    "LKnee": "LowerLeg_L", "LFoot": "Foot_L", "Spine": "Chest", "Thorax": "Neck", "Neck/Nose": "Head",
    "Head": "Head+top", "LShoulder": "UpperArm_L", "LElbow": "LowerArm_L", "LWrist": "Hand_L",
    "RShoulder": "UpperArm_R", "RElbow": "LowerArm_R", "RWrist": "Hand_R",
}
"""H36M point → Bandai joint (``Head+top``: the head top, see `HEAD_TOP_CM`). Bandai's ``Spine`` sits just above the
hips, so H36M's mid-torso ``Spine`` is Bandai's ``Chest``; H36M's ``Thorax`` (the base of the neck) Bandai's
``Neck``; H36M's ``Neck/Nose`` the ``Head`` joint (the skull's base)."""
HEAD_TOP_CM = 16.0

Method = Callable[[np.ndarray, float, str], np.ndarray]


# ---- data -------------------------------------------------------------------------------------------------------
def clean_keypoints(motion: Motion) -> np.ndarray:
    """A Bandai motion (cm) → (T, 17, 3) H36M keypoints in metres, +Y up."""
    sk = motion.skeleton
    pos, rot = motion.global_positions(), motion.global_rotations()
    head = sk.index("Head")
    bone = sk.offsets[head] / np.linalg.norm(sk.offsets[head])
    top = pos[:, head] + R.quat_apply(rot[:, head], bone * HEAD_TOP_CM)
    cols = [top if j == "Head+top" else pos[:, sk.index(j)] for j in
            (BANDAI_TO_H36M[p] for p in LAYOUTS[LAYOUT].points)]
    return np.stack(cols, 1) / 100.0


def add_noise(x: np.ndarray, rng: np.random.Generator, args) -> np.ndarray:
    """(T, K, 3) metres → a noisy copy: gaussian, spikes, dropped frames (see the module docstring)."""
    noisy = x + rng.normal(0.0, args.sigma_cm / 100.0, x.shape)
    spikes = rng.random(x.shape[:2]) < args.spike_rate
    direction = rng.normal(size=(int(spikes.sum()), 3))
    size = rng.uniform(*args.spike_cm, size=(len(direction), 1)) / 100.0
    noisy[spikes] += direction / np.linalg.norm(direction, axis=-1, keepdims=True) * size
    if args.drop_rate > 0:
        noisy = noisy[dropped_frames(len(x), rng, args.drop_rate)]
    return noisy


def load_split(cache: MotionCache, split: str, limit: int | None, args) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, noisy) keypoints of the split's takes (the first ``limit``), noise seeded per take."""
    out = []
    for i in cache.split(split)[:limit]:
        clean = clean_keypoints(cache.motion(i))
        if len(clean) >= 3:
            out.append((clean, add_noise(clean, np.random.default_rng([args.seed, i]), args)))
    return out


# ---- methods ----------------------------------------------------------------------------------------------------
def fit(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
    return motion_keypoints(fit_motion(x, layout, fps), layout)


def fit_smooth(weight: float) -> Method:
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        return motion_keypoints(smooth_motion(fit_motion(x, layout, fps), weight), layout)
    return method


def savgol(window: int, order: int) -> Method:
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        w = min(window, len(x) - (1 - len(x) % 2))  # odd, at most T
        return x if w <= order else savgol_filter(x, w, order, axis=0, mode="interp")
    return method


def gaussian(sigma: float) -> Method:
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        return gaussian_filter1d(x, sigma, axis=0, mode="nearest")
    return method


def then_fit(first: Method) -> Method:
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        return fit(first(x, fps, layout), fps, layout)
    return method


def then(first: Method, second: Method) -> Method:
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        return second(first(x, fps, layout), fps, layout)
    return method


def model_denoiser(model) -> Method:
    """A learned denoising method (`registry.open_method`, ``task="denoise"``) as a keypoint `Method`: fit, the model
    on the fitted rig (`on_skeleton`, as ``motionsynth denoise --layout`` does), keypoints back. A clip shorter than
    the model's window is mirrored in time at both ends to the window, and cut back after."""
    def method(x: np.ndarray, fps: float, layout: str) -> np.ndarray:
        T, window = len(x), model.window or 0
        before = max(0, window - T) // 2
        padded = np.pad(x, ((before, max(0, window - T) - before), (0, 0), (0, 0)), mode="symmetric")
        motion = fit_motion(padded, layout, fps)
        m = on_skeleton(model, motion.skeleton, "denoise", fps)
        work = TASKS["denoise"].make(Request(motion=motion, window=m.window, skeleton=m.skeleton, fps=m.fps))
        out = m.complete(work.motion, work.mask, n_samples=1, seed=0).samples[0]
        return motion_keypoints(out, layout)[before:before + T]
    return method


def load_method(spec: str) -> Method:
    """``module:callable`` → the callable (the hook for a learned denoiser)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


# ---- scoring ----------------------------------------------------------------------------------------------------
def score(method: Method, takes: list[tuple[np.ndarray, np.ndarray]], fps: float, min_frames: int = 0,
          warm_up: bool = False) -> dict:
    """MPJPE (mm) and acceleration error (mm/frame²) over all frames of ``takes``; seconds spent and ms per 1,000
    frames (after one untimed call on the first take with ``warm_up``); with ``min_frames``, also the MPJPE over the
    takes of at least that many frames (``mpjpe_long_mm``, NaN when none)."""
    if warm_up and takes:
        method(takes[0][1], fps, LAYOUT)
    errs, accs, long, seconds = [], [], [], 0.0
    for clean, noisy in takes:
        start = time.perf_counter()
        pred = np.asarray(method(noisy, fps, LAYOUT)) * 1000.0
        seconds += time.perf_counter() - start
        if pred.shape != clean.shape:
            raise ValueError(f"a method returned {pred.shape} for {clean.shape} keypoints")
        errs.append(metrics.mpjpe(pred, clean * 1000.0, reduce=False))
        accs.append(metrics.accel_error(pred, clean * 1000.0, reduce=False))
        if len(clean) >= min_frames:
            long.append(errs[-1])
    frames = sum(len(c) for c, _ in takes)
    return {"mpjpe_mm": float(np.concatenate(errs).mean()), "accel_mm": float(np.concatenate(accs).mean()),
            "mpjpe_long_mm": float(np.concatenate(long).mean()) if long else float("nan"),
            "seconds": seconds, "ms_per_1k_frames": 1e6 * seconds / max(frames, 1)}


def tune(make: Callable[..., Method], grid: list[tuple], takes, fps: float) -> tuple[tuple, dict]:
    """The grid point of lowest MPJPE on ``takes`` (the tuning split) and its scores."""
    results = {g: score(make(*g), takes, fps) for g in grid}
    best = min(results, key=lambda g: results[g]["mpjpe_mm"])
    return best, results[best]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="cache/bandai2")
    p.add_argument("--split", default="test")
    p.add_argument("--tune-split", default="val")
    p.add_argument("--limit", type=int, default=None, help="takes scored (default all)")
    p.add_argument("--tune-limit", type=int, default=80, help="takes of the tuning split used for tuning")
    p.add_argument("--sigma-cm", type=float, default=2.0)
    p.add_argument("--spike-rate", type=float, default=0.02)
    p.add_argument("--spike-cm", type=float, nargs=2, default=(10.0, 30.0))
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", action="append", default=[], help="module:callable, repeatable")
    p.add_argument("--model", action="append", default=[],
                   help="a learned denoiser (shipped name or checkpoint folder), repeatable: NAME, gaussian+NAME, "
                        "NAME+gaussian rows")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    cache = MotionCache(args.data)
    fps = float(cache.meta["fps"])
    tuning = load_split(cache, args.tune_split, args.tune_limit, args)
    takes = load_split(cache, args.split, args.limit, args)
    (w,), _ = tune(fit_smooth, [(w,) for w in (0.01, 0.03, 0.1, 0.3, 1.0)], tuning, fps)
    sg, _ = tune(savgol, [(n, o) for n in (9, 17, 25, 35, 51) for o in (2, 3)], tuning, fps)
    (s,), _ = tune(gaussian, [(s,) for s in (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)], tuning, fps)
    methods: dict[str, Method] = {
        "noisy": lambda x, f, lay: x, "fit": fit, f"fit+smooth(w={w})": fit_smooth(w),
        f"savgol({sg[0]},{sg[1]})": savgol(*sg), f"gaussian(σ={s})": gaussian(s),
        f"savgol({sg[0]},{sg[1]})+fit": then_fit(savgol(*sg)), f"gaussian(σ={s})+fit": then_fit(gaussian(s)),
        **{spec: load_method(spec) for spec in args.method}}
    window = 0
    for name in args.model:
        model = open_method(name, "denoise")
        window = max(window, model.window or 0)
        short = Path(name).name if Path(name).exists() else name
        methods[short] = model_denoiser(model)
        methods[f"gaussian(σ={s})+{short}"] = then(gaussian(s), model_denoiser(model))
        methods[f"{short}+gaussian(σ={s})"] = then(model_denoiser(model), gaussian(s))
    rows = [{"method": name, **score(m, takes, fps, window, warm_up=True)} for name, m in methods.items()]
    if args.model:  # the floor of the fit and of each model path: clean keypoints in
        exact = [(clean, clean) for clean, _ in takes]
        rows += [{"method": f"{name} (clean input)", **score(methods[name], exact, fps, window, warm_up=True)}
                 for name in ("fit", *(Path(n).name if Path(n).exists() else n for n in args.model))]
    frames = sum(len(c) for c, _ in takes)
    long = sum(len(c) >= window for c, _ in takes)
    print(f"\n{args.split}: {len(takes)} takes, {frames} frames; noise σ={args.sigma_cm} cm/axis, spikes "
          f"{args.spike_rate:.0%} × {args.spike_cm[0]:g}–{args.spike_cm[1]:g} cm, dropped {args.drop_rate:.0%}; "
          f"filters tuned on {len(tuning)} {args.tune_split} takes"
          + (f"; model window {window}: {len(takes) - long} takes shorter, padded (mirrored)" if window else "")
          + "\n")
    extra = f" MPJPE, {long} takes ≥ {window} frames |" if window else ""
    print(f"| method | MPJPE (mm) | accel error (mm/frame²) | ms / 1,000 frames |{extra}\n|---|---:|---:|---:|"
          + ("---:|" if window else ""))
    for r in rows:
        print(f"| {r['method']} | {r['mpjpe_mm']:.1f} | {r['accel_mm']:.2f} | {r['ms_per_1k_frames']:.1f} |"
              + (f" {r['mpjpe_long_mm']:.1f} |" if window else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"task": "keypoint-denoise", "layout": LAYOUT, "split": args.split,
                                         "settings": {k: v for k, v in vars(args).items() if k != "json"},
                                         "data_hash": cache.meta.get("data_hash"), "results": rows}, indent=1))


if __name__ == "__main__":
    main()
