"""`motionsynth synthesize`: a labelled synthetic dataset from a generator (`motionsynth.synthesize`).

``motionsynth synthesize --model CKPT --per-label N [--labels content=walk,content=run] [--kind content]
[--style NAME] [--frames N] [--seed S] --out DIR [--format bvh|npz]`` writes N takes per label and ``DIR/manifest.csv``
(a labels CSV for ``data prepare DIR --dataset bvh-folder --labels DIR/manifest.csv``); ``--count N`` instead writes
N unlabelled takes (the only mode of a generator without labels, e.g. the HM-VAE prior). Rerunning the same command
resumes an interrupted run. ``--classifier CKPT --min-prob P`` keeps only takes the classifier recognises as their
label with probability at least P (redrawing up to ``--max-tries`` times). ``--devices N --num-nodes M
[--accelerator auto|cpu|gpu]`` splits the takes over N × M processes with Lightning Fabric, as training does (DDP;
under Slurm run it with ``srun``, elsewhere ``torchrun`` or one command per node with ``MASTER_ADDR``, ``NODE_RANK``
…): the files are those of one process, only rank 0 writes the manifest and prints. Bad input is a one-line error,
exit code 2, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError


def synthesize_command(
    model: Annotated[str, typer.Option("--model", help="Generator: shipped name, run folder or checkpoint "
                                                        "folder.",
                                       show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (takes + manifest.csv); an interrupted "
                                                          "run in it is resumed.", show_default=False)],
    per_label: Annotated[Optional[int], typer.Option("--per-label", help="Takes per label (labelled "
                                                                         "generators).")] = None,
    count: Annotated[Optional[int], typer.Option("--count", help="Unlabelled takes (instead of --per-label; any "
                                                                 "generator).")] = None,
    labels: Annotated[Optional[list[str]], typer.Option(
        "--labels", help="Labels to generate, KIND=NAME items, e.g. content=walk,content=run (repeatable). Default: "
                         "every name of --kind.")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", help="Label kind whose every name is generated when "
                                                               "--labels is not given (default: content).")] = None,
    style: Annotated[Optional[str], typer.Option("--style", help="Style label added to every take.")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", help="Frames per take (default: the model's "
                                                                   "window).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (each take's seed derives from it, its label "
                                                     "and its index).")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="Take files: bvh (a bvh-folder dataset) or npz.")] = "bvh",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Takes between two manifest updates.")] = 16,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="Option of the model's method, KEY=VALUE (repeatable).")] = None,
    classifier: Annotated[Optional[str], typer.Option("--classifier", help="Action classifier checkpoint: keep "
                                                                           "only takes it recognises as their label "
                                                                           "(see --min-prob).")] = None,
    min_prob: Annotated[float, typer.Option("--min-prob", help="With --classifier: the smallest probability of the "
                                                               "take's label to keep it (recorded in the "
                                                               "manifest).")] = 0.5,
    max_tries: Annotated[int, typer.Option("--max-tries", help="With --classifier: draws per take before giving "
                                                               "it up.")] = 10,
    devices: Annotated[int, typer.Option("--devices", help="Processes (GPUs) per node; the takes are split over "
                                                           "devices × nodes processes (DDP, as in training).")] = 1,
    num_nodes: Annotated[int, typer.Option("--num-nodes", help="Nodes (launch with srun/torchrun).")] = 1,
    accelerator: Annotated[str, typer.Option("--accelerator", help="auto, cpu or gpu (Lightning's "
                                                                   "accelerator).")] = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Write a synthetic dataset: generated takes per label plus a manifest; rerun to resume."""
    from ..config import parse_key_values
    from ..io.atomic import check_output
    from ..registry import load_checkpoint, load_method
    from ..synthesize import FORMATS, synthesize

    if fmt not in FORMATS:
        raise MotionsynthError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    check_output(out, folder=True)
    for name, value in (("--per-label", per_label), ("--count", count), ("--frames", frames),
                        ("--batch-size", batch_size)):
        if value is not None and value < 1:
            raise MotionsynthError(f"{name} must be at least 1, got {value}")
    if (per_label is None) == (count is None):
        raise MotionsynthError("give exactly one of --per-label N (takes per label) and --count N (unlabelled takes)")
    if not 0.0 <= min_prob <= 1.0:
        raise MotionsynthError(f"--min-prob must be in 0..1, got {min_prob}")
    if max_tries < 1:
        raise MotionsynthError(f"--max-tries must be at least 1, got {max_tries}")
    fabric = _fabric(devices, num_nodes, accelerator)
    try:
        ckpt = load_checkpoint(model, fabric.device)
        recognizer = None
        if classifier is not None:
            from ..bench.recognition import Recognizer

            recognizer = Recognizer(classifier, fabric.device)
        frames = ckpt.window if frames is None else frames
        method = load_method(ckpt, **parse_key_values(option or [], "--option"))
        summary = synthesize(method, out, frames=frames, fps=float(ckpt.fps or 30.0), per_label=per_label,
                             count=count, labels=labels or None, kind=kind, style=style, seed=seed, fmt=fmt,
                             batch_size=batch_size, model_hash=ckpt.weights_hash,
                             who=f"the {ckpt.family} model {model}", progress=progress, classifier=recognizer,
                             min_prob=min_prob, max_tries=max_tries,
                             shard=(fabric.global_rank, fabric.world_size), barrier=fabric.barrier)
    except MotionsynthError:
        if fabric.global_rank != 0:  # every rank finds the same problem: rank 0 says it
            raise typer.Exit(2) from None
        raise
    if fabric.global_rank != 0:
        return
    what = ", ".join(s for s in summary["labels"] if s) or "unlabelled"
    typer.echo(f"wrote {summary['written']} takes of {frames} frames ({summary['kept']} already there, "
               f"{summary['takes']} in all; {what}) to {summary['out']}; manifest {summary['manifest']}")
    if summary["rejected"]:
        typer.echo(f"{summary['rejected']} take(s) not written: no draw in {max_tries} reached --min-prob "
                   f"{min_prob:g} with the classifier (lower it, or raise --max-tries)", err=True)


def _fabric(devices: int, num_nodes: int, accelerator: str):
    """Lightning Fabric for ``devices`` × ``num_nodes`` processes (DDP when more than one), launched: from here on
    this is one of them (the launcher re-runs the command for the others on this node)."""
    for name, value in (("--devices", devices), ("--num-nodes", num_nodes)):
        if value < 1:
            raise MotionsynthError(f"{name} must be at least 1, got {value}")
    from lightning.fabric import Fabric
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                        strategy="ddp" if devices * num_nodes > 1 else "auto")
    except (MisconfigurationException, ValueError, RuntimeError, ImportError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MotionsynthError(f"cannot set up synthesis with devices={devices}, num_nodes={num_nodes}, "
                               f"accelerator={accelerator!r}: {why}") from None
    fabric.launch()
    return fabric


def register(app) -> None:
    """Add ``synthesize`` to the main app."""
    app.command("synthesize")(synthesize_command)
