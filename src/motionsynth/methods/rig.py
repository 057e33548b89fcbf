"""Any model on any humanoid rig: the task layer's one place where a motion of another skeleton meets a model.

`on_skeleton(method, skeleton, task)` gives ``method`` itself when it works on ``skeleton`` (a baseline works on
any; a learned model on the skeleton it was trained on), else an `OnRig` wrapper that

1. retargets the user's motion into the model's body (`retarget.Retargeter`; the model's side in a T-pose made
   from its data's mean pose, `model_body`, so that the model sees the joint twists it learned) and maps the mask:
   a model joint is observed where the user's joints it is made from are observed; a model joint made from none (a
   static root above the hips) is observed on the frames where the user's whole body is;
2. runs the model;
3. retargets each sample back onto the user's rig; the user's joints the model has no counterpart for (fingers,
   helper bones, props; twist bones follow the bone they twist with) are filled by the task's baseline
   (`tasks.Task.baseline`, or SLERP where that baseline learns from data), and such a joint observed on no frame
   keeps the values it was given — never the rest pose;
4. puts back what the user observed, exactly as given (`tasks.keep_observed`; a noisy mask is cleaned, not kept).

A motion at another frame rate than the model's is resampled to it and the results back (any rig, the model's
own included). Every front end (the task commands, `report`, the editor, `bench`) reaches models through
`on_skeleton`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .. import rotations as R
from ..body import BodyMap, body_map, natural_map
from ..data.features import decode
from ..errors import SkeletonMismatchError
from ..motion import Motion
from ..skeleton import Skeleton
from ..tasks import TASKS, BaseMethod, Completion, Mask, Method, keep_observed
from .baselines import BASELINES, make_baseline

if TYPE_CHECKING:
    from ..retarget import Retargeter

__all__ = ["OnRig", "on_skeleton"]


def on_skeleton(method: Method, skeleton: Skeleton, task: str, fps: float | None = None) -> Method:
    """``method`` ready for motions on ``skeleton`` (at ``fps``; None: the method's) when serving ``task`` (a
    `tasks.TASKS` name): itself when the skeleton and frame rate are the method's, else an `OnRig` (a skeleton that
    is not a humanoid: `body.NotHumanoidError`, naming what it lacks)."""
    if method.skeleton is None:
        return method
    try:
        method.skeleton.check_compatible(skeleton)
        same_body = True
    except SkeletonMismatchError:
        same_body = False
    own_fps = getattr(method, "fps", None)
    if same_body and (fps is None or own_fps is None or abs(fps - own_fps) < 1e-6):
        return method
    return OnRig(method, skeleton, task, same_body)


class OnRig(BaseMethod):
    """``method`` (a learned one, on its own skeleton and frame rate) serving motions of ``skeleton`` at any frame
    rate: retargeted in and out (unless ``same_body``), resampled to the method's frame rate and back.

    It answers for the method (name, tasks, window, fps, labels, options) with ``skeleton`` as its skeleton; the
    time spent retargeting and resampling is in the timings as ``retarget_s``."""

    def __init__(self, method: Method, skeleton: Skeleton, task: str, same_body: bool = False):
        from ..retarget import Retargeter

        model_skeleton = method.skeleton
        assert model_skeleton is not None  # `on_skeleton` wraps learned methods only
        self.method = method
        self.name, self.tasks, self.window, self.params = method.name, method.tasks, method.window, method.params
        self.checkpoint_hash, self.vocabulary = method.checkpoint_hash, method.vocabulary
        self.fps, self.masks = getattr(method, "fps", None), getattr(method, "masks", None)
        self.Options, self.slow = getattr(method, "Options", self.Options), getattr(method, "slow", False)
        self.skeleton = skeleton
        body = None if same_body else model_body(method)
        self.to_model = None if body is None else Retargeter(skeleton, body)
        self.to_rig = None if body is None else Retargeter(body, skeleton)
        # a rig whose rest pose is no standing pose has no natural twist: its reference comes from each motion
        self.natural_rig = body is not None and body_map(skeleton).synthesised_rest
        self._natural: tuple[Retargeter, Retargeter] | None = None
        self.fill = _fill_method(task) if self.to_rig is not None and not self.to_rig.driven.all() else None

    @property
    def progress(self) -> bool:
        return bool(getattr(self.method, "progress", False))

    @progress.setter
    def progress(self, value: bool) -> None:
        cast(Any, self.method).progress = value  # a front end's choice, for methods that have bars

    def _complete(self, motion: Motion, mask: Mask, label: dict | None, n_samples: int, seed: int | None
                  ) -> Completion:
        start = time.perf_counter()
        to_model, to_rig = self.retargeters(motion)
        on_model, model_mask = self.into_model(motion, mask, to_model)
        spent = time.perf_counter() - start
        result = self.method.complete(on_model, model_mask, label=label, n_samples=n_samples, seed=seed)
        start = time.perf_counter()
        fill = self._fill_rotations(motion, mask)
        samples = [self._back(s, motion, mask, fill, to_rig) for s in result.samples]
        spent += time.perf_counter() - start
        return Completion(samples, options=result.options, timings={**result.timings, "retarget_s": spent},
                          objective=result.objective)

    def retargeters(self, motion: Motion) -> tuple[Retargeter | None, Retargeter | None]:
        """(into the model's body, back to the rig) for ``motion``: the ones made for the rig, or, for a rig whose
        rest pose is no standing pose, ones whose rig reference is a T-pose made from the mean pose of the first
        motion this wrapper serves (`body.natural_map`: the rig's own twists)."""
        if not self.natural_rig or self.to_model is None:
            return self.to_model, self.to_rig
        if self._natural is None:  # the first motion seen stands for the rig (its twists are the rig's)
            from ..retarget import Retargeter

            rig = motion_body(motion)
            body = self.to_model.target
            self._natural = Retargeter(rig, body), Retargeter(body, rig)
        return self._natural

    def into_model(self, motion: Motion, mask: Mask, to_model: Retargeter | None = None) -> tuple[Motion, Mask]:
        """The user's motion and (T, J_user) mask → the model's body and frame rate: a model joint fed by user joints
        s0 / s1 is observed where they are, one fed by none where the user's whole body is; a model frame is observed
        as the user's frame nearest to it. ``to_model``: `retargeters`' first (None: the rig's)."""
        to_model = to_model or self.to_model
        on_model = motion if to_model is None else to_model(motion)
        joints = mask.joints
        if to_model is not None:
            joints = np.repeat(mask.joints.all(1, keepdims=True), len(to_model.target.skeleton), 1)
            for p in to_model.pairs:
                joints[:, p.t] = mask.joints[:, p.s0] & (mask.joints[:, p.s1] if p.w > 0 else True)
        frames = np.arange(motion.num_frames)
        if self.fps is not None and abs(motion.fps - self.fps) > 1e-6:
            times = np.arange(int(np.floor((motion.num_frames - 1) / motion.fps * self.fps + 1e-6)) + 1) / self.fps
            on_model = replace(on_model.at_times(times), fps=float(self.fps))
            frames = np.clip(np.rint(times * motion.fps), 0, motion.num_frames - 1).astype(np.int64)
        return on_model, Mask(joints[frames], mask.root[frames], mask.noisy)

    def _fill_rotations(self, motion: Motion, mask: Mask) -> np.ndarray | None:
        """(T, J_user, 4) rotations whose joints without a model counterpart the results take (`_fill_method`), or
        None when there are none to fill (only those joints are computed)."""
        if self.fill is None or self.to_rig is None or mask.empty:
            return None
        unmapped = np.flatnonzero(~self.to_rig.driven)
        out = motion.rotations.copy()
        # a joint whose observed rotations are all one value (a static helper, unanimated fingers) is that value
        # wherever a column fill puts it; only the others are computed
        first = out[mask.joints[:, unmapped].argmax(0), unmapped]
        steady = ~(mask.joints[:, unmapped] & (np.abs(out[:, unmapped] - first).max(-1) > 1e-12)).any(0)
        out[:, unmapped[steady]] = first[steady]
        moving = unmapped[~steady]
        if len(moving):
            out[:, moving] = cast(Any, self.fill).fill_joints(motion, mask, moving)
        return out

    def _back(self, sample: Motion, given: Motion, mask: Mask, fill: np.ndarray | None,
              to_rig: Retargeter | None) -> Motion:
        """A model sample → the user's frame rate and rig: resampled, retargeted, the unmapped joints from ``fill``
        (T, J_user, 4) (or as given where never observed), the observed parts as given."""
        if abs(sample.fps - given.fps) > 1e-6:
            sample = replace(sample.at_times(np.arange(given.num_frames) / given.fps), fps=given.fps)
        out = sample.copy() if to_rig is None else to_rig(sample)
        out.name, out.labels = given.name, dict(given.labels)
        if given.translations is not None:
            out.translations = given.translations.copy()
        if self.to_rig is not None and not self.to_rig.driven.all():
            unmapped = ~self.to_rig.driven
            out.rotations[:, unmapped] = (fill if fill is not None else given.rotations)[:, unmapped]
            never = unmapped & ~mask.joints.any(0)
            out.rotations[:, never] = given.rotations[:, never]
        return keep_observed(out, given, mask)


def mean_pose(rotations: np.ndarray) -> np.ndarray:
    """(T, J, 4) local rotations → (J, 4) their per-joint mean (signs aligned to the first frame, normalised)."""
    q = np.asarray(rotations, dtype=np.float64)
    q = np.where((q * q[:1]).sum(-1, keepdims=True) < 0, -q, q)
    return R.quat_normalize(q.mean(0))


def model_body(method: Method) -> BodyMap:
    """The body map a motion is retargeted onto for ``method``: its skeleton with a T-pose reference made from its
    training data's mean pose (`data_body`), so that retargeted motion has the joint twists of the data the model
    learned from. Made once per method."""
    cached = method.__dict__.get("_natural_body")
    if cached is None:
        stats = getattr(getattr(method, "ckpt", None), "stats", None)
        cached = data_body(cast(Skeleton, method.skeleton), stats)
        method.__dict__["_natural_body"] = cached
    return cached


def data_body(skeleton: Skeleton, stats) -> BodyMap:
    """``skeleton``'s body map with a T-pose reference made from the mean pose of data on it (``stats``: the
    `data.features.FeatureStats` of a checkpoint or cache; None: the plain `body.body_map`)."""
    if stats is None:
        return body_map(skeleton)
    pose = decode(np.asarray(stats.mean, dtype=np.float64)[None], skeleton, 30.0).rotations[0]
    return natural_map(skeleton, pose)


def motion_body(motion: Motion) -> BodyMap:
    """The body map of ``motion``'s rig for retargeting it: the rig's rest pose, or — a rig whose rest pose is no
    standing pose — a T-pose with the twists of this motion's mean pose (`body.natural_map`)."""
    bm = body_map(motion.skeleton)
    return natural_map(motion.skeleton, mean_pose(motion.rotations)) if bm.synthesised_rest else bm


def _fill_method(task: str) -> Method | None:
    """The baseline that fills the user's joints a model has no counterpart for: the task's baseline, or SLERP where
    that one learns from data (nothing to learn from here); None for a task without one (generation)."""
    name = TASKS[task].baseline if task in TASKS else None
    if name is None or name not in BASELINES:
        return None
    method = make_baseline(name)
    return make_baseline("slerp") if method.needs_fit else method
