"""`motionsynth train`: any model family of the registry, through the one trainer (`motionsynth.train`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import MotionsynthError
from ..registry import FAMILIES

_FAMILY_HELP = "Model family: " + "; ".join(f"{s.name} ({s.summary})" for s in FAMILIES.values()) + "."


def train_command(
    model: str = typer.Argument(..., help=_FAMILY_HELP),
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
                                                     "--set model.beta=0.01 (repeatable); hold whole actions "
                                                     "out: --set 'train.hold_out.content=\\[run,raise-up-*]'."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.ckpt."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a model; exports the safe checkpoint folder OUT/model (and OUT/best, lowest validation loss)."""
    from ..config import parse_key_values
    from ..io.atomic import check_output
    from ..registry import family
    from ..train import train

    family(model)  # an unknown family is a clear error before anything else
    if not data.exists():
        raise MotionsynthError(f"{data}: no such motion cache; make one with "
                               f"`motionsynth data prepare SOURCE --dataset NAME --out {data}`")
    check_output(out, folder=True)
    overrides = parse_key_values(set_, "--set", nested=True)
    t = overrides.setdefault("train", {})
    for key, value in (("steps", max_steps), ("batch_size", batch_size), ("devices", devices),
                       ("num_nodes", num_nodes), ("precision", precision), ("seed", seed), ("num_workers", workers)):
        if value is not None:
            t[key] = value
    folder = train(model, data, out, config_file=config, preset=preset, overrides=overrides, resume=resume,
                   command=shlex.join(["motionsynth", *sys.argv[1:]]), progress=progress)
    typer.echo(f"model: {folder}")


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train_command)
