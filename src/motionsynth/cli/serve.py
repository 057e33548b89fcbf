"""`motionsynth serve`: the local web editor (`motionsynth.serve`) — load a BVH in the browser, pick keyframes or a
body part on a timeline, choose a model, task and number of samples, scrub the result in 3D beside the input and
download it as BVH.

It listens on 127.0.0.1 by default (only this machine can reach it; the page has no log-in) and accepts only the
loopback host names then. Models offered: every ``--model`` (anything `checkpoint.read_checkpoint` accepts), every task-model checkpoint found under
a ``--models`` folder, and the baselines that need no training data (``slerp``, ``zero-velocity``, …). Uploads and
results go to ``--out`` (one folder per request, named by a random id). Needs the ``serve`` extra:
``pip install "motionsynth[serve]"``.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

from ..errors import MotionsynthError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def serve_command(
    model: Annotated[list[Path], typer.Option("--model", help="Model to offer: a shipped name (`motionsynth "
                                                                "models`), a training run folder or a checkpoint "
                                                                "folder (repeat for more).", show_default=False)] = [],  # noqa: B006
    models: Annotated[list[Path], typer.Option("--models", help="Folder searched (3 levels deep) for checkpoint "
                                                                "folders of task models (repeat for more).",
                                               show_default=False)] = [],  # noqa: B006
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but a loopback address "
                                                     "exposes the editor (no log-in) to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    out: Annotated[Path, typer.Option("--out", help="Folder for uploads and results (one sub-folder per "
                                                    "request).")] = Path("out/serve"),
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest BVH upload accepted, in "
                                                                         "MiB.")] = 20.0,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")] = False,
) -> None:
    """Run the web editor: upload a BVH, run a task with a model, see it in 3D, download the result."""
    if not 0 < port < 65536:
        raise MotionsynthError(f"--port must be 1..65535, got {port}")
    if not max_upload_mb > 0:
        raise MotionsynthError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    if out.exists() and not out.is_dir():
        raise MotionsynthError(f"--out {out}: exists and is not a folder")
    try:
        import uvicorn

        from ..serve.app import create_app, find_checkpoints
    except ImportError as e:
        raise MotionsynthError(f"motionsynth serve needs FastAPI and uvicorn ({e.name} is missing): "
                               f"pip install \"motionsynth[serve]\"") from None
    folders = list(model)
    for folder in models:
        found = find_checkpoints(folder)
        if not found:
            typer.echo(f"note: no task-model checkpoint under {folder}", err=True)
        folders += [f for f in found if f not in folders]
    loopback = _is_loopback(host)
    _check_port(host, port)
    app = create_app(folders, out, int(max_upload_mb * 1024 * 1024),
                     allowed_hosts=list(LOOPBACK_NAMES) if loopback else None)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    offered = app.state.editor.models
    learned = sum(m.checkpoint is not None for m in offered.values())
    typer.echo(f"motionsynth editor at {url} ({learned} model{'s' * (learned != 1)}, "
               f"{len(offered) - learned} baselines; results in {out}) — Ctrl+C stops it", err=True)
    if not loopback:
        typer.secho(f"warning: listening on {host}: anyone who can reach this machine can use the editor",
                    err=True, fg="yellow")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """A clear error now (rather than uvicorn's exit later) when the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise MotionsynthError(f"--host {host}: unknown address ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise MotionsynthError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def register(app) -> None:
    """Add this module's commands to the main app."""
    app.command("serve")(serve_command)
