"""`motionsynth serve`: the local web editor (`motionsynth.serve`) — load a BVH in the browser, pick keyframes or a
body part on a timeline, choose a model, task and number of samples, scrub the result in 3D beside the input and
download it as BVH.

It listens on 127.0.0.1 by default (only this machine can reach it; the page has no log-in) and, on any loopback
address, accepts only that address and the loopback names as the ``Host``. Work is bounded (frames x joints of an
upload or task, samples x frames x joints of a result; worker pools that answer 503 when full; timeouts for slow
clients) and request folders expire (``--keep-hours``, ``--keep-mb``): see `motionsynth.serve.app`.

Models offered: every ``--model`` (anything `checkpoint.read_checkpoint` accepts), every task-model checkpoint found
under a ``--models`` folder — or, when neither is given, the shipped models that serve tasks
(`serve.app.shipped_task_models`; their licence is shown beside them; ``--no-shipped``: none) — and the baselines
that need no training data (``slerp``, ``zero-velocity``, …). Uploads and results go to ``--out`` (one folder per
request, named by a random id); each upload and run is one line on stderr. Needs the ``serve`` extra:
``pip install "motionsynth[serve]"``.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Annotated, Optional, cast

import typer

from .. import limits
from ..errors import MotionsynthError

# the serve extra's defaults, repeated here so that --help works without FastAPI (tests/test_serve.py checks them)
DEFAULT_MAX_JOINT_FRAMES = 500_000
DEFAULT_MAX_RESULT_JOINT_FRAMES = 1_000_000


def serve_command(
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="Model to offer: a shipped name (`motionsynth models`), a training run folder or a "
                        "checkpoint folder (repeat for more). Without --model or --models: the shipped models.",
        show_default=False)] = None,
    models: Annotated[Optional[list[Path]], typer.Option(
        "--models", help="Folder searched (3 levels deep) for checkpoint folders of task models (repeat for more).",
        show_default=False)] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but a loopback address "
                                                     "exposes the editor (no log-in) to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    out: Annotated[Path, typer.Option("--out", help="Folder for uploads and results (one sub-folder per "
                                                    "request).")] = Path("out/serve"),
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest BVH upload accepted, in "
                                                                         "MiB.")] = 20.0,
    max_joint_frames: Annotated[float, typer.Option(
        "--max-joint-frames", help="Largest frames x joints of an upload or of a task's motion (checked from the "
                                   "BVH header before parsing).")] = DEFAULT_MAX_JOINT_FRAMES,
    max_result_joint_frames: Annotated[float, typer.Option(
        "--max-result-joint-frames", help="Largest samples x frames x joints of one run's result.")
    ] = DEFAULT_MAX_RESULT_JOINT_FRAMES,
    keep_hours: Annotated[float, typer.Option("--keep-hours", help="Request folders older than this are "
                                                                   "removed.")] = 24.0,
    keep_mb: Annotated[float, typer.Option("--keep-mb", help="Request folders are removed, oldest first, while "
                                                             "all together take more MiB than this.")] = 1024.0,
    workers: Annotated[int, typer.Option("--workers", help="Worker threads for uploads, and as many for runs "
                                                           "(model calls still run one at a time).")] = 2,
    queue: Annotated[int, typer.Option("--queue", help="Jobs that may wait for a worker; beyond, requests are "
                                                       "answered 503 (busy).")] = 8,
    header_timeout: Annotated[float, typer.Option("--header-timeout", help="Seconds a client may take to send a "
                                                                           "request's headers.")] = 10.0,
    body_timeout: Annotated[float, typer.Option("--body-timeout", help="Seconds a client may take to send a "
                                                                       "request's body (uploads too).")] = 60.0,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")] = False,
    shipped: Annotated[bool, typer.Option("--shipped/--no-shipped", help="Offer the shipped models when no --model "
                                                                        "or --models is given.")] = True,
) -> None:
    """Run the web editor: upload a BVH, run a task with a model, see it in 3D, download the result."""
    if not 0 < port < 65536:
        raise MotionsynthError(f"--port must be 1..65535, got {port}")
    if not (math.isfinite(max_upload_mb) and max_upload_mb > 0):
        raise MotionsynthError(f"--max-upload-mb must be positive and finite, got {max_upload_mb}")
    if not (math.isfinite(header_timeout) and header_timeout > 0):
        raise MotionsynthError(f"--header-timeout must be a finite number > 0, got {header_timeout}")
    if out.exists() and not out.is_dir():
        raise MotionsynthError(f"--out {out}: exists and is not a folder")
    try:
        from ..serve.app import EditorLimits, allowed_hosts_for, create_app, find_checkpoints, shipped_task_models
        from ..serve.server import make_server
    except ImportError as e:
        raise MotionsynthError(f"motionsynth serve needs FastAPI and uvicorn ({e.name} is missing): "
                               f"pip install \"motionsynth[serve]\"") from None
    work = EditorLimits(max_upload_bytes=max(1, int(max_upload_mb * 1024 * 1024)),
                        max_joint_frames=cast(int, _whole(max_joint_frames)),  # EditorLimits refuses a non-whole one
                        max_result_joint_frames=cast(int, _whole(max_result_joint_frames)), body_timeout=body_timeout,
                        keep_hours=keep_hours, keep_mb=keep_mb, workers=workers, queue=queue)
    if work.max_joint_frames > limits.max_joint_frames():  # the readers' own limit must not refuse what is allowed
        limits.set_max_joint_frames(work.max_joint_frames)
    model, models = model or [], models or []
    folders: list[str | Path] = list(model)
    for folder in models:
        found = find_checkpoints(folder)
        if not found:
            typer.echo(f"note: no task-model checkpoint under {folder}", err=True)
        folders += [f for f in found if f not in folders]
    if not model and not models and shipped:
        folders = cast("list[str | Path]", shipped_task_models())
    hosts = allowed_hosts_for(host)
    _check_port(host, port)
    app = create_app(folders, out, allowed_hosts=hosts, limits=work)
    url = f"http://{'[' + host.strip('[]') + ']' if ':' in host else host}:{port}/"
    offered = app.state.editor.models
    learned = sum(m.checkpoint is not None for m in offered.values())
    typer.echo(f"motionsynth editor at {url} ({learned} model{'s' * (learned != 1)}, "
               f"{len(offered) - learned} baselines; results in {out}) — Ctrl+C stops it", err=True)
    for m in offered.values():
        if m.checkpoint is not None:
            typer.echo(f"  {m.name}: {', '.join(m.tasks)}" + (f" (licence {m.licence[0]})" if m.licence else ""),
                       err=True)
    if hosts is None:
        typer.secho(f"warning: listening on {host}: anyone who can reach this machine can use the editor",
                    err=True, fg="yellow")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    _log_requests()
    make_server(app, host.strip("[]"), port, header_timeout=header_timeout).run()


def _log_requests() -> None:
    """The editor's log (one line per upload and run, and any internal error) on stderr."""
    import logging

    log = logging.getLogger("motionsynth.serve")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _whole(value: float) -> float | int:
    """A whole number given as a float (``5e5``) as an int; anything else unchanged (`EditorLimits` refuses it)."""
    return int(value) if math.isfinite(value) and value == int(value) else value


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
