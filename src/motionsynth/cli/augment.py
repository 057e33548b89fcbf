"""`motionsynth bench augment`: the augmentation experiment (`bench.augment`). ``bench`` is one command whose first
argument is the task; `BenchCommand` hands ``bench augment …`` to this command, which has options of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from ..errors import MotionsynthError


def bench_augment(
    generator: Annotated[str, typer.Option(
        "--generator", help="Label-conditioned generator checkpoint (a model with a "
                             "content vocabulary, e.g. runs/cvae/model).")],
    data: Annotated[Path, typer.Option("--data", help="The real prepared cache (`motionsynth data prepare`).")],
    out: Annotated[Path, typer.Option("--out", help="Working folder: synthetic takes, training runs, one result per "
                                                    "(regime, condition, seed); rerun to resume.")],
    regimes: Annotated[str, typer.Option(
        "--regimes", help="Real training data: P% of every class's train takes, cutN: one class cut to "
                          "N takes (the others whole).")] = "5%,10%,25%,cut5",
    seeds: Annotated[str, typer.Option(
        "--seeds", help="Seeds (take selection and training), comma-separated.")] = "0,1,2",
    steps: Annotated[int, typer.Option("--steps", help="Training steps per recogniser (batch 64, one thread).")] = 200,
    ratios: Annotated[str, typer.Option("--ratios", help="Synthetic takes per real take of each class, one condition "
                                                         "each (real only is always run).")] = "1,4",
    classic: Annotated[bool, typer.Option(
        "--classic/--no-classic", help="Also run classic augmentation (mirror, speed, root rotation) on the real "
                                       "takes.")] = True,
    combined: Annotated[bool, typer.Option(
        "--combined/--no-combined", help="Also run classic augmentation on the real + synthetic takes, per "
                                         "ratio.")] = False,
    cut_class: Annotated[Optional[str], typer.Option(
        "--cut-class", help="The class cutN cuts (default: the one with the fewest train "
                            "takes).")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", help="Synthetic take length (default: the generator's "
                                                                   "window).")] = None,
    classifier: Annotated[Optional[str], typer.Option(
        "--classifier", help="Action classifier that filters the "
                              "synthetic takes (with --filter-threshold).")] = None,
    filter_threshold: Annotated[Optional[float], typer.Option(
        "--filter-threshold", help="Keep a synthetic take only if --classifier gives its label "
                                   "at least this probability (redrawn otherwise).")] = None,
    setting: Annotated[Optional[list[str]], typer.Option(
        "--set", help="Recogniser setting SECTION.KEY=VALUE, e.g. --set model.channels=64; repeatable.")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="Option of the generator's method, KEY=VALUE; repeatable.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the record here (always in "
                                                                    "OUT/record.json).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Accuracy vs regime, one line per condition (PNG/PDF/"
                                                                "SVG).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")] = True,
) -> None:
    """Train action recognisers on low-data regimes of the real train split, with and without the generator's
    synthetic takes (and with classic augmentation), and test them on the real test split.

    Example: motionsynth bench augment --generator runs/cvae/model --data cache/bandai2 --out runs/augment --plot
    augment.png --json augment.json
    """
    from ..bench.augment import AugmentConfig, augment_markdown, parse_numbers, parse_regimes, plot_augment, run_augment
    from ..bench.clips import open_cache
    from ..bench.report import save_json
    from ..config import parse_key_values
    from ..io.atomic import check_output
    from ..registry import load_checkpoint, load_method

    if filter_threshold is not None and not 0.0 <= filter_threshold <= 1.0:
        raise MotionsynthError(f"--filter-threshold must be in 0..1, got {filter_threshold}")
    if frames is not None and frames < 1:
        raise MotionsynthError(f"--frames must be at least 1, got {frames}")
    check_output(out, folder=True)
    for path in (json_out, plot):
        if path is not None:
            check_output(path)
    overrides = parse_key_values(setting or [], "--set", nested=True)
    if set(overrides) - {"train", "model"}:
        raise MotionsynthError("--set takes train.KEY=VALUE or model.KEY=VALUE")
    cfg = AugmentConfig(regimes=parse_regimes(regimes), seeds=parse_numbers(seeds, "--seeds"),
                        ratios=parse_numbers(ratios, "--ratios", float), steps=steps, classic=classic, combined=combined,
                        cut_class=cut_class, frames=frames, filter_threshold=filter_threshold, overrides=overrides)
    cache = open_cache(data)
    ckpt = load_checkpoint(generator)
    method = load_method(ckpt, **parse_key_values(option or [], "--option"))
    recognizer = None
    if classifier is not None:
        from ..bench.recognition import Recognizer

        recognizer = Recognizer(classifier)
    record = run_augment(method, cache, out, cfg, classifier=recognizer, model=str(generator), progress=progress)
    typer.echo(augment_markdown(record))
    if json_out is not None:
        save_json(record, json_out)
        typer.echo(f"wrote {json_out}", err=True)
    if plot is not None:
        typer.echo(f"wrote {plot_augment(record, plot)}", err=True)


def augment_command():
    """``bench_augment`` as a command object."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    app.command("augment")(bench_augment)
    return typer.main.get_command(app)


class BenchCommand(TyperCommand):
    """``motionsynth bench``: ``bench augment …`` goes to `bench_augment`, every other task to ``bench``."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "augment":
            return augment_command().make_context(f"{info_name} augment", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)

    def __init__(self, *args, **kwargs):
        kwargs["epilog"] = ((kwargs.get("epilog") or "") + " augment (the augmentation experiment: recognisers "
                            "trained with and without synthetic takes) has options of its own: motionsynth bench "
                            "augment --help").strip()
        super().__init__(*args, **kwargs)
