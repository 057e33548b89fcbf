"""What every learned completer shares, whatever it does inside a window (latent optimisation, conditional
sampling, inpainting):

- `LearnedMethod`: `tasks.BaseMethod` with a checkpoint (its model, skeleton, window, hash), its options built;
- `conditioning`: what a learned completer conditions on, built once per call as one dict (``cond``: observed
  features, their mask, the root track; the method adds the label in its network's form) and passed down to the
  network — as motion-diffusion-model passes its ``y``;
- `feature_mask`: a joint/frame `tasks.Mask` as a mask over the feature columns (`data.features`);
- `windowed_best_of_n`: any length through windows of the model's size — a solver proposes samples per window, the
  best ``n`` of each window (lowest objective) are cross-faded into ``n`` full-length results;
- `place_root`: the root block of a completion integrated into a world trajectory and pinned to the observed root;
- `pin_rotations`: the observed rotations blended into the synthesised frames, so they join without a jump;
- `finish`: all of that from raw features to the `Motion`s a method returns, observed parts copied back;
- `long_mode`: whether a long clip is completed window after window or by independent windows;
- `check_fps`: the clip's frame rate must be the checkpoint's.

Arrays are per frame along axis 0 (windows: (k, W, ...)); features are raw (not normalised).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, cast

import numpy as np
import torch

from .. import progress
from .. import rotations as R
from ..data import features
from ..data.features import ROOT_HEIGHT, ROOT_VELOCITY, encode, root_slice, rot6d_slice
from ..data.labels import label_indices
from ..errors import MotionsynthError
from ..motion import Motion
from ..ops import blend_weights, crossfade, hold_pad
from ..skeleton import Skeleton
from ..tasks import BaseMethod, Mask, keep_observed
from .baselines import Interpolation
from .root import assemble, integrate, root_path, world_root

__all__ = ["LearnedMethod", "conditioning", "feature_mask", "windowed_best_of_n", "pin_offsets", "place_root",
           "pin_rotations", "finish", "long_mode", "check_fps", "label_tensors"]

Solver = Callable[[np.ndarray, dict], tuple[np.ndarray, np.ndarray]]


class LearnedMethod(BaseMethod):
    """`tasks.BaseMethod` with a checkpoint: ``ckpt``, ``model`` (in eval mode), ``skeleton``, ``checkpoint_hash``,
    ``window`` (the network's W), ``fps`` (the checkpoint's), ``device``, ``name`` (the family; a subclass may name it otherwise) and
    ``vocabulary`` (none; a method conditioned on labels sets its own, `label_vocabulary`); skeletons are checked
    against the checkpoint's.

    A subclass sets ``network`` (the network class its checkpoints hold) and ``what`` (its name in errors), and
    calls ``super().__init__(checkpoint, options)``: a clear error unless the checkpoint holds such a network, then
    ``self.opts``, its `config.Options` built from ``options``.
    """

    network: type[Any] = object
    what = "learned"
    window: int  # set from the checkpoint (None only on methods without one)
    skeleton: Skeleton

    def __init__(self, checkpoint, options: dict):
        if not isinstance(checkpoint.model, self.network):
            raise MotionsynthError(f"{checkpoint.path or 'checkpoint'}: a {checkpoint.family} model; the {self.what} "
                                   f"method needs a {self.network.__name__} network")
        self.ckpt, self.model, self.name = checkpoint, checkpoint.model.eval(), checkpoint.family
        self.skeleton, self.checkpoint_hash = checkpoint.skeleton, checkpoint.weights_hash
        self.window, self.fps = int(self.model.config.window), checkpoint.fps
        self.device = self.model.feat_mean.device
        self.vocabulary = {}
        self.opts = self.build_options(options)

    def check_skeleton(self, skeleton: Skeleton, what: str = "motion") -> None:
        self.ckpt.check_skeleton(skeleton, what=what)

    def label_vocabulary(self) -> dict[str, list[str]]:
        """The label kinds the network is conditioned on (``model.config.label_kinds``), with the checkpoint's names
        for them."""
        return {k: list(self.ckpt.labels[k]) for k in self.model.config.label_kinds if k in self.ckpt.labels}


def conditioning(motion: Motion, mask: Mask, window: int, track: bool = False) -> dict[str, np.ndarray]:
    """What a learned completer conditions on, built once per ``complete`` call, per frame and padded to at least
    ``window`` frames by holding the last frame (the padded frames unobserved): T' = max(T, window).

    Returns ``{"features": (T', D) float32 raw features of the motion (`data.features.encode`), "mask": (T', D) bool
    the observed feature columns (`feature_mask`)}`` and, with ``track``, ``"track"``: (T', 3) float32 the root's
    world x, z and heading (`root.world_root`). The method adds ``"label"`` in its network's form; windows of it go
    to the network as one dict (`windowed_best_of_n` cuts the per-frame entries).
    """
    T = motion.num_frames
    feats = hold_pad(encode(motion, dtype=np.float32), window)
    fmask = feature_mask(mask, motion.skeleton)
    cond = {"features": feats, "mask": np.concatenate([fmask, np.zeros((len(feats) - T, fmask.shape[1]), bool)])}
    if track:
        pos, heading = world_root(motion)
        cond["track"] = hold_pad(np.stack([pos[:, 0], pos[:, 2], heading], -1).astype(np.float32), window)
    return cond


def feature_mask(mask: Mask, skeleton: Skeleton) -> np.ndarray:
    """(T, D) bool: which feature columns of each frame the mask observes (`data.features.feature_mask`)."""
    return features.feature_mask(mask.joints, mask.root, skeleton)


def windowed_best_of_n(inputs: dict, window: int, overlap: int, n: int, windows_per_batch: int,
                       solve: Solver) -> tuple[np.ndarray, np.ndarray]:
    """Complete a sequence of any length T' >= ``window`` through overlapping windows.

    ``inputs``: per-frame numpy arrays (T', ...) — e.g. ``{"features": (T', D), "observed": (T', J)}``, a
    `conditioning` dict — and anything else (e.g. its ``"label"``), passed to every batch as it is. Windows of
    ``window`` frames overlapping by ``overlap`` (`ops.blend_weights`) go to ``solve`` in batches of
    ``windows_per_batch``: ``solve(indices (k,), {name: (k, W, ...)})`` returns ``n`` proposals per window, raw
    features (k, n, W, D), and their objectives (k, n). Each window's proposals are sorted best first (stable) and
    cross-faded position by position: result s is made of every window's s-th best.

    Returns:
        (n, T', D) float64 results and (n,) objectives averaged over the windows.
    """
    frames = {name: x for name, x in inputs.items() if isinstance(x, np.ndarray)}
    T = len(next(iter(frames.values())))
    starts, weights = blend_weights(T, window, overlap)
    K = len(starts)
    result, objective = None, np.zeros(n)
    for b0 in progress.steps(range(0, K, windows_per_batch)):  # the editor's progress and Cancel
        ks = np.arange(b0, min(K, b0 + windows_per_batch))
        raw, obj = solve(ks, {**inputs, **{name: np.stack([x[starts[k]:starts[k] + window] for k in ks])
                                           for name, x in frames.items()}})
        if result is None:
            result = np.zeros((n, T, raw.shape[-1]), dtype=np.float64)
        order = np.argsort(obj, axis=1, kind="stable")
        for row in np.take_along_axis(obj, order, 1):
            objective += row
        best = np.take_along_axis(raw, order[:, :, None, None], 1)  # (k, n, W, D)
        crossfade(result.transpose(1, 0, 2), best.transpose(0, 2, 1, 3), starts[ks], weights[ks])
    return cast(np.ndarray, result), objective / K  # K >= 1 windows: result is set


def pin_offsets(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Offsets (K, C) at the K observed frames of ``observed`` (T,) → (T, C): linear in time between them, held
    outside."""
    t = np.arange(len(observed), dtype=np.float64)
    at = t[observed]
    return np.stack([np.interp(t, at, values[:, c]) for c in range(values.shape[1])], -1)


def place_root(feats: np.ndarray, given: Motion, mask: Mask, world: tuple | None = None) -> Motion:
    """Raw features (T, D) of a completion of ``given`` → Motion with a world root trajectory.

    The root block's heading and planar velocities are integrated from the origin, then pinned to the observation:
    the heading first (the offset between observed and integrated heading at the frames where the moving root's
    rotation is observed, unwrapped, `pin_offsets`), then the position (integrated with the pinned heading, then
    the same offset correction through the frames where ``mask.root`` is observed, all three coordinates).
    ``world``: ``root.world_root(given)`` when the caller has it already (it depends on ``given`` only).
    """
    sk = given.skeleton
    root = feats[:, root_slice(sk)]
    _, heading = root_path(root)
    seen = mask.joints[:, sk.root]
    if seen.any() or mask.root.any():
        world_pos, world_heading = world_root(given) if world is None else world
    if seen.any():
        offset = np.unwrap(R.wrap_angle(world_heading[seen] - heading[seen]))
        heading = heading + pin_offsets(offset[:, None], seen)[:, 0]
    pos = integrate(root[:, ROOT_HEIGHT], root[:, ROOT_VELOCITY], heading)
    if mask.root.any():
        pos = pos + pin_offsets(world_pos[mask.root] - pos[mask.root], mask.root)
    return assemble(feats[:, rot6d_slice(sk)], heading, pos, sk, given)


def pin_rotations(result: Motion, given: Motion, mask: Mask) -> Motion:
    """``result`` with each joint's rotation corrected by the offset ``q_given · q_result⁻¹`` at its observed frames,
    SLERPed between consecutive observed frames and held before the first and after the last (identity for a joint
    never observed): observed frames then match exactly and the synthesised frames join them without a jump."""
    offsets = result.copy()
    offsets.rotations = R.quat_mul(given.rotations, R.quat_inv(result.rotations))
    root_mask = replace(mask, root=np.zeros_like(mask.root))  # rotations only: the root is pinned already
    filled = Interpolation().complete(offsets, root_mask)[0]
    out = result.copy()
    out.rotations = R.quat_normalize(R.quat_mul(filled.rotations, result.rotations))
    return out


def finish(feats: np.ndarray, given: Motion, mask: Mask, pin: bool = True) -> list[Motion]:
    """Raw features (S, T, D) of S completions of ``given`` → the S Motions a method returns: `place_root`,
    `pin_rotations` (``pin``, when any joint is observed), then the observed values copied back unchanged
    (`tasks.keep_observed`). What depends on ``given`` only is computed once."""
    world = world_root(given) if mask.joints[:, given.skeleton.root].any() or mask.root.any() else None
    out = []
    for f in feats:
        m = place_root(f, given, mask, world)
        if pin and mask.joints.any():
            m = pin_rotations(m, given, mask)
        out.append(keep_observed(m, given, mask))
    return out


def label_tensors(label: dict[str, str] | None, vocabulary: dict[str, list[str]], device=None
                  ) -> dict[str, torch.Tensor]:
    """A (checked) label ``{kind: name}`` → ``{kind: (1,) long}`` for every kind of ``vocabulary``, −1 where the label
    has none (`data.labels.label_indices`, the one name → index step); networks read −1 as "no label"."""
    return {kind: torch.tensor([i], device=device) for kind, i in label_indices(label or {}, vocabulary).items()}


def long_mode(mask: Mask, long: str) -> str:
    """How a clip longer than a model's window is completed: ``long`` unless it is ``"auto"``, which is
    ``"continue"`` (window after window, the frames made so far observed) when nothing is observed after the first
    unobserved frame (generation, prediction: later windows have nothing of their own to hold on to), else
    ``"windows"`` (independent overlapping windows, cross-faded)."""
    if long != "auto":
        return long
    seen = mask.joints.any(1) | mask.root  # frames with anything observed
    if seen.all():
        return "windows"
    first_gap = int(np.argmin(seen))
    return "windows" if seen[first_gap:].any() else "continue"


def check_fps(ckpt, motion: Motion) -> None:
    """A clear error unless ``motion`` is at the frame rate the checkpoint was trained at (no fps recorded: any)."""
    fps = float(ckpt.fps or motion.fps)
    if abs(fps - motion.fps) > 1e-6:
        raise MotionsynthError(f"the model works at {fps:g} fps but the motion is at {motion.fps:g} fps; "
                               f"resample it first (motionsynth convert)")
