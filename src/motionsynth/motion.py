"""`Motion`: a skeleton animated over time.

A motion is stored as *local* joint rotations plus the trajectory of the moving root, the representation every model,
task and file format in the project converts to and from:

- ``rotations`` (T, J, 4): unit quaternions (x, y, z, w), joint j's rotation relative to its parent.
- ``root_positions`` (T, 3): local translation of ``skeleton.root`` (in its parent's frame; with static identity
  ancestors, as in every supported dataset, this is the world position).
- ``translations`` (T, J, 3) or None: per-joint local translations, kept only when a file animates translation on
  non-root joints (BVH with 6 channels everywhere) so that it round-trips. Forward kinematics uses them in place of
  the rest offsets; the root's entry is ignored in favour of ``root_positions``.

Up axis is +Y; lengths are in the file's units (cm for BVH datasets; AMASS is converted to cm).

Every `Motion` is checked when it is built (and so after every slice, ``copy`` and ``dataclasses.replace``): wrong
shapes raise ``ValueError`` (a programming error); values no reader, writer or model may pass on raise
`InvalidMotionError` (a `MotionsynthError` and a ``ValueError``): NaN or infinite rotations, root positions or
translations, quaternions of (near) zero norm, an fps that is not finite and positive. Values that are fine are never
changed (quaternions are not re-normalised). The check is one pass over each array: about 1.2 ms for 10,000 frames
of 22 joints, 20 ms for 100,000 (docs/BENCHMARKS.md, "Hardening: readers and prepare").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import limits
from . import rotations as R
from .errors import InvalidMotionError
from .skeleton import Skeleton

_MIN_QUAT_NORM2 = 1e-12
"""Quaternions with a squared norm below this (norm < 1e-6) have no direction: refused."""


@dataclass(eq=False)
class Motion:
    skeleton: Skeleton
    rotations: np.ndarray
    root_positions: np.ndarray
    fps: float
    translations: np.ndarray | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_positions = np.asarray(self.root_positions, dtype=np.float64)
        T, J = self.rotations.shape[:2] if self.rotations.ndim == 3 else (-1, -1)
        if self.rotations.shape != (T, J, 4) or J != len(self.skeleton):
            raise ValueError(f"rotations must be (T, {len(self.skeleton)}, 4), got {self.rotations.shape}")
        if self.root_positions.shape != (T, 3):
            raise ValueError(f"root_positions must be ({T}, 3), got {self.root_positions.shape}")
        if self.translations is not None:
            self.translations = np.asarray(self.translations, dtype=np.float64)
            if self.translations.shape != (T, J, 3):
                raise ValueError(f"translations must be ({T}, {J}, 3), got {self.translations.shape}")
        self._check_values()

    def _check_values(self) -> None:
        """Raise `InvalidMotionError` for non-finite values, zero-norm quaternions or a bad fps (cheap: one pass
        over each array; the slow search for *where* runs only when something is wrong)."""
        what = f"motion {self.name!r}: " if self.name else "motion: "
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise InvalidMotionError(f"{what}fps must be a number, got {self.fps!r}") from None
        if not (np.isfinite(fps) and fps > 0 and np.isfinite(1.0 / fps)):
            raise InvalidMotionError(f"{what}fps must be finite and positive, got {self.fps}")
        self.fps = fps
        if self.rotations.size:
            with np.errstate(over="ignore", invalid="ignore"):
                norm2 = np.einsum("...i,...i->...", self.rotations, self.rotations)  # NaN / inf propagate into it
            if not (np.isfinite(norm2).all() and norm2.min() >= _MIN_QUAT_NORM2):
                raise InvalidMotionError(what + self._rotation_problem(norm2))
        for key in ("root_positions", "translations"):
            a = getattr(self, key)
            if a is not None and a.size and not np.isfinite(a).all():
                bad = ~np.isfinite(a.reshape(len(a), -1)).all(1)
                raise InvalidMotionError(f"{what}{key} hold NaN or infinite values ({int(bad.sum())} of "
                                         f"{len(a)} frames, first at frame {int(np.flatnonzero(bad)[0])})")

    def _rotation_problem(self, norm2: np.ndarray) -> str:
        """Describe what is wrong with the rotations (called only when the quick check failed)."""
        finite = np.isfinite(self.rotations).all(-1)
        if not finite.all():
            bad, kind = ~finite, "NaN or infinite values"
        elif not np.isfinite(norm2).all():
            bad, kind = ~np.isfinite(norm2), "values too large to be quaternions"
        else:
            bad, kind = norm2 < _MIN_QUAT_NORM2, "zero-norm quaternions (no rotation can be read from them)"
        t, j = (int(i[0]) for i in np.nonzero(bad))
        return (f"rotations hold {kind} ({int(bad.any(1).sum())} of {len(bad)} frames, first at frame {t}, "
                f"joint {self.skeleton.names[j]!r})")

    # ---- shape -------------------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps

    def __getitem__(self, frames) -> Motion:
        """Frames by slice or index array; ``motion[10:75]`` is a 65-frame motion."""
        if isinstance(frames, (int, np.integer)):
            frames = slice(int(frames), int(frames) + 1 if frames != -1 else None)
        return replace(self, rotations=self.rotations[frames], root_positions=self.root_positions[frames],
                       translations=None if self.translations is None else self.translations[frames],
                       labels=dict(self.labels))

    def copy(self) -> Motion:
        return replace(self, rotations=self.rotations.copy(), root_positions=self.root_positions.copy(),
                       translations=None if self.translations is None else self.translations.copy(),
                       labels=dict(self.labels))

    # ---- canonical root ----------------------------------------------------------------------------------------
    def fold_top_joints(self) -> Motion:
        """The same motion with the chain of top joints folded into the first branching joint.

        The *top chain* is joint 0 and its single-child descendants down to the first joint with several children
        (a humanoid's pelvis: ``joint_Root → Hips`` in the Bandai Namco files, just ``Hips`` in most BVH, ``pelvis``
        in SMPL). Files of one dataset may animate different joints of that chain — some move ``Hips`` below a
        static ``joint_Root``, others move ``joint_Root`` and keep ``Hips`` static relative to it — and would then
        disagree on the moving root. The folded motion is canonical whichever joint the file moved:

        - the branching joint becomes ``skeleton.root`` and carries the whole global transform of the chain (its
          rotation is the chain's composed rotation, ``root_positions`` its world position minus the rest position
          of its parent);
        - the joints above it are static: identity rotation, translation = their rest offset.

        The choice depends only on the skeleton's tree (never on joint names, on which joint the file animates, or
        on the order files are read in), so every take of a dataset folds onto the same root. Forward-kinematics
        positions and global rotations of the branching joint and of every joint below it — the whole body — are
        unchanged (up to float rounding, ~1e-12); only the joints above it, which carry no body, are put at rest
        (a ``joint_Root`` that travelled with the character now stays at its offset). Returns
        ``self`` unchanged when there is nothing to fold: the chain's upper joints are already static identities at
        their offsets and the branching joint is the moving root (e.g. every Bandai Namco dataset 2 file, or any
        skeleton whose joint 0 branches), when no joint branches, or when the moving root is not on the chain.
        """
        chain = top_chain(self.skeleton)
        if chain is None or self.skeleton.root not in chain:
            return self
        top, root = chain[:-1], chain[-1]
        trans = self.local_translations()
        offsets = self.skeleton.offsets
        if (root == self.skeleton.root and not top) or (
                root == self.skeleton.root and not self.rotations[:, top, :3].any()
                and np.array_equal(trans[:, top], np.broadcast_to(offsets[top], trans[:, top].shape))):
            return self
        g_rot = self.rotations[:, 0]
        g_pos = trans[:, 0]
        for j in chain[1:]:
            g_pos = g_pos + R.quat_apply(g_rot, trans[:, j])
            g_rot = R.quat_mul(g_rot, self.rotations[:, j])
        rotations = self.rotations.copy()
        rotations[:, top] = R.quat_identity()
        rotations[:, root] = R.quat_normalize(g_rot)
        root_positions = g_pos - offsets[top].sum(0)  # the parent's rest position, with identity rotations above it
        translations = None
        if self.translations is not None:
            translations = self.translations.copy()
            translations[:, top] = offsets[top]
            translations[:, root] = root_positions
        skeleton = replace(self.skeleton, root=root)
        return replace(self, skeleton=skeleton, rotations=rotations, root_positions=root_positions,
                       translations=translations, labels=dict(self.labels))

    def __repr__(self) -> str:
        return (f"Motion({self.name!r}, {self.num_frames} frames @ {self.fps:g} fps, {len(self.skeleton)} joints"
                f"{', labels=' + str(self.labels) if self.labels else ''})")

    # ---- kinematics --------------------------------------------------------------------------------------------
    def local_translations(self) -> np.ndarray:
        """(T, J, 3) translation of every joint in its parent's frame (offsets, animated channels, root)."""
        if self.translations is not None:
            t = self.translations.copy()
        else:
            t = np.broadcast_to(self.skeleton.offsets, (self.num_frames, len(self.skeleton), 3)).copy()
        t[:, self.skeleton.root] = self.root_positions
        return t

    def global_positions(self) -> np.ndarray:
        """(T, J, 3) world joint positions by forward kinematics."""
        from .kinematics import fk

        return fk(self.rotations, self.local_translations(), self.skeleton.parents)[1]

    def global_rotations(self) -> np.ndarray:
        """(T, J, 4) world joint rotations."""
        from .kinematics import fk

        return fk(self.rotations, self.local_translations(), self.skeleton.parents)[0]

    # ---- time --------------------------------------------------------------------------------------------------
    def resample(self, fps: float) -> Motion:
        """The same motion at another frame rate: slerp for rotations, linear for translations.

        Keeps the first frame and the duration covered by the samples ((T - 1) / fps seconds). Raises
        `limits.LimitError` before building anything when the result (`resampled_length` frames) would exceed the
        joint-frame limit.
        """
        if not (isinstance(fps, (int, float, np.integer, np.floating)) and np.isfinite(fps) and fps > 0):
            raise InvalidMotionError(f"cannot resample to {fps} fps: the frame rate must be finite and positive")
        if abs(fps - self.fps) < 1e-9:
            return self.copy()
        limits.check_joint_frames(self.resampled_length(fps), len(self.skeleton),
                                  f"motion {self.name!r} resampled to {fps:g} fps")
        times = np.arange(0.0, (self.num_frames - 1) / self.fps + 1e-9, 1.0 / fps)
        out = self.at_times(times)
        out.fps = float(fps)
        return out

    def resampled_length(self, fps: float) -> int:
        """The number of frames `resample` gives at ``fps`` (finite and positive), computed as ``np.arange`` sizes
        its grid, without building it; at most 10^18 (a frame rate beyond any limit)."""
        if abs(fps - self.fps) < 1e-9:
            return self.num_frames
        count = ((self.num_frames - 1) / self.fps + 1e-9) / (1.0 / fps)
        return math.ceil(min(count, 1e18))

    def at_times(self, times: np.ndarray) -> Motion:
        """Motion sampled at arbitrary times in seconds (clamped to the clip)."""
        src = np.clip(np.asarray(times, dtype=np.float64) * self.fps, 0, self.num_frames - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        w = src - i0

        def lerp(x):
            return x[i0] + (x[i1] - x[i0]) * w.reshape(-1, *([1] * (x.ndim - 1)))

        rot = R.slerp(self.rotations[i0], self.rotations[i1], np.broadcast_to(w[:, None], (len(w), len(self.skeleton))))
        return replace(self, rotations=R.quat_normalize(rot), root_positions=lerp(self.root_positions),
                       translations=None if self.translations is None else lerp(self.translations),
                       labels=dict(self.labels))


def top_chain(skeleton: Skeleton) -> list[int] | None:
    """Joint 0 and its single-child descendants down to the first joint with several children, e.g. ``[0, 1]`` for
    ``joint_Root → Hips → (Spine, legs)``; None when no joint has several children (a plain chain)."""
    chain = [0]
    while len(skeleton.children[chain[-1]]) == 1:
        chain.append(skeleton.children[chain[-1]][0])
    return chain if skeleton.children[chain[-1]] else None
