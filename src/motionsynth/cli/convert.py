"""`motionsynth convert`: convert a motion between BVH, the project's npz file, AMASS and SMPL parameters.

Reads ``.bvh``, ``.npz`` (the project's, AMASS, other SMPL parameters) and ``.pkl`` SMPL parameters (plain arrays
only: `io.smpl.load_pickle`); writes ``.bvh``, the project's ``.npz``, or with ``--to smpl`` SMPL parameters as an
AMASS-style ``.npz`` (`io.smpl.write_smpl`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import limits
from ..errors import MotionsynthError

_FPS_RANGE = (1e-3, 1e6)  # frames per second: what a BVH file can carry (Frame Time 1e-6 to 1,000 s)
_TARGETS = ("smpl",)  # what --to names (without it, OUT's extension decides)


def convert_cmd(
    source: Annotated[Path, typer.Argument(
        metavar="IN", help="Input motion: .bvh, .glb, motionsynth .npz, AMASS .npz, or SMPL parameters as .npz or "
                           ".pkl (pose estimator outputs; a .pkl may hold only plain arrays and dicts).")],
    target: Annotated[Path, typer.Argument(
        metavar="OUT", help="Output motion: .bvh, .glb or .npz (written atomically).")],
    fps: Annotated[Optional[float], typer.Option(
        "--fps", help="Resample to this frame rate (frames per second, 0.001 to 1,000,000; the result must stay "
                      "within --max-joint-frames).")] = None,
    to: Annotated[Optional[str], typer.Option(
        "--to", metavar="FORMAT",
        help="smpl: write SMPL parameters (OUT .npz, AMASS layout: poses (T, 72) axis-angles, trans in metres, Z "
             "up, neutral betas), retargeting to the SMPL body when needed. Default: OUT's extension decides "
             "(.npz is the motionsynth motion file).")] = None,
    layout: Annotated[Optional[str], typer.Option(
        "--layout", help="IN or OUT of .npy, .npz, .json or .csv holds 3D keypoints of this layout: h36m, coco, "
                         "smpl24 or mediapipe (metres, +Y up): a skeleton is fitted to keypoints read; a motion "
                         "written as keypoints is retargeted to the layout's body first.", show_default=False)] = None,
    smpl_axes: Annotated[Optional[str], typer.Option(
        "--smpl-axes", metavar="AXES",
        help="World axes of the SMPL parameters in IN (.npz or .pkl): camera (X right, Y down, Z forward; the "
             "default for pose estimator keys such as pose or global_orient), z-up (AMASS; the default for "
             "root_orient / poses) or y-up.")] = None,
) -> None:
    """Convert a motion file; the output format follows OUT's extension (or --to)."""
    from ..io import check_save_suffix, load_motion, save_motion
    from ..io.amass import SMPL_AXES
    from ..io.atomic import check_output
    from .tasks import parse_layout

    if to is not None and to.lower() not in _TARGETS:
        raise MotionsynthError(f"--to must be one of {', '.join(_TARGETS)}, got {to!r}")
    if to is not None and target.suffix.lower() != ".npz":
        raise MotionsynthError(f"{target}: --to smpl writes an AMASS-style .npz; OUT must end in .npz, not "
                               f"{target.suffix or '(no extension)'!r}")
    layout = parse_layout(layout)
    check_save_suffix(target, keypoints=layout is not None and to is None)
    if smpl_axes is not None and smpl_axes not in SMPL_AXES:
        raise MotionsynthError(f"--smpl-axes must be one of {', '.join(SMPL_AXES)}, got {smpl_axes!r}")
    if fps is not None and not (math.isfinite(fps) and _FPS_RANGE[0] <= fps <= _FPS_RANGE[1]):
        raise MotionsynthError(f"--fps must be a finite frame rate from {_FPS_RANGE[0]:g} to {_FPS_RANGE[1]:,.0f} "
                               f"frames per second, got {fps:g}")
    target = check_output(target)
    if target.exists() and target.resolve() == source.resolve():
        raise MotionsynthError(f"{target}: input and output are the same file")
    motion = _read(source, smpl_axes) if smpl_axes is not None else load_motion(source, layout)
    if fps is not None:
        limits.check_joint_frames(motion.resampled_length(fps), len(motion.skeleton), f"--fps {fps:g}")
        motion = motion.resample(fps)
    if to is not None:
        from ..io.smpl import write_smpl

        write_smpl(motion, target)
        typer.echo(f"wrote {target} (SMPL parameters: {motion.num_frames} frames @ {motion.fps:g} fps)")
        return
    save_motion(motion, target, layout)
    typer.echo(f"wrote {target} ({motion.num_frames} frames @ {motion.fps:g} fps, {len(motion.skeleton)} joints)")


def _read(source: Path, axes: str):
    """``source`` read as SMPL parameters (`io.smpl.read_smpl`) in the world ``axes`` (--smpl-axes)."""
    from ..io.smpl import read_smpl

    if source.suffix.lower() not in (".npz", ".pkl"):
        raise MotionsynthError(f"{source}: --smpl-axes applies to SMPL parameter files (.npz or .pkl), not "
                               f"{source.suffix or '(no extension)'!r}")
    return read_smpl(source, axes=axes)


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("convert")(convert_cmd)
