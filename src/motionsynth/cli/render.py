"""`motionsynth render`: stick-figure GIF / MP4 / PNG filmstrip of one or more motions, side by side."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError

NO_MASK = "-"


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("render")(render_command)


def render_command(
    inputs: Annotated[list[Path], typer.Argument(help="Motion files (.bvh, .npz), one panel each, side by side.",
                                                  show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .gif, .mp4, or .png (a filmstrip of ~8 frames "
                                                          "per motion, one row each).", show_default=False)],
    observed: Annotated[Optional[list[str]], typer.Option(
        "--observed", help="Mask file (.npz from the task commands) per input, in order; observed parts are drawn "
                           "grey, synthesised parts in colour. '-' for an input without a mask; a single mask applies "
                           "to every input.")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Playback frame rate (default: real time).")] = None,
    every: Annotated[int, typer.Option(help="Draw every K-th frame.")] = 1,
    title: Annotated[Optional[list[str]], typer.Option(
        "--title", help="Panel title per input, in order (default: the file names).")] = None,
    size: Annotated[str, typer.Option(help="Panel size in pixels, WIDTHxHEIGHT.")] = "320x320",
    azimuth: Annotated[float, typer.Option(help="Camera azimuth in degrees (0: looking from +Z).")] = 30.0,
    elevation: Annotated[float, typer.Option(help="Camera elevation in degrees.")] = 15.0,
) -> None:
    """Render motions as stick figures: observed parts grey, synthesised parts coloured (left/right/centre)."""
    from ..io import load_motion
    from ..io.atomic import check_output
    from ..tasks import load_mask
    from ..viz.render import FORMATS, render

    if out.suffix.lower() not in FORMATS:
        raise MotionsynthError(f"{out}: unknown output format {out.suffix!r}; use one of {', '.join(FORMATS)}")
    check_output(out)
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", size)
    if not match:
        raise MotionsynthError(f"--size must be WIDTHxHEIGHT in pixels (e.g. 320x320), got {size!r}")
    observed = list(observed or [])
    if len(observed) == 1 and len(inputs) > 1:
        observed = observed * len(inputs)
    if observed and len(observed) != len(inputs):
        raise MotionsynthError(f"{len(observed)} --observed masks for {len(inputs)} inputs; give one per input "
                               f"('{NO_MASK}' for none) or a single mask for all")
    titles = list(title or [])
    if titles and len(titles) != len(inputs):
        raise MotionsynthError(f"{len(titles)} --title values for {len(inputs)} inputs; give one per input")
    for path in [*inputs, *(Path(m) for m in observed if m != NO_MASK)]:
        if not path.is_file():
            raise MotionsynthError(f"{path}: no such file")

    motions = [load_motion(p) for p in inputs]
    masks = [None if m == NO_MASK else load_mask(m) for m in observed] or None
    render(motions, out, masks=masks, titles=titles or [p.stem for p in inputs], fps=fps, every=every,
           size=(int(match[1]), int(match[2])), azimuth=azimuth, elevation=elevation, progress=True)
    typer.echo(f"wrote {out}")
