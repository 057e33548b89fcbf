"""`motionsynth rig` (the body map of a clip's skeleton) and `motionsynth retarget` (a motion onto another skeleton)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MotionsynthError

_JOINT_MAP_HELP = ("YAML file: role -> joint name (a list of names for the spine and neck chains), for a skeleton "
                   "whose names are not recognised.")


def _map(skeleton, joint_map: Path | None):
    from ..body import body_map, load_joint_map

    if joint_map is None:
        return body_map(skeleton)
    return body_map(skeleton, load_joint_map(joint_map), where=str(joint_map))


def rig_cmd(
    clip: Annotated[Path, typer.Argument(metavar="CLIP", help="A motion file (.bvh, .npz …) whose skeleton to map.")],
    joint_map: Annotated[Optional[Path], typer.Option("--joint-map", metavar="FILE", help=_JOINT_MAP_HELP)] = None,
) -> None:
    """Print the body map of a clip's skeleton: role -> joints, the naming convention found, what stays unmapped
    and why, up / forward axes and height."""
    from ..io import load_motion

    bm = _map(load_motion(clip).skeleton, joint_map)
    rest = "T-pose built (the file's rest pose is no standing pose)" if bm.synthesised_rest else "the file's rest pose"
    typer.echo(f"{clip}: {len(bm.skeleton)} joints, convention: {bm.convention}")
    for line in bm.describe():
        typer.echo(f"  {line}")
    typer.echo(f"up {_axis(bm.up)}, forward {_axis(bm.forward)}, height {bm.height:.4g}, leg length "
               f"{bm.leg_length:.4g} (file units; reference pose: {rest})")


def _axis(v) -> str:
    return "(" + ", ".join(f"{x:+.3g}" for x in v) + ")"


def retarget_cmd(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Input motion (.bvh, .npz …).")],
    to: Annotated[str, typer.Option("--to", metavar="TARGET", help=(
        "The target skeleton: a BVH file (its skeleton and rest pose), or a model — checkpoint folder, training "
        "run folder or shipped model name — whose training skeleton is used, or a data cache folder (its skeleton.json)."))],
    output: Annotated[Path, typer.Option("-o", "--out", metavar="OUT", help="Output motion (.bvh, .npz …).")],
    joint_map: Annotated[Optional[Path], typer.Option(
        "--joint-map", metavar="FILE", help="Joint map of IN's skeleton. " + _JOINT_MAP_HELP)] = None,
    target_joint_map: Annotated[Optional[Path], typer.Option(
        "--target-joint-map", metavar="FILE", help="Joint map of TARGET's skeleton (same format).")] = None,
) -> None:
    """Retarget a motion onto another humanoid skeleton (bone directions kept, root scaled by leg length, the
    target's twist bones driven by their limbs' twist)."""
    from .. import io
    from ..io.atomic import check_output
    from ..methods.rig import motion_body
    from ..retarget import Retargeter

    io.check_save_suffix(output)
    output = check_output(output)
    motion = io.load_motion(source)
    source_body = motion_body(motion) if joint_map is None else _map(motion.skeleton, joint_map)
    out = Retargeter(source_body, _target_body(to, target_joint_map))(motion)
    io.save_motion(out, output)
    typer.echo(f"wrote {output} ({out.num_frames} frames @ {out.fps:g} fps, {len(out.skeleton)} joints)")


def _target_body(to: str, joint_map: Path | None):
    """The body map of ``--to``: a BVH file's skeleton (a rig without a standing rest pose: with the twists of the
    file's own motion), or the training skeleton of a model or data cache in a T-pose made from its data's mean pose
    (``skeleton.json`` and ``stats.npz``; no weights) — as the task commands retarget into a model."""
    from ..data.features import FeatureStats
    from ..io.bvh import read_bvh
    from ..methods.rig import data_body, motion_body
    from ..skeleton import Skeleton

    if to.lower().endswith(".bvh"):
        target = read_bvh(to)
        return motion_body(target) if joint_map is None else _map(target.skeleton, joint_map)
    from ..checkpoint import resolve_model

    folder = Path(to).expanduser()
    if not (folder / "skeleton.json").is_file():  # a data cache folder holds one too
        folder = resolve_model(to)
    try:
        skeleton = Skeleton.from_json((folder / "skeleton.json").read_text())
        stats = FeatureStats.load(folder / "stats.npz") if (folder / "stats.npz").is_file() else None
    except OSError as e:
        raise MotionsynthError(f"{folder}: cannot read the model's skeleton: {e.strerror or e}") from None
    return _map(skeleton, joint_map) if joint_map is not None else data_body(skeleton, stats)


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("rig")(rig_cmd)
    app.command("retarget")(retarget_cmd)
