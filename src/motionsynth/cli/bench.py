"""`motionsynth bench`: run a task's benchmark protocol on a prepared cache; markdown on stdout, JSON on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError
from ..tasks import TASKS


def _methods(values: list[str]) -> list[str]:
    """``--method a --method b,c`` → ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    out: list[str] = []
    for v in values:
        out += [m.strip() for m in v.split(",") if m.strip() and m.strip() not in out]
    return out


def bench(
    task: Annotated[str, typer.Argument(
        help=f"A task ({', '.join(t.name for t in TASKS.values() if t.bench is not None)}), or reconstruct or "
             f"classify (a learned model alone).")],
    data: Annotated[Path, typer.Option("--data", help="Prepared motion cache folder (`motionsynth data prepare`).")],
    method: Annotated[Optional[list[str]], typer.Option(
        "--method", "-m", help="Baseline name; repeat or comma-separate for several (one table).")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="Learned model: shipped name, training run folder (best/, else model/) or checkpoint "
                        "folder; repeat for several (one table).")] = None,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the record (a list of records for several methods).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds noise and sampling.")] = 0,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", help="At most N windows (evenly spaced), for quick runs.")] = None,
    split: Annotated[str, typer.Option("--split", help="Evaluation split: test (val for development).")] = "test",
    only: Annotated[Optional[list[str]], typer.Option(
        "--only", help="Score only the takes whose label matches: KIND=PATTERNS, comma-separated fnmatch globs "
                       "(quoted for the shell), e.g. --only 'content=run,raise-up-*'; once per kind (a take must "
                       "match every kind given). The unseen-actions protocol (with a model trained with "
                       "train.hold_out).")] = None,
    setting: Annotated[Optional[list[str]], typer.Option(
        "--setting", "-s", help="Override a protocol setting, KEY=VALUE (YAML value), e.g. -s missing=[lower_body] "
                                "or -s gaps=[30]; repeatable.")] = None,
    option: Annotated[Optional[list[str]], typer.Option(
        "--option", help="Option of the learned method, KEY=VALUE (YAML value), e.g. --option refine=overlap "
                         "--option restarts=16; repeatable.")] = None,
    classifier: Annotated[Optional[str], typer.Option(
        "--classifier", help="generate: the action classifier checkpoint that scores the "
                             "samples (`motionsynth train classifier`).")] = None,
    samples_per_label: Annotated[Optional[int], typer.Option(
        "--samples-per-label", help="generate: samples per label and repetition (default 100).")] = None,
    repetitions: Annotated[Optional[int], typer.Option(
        "--repetitions", help="generate: repetitions for the mean ± 95 % interval (default 5).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars on stderr.")] = True,
) -> None:
    """Benchmark methods on one task with the fixed protocol of `motionsynth.bench.protocol`.

    Example: motionsynth bench inbetween --data cache/bandai2 --method zero-velocity,slerp --json out.json

    reconstruct (encode → decode of test windows) takes checkpoints only:
    motionsynth bench reconstruct --data cache/bandai2 --model runs/hmvae/model --model runs/hmvae-m/model

    classify scores an action classifier (accuracy per label kind, confusion matrices, speed):
    motionsynth bench classify --data cache/bandai2 --model runs/classifier/model

    generate scores generators (--model, repeatable) with a classifier (Action2Motion / ACTOR protocol):
    motionsynth bench generate --data cache/bandai2 --model runs/cvae/model --classifier runs/classifier/model

    unseen actions: train with whole actions held out, score only those (the record stores both filters):
    motionsynth train cvae --data cache/bandai2 --out runs/cvae-unseen --set 'train.hold_out.content=[run,raise-up-*]'
    motionsynth bench inbetween --data cache/bandai2 --model runs/cvae-unseen/best --only 'content=run,raise-up-*'
    """
    from ..bench import compare_markdown, protocol_names, run_benchmark, save_json, to_markdown
    from ..bench.protocol import load_model, make_method, open_cache, resolve_settings
    from ..config import parse_key_values
    from ..io.atomic import check_output

    if task not in protocol_names():
        raise MotionsynthError(f"unknown task {task!r}; choose from {', '.join(protocol_names())}")
    if split not in ("test", "val"):
        raise MotionsynthError(f"--split must be test or val, got {split!r}")
    if limit is not None and limit < 1:
        raise MotionsynthError(f"--limit must be positive, got {limit}")
    names = _methods(method or [])
    overrides = parse_key_values(setting or [], "--setting")
    only_filter = parse_key_values(only or [], "--only")
    if task != "generate" and (classifier is not None or samples_per_label is not None or repetitions is not None):
        raise MotionsynthError("--classifier, --samples-per-label and --repetitions belong to bench generate")
    for key, value in (("classifier", classifier), ("samples_per_label", samples_per_label),
                       ("repetitions", repetitions)):
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    settings = resolve_settings(task, overrides)  # unknown keys fail before any work
    if task == "generate" and not settings["classifier"]:
        raise MotionsynthError("generate needs an action classifier: --classifier CKPT (train one with "
                               "`motionsynth train classifier`)")
    if not names and not model:
        raise MotionsynthError("give --method NAME (a baseline) or --model CKPT")
    if json_out is not None:
        check_output(json_out)
    if task in ("reconstruct", "classify") and names:
        raise MotionsynthError(f"{task} scores a learned model: give --model CKPT, not --method (baselines cannot "
                               f"{'reconstruct' if task == 'reconstruct' else 'classify'})")
    if task == "generate":
        from ..bench.recognition import Recognizer

        settings["classifier"] = Recognizer(settings["classifier"])  # checked (and loaded once) before any work
    for n in names:
        make_method(n)  # unknown names fail before any work
    cache = open_cache(data)
    records = []
    options = parse_key_values(option or [], "--option")
    # every checkpoint (and option) is checked before any work
    learned = [(path, load_model(path, task, cache, **options)) for path in model or []]
    for path, m in learned:
        records.append(run_benchmark(task, cache, None, model=str(path), method=m, seed=seed, limit=limit,
                                     progress=progress, split=split, settings=settings, only=only_filter))
        if options:
            records[-1]["options"] = options
    for n in names:
        records.append(run_benchmark(task, cache, n, seed=seed, limit=limit, progress=progress, split=split,
                                     settings=settings, only=only_filter))
    typer.echo(to_markdown(records[0]) if len(records) == 1 else compare_markdown(records))
    if json_out is not None:
        save_json(records[0] if len(records) == 1 else records, json_out)
        typer.echo(f"wrote {json_out}", err=True)


def register(app) -> None:
    """Add this module's commands to the main app (``bench augment`` through `augment.BenchCommand`)."""
    from .augment import BenchCommand

    app.command("bench", cls=BenchCommand)(bench)
