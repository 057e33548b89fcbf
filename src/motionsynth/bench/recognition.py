"""An action classifier as an evaluator (`Recognizer`), and the ``classify`` benchmark: accuracy per label kind and
confusion matrices on a split.

Clips of any length. A clip's features (`data.features.encode`, or rows of a cache) are cut into windows of the
classifier's length W every ``stride`` frames (W / 2 by default), the last window ending on the clip's last frame;
the clip's probabilities are the mean of its windows' probabilities, its embedding (the FID feature,
`ActionClassifier.features`) the mean of theirs. A clip shorter than W is **padded by holding its last frame** up to
W (like the task commands pad); clips shorter than ``min_frames`` (W / 4 by default) are refused — a clear error, not
a guess from a fraction of a second. The classifier's own statistics normalise the features.

``classify`` protocol (`run_classify`): the split's windows of W frames every W / 2 frames (those of takes at least
W long; ``limit`` keeps that many, evenly spaced) → per-window accuracy per label kind; and every take of the split,
whole (any length, padded as above when shorter than W) → per-take accuracy per kind. Confusion matrices
(rows: true label, columns: predicted) of both, per kind, go into the record's ``settings`` with the names; speed
(windows/s of the forward pass in batches of ``batch_size`` on the record's device and threads) too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.features import encode
from ..data.labels import label_indices
from ..errors import MotionsynthError, ParamError
from ..motion import Motion
from ..ops import hold_pad

if TYPE_CHECKING:
    from ..models.classifier import ActionClassifier
from ..registry import load_checkpoint, names
from .clips import split_takes, split_windows

__all__ = ["Recognizer", "classifier_families", "run_classify"]


def classifier_families() -> list[str]:
    """The families of action classifiers: the registry's evaluators (role ``evaluator``)."""
    return names("evaluator")


class Recognizer:
    """A classifier checkpoint as an evaluator: raw feature windows or motions → probabilities per label kind and
    embeddings.

    Attributes:
        ckpt: the loaded `Checkpoint`; name: its family; checkpoint_hash: its weights hash; skeleton.
        window: W (frames); stride: hop between a long clip's windows; min_frames: the shortest clip accepted;
            pad: a clip shorter than W is padded to W by holding its last frame (False: read as it is — the
            convolution and GRU take any length; kept for the comparison in docs/BENCHMARKS.md).
        kinds: label kinds it predicts; labels: kind → names (the checkpoint's ``labels.json``).
    """

    needs_fit = False

    def __init__(self, checkpoint, device: str | torch.device = "cpu", batch_size: int = 256,
                 stride: int | None = None, min_frames: int | None = None, pad: bool = True):
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint, device)
        where = f"{ckpt.path}: " if ckpt.path else ""
        if ckpt.family not in classifier_families():
            raise MotionsynthError(f"{where}a {ckpt.family} checkpoint is not an action classifier; give a "
                                   f"checkpoint of {', '.join(classifier_families())} (`motionsynth train "
                                   f"classifier`)")
        model = cast("ActionClassifier", ckpt.model)  # an action classifier family (checked)
        self.kinds = list(model.kinds)
        for kind in self.kinds:
            n = int(model.config.classes[kind])
            if len(ckpt.labels.get(kind, [])) != n:
                raise MotionsynthError(f"{where}labels.json has {len(ckpt.labels.get(kind, []))} {kind} names but "
                                       f"the classifier predicts {n}")
        self.ckpt, self.model, self.name = ckpt, model, ckpt.family
        self.params: dict[str, Any]
        self.checkpoint_hash, self.skeleton, self.params = ckpt.weights_hash, ckpt.skeleton, {}
        self.labels = {k: list(ckpt.labels[k]) for k in self.kinds}
        self.window = int(model.config.window)
        self.stride = int(stride or max(1, self.window // 2))
        self.min_frames = int(min_frames or max(1, self.window // 4))
        if batch_size < 1 or self.stride < 1:
            raise MotionsynthError(f"batch_size and stride must be at least 1, got {batch_size} and {self.stride}")
        self.batch_size, self.pad = int(batch_size), bool(pad)
        self.device = next(model.parameters()).device

    # ---- windows ---------------------------------------------------------------------------------------------------
    def starts(self, frames: int) -> np.ndarray:
        """Window starts of a clip of ``frames`` frames (one window, at 0, when it is shorter than W)."""
        W = self.window
        if frames <= W:
            return np.zeros(1, dtype=np.int64)
        s = np.arange(0, frames - W + 1, self.stride, dtype=np.int64)
        return s if s[-1] == frames - W else np.append(s, frames - W)

    def windows(self, features: np.ndarray, what: str = "clip") -> np.ndarray:
        """(T, D) raw features of one clip → (K, W, D) windows (a short clip padded by holding its last frame)."""
        T = len(features)
        if T < self.min_frames:
            raise MotionsynthError(f"{what}: {T} frames is too short to classify; the classifier reads windows of "
                                   f"{self.window} frames and pads clips of at least {self.min_frames} frames")
        x = np.asarray(features, dtype=np.float32)
        if T < self.window and not self.pad:
            return x[None]
        x = hold_pad(x, self.window)
        return np.stack([x[s:s + self.window] for s in self.starts(T)])

    # ---- scoring -----------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def score_windows(self, windows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, W, D) raw feature windows → ({kind: (N, C) probabilities}, (N, E) embeddings), in batches."""
        probs: dict[str, list] = {k: [] for k in self.kinds}
        embs = []
        stats = self.ckpt.stats
        for i in range(0, len(windows), self.batch_size):
            x = np.asarray(stats.normalize(np.asarray(windows[i:i + self.batch_size], np.float32)), np.float32)
            xt = torch.from_numpy(x).to(self.device)
            emb = self.model.features(xt)
            for kind, logit in self.model.logits(xt, emb).items():
                probs[kind].append(logit.softmax(-1).float().cpu().numpy())
            embs.append(emb.float().cpu().numpy())
        if not embs:
            return {k: np.zeros((0, len(self.labels[k])), np.float32) for k in self.kinds}, np.zeros((0, 0))
        return {k: np.concatenate(v) for k, v in probs.items()}, np.concatenate(embs)

    def score_clips(self, clips: list[np.ndarray], what: str = "clip") -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Raw feature arrays (T_i, D) of clips of any length → ({kind: (M, C) mean probabilities}, (M, E) mean
        embeddings), one row per clip."""
        wins = [self.windows(c, f"{what} {i}" if len(clips) > 1 else what) for i, c in enumerate(clips)]
        counts = np.array([len(w) for w in wins])
        owner = np.repeat(np.arange(len(clips)), counts)
        flat = [w for ws in wins for w in ws]
        lengths = np.array([len(w) for w in flat])
        probs = {k: np.zeros((len(flat), len(self.labels[k])), np.float32) for k in self.kinds}
        emb = np.zeros((len(flat), int(self.model.config.embedding)), np.float32)
        for length in np.unique(lengths):  # windows of one length at a time (short clips unpadded: `pad=False`)
            sel = np.flatnonzero(lengths == length)
            p, e = self.score_windows(np.stack([flat[i] for i in sel]))
            emb[sel] = e
            for k in self.kinds:
                probs[k][sel] = p[k]

        def mean(a: np.ndarray) -> np.ndarray:
            out = np.zeros((len(clips), a.shape[1]), dtype=np.float64)
            np.add.at(out, owner, a)
            return out / np.maximum(counts, 1)[:, None]

        return {k: mean(v) for k, v in probs.items()}, mean(emb)

    def score_motions(self, motions: list[Motion]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """`score_clips` of motions (their skeleton and frame rate checked against the classifier's)."""
        feats = []
        for m in motions:
            self.check_motion(m)
            feats.append(encode(m, dtype=np.float32))
        return self.score_clips(feats, what=(motions[0].name or "motion") if len(motions) == 1 else "motion")

    def check_motion(self, motion: Motion, what: str | None = None) -> None:
        """Clear errors for a motion of another skeleton or frame rate than the classifier's."""
        what = what or f"motion {motion.name}".strip()
        self.ckpt.check_skeleton(motion.skeleton, what=what)
        fps = self.ckpt.fps
        if fps and abs(float(fps) - motion.fps) > 1e-6:
            raise MotionsynthError(f"{what} is at {motion.fps:g} fps but the classifier reads {float(fps):g} fps; "
                                   f"resample it first (motionsynth convert --fps {float(fps):g})")

    def top(self, probs: dict[str, np.ndarray], k: int = 3) -> dict[str, list[tuple[str, float]]]:
        """One clip's probabilities {kind: (C,)} → {kind: [(name, probability), …]} (the ``k`` most likely)."""
        out = {}
        for kind in self.kinds:
            p = np.asarray(probs[kind]).reshape(-1)
            order = np.argsort(-p, kind="stable")[:max(1, k)]
            out[kind] = [(self.labels[kind][i], float(p[i])) for i in order]
        return out

    def speed(self, windows: np.ndarray, repeats: int = 1) -> float:
        """Windows per second of `score_windows` on ``windows`` (after one warm-up batch)."""
        self.score_windows(windows[: self.batch_size])
        start = time.perf_counter()
        for _ in range(repeats):
            self.score_windows(windows)
        return repeats * len(windows) / max(time.perf_counter() - start, 1e-9)


def _label_index(cache, take: int, kind: str, names_: list[str]) -> int:
    return label_indices(cache.takes[take].labels, {kind: names_})[kind]


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) counts: rows true label, columns predicted (entries with true < 0 left out)."""
    out = np.zeros((n, n), dtype=np.int64)
    keep = true >= 0
    np.add.at(out, (true[keep], pred[keep]), 1)
    return out


def run_classify(cache, rec: Recognizer, s: dict, split: str, seed: int, limit, progress: bool):
    """The ``classify`` protocol (module docstring) → (rows, extra)."""
    if rec is None or not isinstance(rec, Recognizer):
        raise ParamError(f"classify scores an action classifier: give `model` CKPT of "
                         f"{', '.join(classifier_families())}", "model")
    rec.ckpt.check_skeleton(cache.skeleton, what="benchmark data")
    if rec.ckpt.fps and abs(float(rec.ckpt.fps) - float(cache.fps)) > 1e-6:
        raise MotionsynthError(f"the cache is at {cache.fps:g} fps but the classifier reads {rec.ckpt.fps:g} fps")
    W = rec.window
    if s["window"] not in (None, W):
        raise MotionsynthError(f"the classifier reads windows of {W} frames, not {s['window']}")
    rec.stride = int(s["stride"] or max(1, W // 2))
    rec.batch_size = int(s["batch_size"])
    wins = split_windows(cache, split, W, rec.stride, limit, s.get("only"))
    feats = np.stack([cache.features[cache.takes[t].start + a: cache.takes[t].start + a + W] for t, a in wins])
    win_probs, _ = rec.score_windows(feats)
    takes = split_takes(cache, split, only=s.get("only"))
    clips = [np.asarray(cache.features[cache.rows(int(t))], np.float32) for t in takes]
    short = [i for i, c in enumerate(clips) if len(c) < rec.min_frames]
    kept = np.array([i for i in range(len(takes)) if i not in set(short)], dtype=np.int64)
    take_probs, _ = rec.score_clips([clips[i] for i in kept], what=f"{split} take")
    rows, conf = [], {}
    for kind in rec.kinds:
        n, names_ = len(rec.labels[kind]), rec.labels[kind]
        y_win = np.array([_label_index(cache, int(t), kind, names_) for t, _ in wins])
        y_take = np.array([_label_index(cache, int(takes[i]), kind, names_) for i in kept])
        p_win, p_take = win_probs[kind].argmax(-1), take_probs[kind].argmax(-1)
        for unit, y, p in (("window", y_win, p_win), ("take", y_take, p_take)):
            known = y >= 0
            rows.append({"kind": kind, "unit": unit, "accuracy": float((p[known] == y[known]).mean())
                         if known.any() else None, "windows" if unit == "window" else "takes": int(known.sum())})
        conf[kind] = {"names": names_, "window": confusion(y_win, p_win, n).tolist(),
                      "take": confusion(y_take, p_take, n).tolist()}
    extra = {"window": W, "stride": rec.stride, "min_frames": rec.min_frames, "confusion": conf,
             "short_takes_left_out": len(short),
             "padded_takes": int(sum(len(clips[i]) < W for i in kept)),
             "model_data_hash": rec.ckpt.data_hash,
             "speed": {"windows_per_s": round(rec.speed(feats), 1), "batch_size": rec.batch_size,
                       "threads": torch.get_num_threads(), "device": str(rec.device)}}
    return rows, extra
