"""`motionsynth classify CLIP --model CKPT`: the most likely labels of a motion clip, per label kind, by an action
classifier (`motionsynth train classifier`).

The clip (``.bvh`` or ``.npz``, any length) is read in windows of the classifier's length W every W / 2 frames (the
last one ending on the clip's last frame) and the windows' probabilities are averaged; a clip shorter than W is
padded by holding its last frame, and one shorter than W / 4 is refused (`bench.recognition`). Clear errors (one line,
exit code 2) for a missing or unreadable file, another skeleton, another frame rate and a checkpoint that is not a
classifier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import MotionsynthError


def classify_command(
    clip: Annotated[Path, typer.Argument(metavar="CLIP", help="Motion to classify: .bvh or .npz.",
                                         show_default=False)],
    model: Annotated[str, typer.Option("--model", help="Action classifier: shipped name, run folder or "
                                                         "checkpoint folder.",
                                        show_default=False)],
    top: Annotated[int, typer.Option("--top", help="Labels shown per kind, most likely first.")] = 3,
) -> None:
    """Print the most likely labels of CLIP per label kind (content, style, …) with their probabilities."""
    from ..bench.recognition import Recognizer
    from ..io import load_motion

    if top < 1:
        raise MotionsynthError(f"--top must be at least 1, got {top}")
    rec = Recognizer(model)  # a checkpoint that is not a classifier fails here, before the clip is read
    motion = load_motion(clip)
    rec.check_motion(motion, what=f"{clip}")
    probs, _ = rec.score_motions([motion])
    windows = len(rec.starts(motion.num_frames))
    note = f", padded to {rec.window}" if motion.num_frames < rec.window else ""
    typer.echo(f"{clip}: {motion.num_frames} frames{note}; {windows} window{'s' * (windows != 1)} of "
               f"{rec.window} frames")
    width = max(len(k) for k in rec.kinds)
    for kind, ranked in rec.top({k: v[0] for k, v in probs.items()}, top).items():
        typer.echo(f"{kind:<{width}}  " + "  ".join(f"{name} {p:.3f}" for name, p in ranked))


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("classify")(classify_command)
