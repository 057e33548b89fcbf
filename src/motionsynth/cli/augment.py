"""`motionsynth bench augment`: the augmentation experiment (`bench.augment`). ``bench`` is one command whose first
argument is the task; `BenchCommand` hands ``bench augment …`` to this command, which has options of its own."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

from ..errors import MotionsynthError


def bench_augment(
    generator: str = typer.Option(..., "--generator", help="Label-conditioned generator checkpoint (a model with a "
                                                            "content vocabulary, e.g. runs/cvae/model)."),
    data: Path = typer.Option(..., "--data", help="The real prepared cache (`motionsynth data prepare`)."),
    out: Path = typer.Option(..., "--out", help="Working folder: synthetic takes, training runs, one result per "
                                                "(regime, condition, seed); rerun to resume."),
    regimes: str = typer.Option("5%,10%,25%,cut5", "--regimes",
                                help="Real training data: P% of every class's train takes, cutN: one class cut to "
                                     "N takes (the others whole)."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds (take selection and training), comma-separated."),
    steps: int = typer.Option(200, "--steps", help="Training steps per recogniser (batch 64, one thread)."),
    ratios: str = typer.Option("1,4", "--ratios", help="Synthetic takes per real take of each class, one condition "
                                                       "each (real only is always run)."),
    classic: bool = typer.Option(True, "--classic/--no-classic",
                                 help="Also run classic augmentation (mirror, speed, root rotation) on the real "
                                      "takes."),
    cut_class: Optional[str] = typer.Option(None, "--cut-class",
                                            help="The class cutN cuts (default: the one with the fewest train "
                                                 "takes)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Synthetic take length (default: the generator's "
                                                                "window)."),
    classifier: Optional[str] = typer.Option(None, "--classifier", help="Action classifier that filters the "
                                                                         "synthetic takes (with --filter-threshold)."),
    filter_threshold: Optional[float] = typer.Option(None, "--filter-threshold",
                                                     help="Keep a synthetic take only if --classifier gives its label "
                                                          "at least this probability (redrawn otherwise)."),
    setting: List[str] = typer.Option([], "--set", help="Recogniser setting SECTION.KEY=VALUE, e.g. "
                                                        "--set model.channels=64; repeatable."),
    option: List[str] = typer.Option([], "--option", help="Option of the generator's method, KEY=VALUE; "
                                                          "repeatable."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the record here (always in "
                                                                 "OUT/record.json)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Accuracy vs regime, one line per condition (PNG/PDF/"
                                                             "SVG)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars on stderr."),
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
    overrides = parse_key_values(setting, "--set", nested=True)
    if set(overrides) - {"train", "model"}:
        raise MotionsynthError("--set takes train.KEY=VALUE or model.KEY=VALUE")
    cfg = AugmentConfig(regimes=parse_regimes(regimes), seeds=parse_numbers(seeds, "--seeds"),
                        ratios=parse_numbers(ratios, "--ratios", float), steps=steps, classic=classic,
                        cut_class=cut_class, frames=frames, filter_threshold=filter_threshold, overrides=overrides)
    cache = open_cache(data)
    ckpt = load_checkpoint(generator)
    method = load_method(ckpt, **parse_key_values(option, "--option"))
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
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
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
