"""Fixed-length training windows over a `MotionCache` split, and the torch `WindowDataset`.

A window never crosses takes, and takes never cross splits, so no frame of a val/test take reaches training.
"""

from __future__ import annotations

import numpy as np
import torch

from .cache import MotionCache
from .labels import label_indices
from .selection import select_takes


def windows(cache: MotionCache, split: str, length: int, stride: int, include: dict | None = None,
            exclude: dict | None = None) -> np.ndarray:
    """(K, 2) int64 ``(take index, start frame)`` of every window of ``length`` frames, every ``stride`` frames,
    in the takes of ``split`` (only those matching the label filters ``include`` / ``exclude``,
    `selection.select_takes`). Takes shorter than ``length`` give none."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length ({length}) and stride ({stride}) must be positive")
    out = []
    for i in select_takes(cache, split, include, exclude):
        n = cache.takes[i].length
        if n >= length:
            starts = np.arange(0, n - length + 1, stride, dtype=np.int64)
            out.append(np.stack([np.full_like(starts, i), starts], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


MIRROR_TAKES = 64
"""Takes (evenly spaced over the split) whose frames fix the mirror convention of an augmented `WindowDataset`."""


class _MirrorSample:
    """The takes of a split that fix the mirror convention, loaded only when iterated (an augment that never mirrors
    does not read them)."""

    def __init__(self, cache, split: str, exclude: dict | None = None):
        self.cache, self.split, self.exclude = cache, split, exclude

    def __iter__(self):
        idx = select_takes(self.cache, self.split, exclude=self.exclude)
        if len(idx) > MIRROR_TAKES:
            idx = [idx[i] for i in np.unique(np.linspace(0, len(idx) - 1, MIRROR_TAKES).round().astype(int))]
        return (self.cache.motion(i) for i in idx)


class WindowDataset(torch.utils.data.Dataset):
    """Windows of a cache split as training items.

    Each item is a dict:

    - ``features``: (length, D) float32 tensor — `features.encode` rows, normalised with ``cache.stats`` (the train
      split's mean / std) unless ``normalize=False``;
    - ``take``, ``start``: ints locating the window in the cache;
    - ``labels``: label key → int index into ``cache.label_names[key]`` (-1 when the take has no such label).

    Without ``augment`` an item is a slice of the memory-mapped ``features`` array (fast). With an ``augment``
    (``Augment``: ``augment(motion, rng) -> Motion``) the window is rebuilt as a `Motion` from the cache
    (``cache.motion(take)[start:start + span]``, ``span`` enough for the augment's fastest ``speed_range`` — 2 ×
    ``length`` for an augment without one — so that a speed-up still fills the window),
    augmented, cut to ``length`` frames (holding the last frame if a speed-up near the take's end left fewer) and
    re-encoded with `features.encode` — correct for any augmentation but much slower per item (milliseconds instead
    of microseconds); use DataLoader workers. Augmentation is random but reproducible: item ``k`` in
    epoch ``e`` uses ``np.random.default_rng([seed, e, k])``; call `set_epoch` each epoch for fresh draws.

    ``exclude``: a label filter ``{kind: [glob patterns]}`` (`selection.select_takes`); no frame of a matching take
    is an item or fixes the mirror convention (the held-out actions of ``train.hold_out``).

    Labels under augmentation: the window's motion carries its take's labels into the augment, and ``labels`` are
    read back from the augmented motion, so a mirrored window of ``wave-left-hand`` is labelled ``wave-right-hand``.
    An augment with ``with_labels`` (`Augment`) is first given the cache's vocabulary, which derives its mirror
    label map (`data.labels.mirror_label_map`, its own ``label_map`` entries overriding); another callable is
    trusted to set the labels of what it returns. An augment with ``with_frames`` is given the split's takes (at
    most `MIRROR_TAKES`, evenly spaced) to fix one mirror convention for every window (`augment.mirror_frames`).
    """

    def __init__(self, cache: MotionCache, split: str, length: int, stride: int, augment=None,
                 normalize: bool = True, seed: int = 0, exclude: dict | None = None):
        self.cache, self.split, self.length, self.stride = cache, split, int(length), int(stride)
        if augment is not None and callable(getattr(augment, "with_labels", None)):
            augment = augment.with_labels(dict(cache.label_names))
        if augment is not None and callable(getattr(augment, "with_frames", None)):
            augment = augment.with_frames(_MirrorSample(cache, split, exclude))
        self.augment, self.normalize, self.seed, self.epoch = augment, normalize, int(seed), 0
        self.index = windows(cache, split, self.length, self.stride, exclude=exclude)
        self.stats = cache.stats if normalize else None
        # source frames per augmented window: enough for the fastest speed-up to still fill ``length`` frames
        speeds = getattr(augment, "speed_range", None)
        fastest = max(1.0, float(max(speeds))) if speeds else 2.0
        self._span = int(np.ceil((self.length - 1) * fastest)) + 1
        self._labels = [self._indices(t.labels) for t in cache.takes]

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation draws of epoch ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        take, start = (int(v) for v in self.index[k])
        labels = dict(self._labels[take])
        if self.augment is None:
            row = self.cache.takes[take].start + start
            x = np.array(self.cache.features[row: row + self.length], dtype=np.float32)
        else:
            from .features import encode

            motion = self.cache.motion(take)[start: start + self._span]
            motion.labels = dict(self.cache.takes[take].labels)
            motion = self.augment(motion, np.random.default_rng([self.seed, self.epoch, int(k)]))
            labels = self._indices(motion.labels)
            x = np.asarray(encode(motion[: self.length], dtype=np.float32), dtype=np.float32)
            if len(x) < self.length:  # near the take's end: hold the last frame
                x = np.concatenate([x, np.repeat(x[-1:], self.length - len(x), axis=0)])
        if self.stats is not None:
            x = np.asarray(self.stats.normalize(x), dtype=np.float32)
        return {"features": torch.from_numpy(np.ascontiguousarray(x)), "take": take, "start": start,
                "labels": labels}

    def _indices(self, labels: dict) -> dict[str, int]:
        """Label names of a (possibly mirrored) window → indices into the vocabulary (-1: none, or unknown)."""
        return label_indices(labels, self.cache.label_names)
