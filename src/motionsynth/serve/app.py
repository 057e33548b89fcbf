"""The web editor's application: a JSON API over the task interface, and the static page that drives it.

Endpoints (every error is JSON ``{"error": "one line"}`` with a 4xx status; 5xx only for a bug):

==========================  ==========================================================================================
``GET /``                    the editor page (``static/index.html``; three.js vendored under ``static/vendor/``)
``GET /api/models``          the models offered: the checkpoint folders given to `create_app`, then the baselines
                             that learn nothing at run time (``slerp``, ``zero-velocity``, …); the tasks; the limits
``POST /api/upload``         a BVH file as multipart field ``file`` → an upload id, the skeleton (names, parents, sides,
                             body-part groups), joint positions per frame, and the models that fit its skeleton.
                             Refused: larger than ``max_upload_bytes`` (413), not BVH or malformed (422: the reader's
                             message with file and line), a skeleton no offered checkpoint was trained on (422)
``POST /api/run``            JSON ``{task, model, upload, samples, seed, keyframes | observe | given | frames, label}``
                             → a fresh run id, per sample its joint positions and a download URL, the observed mask
``GET /api/files/ID/NAME``   a result file (``sample_000.bvh``, …) of run ID
==========================  ==========================================================================================

Tasks build their masks with `motionsynth.tasks` (``keyframe_mask``, ``joints_mask``, ``predict_mask``,
``denoise_mask``, ``generate_mask``) exactly as the commands ``inbetween`` / ``complete`` / ``predict`` / ``denoise``
/ ``generate`` do, then call ``complete`` on the method: a baseline (`methods.baselines.make_baseline`) or a
checkpoint's method (`registry.load_method`).

Files. Everything is written under ``out_dir``: an upload to ``out_dir/ID/input.npz`` (the project's lossless motion
file), a run to ``out_dir/ID/sample_000.bvh``, … and ``run.json`` (task, model, options, timings), each file
atomically; ID is a fresh random 32-hex-digit id per request, so concurrent requests never share a folder. Lookups
accept only such ids and the file names the app writes, and check that the resolved path lies inside ``out_dir``.

Concurrency. Requests are served concurrently, but model calls run one at a time (one lock): methods draw from
torch's global random state, so two calls at once would make each other's seeded samples irreproducible.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..errors import MotionsynthError
from ..motion import Motion
from ..skeleton import Skeleton

__all__ = ["create_app", "find_checkpoints", "TASKS", "DEFAULT_MAX_UPLOAD_BYTES", "MAX_SAMPLES", "MAX_FRAMES"]

log = logging.getLogger("motionsynth.serve")

STATIC = Path(__file__).parent / "static"
TASKS = {
    "inbetween": "In-betweening (keyframes)",
    "complete": "Completion (body part)",
    "predict": "Prediction (continue a prefix)",
    "denoise": "Denoising",
    "generate": "Generation (label)",
}
# The tasks each baseline is meant for (`methods.baselines`); one not listed is offered for every task but generation.
BASELINE_TASKS = {
    "zero-velocity": ["inbetween", "complete", "predict"],
    "slerp": ["inbetween", "complete"],
    "constant-velocity": ["predict"],
    "savgol": ["denoise"], "gaussian": ["denoise"], "one-euro": ["denoise"], "smooth": ["denoise"],
}
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_SAMPLES = 16
MAX_FRAMES = 20_000  # output length of predict / generate
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
_ID = re.compile(r"[0-9a-f]{32}")
_RESULT_FILE = re.compile(r"sample_[0-9]{3}\.bvh")


class ServeError(Exception):
    """A refused request: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _TooLarge(Exception):
    pass


# ---- the models on offer ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class ModelEntry:
    """One model the editor offers: a baseline (any skeleton) or a loaded checkpoint."""

    id: str
    name: str  # what the page shows
    kind: str  # "baseline" | "checkpoint"
    family: str
    summary: str
    tasks: list[str]
    checkpoint: Any = None  # a loaded `checkpoint.Checkpoint`
    _method: Any = field(default=None, repr=False)

    @property
    def skeleton(self) -> Skeleton | None:
        return None if self.checkpoint is None else self.checkpoint.skeleton

    @property
    def vocabulary(self) -> dict[str, list[str]]:
        return {} if self.checkpoint is None else dict(self.checkpoint.labels or {})

    @property
    def window(self) -> int | None:
        return None if self.checkpoint is None else int(self.checkpoint.config["model"].get("window", 64))

    def fits(self, skeleton: Skeleton) -> bool:
        if self.skeleton is None:
            return True
        try:
            self.skeleton.check_compatible(skeleton)
        except MotionsynthError:
            return False
        return True

    def method(self):
        """The task method (made once; callers hold the app's model lock)."""
        if self._method is None:
            if self.checkpoint is None:
                from ..methods.baselines import make_baseline

                self._method = make_baseline(self.family)
            else:
                from ..registry import load_method

                self._method = load_method(self.checkpoint)
        return self._method

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "kind": self.kind, "family": self.family, "summary": self.summary,
                "tasks": self.tasks, "labels": self.vocabulary, "window": self.window,
                "joints": None if self.skeleton is None else len(self.skeleton)}


def _baselines() -> list[ModelEntry]:
    """The baselines that learn nothing at run time (those with ``fit`` need a training set)."""
    from ..methods.baselines import BASELINES, make_baseline

    out = []
    for name in BASELINES:
        method = make_baseline(name)
        if method.needs_fit:
            continue
        tasks = BASELINE_TASKS.get(name, [t for t in TASKS if t != "generate"])
        out.append(ModelEntry(name, name, "baseline", name, _summary(type(method).__doc__, name), list(tasks),
                              _method=method))
    return out


def _summary(doc: str | None, default: str, width: int = 150) -> str:
    """The first paragraph of a docstring on one line, without markup, cut at a word near ``width``."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "").replace("`", "")
    text = text.rstrip(":")
    if len(text) > width:
        text = text[:width].rsplit(" ", 1)[0].rstrip(",;:(") + " …"
    return text or default


def _checkpoints(folders: Iterable[str | Path]) -> list[ModelEntry]:
    from ..methods.baselines import BASELINES
    from ..registry import family, load_checkpoint

    out: list[ModelEntry] = []
    taken = set(BASELINES)
    for folder in folders:
        ckpt = load_checkpoint(folder)
        spec = family(ckpt.family)
        if spec.method is None:
            raise MotionsynthError(f"{folder}: {spec.help or f'the {spec.name} family has no task method'}")
        base = str(folder).rstrip("/") or str(folder)
        ident, k = base, 2
        while ident in taken:
            ident, k = f"{base} ({k})", k + 1
        taken.add(ident)
        shown = "/".join(Path(base).parts[-2:]) if Path(base).name in ("best", "model") else Path(base).name
        out.append(ModelEntry(ident, shown or ident, "checkpoint", ckpt.family, spec.summary, list(TASKS),
                              checkpoint=ckpt))
    return out


def find_checkpoints(folder: str | Path, depth: int = 3) -> list[Path]:
    """The checkpoint folders of task-model families in ``folder`` (itself included) and its sub-folders down to
    ``depth`` levels, sorted: folders with ``config.yaml`` and ``weights.safetensors`` whose ``family`` has a task
    method (components and evaluators such as classifiers are left out). A `MotionsynthError` when ``folder`` is not
    a folder."""
    import yaml

    from ..registry import names

    folder = Path(folder)
    if not folder.is_dir():
        raise MotionsynthError(f"--models {folder}: not a folder")
    methods, found = set(names("method")), []
    level = [folder]
    for _ in range(depth + 1):
        below = []
        for d in level:
            if (d / "config.yaml").is_file() and (d / "weights.safetensors").is_file():
                try:
                    family = (yaml.safe_load((d / "config.yaml").read_text()) or {}).get("family")
                except (OSError, yaml.YAMLError, AttributeError):
                    family = None
                if family in methods:
                    found.append(d)
                continue
            try:
                below += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
        level = below
    return sorted(found)


# ---- requests ----------------------------------------------------------------------------------------------------
class RunRequest(BaseModel):
    """What ``POST /api/run`` takes. Fields a task does not use are ignored."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    upload: Optional[str] = None  # the upload id (every task but generate)
    samples: int = Field(1, ge=1, le=MAX_SAMPLES)
    seed: int = 0
    keyframes: Optional[list[int]] = None  # inbetween
    observe: Optional[list[Union[int, str]]] = None  # complete: observed joints (indices, names or group names)
    given: Optional[int] = None  # predict: observed prefix
    frames: Optional[int] = Field(None, ge=1, le=MAX_FRAMES)  # predict: output length; generate: length
    label: Optional[Union[dict[str, str], str]] = None  # generate (and any labelled model): {"content": "walk"}


def _positions(motion: Motion) -> list:
    """(T, J, 3) world joint positions, rounded to 1e-3 of the file's unit, as nested lists."""
    return np.round(motion.global_positions(), 3).tolist()


def _mask_rows(joints: np.ndarray) -> list[str]:
    """(T, J) bool → one '0'/'1' string per frame (compact JSON)."""
    return ["".join("1" if v else "0" for v in row) for row in joints]


def _skeleton_json(sk: Skeleton) -> dict:
    return {"names": sk.names, "parents": sk.parents.tolist(), "root": int(sk.root), "sides": sk.sides,
            "drawn": sk.subtree(sk.root), "groups": sk.groups}


def _safe_name(text: str, default: str = "motion") -> str:
    """A file-name stem made of safe characters (for Content-Disposition and display)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem[:80] or default


# ---- the application ---------------------------------------------------------------------------------------------
class Editor:
    """The state behind the app: models, output folder, limits and the model lock."""

    def __init__(self, models: Sequence[ModelEntry], out_dir: Path, max_upload_bytes: int):
        self.models = {m.id: m for m in models}
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.root = self.out_dir.resolve()
        self.max_upload_bytes = int(max_upload_bytes)
        self.lock = threading.Lock()

    # -- files
    def folder(self, ident: str) -> Path:
        """The folder of an upload or run id, refusing anything but a well-formed id inside the output folder."""
        if not isinstance(ident, str) or not _ID.fullmatch(ident):
            raise ServeError(404, f"no such upload or result {ident!r}")
        path = (self.root / ident).resolve()
        if path.parent != self.root or not path.is_dir():
            raise ServeError(404, f"no such upload or result {ident!r}")
        return path

    def result_file(self, ident: str, name: str) -> Path:
        if not _RESULT_FILE.fullmatch(name or ""):
            raise ServeError(404, f"no such result file {name!r}")
        path = (self.folder(ident) / name).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise ServeError(404, f"no such result file {name!r}")
        return path

    def new_folder(self) -> tuple[str, Path]:
        ident = uuid.uuid4().hex
        path = self.root / ident
        path.mkdir()  # a collision (never expected) raises rather than sharing a folder
        return ident, path

    def write_json(self, path: Path, data: dict) -> None:
        from ..io.atomic import atomic_open

        with atomic_open(path, "w") as f:
            json.dump(data, f, indent=1)

    # -- upload
    def accept_upload(self, data: bytes, filename: str) -> dict:
        from ..io import save_motion
        from ..io.bvh import parse_bvh

        name = Path(filename.replace("\\", "/")).name or "upload.bvh"
        if Path(name).suffix.lower() != ".bvh":
            raise ServeError(415, f"{name}: only BVH files (.bvh) can be uploaded")
        motion = parse_bvh(data, path=name)  # FormatError (file:line: reason) → 422
        motion.name = _safe_name(Path(name).stem)
        checkpoints = [m for m in self.models.values() if m.checkpoint is not None]
        fits = [m.id for m in self.models.values() if m.fits(motion.skeleton)]
        if checkpoints and not any(m.checkpoint is not None for m in self.models.values() if m.id in fits):
            try:
                checkpoints[0].checkpoint.check_skeleton(motion.skeleton, what=f"uploaded motion {name}")
            except MotionsynthError as e:
                raise ServeError(422, str(e)) from None
        ident, folder = self.new_folder()
        save_motion(motion, folder / "input.npz")
        self.write_json(folder / "upload.json", {"kind": "upload", "filename": name, "name": motion.name,
                                                 "frames": motion.num_frames, "fps": motion.fps})
        return {"id": ident, "name": motion.name, "filename": name, "frames": motion.num_frames,
                "fps": motion.fps, "skeleton": _skeleton_json(motion.skeleton), "positions": _positions(motion),
                "models": fits}

    def load_upload(self, ident: str | None) -> Motion:
        from ..io import load_motion

        if ident is None:
            raise ServeError(422, "this task needs an uploaded motion: upload a BVH file first")
        path = self.folder(ident) / "input.npz"
        if not path.is_file():
            raise ServeError(404, f"no such upload {ident!r}")
        return load_motion(path)

    # -- run
    def run(self, req: RunRequest) -> dict:
        from ..tasks import parse_label

        if req.task not in TASKS:
            raise ServeError(422, f"unknown task {req.task!r}; tasks are {', '.join(TASKS)}")
        entry = self.models.get(req.model)
        if entry is None:
            raise ServeError(422, f"unknown model {req.model!r}; models are {', '.join(self.models)}")
        if req.task not in entry.tasks:
            raise ServeError(422, f"{entry.id} cannot do {req.task}: it does {', '.join(entry.tasks)}")
        label = parse_label(req.label) if isinstance(req.label, str) else (req.label or None)
        source = None if req.task == "generate" else self.load_upload(req.upload)
        if source is not None and entry.checkpoint is not None:
            entry.checkpoint.check_skeleton(source.skeleton, what="uploaded motion")
        work, mask = self._task(req, entry, source)
        samples = 1 if req.task == "denoise" else req.samples
        with self.lock:
            method = entry.method()
            start = time.perf_counter()
            completion = method.complete(work, mask, label=label, n_samples=samples, seed=req.seed)
            seconds = time.perf_counter() - start
        ident, folder = self.new_folder()
        from ..io import save_motion

        name = source.name if source is not None else "generated"
        results = []
        for i, result in enumerate(completion.samples):
            result.name = name
            file = f"sample_{i:03d}.bvh"
            save_motion(result, folder / file)
            results.append({"file": file, "url": f"/api/files/{ident}/{file}",
                            "download": f"{name}_{req.task}_{i:03d}.bvh", "positions": _positions(result)})
        observed = np.zeros_like(mask.joints) if mask.noisy else mask.joints
        record = {"kind": "run", "task": req.task, "model": entry.id, "family": entry.family, "upload": req.upload,
                  "name": name, "request": req.model_dump(), "options": _plain(completion.options),
                  "timings": _plain(completion.timings), "seconds": seconds, "frames": work.num_frames,
                  "files": [r["file"] for r in results]}
        self.write_json(folder / "run.json", record)
        return {"id": ident, "task": req.task, "model": entry.id, "name": name, "frames": work.num_frames,
                "fps": work.fps, "seconds": seconds, "skeleton": _skeleton_json(work.skeleton),
                "observed": _mask_rows(observed), "noisy": bool(mask.noisy), "samples": results}

    def _task(self, req: RunRequest, entry: ModelEntry, motion: Motion | None):
        """The task's working motion and mask, built with `motionsynth.tasks` as the commands build them."""
        from .. import tasks

        if req.task == "generate":
            if entry.checkpoint is None:
                raise ServeError(422, f"{entry.id} cannot generate: choose a learned model")
            from ..ops import rest_motion

            ckpt = entry.checkpoint
            frames = req.frames or entry.window or 64
            start = rest_motion(ckpt.skeleton, frames, float(ckpt.fps or 30.0), name="generated")
            return start, tasks.generate_mask(frames, len(ckpt.skeleton))
        T, J = motion.num_frames, len(motion.skeleton)
        if req.task == "inbetween":
            if not req.keyframes:
                raise ServeError(422, "in-betweening needs keyframes: click frames on the timeline")
            return motion, tasks.keyframe_mask(T, J, sorted(set(req.keyframes)))
        if req.task == "complete":
            if not req.observe:
                raise ServeError(422, "completion needs the observed joints: pick the body part to synthesise")
            try:
                joints = motion.skeleton.joints(list(req.observe))
            except (KeyError, IndexError) as e:
                raise ServeError(422, f"observe: {e.args[0] if e.args else e}") from None
            if any(not 0 <= j < J for j in joints):
                raise ServeError(422, f"observe: joint indices must be in 0..{J - 1}")
            return motion, tasks.joints_mask(T, motion.skeleton, joints)
        if req.task == "predict":
            from ..ops import pad

            given = req.given
            if given is None or not 0 < given <= T:
                raise ServeError(422, f"prediction needs the observed prefix: given must be 1..{T} frames")
            total = req.frames or T
            return pad(motion[:given], total), tasks.predict_mask(total, J, given)
        # denoise
        if entry.window is not None and T < entry.window:
            raise ServeError(422, f"{T} frames is shorter than the model's window of {entry.window} frames; "
                                  f"denoising needs at least one full window")
        return motion, tasks.denoise_mask(T, J)


def _plain(x):
    """JSON-safe copy of options / timings (numpy scalars and arrays, paths, other objects as text)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist() if x.size <= 64 else f"array{x.shape}"
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        yield chunk


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(models: Sequence[str | Path] = (), out_dir: str | Path = "out/serve",
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, allowed_hosts: Sequence[str] | None = None,
               baselines: bool = True) -> FastAPI:
    """The editor's FastAPI app.

    Args:
        models: checkpoint folders to offer (each loaded now: `registry.load_checkpoint`; a folder that is not a
            task model's checkpoint is a `MotionsynthError`).
        out_dir: where uploads and results are written (created).
        max_upload_bytes: larger uploads are refused with 413.
        allowed_hosts: Host header values accepted (e.g. the loopback names, against DNS rebinding); None: any.
        baselines: also offer the baselines that need no training data.
    """
    if max_upload_bytes < 1:
        raise MotionsynthError(f"the upload size limit must be positive, got {max_upload_bytes}")
    entries = _checkpoints(models) + (_baselines() if baselines else [])
    editor = Editor(entries, Path(out_dir), max_upload_bytes)
    app = FastAPI(title="motionsynth editor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.editor = editor
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, e: ServeError):
        return _error(e.status, e.message)

    @app.exception_handler(MotionsynthError)
    async def _user_error(request: Request, e: MotionsynthError):
        return _error(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        parts = []
        for err in e.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
        return _error(422, "bad request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(e).__name__}: {e}")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    def list_models():
        return {"models": [m.describe() for m in editor.models.values()], "tasks": TASKS,
                "max_upload_bytes": editor.max_upload_bytes, "max_samples": MAX_SAMPLES, "max_frames": MAX_FRAMES}

    @app.post("/api/upload")
    async def upload(request: Request):
        limit = editor.max_upload_bytes
        too_large = ServeError(413, f"the upload is larger than the limit of {_size(limit)}")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit + _MULTIPART_SLACK:
            raise too_large
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ServeError(415, "send the BVH file as multipart/form-data, field 'file'")
        parser = MultiPartParser(request.headers, _limited(request.stream(), limit + _MULTIPART_SLACK),
                                 max_files=1, max_fields=8)
        try:
            form = await parser.parse()
        except _TooLarge:
            raise too_large from None
        except MultiPartException as e:
            raise ServeError(400, f"bad upload: {e.message}") from None
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise ServeError(422, "no file: send the BVH file in the multipart field 'file'")
            data = await file.read(limit + 1)
            if len(data) > limit:
                raise too_large
            return await run_in_threadpool(editor.accept_upload, data, file.filename or "upload.bvh")
        finally:
            await form.close()

    @app.post("/api/run")
    def run(req: RunRequest):
        return editor.run(req)

    @app.get("/api/files/{ident}/{name}")
    def download(ident: str, name: str):
        path = editor.result_file(ident, name)
        record = path.parent / "run.json"
        filename = name
        if record.is_file():
            info = json.loads(record.read_text())
            filename = f"{_safe_name(info.get('name', 'motion'))}_{_safe_name(info.get('task', 'result'))}_" \
                       f"{name.removeprefix('sample_')}"
        return FileResponse(path, media_type="application/octet-stream", filename=filename)

    return app


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)
