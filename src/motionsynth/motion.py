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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import rotations as R
from .skeleton import Skeleton


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
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

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

        Keeps the first frame and the duration covered by the samples ((T - 1) / fps seconds).
        """
        if abs(fps - self.fps) < 1e-9:
            return self.copy()
        times = np.arange(0.0, (self.num_frames - 1) / self.fps + 1e-9, 1.0 / fps)
        out = self.at_times(times)
        out.fps = float(fps)
        return out

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
