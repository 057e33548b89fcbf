"""`motionsynth data` commands: prepare a dataset into a motion cache, describe a cache, download a dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from ..errors import MotionsynthError

data_app = typer.Typer(name="data", help="Prepare, inspect and download motion datasets.", no_args_is_help=True)


@data_app.command("prepare")
def prepare_cmd(
    sources: Annotated[List[Path], typer.Argument(
        metavar="SOURCE...", help="Dataset zips, folders or files: several make one cache (the first one's skeleton; "
                                  "later ones retargeted onto it where theirs differs; see docs/DATA.md).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Cache folder to write (an existing cache is replaced).")],
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", "-d", help="Adapter for every source: bandai-namco, bvh-folder or amass (default: detected "
                                "per source).")] = None,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Resample every take to this frame rate.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", "-j", help="Processes (default: number of CPUs).")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", help="bvh-folder: CSV with a 'name' column + labels.")] = None,
    label_pattern: Annotated[Optional[str], typer.Option(
        "--label-pattern", help="bvh-folder: regex with named groups, e.g. '(?P<action>[a-z]+)_\\d+'.")] = None,
    body_models: Annotated[Optional[Path], typer.Option(
        "--body-models", help="amass: folder of SMPL / SMPL-H / SMPL-X model files for exact per-subject bone "
                              "lengths (needs the optional smplx: pip install 'motionsynth[smpl]'); default: a "
                              "built-in neutral skeleton.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Read one or more datasets once into a memory-mapped motion cache (arrays, features, train-split stats,
    splits, one label vocabulary, where each take came from)."""
    from ..data.cache import prepare, remove_stale_temp_folders
    from ..io.atomic import check_output

    if workers is not None and workers < 1:
        raise MotionsynthError(f"--workers must be at least 1, got {workers}")
    check_output(out, folder=True)
    t0 = time.perf_counter()
    for item in remove_stale_temp_folders(out):
        what = "put back the previous cache from" if item["action"] == "restored" else "removed"
        typer.echo(f"{what} {item['path']} ({_size(item['bytes'])}), left by a prepare that was killed")
    cache = prepare(sources, dataset, out, fps=fps, workers=workers, progress=progress, labels=labels,
                    label_pattern=label_pattern, body_models=body_models)
    info = cache.info()
    typer.echo(f"prepared {info['takes']:,} takes, {info['frames']:,} frames ({info['hours']:.2f} h at "
               f"{info['fps']:g} fps, {info['joints']} joints) into {cache.path} in {time.perf_counter() - t0:.1f} s")
    typer.echo("splits: " + ", ".join(f"{s} {v['takes']:,} takes / {v['frames']:,} frames"
                                      for s, v in info["splits"].items()))
    if len(info["sources"]) > 1:
        _echo_sources(info["sources"])
    skipped = cache.skipped
    if skipped:
        typer.echo(f"skipped {len(skipped)} take(s):")
        _echo_skipped(skipped, cache.path, len(info["sources"]) > 1)


def _echo_sources(sources: list[dict]) -> None:
    for s in sources:
        notes = [f"{s[k]:,} {k}" for k in ("retargeted", "renamed", "skipped") if s[k]]
        typer.echo(f"  source {s['file']} ({s['dataset']}, {s['adapter']}): {s['takes']:,} takes, {s['frames']:,} "
                   f"frames" + (f" ({', '.join(notes)})" if notes else ""))


def _echo_skipped(skipped: list[dict], path: Path, sources: bool = False) -> None:
    """The first skipped takes with their reasons (``sources``: name each one's source too)."""
    for s in skipped[:20]:
        typer.echo(f"  {s['name']}" + (f" ({s['source']})" if sources and "source" in s else "") + f": {s['reason']}")
    if len(skipped) > 20:
        typer.echo(f"  … and {len(skipped) - 20} more (all listed in {path / 'meta.json'}, and by --json)")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@data_app.command("info")
def info_cmd(
    cache_dir: Annotated[Path, typer.Argument(metavar="CACHE", help="A folder written by `motionsynth data prepare`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Describe a motion cache: takes, frames, hours, fps, joints, labels, split sizes, skipped takes (with their
    reasons) and stale temporary folders of killed prepares."""
    from ..data.cache import MotionCache

    info = MotionCache(cache_dir).info()
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    typer.echo(f"{info['path']}  ({info['dataset']}, from {info['source']})")
    typer.echo(f"takes {info['takes']:,}   frames {info['frames']:,}   hours {info['hours']:.2f}   "
               f"fps {info['fps']:g}   joints {info['joints']}   feature dim {info['feature_dim']}")
    typer.echo(f"sources ({len(info['sources'])}):")
    _echo_sources(info["sources"])
    for s, v in info["splits"].items():
        typer.echo(f"  {s:<5} {v['takes']:>7,} takes {v['frames']:>11,} frames")
    for key, counts in info["labels"].items():
        typer.echo(f"label {key} ({len(counts)}): " + ", ".join(f"{n} {c}" for n, c in counts.items()))
    if info["skipped"]:
        typer.echo(f"{info['skipped']} take(s) were skipped when preparing:")
        _echo_skipped(info["skipped_takes"], Path(info["path"]), len(info["sources"]) > 1)
    for item in info["stale_temp"]:
        typer.echo(f"stale temporary folder {item['path']} ({_size(item['bytes'])}) left by a prepare that was "
                   f"killed; the next `data prepare` into this cache removes it (or delete it)")
    typer.echo(f"data hash {info['data_hash']}")


@data_app.command("download")
def download_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset to download: bandai-namco.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to put the dataset in.")],
    part: Annotated[int, typer.Option("--part", help="Bandai Namco dataset part: 1 or 2.")] = 2,
    from_zip: Annotated[Optional[Path], typer.Option("--from", help="Use this already-downloaded zip.")] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Download from this URL instead of GitHub.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Download (resumable) and verify a public dataset, then extract it ready for `data prepare`."""
    from ..data.download import DEFAULT_URL, fetch_bandai
    from ..io.atomic import check_output

    if dataset != "bandai-namco":
        raise MotionsynthError(f"unknown dataset {dataset!r} to download; available: bandai-namco")
    check_output(out, folder=True)
    folder = fetch_bandai(part, out, from_zip=from_zip, url=url or DEFAULT_URL, progress=progress)
    n = len(list((folder / "data").glob("*.bvh")))
    typer.echo(f"Bandai Namco dataset {part}: {n:,} takes verified in {folder} (licence CC BY-NC 4.0: "
               f"{folder / 'LICENSE'})")
    typer.echo(f"next: motionsynth data prepare {folder} --out CACHE")


def register(app) -> None:
    """Add the ``data`` sub-app to the main app."""
    app.add_typer(data_app, name="data")
