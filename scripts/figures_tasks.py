"""Pictures of the learned methods on test windows: in-betweening, completion, denoising (observed grey, synthesised
in colour), plus per-frame error curves.

    .venv/bin/python scripts/figures_tasks.py --data cache/bandai2 --prior runs/hmvae/best --meva runs/meva/best \
        --out docs/img [--window 100] [--gif]

Writes ``inbetween_hmvae.png`` (truth, SLERP, HM-VAE; 30-frame gap), ``complete_hmvae.png`` (truth, nearest
neighbour, HM-VAE from sampled latents and from the retrieved completion; lower body missing), ``denoise_meva.png``
(truth, mixed-noise input, tuned Gaussian filter, HM-VAE, MEVA) and ``*_error.png`` curves; ``--gif`` also writes
a GIF of each. The windows are the protocol's (`motionsynth.bench.protocol`), the ``--window``-th of the test split
for each task.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def per_frame_error(pred, truth, joints, relative: bool = False) -> np.ndarray:
    """(T,) mean joint position error in cm over ``joints`` (``relative``: positions relative to the moving root)."""
    def pos(m):
        p = m.global_positions()
        return p - p[:, m.skeleton.root:m.skeleton.root + 1] if relative else p

    return np.linalg.norm(pos(pred)[:, joints] - pos(truth)[:, joints], axis=-1).mean(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--prior", type=Path, required=True)
    ap.add_argument("--meva", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--gif", action="store_true")
    args = ap.parse_args()

    from motionsynth.bench.protocol import (
        COMPLETE_SETTINGS,
        DEFAULT_SETTINGS,
        fit_method,
        iter_clips,
        moving_joints,
        open_cache,
        split_windows,
    )
    from motionsynth.data.noise import add_noise
    from motionsynth.methods.baselines import make_baseline
    from motionsynth.registry import load_checkpoint, load_method
    from motionsynth.tasks import denoise_mask, inbetween_mask, joints_mask
    from motionsynth.viz.plots import plot_error_curves
    from motionsynth.viz.render import render

    cache = open_cache(args.data)
    prior_ckpt = load_checkpoint(args.prior)
    sk, prior = cache.skeleton, load_method(prior_ckpt)
    J, moving = len(sk), moving_joints(sk)
    args.out.mkdir(parents=True, exist_ok=True)

    def clip(task: str):
        s = DEFAULT_SETTINGS[task]
        wins = split_windows(cache, "test", s["window"], s["stride"])
        return next(iter_clips(cache, wins[min(args.window, len(wins) - 1):][:1], s["window"]))

    def draw(name: str, motions: list, masks: list, titles: list, curves: dict, fps: float, task: str) -> None:
        render(motions, args.out / f"{name}.png", masks=masks, titles=titles, size=(240, 240))
        if args.gif:
            render(motions, args.out / f"{name}.gif", masks=masks, titles=titles, size=(240, 240), every=2)
        plot_error_curves(curves, args.out / f"{name}_error.png", ylabel="mean joint error (cm)", fps=fps,
                          title=f"{task}: per-frame error")
        print("wrote", args.out / f"{name}.png")

    truth = clip("inbetween")[:10 + 30 + 1]  # as the harness: context, gap, target
    mask = inbetween_mask(truth.num_frames, J, context=10, gap=30)
    slerp = make_baseline("slerp").complete(truth, mask)[0]
    hm = prior.complete(truth, mask, seed=0)[0]
    draw("inbetween_hmvae", [truth, slerp, hm], [None, mask, mask], ["in-betweening: truth", "SLERP", "HM-VAE"],
         {"SLERP": per_frame_error(slerp, truth, moving), "HM-VAE": per_frame_error(hm, truth, moving)}, truth.fps,
         "in-betweening (30-frame gap)")

    truth = clip("complete")
    mask = joints_mask(truth.num_frames, sk, COMPLETE_SETTINGS["lower_body"][1](sk))
    legs = [j for j in moving if not mask.joints[0, j]]
    nn = make_baseline("nearest-neighbour")
    fit_method(nn, cache, None, 0)
    nn_out = nn.complete(truth, mask, seed=0)[0]
    hm = prior.complete(truth, mask, seed=0)[0]
    retrieval = load_method(prior_ckpt, init="nearest")
    fit_method(retrieval, cache, None, 0)
    projected = retrieval.complete(truth, mask, seed=0)[0]
    draw("complete_hmvae", [truth, nn_out, hm, projected], [None, mask, mask, mask],
         ["completion: truth", "nearest neighbour", "HM-VAE, sampled latents", "HM-VAE from retrieval"],
         {"nearest neighbour": per_frame_error(nn_out, truth, legs, relative=True),
          "HM-VAE, sampled latents": per_frame_error(hm, truth, legs, relative=True),
          "HM-VAE from retrieval": per_frame_error(projected, truth, legs, relative=True)},
         truth.fps, "completion (lower body, root-relative)")

    truth = clip("denoise")
    noisy = add_noise(truth, "mixed", [0, args.window, 3])
    mask = denoise_mask(truth.num_frames, J)
    outs = {"noisy input": noisy, "Gaussian filter": make_baseline("gaussian", sigma=3.0).complete(noisy, mask)[0],
            "HM-VAE": prior.complete(noisy, mask)[0], "MEVA": load_method(args.meva).complete(noisy, mask)[0]}
    draw("denoise_meva", [truth, *outs.values()], [None] * (len(outs) + 1),
         ["denoising: truth", *outs], {k: per_frame_error(v, truth, moving) for k, v in outs.items()}, truth.fps,
         "denoising (mixed noise)")


if __name__ == "__main__":
    main()
