"""The web editor's application: a JSON API over the task interface, and the static page that drives it.

Endpoints (every error is JSON ``{"error": "one line"}`` with a 4xx status, or 503 when busy; 5xx only for a bug):

==============================  ======================================================================================
``GET /``                       the editor page (``static/index.html`` with this app's token; three.js vendored under
                                ``static/vendor/``)
``GET /api/models``             the models offered: the checkpoints given to `create_app` (``motionsynth serve``
                                gives the shipped models when no ``--model`` is named), then the baselines that learn
                                nothing at run time (``slerp``, ``zero-velocity``, …); each with the tasks it serves,
                                the label vocabulary it takes (none for a model that refuses labels) and its licence
                                (from its model card); the tasks; the limits
``POST /api/upload``            a BVH or glTF binary (``.glb``, `io.gltf`) file as multipart field ``file`` → an upload
                                id, the skeleton (names, parents, sides, body-part groups and their names), joint
                                positions per frame (`encode_positions`), and the models that fit its skeleton.
                                Refused: larger than ``max_upload_bytes`` or, from the header's ``Frames:`` × joints
                                (a .glb: its key times) before anything is parsed, than ``max_joint_frames``
                                (413); not BVH / glTF or malformed (422: the reader's message with file and line); a
                                skeleton no offered checkpoint was trained on (422)
``POST /api/run``               JSON ``{task, model, upload, samples, seed, keyframes [extrapolate] | observe
                                [synthesise_root] | given | frames, label}`` (at most ``max_json_bytes``) → 202 and a job (`jobs.Job.describe`: ``id``,
                                ``state`` queued, …) at once. Refused before any work (422): a model that does not
                                serve the task (naming those that do), a label for a model that takes none or one it
                                does not know, a task motion over ``max_joint_frames``, samples × frames × joints over
                                ``max_result_joint_frames``, any number out of its range; 503 when the runs pool is
                                full
``GET /api/jobs/ID``            the job: ``state`` (queued, running, done, failed, cancelled), ``progress`` (0–1,
                                from the method), ``eta`` (seconds left, once there is progress), ``ahead`` (queued:
                                jobs before it); done: ``result`` — the run id, per sample its joint positions and a
                                download URL, the observed mask; failed: ``error`` and ``status``
``POST /api/jobs/ID/cancel``    cancel the job: a queued one at once, a running one at its method's next progress step
``GET /api/files/ID/NAME``      a result file (``sample_000.bvh``, its glTF ``sample_000.glb``, …) of run ID
==============================  ======================================================================================

Positions travel compactly: ``{"dtype": "float32", "shape": [T, J, 3], "data": BASE64}``, the little-endian float32
bytes of the (T, J, 3) world positions (12 bytes a joint-frame, 16 as text; nested JSON lists took ~25).

Guard (`motionsynth.serve.guard`, before any request runs): the ``Host`` must be one of ``allowed_hosts`` (against
DNS rebinding); POSTs must come from the editor's own page — no cross-site ``Sec-Fetch-Site`` or foreign ``Origin``,
and the page's random token in ``X-Motionsynth-Token`` (403 otherwise); bodies are cut at their limit (413) and at
``body_timeout`` seconds (408). Half-sent headers are timed out by the server (`motionsynth.serve.server`).

Work. The limits are work, not bytes: frames × joints (`motionsynth.limits.check_joint_frames`) is checked from the
BVH header and from a run's numbers before any array is built. Parsing and the checks of a run happen in one bounded
worker pool, runs as jobs (`jobs.Jobs`) in another (`work.WorkPool`), never on the event loop: other clients are
answered while a model runs, and a full pool answers 503 at once. Model calls run one at a time (one lock; jobs take
turns in the order they came and say "queued" meanwhile): methods draw from torch's global random state, so two
calls at once would make each other's seeded samples irreproducible. Every upload and run leaves one line in the
``motionsynth.serve`` log (the command prints it on stderr).

Files. Everything is written under ``out_dir``: an upload to ``out_dir/ID/input.npz`` (the project's lossless motion
file), a run to ``out_dir/ID/sample_000.bvh`` and the same motion as glTF ``sample_000.glb``, …, ``run.json`` (task,
model, options, timings) and ``result.json`` (what ``GET /api/jobs/ID`` answers as the job's result: no result is held
in memory), each file atomically; ID is a fresh random 32-hex-digit id per request, so concurrent requests never
share a folder. A failed request leaves nothing. Folders expire after ``keep_hours`` and while all of them exceed
``keep_mb`` (`work.Outputs`). Lookups accept only such ids and the file names the app writes, and check that the
resolved path lies inside ``out_dir``.

Tasks are the task table's (`tasks.TASKS`, listed by ``GET /api/models``): a run request becomes a `tasks.Request`
and the task makes its working motion and mask (`tasks.Task.make`) exactly as the task commands do; ``complete`` is
then called on the method — a baseline (`methods.baselines.make_baseline`) or a checkpoint's method
(`registry.load_method`) — offered only for the tasks it serves (``Method.tasks``), with its options described for the
page's controls (``Method.Options``, `config.Options.describe`).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Mapping, Optional, Union, cast

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

# imported with the app, not on a request: first imports from several worker threads at once can trip CPython's
# compiler ("AST constructor recursion depth mismatch") on a fresh checkout without .pyc files
from ..body import body_map
from ..errors import MotionsynthError
from ..io.bvh import declared_size
from ..limits import LimitError, check_joint_frames
from ..methods.rig import on_skeleton
from ..motion import Motion
from ..skeleton import GROUP_TITLES, Skeleton
from ..tasks import TASKS, RequestError
from ..tasks import Request as TaskRequest
from ..viz.render import upright_positions
from .guard import TOKEN_HEADER, Guard, host_name
from .jobs import Job, Jobs
from .work import ID, Busy, Outputs, WorkPool

__all__ = ["create_app", "find_checkpoints", "shipped_task_models", "allowed_hosts_for", "encode_positions",
           "declared_size", "EditorLimits", "task_titles", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_MAX_JOINT_FRAMES",
           "DEFAULT_MAX_RESULT_JOINT_FRAMES", "MAX_SAMPLES", "MAX_FRAMES", "TOKEN_HEADER"]

log = logging.getLogger("motionsynth.serve")

STATIC = Path(__file__).parent / "static"


def task_titles() -> dict[str, str]:
    """The tasks on offer, name → title: the task table (`tasks.TASKS`), read when asked (a task registered later is
    offered too)."""
    return {t.name: t.title for t in TASKS.values()}


DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# frames x joints of an upload or a task's motion: 22,700 frames (12.6 min at 30 fps) of the 22-joint Bandai skeleton
DEFAULT_MAX_JOINT_FRAMES = 500_000
# samples x frames x joints of a run's result: e.g. 16 samples of 2,840 frames of 22 joints
DEFAULT_MAX_RESULT_JOINT_FRAMES = 1_000_000
MAX_JSON_BYTES = 1024 * 1024
MAX_SAMPLES = 16
MAX_FRAMES = 20_000  # output length of predict / generate
_MAX_INDEX = 2**31 - 1  # frame and joint indices
_MAX_SEED = 2**32 - 1
_MAX_LIST = 100_000  # keyframes / observed joints in one request
_MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file
_FK_CHUNK = 8_192  # joint-frames per forward-kinematics call when positions are encoded (small: fast, and lean)
_HEAD_BYTES = 1024 * 1024  # the first bytes of an upload, read to check its header before the rest
_RESULT_FILE = re.compile(r"sample_[0-9]{3}\.(bvh|glb)")
_TOKEN_PLACEHOLDER = "{{motionsynth-token}}"


class ServeError(Exception):
    """A refused request: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class EditorLimits:
    """How much work the editor takes on; each is a flag of ``motionsynth serve``.

    Attributes:
        max_upload_bytes: largest BVH upload (413).
        max_joint_frames: largest frames × joints of an upload or of a task's motion (413 / 422).
        max_result_joint_frames: largest samples × frames × joints of a run's result (422).
        max_json_bytes: largest JSON request body (413).
        body_timeout: seconds a request's body may take from the request's start (408).
        keep_hours, keep_mb: request folders are removed when older, or (oldest first) while all exceed this.
        workers, queue: worker threads per pool (uploads; runs) and jobs that may wait for one (then 503).
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_joint_frames: int = DEFAULT_MAX_JOINT_FRAMES
    max_result_joint_frames: int = DEFAULT_MAX_RESULT_JOINT_FRAMES
    max_json_bytes: int = MAX_JSON_BYTES
    body_timeout: float = 60.0
    keep_hours: float = 24.0
    keep_mb: float = 1024.0
    workers: int = 2
    queue: int = 8

    def __post_init__(self):
        for f in fields(self):
            value, flag = getattr(self, f.name), "--" + f.name.replace("_", "-")
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if f.type == "int":
                lowest = 0 if f.name == "queue" else 1
                ok = number and math.isfinite(value) and value == int(value) and value >= lowest
                kind = f"a whole number >= {lowest}"
            else:
                ok, kind = number and math.isfinite(value) and value > 0, "a finite number > 0"
            if not ok:
                raise MotionsynthError(f"{flag} must be {kind}, got {value!r}")


# ---- the models on offer ---------------------------------------------------------------------------------------
@dataclass(eq=False)
class ModelEntry:
    """One model the editor offers: a baseline (any skeleton) or a loaded checkpoint."""

    id: str
    name: str  # what the page shows
    kind: str  # "baseline" | "checkpoint"
    family: str
    summary: str
    tasks: list[str]  # the tasks it serves, in `TASKS` order: the page offers it for these only
    checkpoint: Any = None  # a loaded `checkpoint.Checkpoint`
    _method: Any = field(default=None, repr=False)
    licence: tuple[str, str] | None = None  # (short name, the model card's text), e.g. ("CC BY-NC 4.0", "Trained …")
    shipped: bool = False  # a shipped model (`checkpoint.shipped_models`)

    @property
    def skeleton(self) -> Skeleton | None:
        return None if self.checkpoint is None else self.checkpoint.skeleton

    @property
    def vocabulary(self) -> dict[str, list[str]]:
        """The labels it takes (kind → names): its method's vocabulary; empty for a model that refuses labels (a
        checkpoint's ``labels.json`` may list the data's labels all the same)."""
        return dict(getattr(self.method(), "vocabulary", None) or {})

    @property
    def window(self) -> int | None:
        """The frames its method works on at once (None: any length)."""
        return self.method().window

    def fits(self, skeleton: Skeleton) -> bool:
        """The model takes motions of ``skeleton``: its own, or any humanoid (retargeted: `methods.rig`)."""
        try:
            self.check_fits(skeleton)
        except MotionsynthError:
            return False
        return True

    def check_fits(self, skeleton: Skeleton) -> None:
        """A `MotionsynthError` saying why the model cannot take motions of ``skeleton`` (not a humanoid)."""
        if self.skeleton is None:
            return
        try:
            self.skeleton.check_compatible(skeleton)
        except MotionsynthError:
            body_map(skeleton)

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
                "joints": None if self.skeleton is None else len(self.skeleton), "shipped": self.shipped,
                "licence": None if self.licence is None else self.licence[0],
                "licence_text": None if self.licence is None else self.licence[1],
                "options": self.method().Options.describe()}  # the controls of its options (`config.Options`)


def _baselines() -> list[ModelEntry]:
    """The baselines that learn nothing at run time (those with ``fit`` need a training set)."""
    from ..methods.baselines import BASELINES, make_baseline

    out = []
    for name in BASELINES:
        method = make_baseline(name)
        if method.needs_fit:
            continue
        out.append(ModelEntry(name, name, "baseline", name, _summary(type(method).__doc__, name),
                              [t for t in TASKS if t in method.tasks], _method=method))
    return out


def _summary(doc: str | None, default: str, width: int = 150) -> str:
    """The first paragraph of a docstring on one line, without markup, cut at a word near ``width``."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "").replace("`", "")
    text = text.rstrip(":")
    if len(text) > width:
        text = text[:width].rsplit(" ", 1)[0].rstrip(",;:(") + " …"
    return text or default


def _checkpoints(folders: Iterable[str | Path]) -> list[ModelEntry]:
    """The entries of checkpoint folders, training run folders or shipped names (each loaded now, its method made)."""
    from ..checkpoint import pretrained_dir, shipped_models
    from ..methods.baselines import BASELINES
    from ..registry import family, load_checkpoint

    out: list[ModelEntry] = []
    taken = set(BASELINES)
    shipped, shipped_dir = shipped_models(), pretrained_dir().resolve()
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
        path = Path(cast(Path, ckpt.path))  # loaded from a folder
        index = shipped.get(path.name) if path.resolve().parent == shipped_dir else None
        summary = str(index.get("for") or spec.summary) if index else spec.summary
        entry = ModelEntry(ident, shown or ident, "checkpoint", ckpt.family, _summary(summary, spec.summary, 240),
                           _served_tasks(ckpt.family), checkpoint=ckpt, licence=_licence(path / "card.md"),
                           shipped=index is not None)
        entry.method()  # made now (cheap once the network is loaded), before requests may race to make it
        out.append(entry)
    return out


def _served_tasks(family: str) -> list[str]:
    """The tasks a checkpoint of ``family`` serves, in the task table's order: its method's ``tasks``."""
    from ..registry import method_class

    return [t for t in TASKS if t in method_class(family).tasks]


def shipped_task_models() -> list[str]:
    """The names of the shipped models that serve tasks (`checkpoint.shipped_models`, in index order): what
    ``motionsynth serve`` offers when no ``--model`` is named. Evaluators (the classifier) and names whose folder is
    missing are left out."""
    from ..checkpoint import pretrained_dir, shipped_models
    from ..registry import FAMILIES

    root = pretrained_dir()
    return [name for name, entry in shipped_models().items()
            if (spec := FAMILIES.get(str(entry.get("family")))) is not None and spec.method is not None
            and (root / name / "weights.safetensors").is_file()]


_LICENCE_NAME = re.compile(r"\b(CC[ -]BY(?:-[A-Z]{2})*(?: [0-9.]+)?|CC0(?: [0-9.]+)?|Apache[ -]2\.0|MIT)\b")


def _licence(card: Path) -> tuple[str, str] | None:
    """(short name, text) of a model card's ``## Licence`` section: the name of the first licence it names (e.g.
    ``CC BY-NC 4.0``), else "see its card"; None when the card has no such section."""
    try:
        text = card.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^##\s*Licen[cs]e\s*$(.*?)(?=^#|\Z)", text, re.MULTILINE | re.DOTALL | re.IGNORECASE)
    if match is None or not match.group(1).strip():
        return None
    body = " ".join(match.group(1).split())
    name = _LICENCE_NAME.search(body)
    return (name.group(1) if name else "see its model card"), body


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
_Index = Annotated[int, Field(ge=0, le=_MAX_INDEX)]
_Name = Annotated[str, Field(max_length=200)]


class RunRequest(BaseModel):
    """What ``POST /api/run`` takes. Fields a task does not use are ignored. Every number has a range (422 outside)."""

    model_config = ConfigDict(extra="forbid")

    task: _Name
    model: Annotated[str, Field(max_length=4096)]
    upload: Optional[_Name] = None  # the upload id (every task but generate)
    samples: int = Field(1, ge=1, le=MAX_SAMPLES)
    seed: int = Field(0, ge=0, le=_MAX_SEED)
    keyframes: Optional[Annotated[list[_Index], Field(max_length=_MAX_LIST)]] = None  # inbetween
    # complete: observed joints (indices, names or group names)
    observe: Optional[Annotated[list[Union[_Index, _Name]], Field(max_length=_MAX_LIST)]] = None
    synthesise_root: bool = False  # complete: synthesise the root path too (else the clip's is kept)
    extrapolate: bool = False  # inbetween: also fill frames before the first / after the last keyframe
    given: Optional[_Index] = None  # predict: observed prefix
    frames: Optional[int] = Field(None, ge=1, le=MAX_FRAMES)  # predict: output length; generate: length
    label: Optional[Union[Annotated[dict[_Name, _Name], Field(max_length=64)], _Name]] = None  # {"content": "walk"}


@dataclass
class PreparedRun:
    """A checked run request, ready for the model: its entry, label, uploaded motion (None to generate), the task's
    working motion and mask, and the number of samples."""

    req: RunRequest
    entry: ModelEntry
    label: dict | None
    source: Motion | None
    work: Motion
    mask: Any
    samples: int


def _parse_request(body: bytes) -> RunRequest:
    """The run request in a JSON body; a `ServeError` (422, one line) for bad JSON or a field out of range."""
    try:
        return RunRequest.model_validate_json(body)
    except ValidationError as e:
        raise ServeError(422, "bad request: " + _errors(e.errors())) from None


def _errors(errors: Sequence[Mapping[str, Any]], most: int = 3) -> str:
    """Validation errors on one line: ``field: message; …`` (the first ``most``)."""
    parts = []
    for err in errors[:most]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        message = " ".join(str(err.get("msg", "invalid")).split())
        parts.append(f"{where}: {message}" if where else message)
    more = f"; and {len(errors) - most} more" if len(errors) > most else ""
    return "; ".join(parts) + more


def _failure(e: BaseException) -> tuple[int, str]:
    """(HTTP status, one line) of a failed job: a refusal as the request would have had it, a bug as a 500."""
    if isinstance(e, ServeError):
        return e.status, e.message
    if isinstance(e, MotionsynthError):
        return 422, " ".join(str(e).split())
    return 500, f"internal error: {type(e).__name__}: {e}"


def _task_word(task: str) -> str:
    """A task in words, for messages: ``in-betweening``, ``denoising``, … (`tasks.Task.noun`)."""
    return TASKS[task].noun if task in TASKS else task


# The editor's words for a request field of the library (`tasks.RequestError`): its own field name, and a hint for
# the page when the input is missing.
_FIELDS = {"length": "frames", "n_samples": "samples", "extrapolate": "tick Extrapolate",
           "synthesise_root": "tick Synthesise the root path"}
_HINTS = {"keyframes": "click frames on the timeline", "observe": "pick the body part to synthesise",
          "given": "the observed prefix, in frames"}


def _request_error(e: RequestError) -> ServeError:
    """A library `RequestError` as a 422 in the editor's words (its field names; a hint for a missing input)."""
    text = re.sub(r"`([a-z_]+)`", lambda m: _FIELDS.get(m.group(1), m.group(1)), str(e))
    field = _FIELDS.get(e.field, e.field)
    if text.endswith(f"needs {field}") and e.field in _HINTS:
        text += f": {_HINTS[e.field]}"
    return ServeError(422, text)


def _names(entries: Iterable[ModelEntry]) -> str:
    return ", ".join(m.name for m in entries)


# ---- responses ---------------------------------------------------------------------------------------------------
def encode_positions(motion: Motion) -> dict:
    """(T, J, 3) world joint positions as ``{"dtype": "float32", "shape": [T, J, 3], "data": base64}`` (the
    little-endian float32 bytes; the page views them as a Float32Array), a Z-up rig stood upright
    (`viz.render.upright_positions`). Forward kinematics runs on chunks of frames, so that its float64 temporaries
    stay small whatever the length."""
    T, J = motion.num_frames, len(motion.skeleton)
    pos = np.empty((T, J, 3), dtype="<f4")
    step = max(1, _FK_CHUNK // max(J, 1))
    for t in range(0, T, step):
        pos[t:t + step] = upright_positions(motion, motion[t:t + step].global_positions())
    return {"dtype": "float32", "shape": [T, J, 3], "data": base64.b64encode(pos.tobytes()).decode("ascii")}


def _mask_rows(joints: np.ndarray) -> list[str]:
    """(T, J) bool → one '0'/'1' string per frame (compact JSON)."""
    table = np.where(np.asarray(joints, bool), ord("1"), ord("0")).astype(np.uint8)
    return [row.tobytes().decode("ascii") for row in table]


def _skeleton_json(sk: Skeleton) -> dict:
    return {"names": sk.names, "parents": sk.parents.tolist(), "root": int(sk.root), "sides": sk.sides,
            "drawn": sk.subtree(sk.root), "groups": sk.groups,
            "part_names": {g: GROUP_TITLES.get(g, g.replace("_", " ")) for g in sk.groups}}


def _json(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _safe_name(text: str, default: str = "motion") -> str:
    """A file-name stem made of safe characters (for Content-Disposition and display)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem[:80] or default


# ---- the work a BVH asks for, from its header ----------------------------------------------------------------------
def _check_work(frames: int, joints: int, what: str, limit: int, flag: str, status: int) -> None:
    """`limits.check_joint_frames` with the editor's limit; refused as a `ServeError` naming the flag that raises
    it."""
    try:
        check_joint_frames(frames, joints, what, limit)
    except LimitError:
        raise ServeError(status, f"{what}: {frames:,} frames x {joints:,} joints = {frames * joints:,} joint-frames, "
                                 f"more than the editor's limit of {limit:,} (motionsynth serve {flag} N)") from None


# ---- the application ---------------------------------------------------------------------------------------------
class Editor:
    """The state behind the app: models, output folders, limits, worker pools and the model lock."""

    def __init__(self, models: Sequence[ModelEntry], out_dir: Path, limits: EditorLimits):
        self.models = {m.id: m for m in models}
        self.limits = limits
        self.outputs = Outputs(Path(out_dir), limits.keep_hours * 3600, int(limits.keep_mb * 1024 * 1024))
        self.out_dir, self.root = Path(out_dir), self.outputs.root
        self.max_upload_bytes = limits.max_upload_bytes
        self.lock = threading.Lock()
        self.uploads = WorkPool("uploads", limits.workers, limits.queue)  # parsing, and the checks of a run
        self.runs = WorkPool("runs", limits.workers, limits.queue)  # the jobs
        self.jobs = Jobs(self.runs, _failure)

    def close(self) -> None:
        self.jobs.cancel_all()  # (a long model call stops at its next step, rather than hold the exit)
        self.uploads.close()
        self.runs.close()

    def body_limit(self, path: str) -> tuple[int, str]:
        """(largest body, message when larger) of a request to ``path`` (the `guard.Guard`'s ``body_limit``)."""
        if path == "/api/upload":
            return self.max_upload_bytes + _MULTIPART_SLACK, self.too_large_upload
        most = self.limits.max_json_bytes
        return most, f"the request is larger than the limit of {_size(most)}"

    @property
    def too_large_upload(self) -> str:
        return f"the upload is larger than the limit of {_size(self.max_upload_bytes)}"

    def describe_limits(self) -> dict:
        lim = self.limits
        return {"max_upload_bytes": lim.max_upload_bytes, "max_samples": MAX_SAMPLES, "max_frames": MAX_FRAMES,
                "max_joint_frames": lim.max_joint_frames, "max_result_joint_frames": lim.max_result_joint_frames}

    # -- files
    def folder(self, ident: str) -> Path:
        """The folder of an upload or run id, refusing anything but a well-formed id inside the output folder."""
        if not isinstance(ident, str) or not ID.fullmatch(ident):
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

    def write_json(self, path: Path, data: dict) -> None:
        from ..io.atomic import atomic_open

        with atomic_open(path, "w") as f:
            json.dump(data, f, indent=1)

    def _new_request_folder(self, write) -> str:
        """A fresh request folder filled by ``write(folder)``; removed again if that fails, else kept (and older
        folders expired). Returns its id."""
        ident, folder = self.outputs.new()
        try:
            write(folder)
        except BaseException:
            self.outputs.discard(ident)
            raise
        self.outputs.keep(ident)
        return ident

    # -- upload
    def accept_upload(self, file: BinaryIO, filename: str) -> bytes:
        """Check, parse and store an uploaded BVH or glTF binary (a worker's job) → the JSON response."""
        from ..io import save_motion
        from ..io.bvh import parse_bvh
        from ..io.gltf import parse_glb

        name = Path(filename.replace("\\", "/")).name or "upload.bvh"
        glb = Path(name).suffix.lower() == ".glb"
        if Path(name).suffix.lower() != ".bvh" and not glb:
            raise ServeError(415, f"{name}: only BVH files (.bvh) and glTF binaries (.glb) can be uploaded")
        data = self._read_glb(file) if glb else self._read_checked(file, name)
        limit = self.limits.max_joint_frames
        try:  # the reader checks its header too (where `declared_size` found none): FormatError (file:line) → 422
            # (a .glb: frames x joints from its key times, before any frame is built)
            motion = (parse_glb(data, path=name, max_joint_frames=limit) if glb
                      else parse_bvh(data, path=name, max_joint_frames=limit))
        except LimitError:
            raise ServeError(413, f"uploaded motion {name}: more frames x joints than the editor's limit of "
                                  f"{limit:,} joint-frames (motionsynth serve --max-joint-frames N)") from None
        del data
        motion.name = _safe_name(Path(name).stem)
        fits = self._fitting_models(motion.skeleton, name)

        def write(folder: Path) -> None:
            save_motion(motion, folder / "input.npz")
            self.write_json(folder / "upload.json", {"kind": "upload", "filename": name, "name": motion.name,
                                                     "frames": motion.num_frames, "fps": motion.fps})

        ident = self._new_request_folder(write)
        log.info("upload %s: %s, %d frames x %d joints", ident[:8], name, motion.num_frames, len(motion.skeleton))
        return _json({"id": ident, "name": motion.name, "filename": name, "frames": motion.num_frames,
                      "fps": motion.fps, "skeleton": _skeleton_json(motion.skeleton),
                      "positions": encode_positions(motion), "models": fits})

    def _read_glb(self, file: BinaryIO) -> bytes:
        """A .glb upload's bytes, refused (413) beyond ``max_upload_bytes``."""
        file.seek(0)
        data = file.read(self.max_upload_bytes + 1)
        if len(data) > self.max_upload_bytes:
            raise ServeError(413, self.too_large_upload)
        return data

    def _read_checked(self, file: BinaryIO, name: str) -> bytes:
        """The upload's bytes, refused (413) from its header's ``Frames:`` × joints before the rest is read, and
        (422) when it has far more lines than its header declares frames (the reader would parse them all first)."""
        file.seek(0)
        data = file.read(_HEAD_BYTES)
        declared = declared_size(data)
        if declared is None:
            data += file.read(self.max_upload_bytes + 1 - len(data))
            declared = declared_size(data)
        if declared is not None:
            frames, joints, motion_end = declared
            self.check_motion(frames, joints, f"uploaded motion {name}", 413)
        data += file.read(self.max_upload_bytes + 1 - len(data))
        if len(data) > self.max_upload_bytes:
            raise ServeError(413, self.too_large_upload)
        if declared is not None and data.count(b"\n", motion_end) > 2 * frames + 64:
            raise ServeError(422, f"{name}: far more lines after MOTION than the {frames:,} frames its header "
                                  f"declares")
        return data

    def _fitting_models(self, skeleton: Skeleton, name: str) -> list[str]:
        """The ids of the models that fit ``skeleton``; a 422 when checkpoints are offered and none fits."""
        checkpoints = [m for m in self.models.values() if m.checkpoint is not None]
        fits = [m.id for m in self.models.values() if m.fits(skeleton)]
        if checkpoints and not any(m.checkpoint is not None for m in self.models.values() if m.id in fits):
            try:
                checkpoints[0].check_fits(skeleton)
            except MotionsynthError as e:
                raise ServeError(422, f"uploaded motion {name}: {e}") from None
        return fits

    def check_motion(self, frames: int, joints: int, what: str, status: int = 422) -> None:
        """Refuse a motion of more than ``max_joint_frames`` (before it is built)."""
        _check_work(frames, joints, what, self.limits.max_joint_frames, "--max-joint-frames", status)

    def check_result(self, samples: int, frames: int, joints: int) -> None:
        """Refuse a result of more than ``max_result_joint_frames`` over all its samples (before the run)."""
        _check_work(samples * frames, joints, f"the result ({samples} sample{'s' * (samples != 1)} of {frames:,} "
                    f"frames)", self.limits.max_result_joint_frames, "--max-result-joint-frames", 422)

    def load_upload(self, ident: str | None) -> Motion:
        from ..io import load_motion

        if ident is None:
            raise ServeError(422, "this task needs an uploaded motion: upload a BVH file first")
        path = self.folder(ident) / "input.npz"
        if not path.is_file():
            raise ServeError(404, f"no such upload {ident!r}")
        return load_motion(path)

    # -- run
    def submit_json(self, body: bytes) -> bytes:
        """A run from its JSON request body (a worker's job): checked and prepared now, then queued as a job → the
        job's JSON. Every refusal comes here, before any work."""
        req = _parse_request(body)
        run = self.prepare(req)
        job = self.jobs.submit(req.task, run.entry.id, lambda job: self.execute(run, job))
        return self.job_json(job.id)  # a quick job may be done already: then with its result

    def prepare(self, req: RunRequest) -> PreparedRun:
        """Check the request (the model serves the task and takes the label; the work is within the limits) and
        build the task's motion and mask: every refusal before any work."""
        from ..tasks import check_label, parse_label

        entry = self._entry(req)
        label = parse_label(req.label) if isinstance(req.label, str) else (req.label or None)
        if label is not None:
            vocabulary = entry.vocabulary
            if not vocabulary:
                able = _names(m for m in self.models.values() if m.vocabulary and req.task in m.tasks)
                raise ServeError(422, f"{entry.name} is not conditioned on labels: drop the label"
                                      + (f", or use a model that takes labels: {able}" if able else ""))
            check_label(label, vocabulary, entry.name)
        task = TASKS[req.task]
        source = self.load_upload(req.upload) if task.needs_motion else None
        if source is not None:
            try:
                entry.check_fits(source.skeleton)
            except MotionsynthError as e:
                raise ServeError(422, f"{entry.name} cannot take the uploaded motion: {e}") from None
        request = self._request(req, entry, source)
        try:
            frames = task.frames(request)
            joints = len(source.skeleton if source is not None else cast(Skeleton, entry.skeleton))
            samples = 1 if task.one_sample else req.samples
            self.check_motion(frames, joints, f"the {req.task} motion")
            self.check_result(samples, frames, joints)
            work = task.make(request)
        except RequestError as e:
            raise _request_error(e) from None
        return PreparedRun(req, entry, label, source, work.motion, work.mask, samples)

    def execute(self, run: PreparedRun, job: Job | None = None) -> str:
        """Run the model on a prepared run (its turn at the model when a job, and always under the lock), then store
        the samples → the run's request folder id."""
        req = run.req
        with self.jobs.turn(job) if job is not None else nullcontext():
            with self.lock:
                method = run.entry.method()
                if run.source is not None:  # an upload of another rig: retargeted in and out (`methods.rig`)
                    method = on_skeleton(method, run.source.skeleton, req.task, run.source.fps)
                start = time.perf_counter()
                completion = method.complete(run.work, run.mask, label=run.label, n_samples=run.samples,
                                             seed=req.seed)
                seconds = time.perf_counter() - start
        ident = self._store_run(req, run.entry, run.source, run.work, run.mask, completion, seconds)
        if job is not None:
            job.detail = f"{len(completion.samples)} × {run.work.num_frames} frames, model {seconds:.1f} s, run {ident}"
        return ident

    def job_json(self, ident: str) -> bytes:
        """``GET /api/jobs/ID``: the job, with its result when done (read from its request folder)."""
        job = self._job(ident)
        info = self.jobs.describe(job)
        if info["state"] != "done":
            return _json(info)
        try:
            result = (self.folder(cast(str, job.run)) / "result.json").read_bytes()  # done: it ran
        except (ServeError, OSError):
            return _json({**info, "state": "failed", "status": 410,
                          "error": "the result has expired (motionsynth serve --keep-hours, --keep-mb)"})
        return _json(info)[:-1] + b',"result":' + result + b"}"

    def cancel_json(self, ident: str) -> bytes:
        self.jobs.cancel(self._job(ident))
        return self.job_json(ident)  # it may have ended done before the cancel came: then with its result

    def _job(self, ident: str) -> Job:
        job = self.jobs.get(ident) if isinstance(ident, str) and ID.fullmatch(ident) else None
        if job is None:
            raise ServeError(404, f"no such job {ident!r}")
        return job

    def _entry(self, req: RunRequest) -> ModelEntry:
        if req.task not in TASKS:
            raise ServeError(422, f"unknown task {req.task!r}; tasks are {', '.join(task_titles())}")
        entry = self.models.get(req.model)
        if entry is None:
            raise ServeError(422, f"unknown model {req.model!r}; models are {', '.join(self.models)}")
        if req.task not in entry.tasks:
            able = _names(m for m in self.models.values() if req.task in m.tasks)
            does = " and ".join(_task_word(t) for t in entry.tasks) or "no task here"
            raise ServeError(422, f"{entry.name} cannot do {_task_word(req.task)}: it does {does}. "
                                  f"For {_task_word(req.task)}: {able or 'no model offered here'}")
        return entry

    def _store_run(self, req, entry, source, work, mask, completion, seconds) -> str:
        """Write the samples, ``run.json`` and ``result.json`` (the job's result) into a fresh folder (nothing left
        if that fails) → its id."""
        from ..io import save_motion
        from ..io.atomic import atomic_open

        name = source.name if source is not None else "generated"
        files = [f"sample_{i:03d}.bvh" for i in range(len(completion.samples))]

        def write(folder: Path) -> None:
            for result, file in zip(completion.samples, files):
                result.name = name
                save_motion(result, folder / file)
                save_motion(result, folder / file.replace(".bvh", ".glb"))  # the same motion as glTF
            self.write_json(folder / "run.json", {
                "kind": "run", "task": req.task, "model": entry.id, "family": entry.family, "upload": req.upload,
                "name": name, "request": req.model_dump(), "options": _plain(completion.options),
                "timings": _plain(completion.timings), "seconds": seconds, "frames": work.num_frames,
                "files": files})
            ident = folder.name
            results = [{"file": file, "url": f"/api/files/{ident}/{file}",
                        "download": f"{name}_{req.task}_{i:03d}.bvh", "positions": encode_positions(result),
                        "glb_url": f"/api/files/{ident}/{file.replace('.bvh', '.glb')}",
                        "glb_download": f"{name}_{req.task}_{i:03d}.glb"}
                       for i, (result, file) in enumerate(zip(completion.samples, files))]
            observed = np.zeros_like(mask.joints) if mask.noisy else mask.joints
            with atomic_open(folder / "result.json", "wb") as f:
                f.write(_json({"id": ident, "task": req.task, "model": entry.id, "name": name,
                               "frames": work.num_frames, "fps": work.fps, "seconds": seconds,
                               "skeleton": _skeleton_json(work.skeleton), "observed": _mask_rows(observed),
                               "noisy": bool(mask.noisy), "samples": results}))

        return self._new_request_folder(write)

    def _request(self, req: RunRequest, entry: ModelEntry, motion: Motion | None) -> TaskRequest:
        """The `tasks.Request` of a run request (keyframes as clicked: sorted, once each); the task makes the working
        motion and mask from it (`tasks.Task.make`), as the commands do."""
        method = entry.method()
        return TaskRequest(motion=motion, keyframes=sorted(set(req.keyframes)) if req.keyframes else None,
                           extrapolate=req.extrapolate, observe=list(req.observe) if req.observe else None,
                           synthesise_root=req.synthesise_root, given=req.given, length=req.frames,
                           window=method.window, skeleton=entry.skeleton, fps=method.fps)


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


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def allowed_hosts_for(host: str) -> list[str] | None:
    """The ``Host`` names to accept when listening on ``host``: for a loopback address, that address and the
    loopback names (``127.0.0.1``, ``localhost``, ``::1``; any port); for another address None (any: the editor is
    exposed anyway)."""
    import ipaddress

    name = host_name(host) or host
    try:
        loopback = name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = False
    return sorted({name, "127.0.0.1", "localhost", "::1"}) if loopback else None


def create_app(models: Sequence[str | Path] = (), out_dir: str | Path = "out/serve",
               max_upload_bytes: int | None = None, allowed_hosts: Sequence[str] | None = None,
               baselines: bool = True, limits: EditorLimits | None = None) -> FastAPI:
    """The editor's FastAPI app.

    Args:
        models: checkpoint folders to offer (each loaded now: `registry.load_checkpoint`; a folder that is not a
            task model's checkpoint is a `MotionsynthError`).
        out_dir: where uploads and results are written (created; expired folders are removed now).
        max_upload_bytes: larger uploads are refused with 413 (overrides ``limits.max_upload_bytes``).
        allowed_hosts: Host header names accepted, any port (`allowed_hosts_for`; against DNS rebinding); None: any.
        baselines: also offer the baselines that need no training data.
        limits: the work limits, pools, timeouts and folder expiry (`EditorLimits`; defaults when None).

    ``app.state.token`` is the token POSTs must carry in ``X-Motionsynth-Token`` (the page embeds it).
    """
    limits = limits or EditorLimits()
    if max_upload_bytes is not None:
        if not max_upload_bytes >= 1:
            raise MotionsynthError(f"the upload size limit must be positive, got {max_upload_bytes}")
        limits = EditorLimits(**{**limits.__dict__, "max_upload_bytes": int(max_upload_bytes)})
    entries = _checkpoints(models) + (_baselines() if baselines else [])
    editor = Editor(entries, Path(out_dir), limits)
    token = secrets.token_urlsafe(24)
    page = (STATIC / "index.html").read_text().replace(_TOKEN_PLACEHOLDER, token)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        editor.close()

    app = FastAPI(title="motionsynth editor", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.editor, app.state.token = editor, token
    hosts = None if not allowed_hosts else {host_name(h) or h for h in allowed_hosts}
    app.add_middleware(Guard, token=token, hosts=hosts, body_limit=editor.body_limit,
                       body_timeout=limits.body_timeout)
    _add_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/api/models")
    async def list_models():
        return {"models": [m.describe() for m in editor.models.values()], "tasks": task_titles(),
                **editor.describe_limits()}

    @app.post("/api/upload")
    async def upload(request: Request):
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ServeError(415, "send the BVH file as multipart/form-data, field 'file'")
        parser = MultiPartParser(request.headers, request.stream(), max_files=1, max_fields=8)
        try:
            form = await parser.parse()  # the file goes to a temporary file (on disk beyond 1 MiB)
        except MultiPartException as e:
            raise ServeError(400, f"bad upload: {e.message}") from None
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise ServeError(422, "no file: send the BVH file in the multipart field 'file'")
            if file.size is not None and file.size > editor.max_upload_bytes:
                raise ServeError(413, editor.too_large_upload)
            body = await editor.uploads.run(editor.accept_upload, file.file, file.filename or "upload.bvh")
            return Response(body, media_type="application/json")
        finally:
            await form.close()

    @app.post("/api/run")
    async def run(request: Request):
        body = await request.body()  # at most max_json_bytes (the guard)
        job = await editor.uploads.run(editor.submit_json, body)  # checked and queued: the model works later
        return Response(job, status_code=202, media_type="application/json")

    @app.get("/api/jobs/{ident}")
    def job(ident: str):  # (a worker thread of the server's: a done job's result is read from its folder)
        return Response(editor.job_json(ident), media_type="application/json", headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{ident}/cancel")
    async def cancel(ident: str):
        return Response(editor.cancel_json(ident), media_type="application/json")

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


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal as ``{"error": "one line"}``; a 500 only for a bug (logged with its traceback)."""

    def refused(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
        if request.method == "POST":  # an upload or run turned away: one log line, as for those that are served
            log.info("%s refused (%d): %s", request.url.path, status, message)
        return _error(status, message, headers)

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, e: ServeError):
        return refused(request, e.status, e.message)

    @app.exception_handler(Busy)
    async def _busy(request: Request, e: Busy):
        return refused(request, 503, f"the editor is busy ({e.args[0]}): try again in a moment", {"Retry-After": "2"})

    @app.exception_handler(MotionsynthError)
    async def _user_error(request: Request, e: MotionsynthError):
        return refused(request, 422, " ".join(str(e).split()))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        return _error(422, "bad request: " + _errors(list(e.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception):
        log.exception("internal error on %s", request.url.path)
        return _error(500, f"internal error: {type(e).__name__}: {e}")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024
    return str(n)
