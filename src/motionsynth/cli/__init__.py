"""The `motionsynth` command line (Typer). Each concern registers its commands from its own module.

Errors caused by the user's input (`MotionsynthError`) print one line ``error: …`` and exit with code 2.
"""

from __future__ import annotations

import sys

import typer

from ..errors import MotionsynthError

app = typer.Typer(name="motionsynth", help="Learned human-motion models: data, training, tasks, benchmarks.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

# Command modules, each with `register(app)`. Imported here so `motionsynth --help` lists everything.
from . import bench, classify, convert, data, models, postprocess, render, report, serve, synthesize, tasks, train  # noqa: E402

for _module in (data, convert, postprocess, train, tasks, synthesize, classify, bench, render, report, models,
                serve):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app (usage errors exit 2 via Typer), turning user errors into a message and exit 2."""
    try:
        app(args=argv, prog_name="motionsynth")
    except MotionsynthError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        sys.exit(2)


@app.callback()
def _root() -> None:
    """motionsynth: learned human-motion models."""
