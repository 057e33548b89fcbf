"""`motionsynth train` (any model family) and `motionsynth generate` (sample a generative model's prior)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import MotionsynthError


def train_command(
    model: str = typer.Argument(..., help="Model family: hmvae, hmvae-m (one latent), hmvae-tcn (temporal convs), "
                                          "trajectory (HM-VAE root trajectory), mvae (MEVA's motion VAE), meva."),
    data: Path = typer.Option(..., "--data", help="Motion cache folder (`motionsynth data prepare`)."),
    out: Path = typer.Option(..., "--out", help="Run folder: config.yaml, checkpoints/, logs/, model/, best/."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with sections preset, train, model."),
    preset: Optional[str] = typer.Option(None, "--preset", help="cpu (default: about an hour on 2 cores) or paper."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimiser steps (train.steps)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Windows per step per device."),
    devices: Optional[int] = typer.Option(None, "--devices", help="Devices per node (DDP when more than one)."),
    num_nodes: Optional[int] = typer.Option(None, "--num-nodes", help="Nodes (DDP; launch with srun/torchrun)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="Lightning precision: 32-true, bf16-mixed…"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of weights, data order and augmentation."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes."),
    set_: list[str] = typer.Option([], "--set", help="Override any setting: --set train.lr=3e-4 "
                                                     "--set model.beta=0.01 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.ckpt."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model; exports the safe checkpoint folder OUT/model (and OUT/best, lowest validation loss)."""
    from ..models import MODELS
    from ..train import parse_overrides, train

    if model not in MODELS:
        raise MotionsynthError(f"unknown model {model!r}; choose one of {', '.join(sorted(MODELS))}")
    if not data.exists():
        raise MotionsynthError(f"{data}: no such motion cache; make one with "
                               f"`motionsynth data prepare SOURCE --dataset NAME --out {data}`")
    overrides = parse_overrides(set_)
    t = overrides.setdefault("train", {})
    for key, value in (("steps", max_steps), ("batch_size", batch_size), ("devices", devices),
                       ("num_nodes", num_nodes), ("precision", precision), ("seed", seed), ("num_workers", workers)):
        if value is not None:
            t[key] = value
    folder = train(model, data, out, config_file=config, preset=preset, overrides=overrides, resume=resume,
                   command=shlex.join(["motionsynth", *sys.argv[1:]]), progress=progress)
    typer.echo(f"model: {folder}")


def generate_command(
    model: Path = typer.Option(..., "--model", help="Checkpoint folder (RUN/model or RUN/best)."),
    n: int = typer.Option(1, "--n", help="Number of motions."),
    frames: int = typer.Option(0, "--frames", help="Frames per motion (default: the model's window)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: sample_000.bvh, sample_000.npz, …"),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Sample motions from a generative model's prior; writes one BVH and one npz per sample.

    A motion longer than the model's window (64 frames by default) is made of successive independent windows
    cross-faded over a quarter window: the trajectory continues, but the motion changes at each seam.
    """
    from ..checkpoint import load_checkpoint
    from ..io import save_motion

    if n < 1:
        raise MotionsynthError(f"--n must be at least 1, got {n}")
    ckpt = load_checkpoint(model)
    motions = sample_motions(ckpt, n, frames or None, seed)
    out.mkdir(parents=True, exist_ok=True)
    for i, motion in enumerate(motions):
        save_motion(motion, out / f"sample_{i:03d}.bvh")
        save_motion(motion, out / f"sample_{i:03d}.npz")
    typer.echo(f"wrote {len(motions)} motions of {motions[0].num_frames} frames to {out}")


def sample_motions(ckpt, n: int, frames: int | None = None, seed: int = 0, overlap: int | None = None) -> list:
    """``n`` motions of ``frames`` frames from the prior of a loaded checkpoint (a model with ``sample``).

    A motion longer than the model's window T is made of successive independent windows whose features are
    cross-faded over ``overlap`` frames (default T/4): the root block holds velocities, so the trajectory continues,
    but each window is a fresh draw, so the motion changes character at each seam (about every T - overlap frames).
    For seamless long motion use a prediction method that conditions on the previous frames.
    """
    import numpy as np
    import torch

    from ..data.features import decode

    model = ckpt.model
    if not hasattr(model, "sample"):
        raise MotionsynthError(f"a {ckpt.family} model cannot generate (it has no prior to sample)")
    T = int(ckpt.config["model"].get("window", 64))
    frames = frames or T
    if frames < 1:
        raise MotionsynthError(f"--frames must be positive, got {frames}")
    overlap = T // 4 if overlap is None else overlap
    step = T - overlap
    windows = 1 if frames <= T else 1 + -(-(frames - T) // step)
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        feats = model.sample(n * windows, generator=gen).reshape(n, windows, T, -1).cpu().numpy()
    feats = ckpt.stats.denormalize(feats.astype(np.float32))
    fps = float(ckpt.fps or 30.0)
    out = []
    ramp = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
    for i in range(n):
        seq = feats[i, 0]
        for w in range(1, windows):
            nxt = feats[i, w]
            if overlap:
                blend = seq[-overlap:] * (1 - ramp[:, None]) + nxt[:overlap] * ramp[:, None]
                seq = np.concatenate([seq[:-overlap], blend, nxt[overlap:]])
            else:
                seq = np.concatenate([seq, nxt])
        out.append(decode(seq[:frames], ckpt.skeleton, fps, name=f"sample_{i:03d}"))
    return out


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train_command)
    app.command("generate")(generate_command)
