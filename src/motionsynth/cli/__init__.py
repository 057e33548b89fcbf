"""The `motionsynth` command line (Typer). Each concern registers its commands from its own module.

Errors caused by the user's input (`MotionsynthError`) print one line ``error: …`` and exit with code 2; so do the
file system's refusals about a path the user gave (an `OSError` such as permission denied, not a folder, no space
left: `io.atomic.os_error_message`). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .. import limits
from ..errors import MotionsynthError, ParamError

# rich_markup_mode=None: help texts are plain text, shown as written (Rich markup would swallow "[a-z]" or
# "motionsynth[smpl]"); sub-apps inherit it.
app = typer.Typer(name="motionsynth", help="Learned human-motion models: data, training, tasks, benchmarks.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

# Command modules, each with `register(app)`. Imported here so `motionsynth --help` lists everything.
from . import bench, classify, convert, data, models, postprocess, render, report, rig, serve, synthesize, tasks, train

for _module in (data, convert, postprocess, rig, train, tasks, synthesize, classify, bench, render, report, models,
                serve):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app (usage errors exit 2 via Typer), turning user errors into a message and exit 2."""
    from ..io.atomic import os_error_message

    try:
        app(args=argv, prog_name="motionsynth")
    except ParamError as e:  # a library error naming its parameters: said with the flags
        _refuse(str(tasks.flag_error(e)))
    except MotionsynthError as e:
        _refuse(str(e))
    except OSError as e:
        message = os_error_message(e)
        if message is None:
            raise
        _refuse(message)
    finally:
        limits.set_max_joint_frames(None)  # the flag is for this call only (main may run again in one process)


def _refuse(message: str) -> None:
    """Print ``error: MESSAGE`` on one line and exit with code 2."""
    typer.secho(f"error: {' '.join(message.splitlines())}", err=True, fg="red")
    sys.exit(2)


@app.callback()
def _root(max_joint_frames: Annotated[Optional[str], typer.Option(
        "--max-joint-frames", metavar="N",
        help="Largest frames x joints one input may have (every reader and task; default "
             f"{limits.DEFAULT_MAX_JOINT_FRAMES:,}, or ${limits.ENV_VAR}).")] = None) -> None:
    """motionsynth: learned human-motion models."""
    if max_joint_frames is not None:
        limits.set_max_joint_frames(max_joint_frames)
