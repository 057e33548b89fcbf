"""`motionsynth models`: the shipped (pretrained) models — list them, export a trained one into them.

Shipped models are checkpoint folders in the package's ``pretrained/`` folder (or ``$MOTIONSYNTH_PRETRAINED``),
listed in its ``index.yaml``; every ``--model`` option takes their names (`checkpoint.resolve_model`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(name="models", help="Shipped pretrained models: list them (default) or export one.",
                         invoke_without_command=True)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@models_app.callback()
def _default(ctx: typer.Context) -> None:
    """Shipped pretrained models: `motionsynth models` lists them; `motionsynth models export` adds one."""
    if ctx.invoked_subcommand is None:
        list_command(as_json=False)


@models_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Name, family, size, what it is for and the test figures of its card of every shipped model (use the name as
    --model)."""
    from ..checkpoint import INDEX, model_table, pretrained_dir

    rows = model_table()
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    where = pretrained_dir()
    if not rows:
        typer.echo(f"no shipped models yet ({where / INDEX} is empty); train one (`motionsynth train`) and pass its "
                   f"run folder as --model, or add it with `motionsynth models export RUN --name NAME`")
        return
    width = max(len(r["name"]) for r in rows)
    fam = max(len(r["family"]) for r in rows)
    for r in rows:
        size = "MISSING" if r["missing"] else _size(r["bytes"]) + (" fp16" if r["dtype"] == "float16" else "")
        typer.echo(f"{r['name']:<{width}}  {r['family']:<{fam}}  {size:>12}  {r['for'] or '(no description)'}")
        if r["figures"]:
            typer.echo(f"{'':<{width}}  test: {r['figures']}")
    total = sum(r["bytes"] for r in rows)
    typer.echo(f"{len(rows)} model{'s' * (len(rows) != 1)}, {_size(total)} in {where}")


@models_app.command("export")
def export_command(
    source: Annotated[Path, typer.Argument(metavar="RUN_OR_CKPT", help="Training run folder (its best/, else "
                                                                       "model/) or checkpoint folder.",
                                           show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Shipped name, e.g. hmvae-bandai (lower case, digits, '.', "
                                                     "'_', '-'); an existing one is replaced.", show_default=False)],
    fp16: Annotated[bool, typer.Option("--fp16", help="Store the weight matrices in float16 (about half the size; "
                                                      "loaded as float32).")] = False,
    purpose: Annotated[str, typer.Option("--for", help="One line: what the model is for (shown by "
                                                       "`motionsynth models`).")] = "",
) -> None:
    """Copy a trained model into the shipped models (the package's pretrained/ folder, or $MOTIONSYNTH_PRETRAINED)
    and list it in the index."""
    from ..checkpoint import export_model, model_table

    folder = export_model(source, name, fp16=fp16, purpose=purpose)
    row = next(r for r in model_table() if r["name"] == name)
    typer.echo(f"exported {row['source']} as {name} ({row['family']}, {_size(row['bytes'])}, {row['dtype']}) "
               f"into {folder}")


def register(app) -> None:
    """Add the ``models`` sub-app to the main app."""
    app.add_typer(models_app, name="models")
