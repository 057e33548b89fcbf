"""`motionsynth smooth` and `motionsynth align-floor`: post-processing of any motion file (thesis draft §4.2–4.3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError

UNITS = {"cm": 1.0, "m": 0.01, "mm": 10.0}
"""The file's length unit → file units per centimetre (the defaults are written in cm)."""


def _io(source: Path, target: Path):
    """Check OUT before any work, then read IN."""
    from ..io import check_save_suffix, load_motion
    from ..io.atomic import check_output

    check_save_suffix(target)
    check_output(target)
    if target.exists() and target.resolve() == source.resolve():
        raise MotionsynthError(f"{target}: input and output are the same file")
    return load_motion(source)


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise MotionsynthError(f"{name} must be a finite positive number, got {value:g}")


def smooth_cmd(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Input motion (.bvh, .npz).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output motion (.bvh, .npz; written atomically).",
                                      show_default=False)],
    weight: Annotated[float, typer.Option(help="Weight of the pull towards the input (eq. 4.1's λ; unit-free). "
                                               "l2: 4 or more returns the input, towards 0 a straight line; "
                                               "squared: larger keeps more of the input.")] = 0.3,
    iters: Annotated[int, typer.Option(help="Reweighted least-squares iterations (l2 only).")] = 50,
    norm: Annotated[str, typer.Option(help="l2: the document's norms (robust: cuts spikes and jitter, keeps the "
                                           "rest); squared: squared norms, one linear solve.")] = "l2",
) -> None:
    """Smooth a motion towards constant velocity (root trajectory, joint rotations as 6D, animated translations)."""
    from ..io import save_motion
    from ..postprocess import NORMS, smooth_motion

    if norm not in NORMS:
        raise MotionsynthError(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
    _positive("--weight", weight)
    if iters < 1:
        raise MotionsynthError(f"--iters must be at least 1, got {iters}")
    motion = _io(source, out)
    smoothed = smooth_motion(motion, weight, iters, norm)
    save_motion(smoothed, out)
    typer.echo(f"wrote {out} ({smoothed.num_frames} frames @ {smoothed.fps:g} fps, smoothed with {norm} norms, "
               f"weight {weight:g})")


def align_floor_cmd(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Input motion (.bvh, .npz).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output motion (.bvh, .npz; written atomically).",
                                      show_default=False)],
    unit: Annotated[str, typer.Option(help=f"The file's length unit ({', '.join(UNITS)}): scales the defaults "
                                           "of --threshold and --max-speed.")] = "cm",
    threshold: Annotated[Optional[float], typer.Option(
        help="RANSAC inlier distance to the plane, in the file's unit (default: 10 cm).", show_default=False)] = None,
    max_speed: Annotated[Optional[float], typer.Option(
        help="A foot is in contact when slower than this, file units per second (default: 15 cm/s).",
        show_default=False)] = None,
    iters: Annotated[int, typer.Option(help="RANSAC draws.")] = 1000,
    seed: Annotated[int, typer.Option(help="RANSAC seed (the output is deterministic).")] = 0,
) -> None:
    """Level the floor: fit a plane to the foot-contact points (RANSAC), rotate its normal onto +Y and move it to
    height 0 (root position and orientation)."""
    from ..io import save_motion
    from ..postprocess import align_floor

    if unit not in UNITS:
        raise MotionsynthError(f"--unit must be one of {', '.join(UNITS)}, got {unit!r}")
    _positive("--threshold", threshold)
    _positive("--max-speed", max_speed)
    if iters < 1:
        raise MotionsynthError(f"--iters must be at least 1, got {iters}")
    threshold = 10 * UNITS[unit] if threshold is None else threshold
    max_speed = 15 * UNITS[unit] if max_speed is None else max_speed
    motion = _io(source, out)
    aligned, info = align_floor(motion, threshold, iters, seed, max_speed)
    save_motion(aligned, out)
    typer.echo(f"wrote {out}: floor tilted {info['tilt']:.2f}° at {info['offset']:.3g} {unit} from the origin, "
               f"{info['inliers']} of {info['points']} contact points on it")


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("smooth")(smooth_cmd)
    app.command("align-floor")(align_floor_cmd)
