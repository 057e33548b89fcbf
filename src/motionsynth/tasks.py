"""The task interface: every motion task is *observed motion + mask → completed motion (k samples)*.

In-betweening, completion of body parts, prediction, denoising and generation differ only in the `Mask`:

=================  =====================================================================
task               mask
=================  =====================================================================
in-betweening      whole frames observed at keyframes (context frames and a target)
completion         some joints observed on all (or some) frames, the rest missing
prediction         a prefix of frames observed
generation         nothing observed (a label may condition)
denoising          everything observed but ``noisy=True``: values are an estimate to clean
=================  =====================================================================

A task is a `Task` in the one table `TASKS` (`register_task` adds one): its name and title, the `Request` inputs
it reads and how a request becomes the working motion and its mask (`Task.make`), its length rules, its default
baseline and the harness protocol that scores it. Every front end — the task commands, ``motionsynth report``,
``serve``, the demo, ``bench`` and the bench summary — iterates that table; none spells out a task list.

Methods — baselines and learned models alike — implement `Method.complete` and return a `Completion`; they say which
tasks they serve (``Method.tasks``), the window they work on and their options (``Method.Options``, a
`config.Options`). `BaseMethod` holds what every method shares, among it the checks at the top of ``complete``.

Labels. ``label`` is None or a dict of label names per label kind, ``{"content": "walk", "style": "happy"}``; a
model's vocabulary is its checkpoint's ``labels.json`` (kind → names). `check_label` is the one check: unknown kinds
or names, and any label given to a method that is not conditioned on labels, are clear errors.

Errors speak of the library: a `RequestError` (an `errors.ParamError`) names the `Request` field it is about, written
`` `keyframes` `` in its message, so that the command line and the editor can say which flag or control to change.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

from .config import Options
from .errors import MotionsynthError, ParamError
from .motion import Motion
from .skeleton import Skeleton


class RequestError(ParamError):
    """A bad value in a task request: ``field`` is the `Request` field it is about (``keyframes``, ``given``, …), so
    that a front end can name its own flag or control for it."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field)
        self.field = field

    def __reduce__(self):
        return (type(self), (self.field, str(self)))


@dataclass(frozen=True, eq=False)
class Mask:
    """Which parts of a motion are given.

    Attributes:
        joints: (T, J) bool — joint j's local rotation at frame t is observed.
        root: (T,) bool — the root position at frame t is observed.
        noisy: the observed values are a noisy estimate to be cleaned rather than kept (denoising).
    """

    joints: np.ndarray
    root: np.ndarray
    noisy: bool = False

    def __post_init__(self):
        object.__setattr__(self, "joints", np.asarray(self.joints, dtype=bool))
        object.__setattr__(self, "root", np.asarray(self.root, dtype=bool))
        if self.joints.ndim != 2 or self.root.shape != (self.joints.shape[0],):
            raise ValueError(f"mask shapes must be (T, J) and (T,), got {self.joints.shape} and {self.root.shape}")

    @property
    def num_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def frames(self) -> np.ndarray:
        """(T,) bool — the whole frame (every joint and the root) is observed."""
        return self.joints.all(1) & self.root

    @property
    def empty(self) -> bool:
        """Nothing is observed (generation)."""
        return not (self.joints.any() or self.root.any())

    def check(self, motion: Motion, generative: bool = False) -> None:
        """Raise a clear error if the mask does not fit ``motion``, or observes nothing to condition on and the
        method is not ``generative`` (cannot make motion from nothing)."""
        T, J = motion.num_frames, len(motion.skeleton)
        if self.joints.shape != (T, J):
            raise MotionsynthError(f"mask is {self.joints.shape} but the motion has {T} frames and {J} joints")
        if self.empty and not generative:
            raise MotionsynthError("the mask observes nothing: this method completes observed motion and cannot "
                                   "generate from nothing (use a generative model)")

    def __getitem__(self, frames) -> Mask:
        return replace(self, joints=self.joints[frames], root=self.root[frames])


def keyframe_mask(num_frames: int, num_joints: int, keyframes) -> Mask:
    """In-betweening: whole frames observed at ``keyframes`` (sorted, unique, in range), nothing else."""
    keys = np.asarray(list(keyframes), dtype=np.int64)
    if keys.size == 0:
        raise RequestError("keyframes", "no `keyframes` given")
    if (keys < 0).any() or (keys >= num_frames).any():
        raise RequestError("keyframes", f"`keyframes` {keys.tolist()} out of range for a motion of {num_frames} frames "
                                        f"(valid: 0..{num_frames - 1})")
    if (np.diff(keys) <= 0).any():
        raise RequestError("keyframes", f"`keyframes` must be strictly increasing, got {keys.tolist()}")
    frames = np.zeros(num_frames, dtype=bool)
    frames[keys] = True
    return Mask(np.repeat(frames[:, None], num_joints, 1), frames)


def inbetween_mask(num_frames: int, num_joints: int, context: int, gap: int) -> Mask:
    """LAFAN1-style in-betweening: ``context`` frames, a gap of ``gap`` missing frames, then one target frame.

    Frames after the target (if ``num_frames > context + gap + 1``) are unobserved.
    """
    if context + gap + 1 > num_frames:
        raise MotionsynthError(f"context {context} + gap {gap} + 1 target frame exceed {num_frames} frames")
    return keyframe_mask(num_frames, num_joints, [*range(context), context + gap])


def joints_mask(num_frames: int, skeleton: Skeleton, observed, frames: slice | None = None) -> Mask:
    """Completion: the joints in ``observed`` (a group name like 'upper', joint names or indices) are given; the
    rest of the body is missing on ``frames`` (all frames by default) and observed elsewhere.

    The root position is observed wherever the root joint's rotation is.
    """
    J = len(skeleton)
    keep = np.zeros(J, dtype=bool)
    keep[skeleton.joints(observed)] = True
    if keep.all():
        raise RequestError("observe", "every joint is observed: nothing left to complete")
    if not keep.any():
        raise RequestError("observe", f"no joints observed by `observe` {observed!r}")
    joints = np.ones((num_frames, J), dtype=bool)
    window = np.zeros(num_frames, dtype=bool)
    window[frames if frames is not None else slice(None)] = True
    if not window.any():
        raise RequestError("span", f"`span` {frames} selects nothing in a motion of {num_frames} frames")
    joints[window] = keep
    return Mask(joints, joints[:, skeleton.root].copy())


def predict_mask(num_frames: int, num_joints: int, given: int) -> Mask:
    """Prediction: the first ``given`` frames are observed, the rest is to be predicted."""
    if not 0 < given < num_frames:
        raise MotionsynthError(f"prediction needs 0 < given frames ({given}) < total frames ({num_frames})")
    frames = np.arange(num_frames) < given
    return Mask(np.repeat(frames[:, None], num_joints, 1), frames)


def generate_mask(num_frames: int, num_joints: int) -> Mask:
    """Generation: nothing observed."""
    return Mask(np.zeros((num_frames, num_joints), dtype=bool), np.zeros(num_frames, dtype=bool))


def denoise_mask(num_frames: int, num_joints: int) -> Mask:
    """Denoising: everything observed, but noisy."""
    return Mask(np.ones((num_frames, num_joints), dtype=bool), np.ones(num_frames, dtype=bool), noisy=True)


def keep_observed(result: Motion, given: Motion, mask: Mask) -> Motion:
    """Copy the observed rotations and root positions of ``given`` into ``result`` (unless the mask is noisy)."""
    if mask.noisy:
        return result
    out = result.copy()
    out.rotations[mask.joints] = given.rotations[mask.joints]
    out.root_positions[mask.root] = given.root_positions[mask.root]
    return out


@dataclass(eq=False)
class Completion:
    """What `Method.complete` returns: the samples and how they were made.

    It is a sequence of its samples, so ``[result] = method.complete(motion, mask)`` works.

    Attributes:
        samples: the completed motions (best first where a method ranks them), each of the input's length and
            skeleton.
        options: every option the method ran with, defaults included (recorded by the benchmark).
        timings: seconds per stage (and counts such as ``restarts``) of this call.
        objective: per sample, the value the method minimised (e.g. the latent-optimisation loss), or None.
    """

    samples: list[Motion]
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    objective: list[float] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Motion]:
        return iter(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


@runtime_checkable
class Method(Protocol):
    """Anything that completes motion: a baseline or a learned model (`BaseMethod` holds what they share).

    ``complete`` receives a `Motion` whose unobserved parts may hold anything (zeros, noise, the noisy estimate)
    and returns a `Completion` of ``n_samples`` motions of the same length and skeleton. Observed parts come back
    unchanged (within a method's stated tolerance) unless ``mask.noisy``. ``label`` follows the module's label
    convention (`check_label`).

    Attributes every method has (the harness, the commands and the editor read them):
        name: what tables call it.
        tasks: the names of the tasks it serves (`TASKS`); a request for another is refused before any work.
        window: the frames it works on at once (None: any length; `Task.full_window` rules use it).
        Options: its options (a `config.Options` dataclass: defaults, help, checks).
        params: the options it runs with (recorded beside its scores).
        skeleton: the skeleton it works on, or None for any skeleton (baselines).
        checkpoint_hash: the weights' sha256 for a learned method, else None.
        vocabulary: the labels it is conditioned on, label kind → names (``{}``: it takes no label).
        needs_fit: True when it learns from data at run time (mean pose, nearest neighbour, the prior with
            ``init="nearest"``): then ``fit(motions)`` must be called first — the benchmark fits it on the train
            split.
    """

    name: str
    tasks: tuple[str, ...]
    window: int | None
    params: dict[str, Any]
    skeleton: Skeleton | None
    checkpoint_hash: str | None
    vocabulary: dict[str, list[str]]
    needs_fit: bool

    def fit(self, motions: Iterable[Motion]) -> Any: ...

    def complete(self, motion: Motion, mask: Mask, label: dict[str, str] | None = None, n_samples: int = 1,
                 seed: int | None = None) -> Completion: ...


def mask_kind(mask: Mask) -> str:
    """What a mask asks for: ``"noisy"`` (clean an estimate), ``"nothing"`` (generate: nothing observed) or
    ``"part"`` (fill in the unobserved frames and joints) — `Task.mask` names the same kinds."""
    return "noisy" if mask.noisy else "nothing" if mask.empty else "part"


_KIND_WORDS = {"part": "fill in missing frames or joints (a mask with parts observed)",
               "noisy": "clean a noisy estimate (a mask with noisy=True, e.g. denoise_mask)",
               "nothing": "generate from nothing (a mask that observes nothing)"}


_OptionsBase = Options  # the name `Options` is a class attribute inside `BaseMethod`


class BaseMethod(abc.ABC):
    """What every method shares, baselines and learned ones: the `Method` attributes' defaults, its options and the
    checks at the top of ``complete`` (here, once), after which ``complete`` calls the subclass's `_complete`.

    A subclass sets ``name``, ``tasks`` (the task names it serves), ``Options`` (its `config.Options` dataclass) and,
    for a learned one, ``window``, ``fps``, ``skeleton``, ``checkpoint_hash`` and ``vocabulary``; it builds its options with
    `build_options` and implements ``_complete(motion, mask, label, n_samples, seed)`` → `Completion`. ``masks``:
    the kinds of mask (`mask_kind`) ``complete`` accepts, when more than the tasks it serves make (a baseline works
    column by column on any mask, though it is meant for a few tasks).
    ``progress`` (a front end may set it): show progress bars on stderr where the method has some. ``slow``: a window
    takes seconds (latent optimisation), so the bench summary and the demo score it on fewer windows, with
    `quick_options`.
    """

    name = ""
    tasks: tuple[str, ...] = ()
    masks: tuple[str, ...] | None = None
    Options: type[_OptionsBase] = Options
    window: int | None = None
    fps: float | None = None
    skeleton: Skeleton | None = None
    checkpoint_hash: str | None = None
    vocabulary: dict[str, list[str]] = {}
    needs_fit = False
    progress = False
    slow = False
    params: dict[str, Any] = {}

    @classmethod
    def quick_options(cls, task: str) -> dict:
        """Options for a run of ``task`` within minutes on a CPU (the demo), where the defaults take longer."""
        return {}

    def build_options(self, values: dict) -> _OptionsBase:
        """This method's `Options` from keyword values (unknown names and bad values are one-line errors)."""
        return self.Options.build(values, f"the {self.name or type(self).__name__} method")

    def fit(self, motions: Iterable[Motion]) -> BaseMethod:
        """Nothing to fit unless ``needs_fit`` (subclasses that learn at run time override this)."""
        return self

    def serves(self, kind: str) -> bool:
        """Whether ``complete`` accepts masks of ``kind`` (`mask_kind`): ``masks``, else those of the tasks it
        serves."""
        if self.masks is not None:
            return kind in self.masks
        return any(TASKS[t].mask == kind for t in self.tasks if t in TASKS)

    def check_skeleton(self, skeleton: Skeleton, what: str = "motion") -> None:
        """Raise `SkeletonMismatchError` unless it works on ``skeleton`` (any skeleton when ``self.skeleton`` is None);
        ``what`` names the motion in the message."""
        if self.skeleton is not None:
            self.skeleton.check_compatible(skeleton, what=what)

    def check_call(self, motion: Motion, mask: Mask, label: dict | None, n_samples: int) -> None:
        """The checks every ``complete`` starts with: the mask fits the motion and is of a kind the method serves, the
        label is in its vocabulary, the motion is on its skeleton, and ``n_samples`` is a whole number ≥ 1."""
        who = f"the {self.name} method"
        kind = mask_kind(mask)
        mask.check(motion, generative=self.serves("nothing"))
        if not self.serves(kind):
            does = ", ".join(TASKS[t].noun for t in self.tasks if t in TASKS) or "nothing"
            can = " or ".join(words for k, words in _KIND_WORDS.items() if self.serves(k))
            raise MotionsynthError(f"{who} serves {does}: it can {can}, not {_KIND_WORDS[kind]}")
        check_label(label, self.vocabulary, who)
        self.check_skeleton(motion.skeleton)
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise RequestError("n_samples", f"`n_samples` must be at least 1, got {n_samples}")

    def complete(self, motion: Motion, mask: Mask, label: dict[str, str] | None = None, n_samples: int = 1,
                 seed: int | None = None) -> Completion:
        """`check_call`, then ``n_samples`` completions of ``motion`` under ``mask`` (`Method.complete`)."""
        self.check_call(motion, mask, label, n_samples)
        return self._complete(motion, mask, label, int(n_samples), seed)

    @abc.abstractmethod
    def _complete(self, motion: Motion, mask: Mask, label: dict | None, n_samples: int, seed: int | None
                  ) -> Completion:
        """The method's own work, after `check_call` (each method defines it)."""


def check_label(label: dict[str, str] | None, vocabulary: dict[str, list[str]] | None, who: str) -> None:
    """Check ``label`` against a model's vocabulary (label kind → names); None for a method without labels.

    Raises a clear `MotionsynthError` for a label given to ``who`` when it takes none, a label that is not a dict of
    names, and an unknown kind or name (listing the known ones).
    """
    if label is None:
        return
    if not isinstance(label, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in label.items()):
        raise MotionsynthError(f"a label is a dict of names per label kind, e.g. {{'content': 'walk'}}; got {label!r}")
    if not vocabulary:
        raise MotionsynthError(f"{who} is not conditioned on labels; drop the label {label} (or use a model "
                               f"trained with labels)")
    for kind, name in label.items():
        if kind not in vocabulary:
            raise MotionsynthError(f"{who} has no label kind {kind!r}; its kinds are {', '.join(sorted(vocabulary))}")
        if name not in vocabulary[kind]:
            raise MotionsynthError(f"{who} knows no {kind} {name!r}; its {kind} labels are "
                                   f"{', '.join(vocabulary[kind])}")


def parse_label(text: str | None) -> dict[str, str] | None:
    """``"content=walk,style=happy"`` (the text form of a label, e.g. a command's) → ``{"content": "walk", "style":
    "happy"}``."""
    if text is None or not text.strip():
        return None
    out = {}
    for part in text.split(","):
        kind, sep, name = part.partition("=")
        if not sep or not kind.strip() or not name.strip():
            raise RequestError("label", f"a `label` is KIND=NAME[,KIND=NAME…], e.g. content=walk; got {text!r}")
        out[kind.strip()] = name.strip()
    return out


def save_mask(mask: Mask, path) -> None:
    """Write a mask as ``.npz`` with arrays ``joints`` (T, J), ``root`` (T,) and ``noisy`` () (atomically)."""
    from .io.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        np.savez(f, joints=mask.joints, root=mask.root, noisy=np.array(mask.noisy))


def load_mask(path) -> Mask:
    """Read a mask written by `save_mask`; a clear error for anything else."""
    try:
        with np.load(path) as z:
            return Mask(z["joints"], z["root"], bool(z["noisy"]) if "noisy" in z else False)
    except (OSError, KeyError, ValueError) as e:
        raise MotionsynthError(f"{path}: not a mask file (.npz with 'joints' (T, J) and 'root' (T,)): {e}") from None


# ---- tasks: what users ask for, and how a request becomes a working motion and its mask -----------------------------
DEFAULT_WINDOW = 64
"""Frames of a generated motion when neither the request nor the method says (the models' window by default)."""


@dataclass
class Request:
    """What a user asks of a task, in the library's words: the command line's flags and the editor's fields both
    become one. A task reads the fields it names in `Task.inputs` and ignores the others.

    Attributes:
        motion: the observed motion (None for a task that needs none: generation starts from ``skeleton`` at rest).
        keyframes: the frames observed whole (in-betweening), in any order.
        observe: what is observed (completion): body-part groups (``upper``, ``left_arm``, …), joint names or joint
            indices.
        span: (start, stop) — the frames completion works on (None: every frame); elsewhere the body is observed.
        synthesise_root: completion synthesises the root path too (its position and heading); by default the
            motion's root trajectory is kept wherever it is completed (`observe_root`), however little is observed.
        extrapolate: in-betweening also fills the frames before the first and after the last keyframe — prediction,
            not in-betweening; without it such frames are refused (`keyframe_span`).
        given: the observed prefix in frames (prediction).
        length: frames of the result (prediction, generation; None: the motion's, else the method's ``window``).
        label: the label to condition on, ``{kind: name}`` (`check_label`; the method checks it).
        skeleton, fps: the body and frame rate of a task without a motion (generation: the model's).
        window: the method's window (None: any length), for `Task.full_window` and generation's default length.
    """

    motion: Motion | None = None
    keyframes: Sequence[int] | None = None
    observe: Sequence[str | int] | None = None
    span: tuple[int, int] | None = None
    synthesise_root: bool = False
    extrapolate: bool = False
    given: int | None = None
    length: int | None = None
    label: dict[str, str] | None = None
    skeleton: Skeleton | None = None
    fps: float | None = None
    window: int | None = None


INPUTS = ("keyframes", "extrapolate", "observe", "span", "synthesise_root", "given", "length", "label")
"""The `Request` fields a task may name in `Task.inputs` (``motion`` is `Task.needs_motion`)."""


@dataclass(eq=False)
class Work:
    """A request made concrete: the working motion (T frames, unobserved parts arbitrary) and its (T, J) `Mask`,
    and the label to pass to the method."""

    motion: Motion
    mask: Mask
    label: dict[str, str] | None = None


@dataclass(frozen=True, eq=False)
class Task:
    """One motion task: what a user asks for and how the request becomes the working motion and its `Mask`.

    Attributes:
        name: the command (``motionsynth NAME``), the editor's and the harness's key, what `Method.tasks` lists.
        title: for headings ("In-betweening"); ``noun``: in sentences ("in-betweening").
        help: what the task does, a sentence or two (the command's help).
        prepare: (`Request`, frames) → `Work`; called by `make` after the common checks, with ``motion`` set unless
            ``needs_motion`` is False, and ``frames`` the length of the working motion (`frames`).
        inputs: the `Request` fields it reads (`INPUTS`); ``required``: those it cannot do without.
        mask: the kind of mask it makes (`mask_kind`): ``"part"``, ``"noisy"`` or ``"nothing"``. A method accepts the
            masks of the tasks it serves.
        needs_motion: the request carries an observed motion (generation: False).
        full_window: a method with a window needs at least one full window of motion (denoising reads the context).
        one_sample: it makes one result only (cleaning is deterministic): a request for more gets one.
        baseline: the best baseline on the benchmark (docs/BENCHMARKS.md), the default of the report and the demo
            (None: none can do it); ``baselines``: those the bench summary and the demo compare.
        bench: the harness protocol that scores it (a `bench.protocol.Protocol`, or its import path
            ``"module:NAME"``: the harness sits above this module), or None (`protocol`).
    """

    name: str
    title: str
    noun: str
    help: str
    prepare: Callable[[Request, int], Work]
    inputs: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    mask: str = "part"
    needs_motion: bool = True
    full_window: bool = False
    one_sample: bool = False
    baseline: str | None = None
    baselines: tuple[str, ...] = ()
    bench: Any = None

    def __post_init__(self):
        unknown = [i for i in (*self.inputs, *self.required) if i not in INPUTS]
        if unknown or not set(self.required) <= set(self.inputs):
            raise ValueError(f"task {self.name}: inputs must be among {', '.join(INPUTS)} and include the required "
                             f"ones; got {self.inputs}, required {self.required}")
        if self.mask not in _KIND_WORDS:
            raise ValueError(f"task {self.name}: mask must be one of {', '.join(_KIND_WORDS)}, got {self.mask!r}")

    def frames(self, request: Request) -> int:
        """Frames of the working motion (and of every result), from the request's numbers alone — so front ends can
        size the work before any array is built."""
        if "length" in self.inputs and request.length is not None:
            if request.length < 1:
                raise RequestError("length", f"`length` must be at least 1 frame, got {request.length}")
            return int(request.length)
        if request.motion is not None:
            return request.motion.num_frames
        if request.window is None and request.skeleton is None:
            raise RequestError("length", f"{self.noun} needs the `length` of the result")
        return int(request.window or DEFAULT_WINDOW)

    def unused(self, request: Request) -> list[str]:
        """The `INPUTS` a request fills that this task does not read (a front end that takes all of them refuses
        these)."""
        return [f for f in INPUTS if f not in self.inputs and _given(getattr(request, f))]

    def check_length(self, frames: int, window: int | None) -> None:
        """The length rules: with ``full_window``, a motion of at least ``window`` frames."""
        if self.full_window and window is not None and frames < window:
            raise RequestError("motion", f"{frames} frames is shorter than the model's window of {window} frames; "
                                         f"{self.noun} needs at least one full window")

    def check_inputs(self, request: Request) -> None:
        """A `RequestError` naming the first required input the request lacks."""
        for name in self.required:
            if not _given(getattr(request, name)):
                raise RequestError(name, f"{self.noun} needs `{name}`")

    def make(self, request: Request) -> Work:
        """The working motion and mask of ``request``: the required inputs present (a `RequestError` naming the
        field), the length rules, then `prepare`; the label passes through."""
        self.check_inputs(request)
        if self.needs_motion and request.motion is None:
            raise RequestError("motion", f"{self.noun} needs an observed motion")
        if request.motion is not None:
            self.check_length(request.motion.num_frames, request.window)
        work = self.prepare(request, self.frames(request))
        work.label = request.label if "label" in self.inputs else None
        return work

    def protocol(self):
        """The harness protocol that scores this task (`bench.protocol.Protocol`), imported on first use; None when
        the task has none."""
        if isinstance(self.bench, str):
            import importlib

            module, _, attr = self.bench.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.bench


def _given(value) -> bool:
    """A request field is given: not None, not an empty list, not a switch left off (False)."""
    return value is not None and value is not False and not (isinstance(value, (list, tuple)) and len(value) == 0)


TASKS: dict[str, Task] = {}
"""The one table of tasks, in the order front ends list them (`register_task`)."""


def register_task(task: Task) -> Task:
    """Add (or replace) a task in `TASKS`; every front end lists it from then on."""
    TASKS[task.name] = task
    return task


def task(name: str) -> Task:
    """The task called ``name``; a clear error listing the known ones otherwise."""
    if name not in TASKS:
        raise MotionsynthError(f"unknown task {name!r}; tasks are {', '.join(TASKS)}")
    return TASKS[name]


# ---- the built-in tasks --------------------------------------------------------------------------------------------
def _dims(motion: Motion) -> tuple[int, int]:
    return motion.num_frames, len(motion.skeleton)


def _frames_text(a: int, b: int) -> str:
    return f"frame {a} comes" if a == b else f"frames {a}–{b} come"


def keyframe_span(num_frames: int, keyframes) -> None:
    """In-betweening fills the frames *between* keyframes: a `RequestError` (``keyframes``) for frames before the first
    keyframe or after the last one, which only a prediction could fill (`Request.extrapolate`)."""
    keys = sorted(int(k) for k in keyframes)
    first, last = keys[0], keys[-1]
    problems = []
    if first > 0:
        problems.append(f"{_frames_text(0, first - 1)} before the first keyframe {first}")
    if last < num_frames - 1:
        problems.append(f"{_frames_text(last + 1, num_frames - 1)} after the last keyframe {last}")
    if problems:
        end = num_frames - 1
        ends = (f"both ends (frames 0 and {end})" if len(problems) == 2 else "the start (frame 0)" if first > 0
                else f"the end (frame {end})")
        raise RequestError("keyframes", f"{' and '.join(problems)}: give a keyframe at {ends}, or `extrapolate` "
                                        f"to predict them (prediction, not in-betweening: the error grows with the "
                                        f"distance from a keyframe)")


def _prepare_inbetween(r: Request, frames: int) -> Work:
    assert r.motion is not None and r.keyframes is not None  # `Task.make` checked the required inputs
    mask = keyframe_mask(*_dims(r.motion), r.keyframes)
    if not r.extrapolate:
        keyframe_span(r.motion.num_frames, r.keyframes)
    return Work(r.motion, mask)


def observe_root(mask: Mask, skeleton: Skeleton) -> Mask:
    """``mask`` with the root path observed on every frame: the moving root's position and rotation (so its heading)
    and its static ancestors' rotations — the character stays where the motion put it, facing the same way."""
    joints = mask.joints.copy()
    joints[:, [*skeleton.ancestors(skeleton.root), skeleton.root]] = True
    return replace(mask, joints=joints, root=np.ones_like(mask.root))


def _prepare_complete(r: Request, frames: int) -> Work:
    assert r.motion is not None and r.observe is not None  # `Task.make` checked the required inputs
    T, J = _dims(r.motion)
    try:
        joints = r.motion.skeleton.joints(list(r.observe))
    except (KeyError, IndexError) as e:
        raise RequestError("observe", f"`observe`: {e.args[0] if e.args else e}") from None
    if any(not 0 <= j < J for j in joints):
        raise RequestError("observe", f"`observe`: joint indices must be in 0..{J - 1}")
    span = None
    if r.span is not None:
        a, b = (int(x) for x in r.span)
        if not 0 <= a < b <= T:
            raise RequestError("span", f"`span` {a}:{b}: need 0 <= start < stop <= {T} (the motion's frames)")
        span = slice(a, b)
    mask = joints_mask(T, r.motion.skeleton, joints, span)
    if not r.synthesise_root:
        mask = observe_root(mask, r.motion.skeleton)
        if mask.joints.all():
            raise RequestError("observe", "only the root is left to complete, and its path is kept: observe less, "
                                          "or `synthesise_root` to synthesise it")
    return Work(r.motion, mask)


def _prepare_predict(r: Request, frames: int) -> Work:
    from .ops import pad

    assert r.motion is not None and r.given is not None  # `Task.make` checked the required inputs
    T, J = _dims(r.motion)
    given = int(r.given)
    if not 0 < given <= T:
        raise RequestError("given", f"`given` must be 1..{T} frames (the motion's), got {given}")
    if frames <= given:
        raise RequestError("length", f"`length` {frames} leaves nothing to predict after the {given} given frames")
    return Work(pad(r.motion[:given], frames), predict_mask(frames, J, given))  # unobserved: the last given one held


def _prepare_denoise(r: Request, frames: int) -> Work:
    assert r.motion is not None  # `Task.make` checked it
    return Work(r.motion, denoise_mask(*_dims(r.motion)))


def _prepare_generate(r: Request, frames: int) -> Work:
    from .ops import rest_motion

    skeleton = r.skeleton if r.skeleton is not None else r.motion.skeleton if r.motion is not None else None
    if skeleton is None:
        raise RequestError("motion", "generation needs the skeleton to generate on (the model's)")
    start = rest_motion(skeleton, frames, float(r.fps or 30.0), name="generated")
    return Work(start, generate_mask(frames, len(skeleton)))


for _task in (
    Task("inbetween", "In-betweening", "in-betweening",
         "Fill the frames between keyframes of IN (the keyframes are kept exactly; frames before the first or after "
         "the last keyframe only when asked to extrapolate).",
         _prepare_inbetween, inputs=("keyframes", "extrapolate", "label"), required=("keyframes",),
         baseline="slerp", baselines=("zero-velocity", "slerp"), bench="motionsynth.bench.protocol:INBETWEEN"),
    Task("complete", "Completion", "completion",
         "Synthesise the body parts of IN that are not observed (the observed ones are kept exactly, and so is the "
         "root path — position and heading — unless it is asked to be synthesised).",
         _prepare_complete, inputs=("observe", "span", "synthesise_root", "label"), required=("observe",),
         baseline="nearest-neighbour", baselines=("mean-pose", "nearest-neighbour"),
         bench="motionsynth.bench.protocol:COMPLETE"),
    Task("predict", "Prediction", "prediction",
         "Continue the first frames of IN (the given frames are kept exactly).",
         _prepare_predict, inputs=("given", "length", "label"), required=("given",),
         baseline="constant-velocity", baselines=("zero-velocity", "constant-velocity"),
         bench="motionsynth.bench.protocol:PREDICT"),
    Task("denoise", "Denoising", "denoising",
         "Clean a noisy motion (e.g. a pose estimator's output).",
         _prepare_denoise, mask="noisy", full_window=True, one_sample=True,
         baseline="smooth", baselines=("savgol", "gaussian", "one-euro", "smooth"),
         bench="motionsynth.bench.protocol:DENOISE"),
    Task("generate", "Generation", "generation",
         "Generate motions from nothing (a label may condition them).",
         _prepare_generate, inputs=("length", "label"), mask="nothing", needs_motion=False,
         bench="motionsynth.bench.protocol:GENERATE"),
):
    register_task(_task)
