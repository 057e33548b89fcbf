"""What every benchmark protocol reads: windows and takes of a cache split, their motions, batched forward kinematics,
the joints metrics are taken over, progress bars. `bench.protocol` and the classifier's protocols
(`bench.recognition`, `bench.generation`) share them; `bench.protocol` re-exports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..data.cache import MotionCache
from ..data.selection import select_takes
from ..data.windows import windows
from ..errors import MotionsynthError
from ..kinematics import fk
from ..motion import Motion

__all__ = ["open_cache", "select", "split_windows", "iter_clips", "split_takes", "global_transforms",
           "moving_joints", "method_label", "progress_bar"]


def open_cache(cache):
    """A `MotionCache` from an object or a folder path (clear error when it is not a prepared cache)."""
    if not isinstance(cache, (str, Path)):
        return cache
    path = Path(cache)
    if not path.exists():
        raise MotionsynthError(f"{path}: no such motion cache (make one with `motionsynth data prepare`)")
    return MotionCache(path)


def select(wins: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` rows of ``wins``, evenly spaced over the whole array (deterministic); all if None."""
    if limit is None or len(wins) <= limit:
        return wins
    if limit <= 0:
        raise MotionsynthError(f"limit must be positive, got {limit}")
    return wins[np.unique(np.linspace(0, len(wins) - 1, limit).round().astype(np.int64))]


def split_windows(cache, split: str, length: int, stride: int, limit: int | None = None,
                  only: dict | None = None) -> np.ndarray:
    """(K, 2) (take, start) windows of ``split`` — of its takes matching the label filter ``only``
    (``{kind: [glob patterns]}``, `data.selection`), if given — at most ``limit`` (evenly spaced over those); an error
    when there are none."""
    wins = np.asarray(windows(cache, split, length, stride, include=only)).reshape(-1, 2)
    if len(wins) == 0:
        which = f"{split} take matching --only {_only_text(only)}" if only else f"{split} take"
        raise MotionsynthError(f"no {which} is long enough for windows of {length} frames")
    wins = wins[np.lexsort((wins[:, 1], wins[:, 0]))]
    return select(wins, limit)


def iter_clips(cache, wins: np.ndarray, length: int, progress: bool = False, desc: str = "") -> Iterator[Motion]:
    """The window motions, in the order of ``wins`` (loading each take once when windows are grouped by take)."""
    from tqdm import tqdm

    motion: Any
    current, motion = None, None
    for take, start in tqdm(wins, desc=desc, disable=not progress, leave=False):
        if take != current:
            current, motion = take, cache.motion(int(take))
        yield motion[int(start):int(start) + length]


def split_takes(cache, split: str, limit: int | None = None, only: dict | None = None) -> np.ndarray:
    """Indices of the takes of ``split`` matching the label filter ``only`` if given (at most ``limit``, evenly
    spaced)."""
    idx = np.asarray(select_takes(cache, split, include=only), dtype=np.int64)
    if len(idx) == 0:
        raise MotionsynthError(f"the cache has no {split} takes" + (f" matching --only {_only_text(only)}"
                                                                  if only else ""))
    return select(idx, limit)


def _only_text(only: dict) -> str:
    """``{"content": ["run", "raise-up-*"]}`` → ``content=run,raise-up-*`` (the command line's form)."""
    return " ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in only.items())


def global_transforms(motions: list[Motion], chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """FK of same-length motions, batched: (K, T, J, 4) global rotations and (K, T, J, 3) positions (cm)."""
    rots, poss = [], []
    for s in range(0, len(motions), chunk):
        part = motions[s:s + chunk]
        r, p = fk(np.stack([m.rotations for m in part]), np.stack([m.local_translations() for m in part]),
                  part[0].skeleton.parents)
        rots.append(r)
        poss.append(p)
    return np.concatenate(rots), np.concatenate(poss)


def moving_joints(skeleton) -> list[int]:
    """The joints every metric is taken over: the moving root and its descendants (not its static ancestors)."""
    return skeleton.subtree(skeleton.root)


def method_label(method) -> str:
    return str(method.name or type(method).__name__)


def progress_bar(items, progress: bool, desc: str):
    """``items`` behind a tqdm progress bar on stderr (none when ``progress`` is False): `motionsynth.progress.bar`."""
    from ..progress import bar

    return bar(items, progress, desc)
