"""`motionsynth train`: any model family of the registry, through the one trainer (`motionsynth.train`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError
from ..registry import FAMILIES

_FAMILY_HELP = "Model family: " + "; ".join(f"{s.name} ({s.summary})" for s in FAMILIES.values()) + "."


def train_command(
    model: Annotated[str, typer.Argument(help=_FAMILY_HELP)],
    data: Annotated[Path, typer.Option("--data", help="Motion cache folder (`motionsynth data prepare`).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: config.yaml, checkpoints/, logs/, model/, best/.")],
    config: Annotated[Optional[Path], typer.Option(
        "--config", help="YAML file with sections preset, train, model.")] = None,
    preset: Annotated[Optional[str], typer.Option(
        "--preset", help="cpu (default: about an hour on 2 cores) or paper.")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Optimiser steps (train.steps).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Windows per step per device.")] = None,
    devices: Annotated[Optional[int], typer.Option(
        "--devices", help="Devices per node (DDP when more than one).")] = None,
    num_nodes: Annotated[Optional[int], typer.Option(
        "--num-nodes", help="Nodes (DDP; launch with srun/torchrun).")] = None,
    accelerator: Annotated[Optional[str], typer.Option(
        "--accelerator", help="auto (default), cpu or gpu (Lightning's accelerator; DDP over gloo on the CPU, "
                              "NCCL on GPUs).")] = None,
    precision: Annotated[Optional[str], typer.Option(
        "--precision", help="Lightning precision: 32-true, bf16-mixed…")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of weights, data order and augmentation.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="DataLoader worker processes.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Override any setting: --set train.lr=3e-4 --set model.beta=0.01 (repeatable); hold whole "
                      "actions out: --set 'train.hold_out.content=[run,raise-up-*]'.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from checkpoints/last.ckpt.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
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
    overrides = parse_key_values(set_ or [], "--set", nested=True)
    t = overrides.setdefault("train", {})
    for key, value in (("steps", max_steps), ("batch_size", batch_size), ("devices", devices),
                       ("num_nodes", num_nodes), ("accelerator", accelerator), ("precision", precision), ("seed", seed),
                       ("num_workers", workers)):
        if value is not None:
            t[key] = value
    folder = train(model, data, out, config_file=config, preset=preset, overrides=overrides, resume=resume,
                   command=shlex.join(["motionsynth", *sys.argv[1:]]), progress=progress)
    from lightning.pytorch.utilities import rank_zero_only

    if getattr(rank_zero_only, "rank", 0) == 0:  # under DDP every process returns here; one says it
        typer.echo(f"model: {folder}")


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train_command)
