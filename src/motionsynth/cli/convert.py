"""`motionsynth convert`: convert a motion between BVH, the project's npz file and AMASS (read only)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import limits
from ..errors import MotionsynthError

_FPS_RANGE = (1e-3, 1e6)  # frames per second: what a BVH file can carry (Frame Time 1e-6 to 1,000 s)


def convert_cmd(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Input motion: .bvh, motionsynth .npz or AMASS .npz.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Output motion: .bvh or .npz (written atomically).")],
    fps: Annotated[Optional[float], typer.Option(
        "--fps", help="Resample to this frame rate (frames per second, 0.001 to 1,000,000; the result must stay "
                      "within --max-joint-frames).")] = None,
) -> None:
    """Convert a motion file; the output format follows OUT's extension."""
    from ..io import MOTION_SUFFIXES, load_motion, save_motion
    from ..io.atomic import check_output

    if target.suffix.lower() not in MOTION_SUFFIXES:
        raise MotionsynthError(f"{target}: unknown output type {target.suffix or '(no extension)'!r}; "
                               f"expected one of {', '.join(MOTION_SUFFIXES)}")
    if fps is not None and not (math.isfinite(fps) and _FPS_RANGE[0] <= fps <= _FPS_RANGE[1]):
        raise MotionsynthError(f"--fps must be a finite frame rate from {_FPS_RANGE[0]:g} to {_FPS_RANGE[1]:,.0f} "
                               f"frames per second, got {fps:g}")
    target = check_output(target)
    if target.exists() and target.resolve() == source.resolve():
        raise MotionsynthError(f"{target}: input and output are the same file")
    motion = load_motion(source)
    if fps is not None:
        limits.check_joint_frames(motion.resampled_length(fps), len(motion.skeleton), f"--fps {fps:g}")
        motion = motion.resample(fps)
    save_motion(motion, target)
    typer.echo(f"wrote {target} ({motion.num_frames} frames @ {motion.fps:g} fps, {len(motion.skeleton)} joints)")


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("convert")(convert_cmd)
