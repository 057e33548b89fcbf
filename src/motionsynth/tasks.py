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

Methods — baselines and learned models alike — implement `Method.complete` and return a `Completion`; the harness
(`motionsynth.bench`) and the commands (`motionsynth inbetween`, `complete`, `generate`, …) only build masks and
call it.

Labels. ``label`` is None or a dict of label names per label kind, ``{"content": "walk", "style": "happy"}``; a
model's vocabulary is its checkpoint's ``labels.json`` (kind → names). `check_label` is the one check: unknown kinds
or names, and any label given to a method that is not conditioned on labels, are clear errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np

from .errors import MotionsynthError
from .motion import Motion
from .skeleton import Skeleton


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
        raise MotionsynthError("no keyframes given")
    if (keys < 0).any() or (keys >= num_frames).any():
        raise MotionsynthError(f"keyframes {keys.tolist()} out of range for a motion of {num_frames} frames "
                               f"(valid: 0..{num_frames - 1})")
    if (np.diff(keys) <= 0).any():
        raise MotionsynthError(f"keyframes must be strictly increasing, got {keys.tolist()}")
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
        raise MotionsynthError("every joint is observed: nothing left to complete")
    if not keep.any():
        raise MotionsynthError(f"no joints observed by {observed!r}")
    joints = np.ones((num_frames, J), dtype=bool)
    window = np.zeros(num_frames, dtype=bool)
    window[frames if frames is not None else slice(None)] = True
    if not window.any():
        raise MotionsynthError(f"frames {frames} select nothing in a motion of {num_frames} frames")
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
    """Anything that completes motion: a baseline or a learned model.

    ``complete`` receives a `Motion` whose unobserved parts may hold anything (zeros, noise, the noisy estimate)
    and returns a `Completion` of ``n_samples`` motions of the same length and skeleton. Observed parts come back
    unchanged (within a method's stated tolerance) unless ``mask.noisy``. ``label`` follows the module's label
    convention (`check_label`).

    Attributes every method has (the harness reads them):
        name: what tables call it.
        params: the options it runs with (recorded beside its scores).
        skeleton: the skeleton it works on, or None for any skeleton (baselines).
        checkpoint_hash: the weights' sha256 for a learned method, else None.
        vocabulary: the labels it is conditioned on, label kind → names (``{}``: it takes no label).
        needs_fit: True when it learns from data at run time (mean pose, nearest neighbour, the prior with
            ``init="nearest"``): then ``fit(motions)`` must be called first — the benchmark fits it on the train
            split.
    """

    name: str
    params: dict[str, Any]
    skeleton: Skeleton | None
    checkpoint_hash: str | None
    vocabulary: dict[str, list[str]]
    needs_fit: bool

    def fit(self, motions: Iterable[Motion]) -> Any: ...

    def complete(self, motion: Motion, mask: Mask, label: dict[str, str] | None = None, n_samples: int = 1,
                 seed: int | None = None) -> Completion: ...


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
    """``"content=walk,style=happy"`` (a command's ``--label``) → ``{"content": "walk", "style": "happy"}``."""
    if text is None or not text.strip():
        return None
    out = {}
    for part in text.split(","):
        kind, sep, name = part.partition("=")
        if not sep or not kind.strip() or not name.strip():
            raise MotionsynthError(f"--label must be KIND=NAME[,KIND=NAME…], e.g. content=walk; got {text!r}")
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
