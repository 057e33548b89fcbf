"""`make demo`: what the project can do so far, end to end, on the public Bandai Namco dataset.

1. finds ``bandai-namco-motion-2.zip`` in the data folder (or downloads the public dataset there),
2. prepares the memory-mapped cache (once),
3. takes a held-out test clip, hides 30 frames between 10 context frames and a target frame, and fills them with the
   interpolation and zero-velocity baselines,
4. writes the results as BVH and renders truth and results side by side (observed frames grey) to a GIF.

Run: ``python -m motionsynth.demo --data-dir ../shared/data --cache cache/bandai2 --out out/demo``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from . import tasks
from .errors import MotionsynthError
from .methods.baselines import make_baseline

console = Console()
ZIP_NAME = "bandai-namco-motion-2.zip"


def find_or_fetch_source(data_dir: Path) -> Path:
    """The Bandai Namco 2 zip in ``data_dir``, or the folder the public download is extracted to."""
    zip_path = data_dir / ZIP_NAME
    if zip_path.is_file():
        return zip_path
    from .data.download import fetch_bandai

    console.print(f"[yellow]{zip_path} not found: downloading the public dataset into {data_dir}[/]")
    return fetch_bandai(2, data_dir)


def open_or_prepare(source_dir: Path, cache_dir: Path):
    from .data.cache import MotionCache, prepare

    if (cache_dir / "meta.json").is_file():
        return MotionCache(cache_dir)
    source = find_or_fetch_source(source_dir)
    console.print(f"preparing {source} → {cache_dir}")
    return prepare(source, "bandai-namco", cache_dir)


def demo_inbetween(cache, out: Path, gap: int = 30, context: int = 10) -> None:
    """In-between one test clip with the baselines; print the error and write BVH + GIF."""
    from .io import save_motion
    from .metrics import mpjpe
    from .viz.render import render

    length = context + gap + 1
    take = next((i for i in cache.split("test") if cache.takes[i].length >= length + 20
                 and "walk" in str(cache.takes[i].labels.get("content", ""))), cache.split("test")[0])
    truth = cache.motion(take)[10:10 + length]
    mask = tasks.inbetween_mask(length, len(truth.skeleton), context=context, gap=gap)
    given = truth.copy()
    given.rotations[~mask.joints] = [0, 0, 0, 1]  # hide the gap: methods see only the observed frames
    given.root_positions[~mask.root] = 0
    truth_pos = truth.global_positions()[context:context + gap]
    results, titles = [truth], ["ground truth"]
    for name in ("zero-velocity", "slerp"):
        [result] = make_baseline(name).complete(given, mask)
        err = mpjpe(result.global_positions()[context:context + gap], truth_pos)
        console.print(f"  {name:>14}: MPJPE over the {gap}-frame gap = {err:.2f} cm")
        save_motion(result, out / f"inbetween_{name}.bvh")
        results.append(result)
        titles.append(name)
    gif = render(results, out / "inbetween.gif", masks=[None, mask, mask], titles=titles)
    console.print(f"  wrote {out}/inbetween_*.bvh and {gif} (observed frames grey, synthesised in colour)")


def main(data_dir: Path = typer.Option(Path("../shared/data"), help="folder holding bandai-namco-motion-2.zip"),
         cache: Path = typer.Option(Path("cache/bandai2"), help="cache folder (prepared once)"),
         out: Path = typer.Option(Path("out/demo"), help="output folder")) -> None:
    """Prepare the Bandai Namco dataset and in-between a held-out clip with the baselines."""
    try:
        c = open_or_prepare(data_dir, cache)
        info = c.info()
        console.print(f"[bold]dataset[/]: {info['takes']} takes, {info['frames']} frames "
                      f"({info['hours']:.2f} h) at {info['fps']:g} fps, {info['joints']} joints")
        console.print("[bold]in-betweening[/] a held-out test clip (10 context frames, 30 missing, 1 target):")
        out.mkdir(parents=True, exist_ok=True)
        np.random.seed(0)
        demo_inbetween(c, out)
    except MotionsynthError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None


if __name__ == "__main__":
    typer.run(main)
