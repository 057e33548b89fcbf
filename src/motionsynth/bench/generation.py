"""The ``generate`` benchmark: generated motion scored by an action classifier (Action2Motion / ACTOR protocol).

A generator is reached only through its task method (`registry.load_method`): ``method.complete(rest_motion,
generate_mask, label={kind: name}, n_samples=N, seed=…)``. The classifier (`bench.recognition.Recognizer`) is a
separate checkpoint: it reads every clip (generated or real) in windows of its length and gives each clip its label
probabilities and its embedding (the mean of its windows'), the feature space of every distance below.

Protocol (settings of `DEFAULT_SETTINGS["generate"]`, all recorded):

- ``kind``: the label kind the generator is asked for (default: the classifier's first kind); ``frames``: clip
  length (default: the generator's window — its method's ``window`` — else the classifier's window W).
- ``only`` (``--only``, the unseen-actions protocol): the real evaluation clips are those of the takes matching the
  label filter, and when it names ``kind`` only the matching names are asked for.
- For each of ``repetitions`` repetitions r and every name n of that kind (the names both the classifier and the
  generator know): ``samples_per_label`` samples asked for ``{kind: n}``, seeded by (seed, r, n) —
  ``label_weights = "uniform"`` (ACTOR's protocol, for datasets with about as much data per label). With ``"split"``
  the same total (``samples_per_label`` × names) is shared among the names in proportion to their windows in the
  evaluation split (largest remainders; a name without windows gets none): the generated set then has the real
  clips' label mix, so its FID and accuracy compare with the real reference when the labels are unbalanced (a
  uniform set over-weights the rare labels, which FID counts as distance from the data).
- Per repetition: **accuracy** (per label and over all samples): the fraction of samples whose most probable name
  (the classifier's argmax for ``kind``) is the asked one; **FID** between the embeddings of all generated samples
  and of the real test clips (windows of ``frames`` frames every ``stride``, W / 2 by default, of the evaluation
  split; at most ``limit``); **diversity**: mean distance of ``diversity_pairs`` random pairs of generated
  embeddings; **multimodality**: per label, mean distance of ``multimodality_pairs`` random pairs of samples asked
  for that label, averaged over labels (`metrics.diversity`, `metrics.multimodality`); **foot skating** (cm/s,
  `metrics.foot_skating` over toes and ankles, each clip's own floor).
- Reported: the mean over repetitions ± the 95 % interval ``1.96 · std / √R`` (ACTOR's ``calculate_activation_
  statistics`` / ``evaluate``); columns ``X`` and ``X_ci95``.
- An **unconditional** generator (its method refuses a label, e.g. the HM-VAE prior) gets ``samples_per_label`` ×
  (number of names) unconditional samples per repetition: FID, diversity and foot skating only; accuracy and
  multimodality are n/a (None).
- The **real-data reference** row (``data = real``): the classifier's accuracy on the real evaluation clips (their
  true labels); FID between as many real TRAIN clips as there are generated samples (drawn at random per
  repetition from the train split's windows of ``frames`` frames every ``frames`` frames) and the real evaluation
  clips; diversity and multimodality (true labels) of as many evaluation clips (at most all of them) drawn the same
  way; the foot skating of all evaluation clips. Per-label rows carry ``real_accuracy``: the classifier's accuracy
  on the real evaluation clips of that label (the goal for generated ones is ≥ 0.9 × it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics as M
from ..data.features import encode
from ..data.selection import matches
from ..errors import MotionsynthError, ParamError
from ..kinematics import foot_joints
from ..ops import rest_motion
from ..tasks import generate_mask
from .clips import global_transforms, iter_clips, method_label, progress_bar, split_windows
from .recognition import Recognizer, classifier_families

__all__ = ["run_generate", "interval", "proportional"]


def interval(values) -> tuple[float | None, float | None]:
    """Mean and 95 % half-interval ``1.96 · std / √R`` of per-repetition values (None for no values)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return None, None
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(len(v)))


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def _foot_skate(motions, fps: float) -> float:
    pos = global_transforms(motions)[1]
    feet = foot_joints(motions[0].skeleton, ankles=True)
    return float(np.asarray(M.foot_skating(pos, feet, fps=fps, reduce=False)).mean())


def _na(*keys: str) -> dict:
    """A row's n/a columns (and their intervals)."""
    return {k: None for key in keys for k in (key, f"{key}_ci95")}


def _draw(n_pool: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(n_pool, size=n, replace=n > n_pool)


def proportional(weights, total: int) -> np.ndarray:
    """``total`` split into integers in proportion to ``weights`` (K,) ≥ 0 (largest remainders; ties to the first).

    Returns (K,) int64 summing to ``total`` (zeros where all weights are 0)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        return np.zeros(len(w), np.int64)
    share = w / w.sum() * total
    out = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return out


def samples_per_name(names: list[str], weighting: str, n: int, real_counts: list[int], what: str) -> dict[str, int]:
    """Samples to ask for each name: ``n`` each (``"uniform"``), or ``n`` × len(names) shared in proportion to
    ``real_counts`` (``"split"``: the evaluation windows per name; ``what`` names them in the error)."""
    if weighting not in ("uniform", "split"):
        raise MotionsynthError(f"setting label_weights must be uniform or split, got {weighting!r}")
    if weighting == "uniform":
        return dict.fromkeys(names, n)
    if sum(real_counts) == 0:
        raise MotionsynthError(f"setting label_weights=split: no {what} label among the evaluation windows")
    return dict(zip(names, proportional(real_counts, n * len(names)).tolist()))


def run_generate(cache, method, s: dict, split: str, seed: int, limit, progress: bool):
    """The ``generate`` protocol (module docstring) → (rows, extra)."""
    if not s.get("classifier"):
        raise ParamError("generate needs an action classifier: `classifier` CKPT (train one with "
                         "`motionsynth train classifier`)", "classifier")
    rec = s["classifier"] if isinstance(s["classifier"], Recognizer) else Recognizer(s["classifier"])
    if isinstance(method, Recognizer):
        raise ParamError(f"`model` is the generator; the classifier ({', '.join(classifier_families())}) "
                         f"goes to `classifier`", "model", "classifier")
    if method is None or not callable(getattr(method, "complete", None)):
        raise ParamError("generate scores a generator: give `model` CKPT of a generative model", "model")
    sk = cache.skeleton
    rec.ckpt.check_skeleton(sk, what="benchmark data")
    fps = float(cache.fps)
    if rec.ckpt.fps and abs(float(rec.ckpt.fps) - fps) > 1e-6:
        raise MotionsynthError(f"the cache is at {fps:g} fps but the classifier reads {rec.ckpt.fps:g} fps")
    kind = s["kind"] or rec.kinds[0]
    if kind not in rec.kinds:
        raise MotionsynthError(f"the classifier has no label kind {kind!r}; its kinds are {', '.join(rec.kinds)}")
    frames = int(s["frames"] or getattr(method, "window", None) or rec.window)
    stride = int(s["stride"] or max(1, frames // 2))
    N, R = int(s["samples_per_label"]), int(s["repetitions"])
    weighting = s.get("label_weights") or "uniform"
    if N < 2 or R < 1 or frames < rec.min_frames:
        raise MotionsynthError(f"generate needs samples_per_label ≥ 2, repetitions ≥ 1 and frames ≥ "
                               f"{rec.min_frames}; got {N}, {R}, {frames}")
    vocab = method.vocabulary
    conditional = kind in vocab
    only = s.get("only") or {}
    names = [n for n in rec.labels[kind] if (not vocab or n in vocab.get(kind, []))
             and (kind not in only or matches(n, only[kind]))]  # --only on the asked kind: only those are asked
    if not names:
        raise ParamError(f"the generator knows none of the classifier's {kind} labels"
                         + (" matching `only`" if kind in only else ""), "only")
    rest = rest_motion(sk, frames, fps)
    mask = generate_mask(frames, len(sk))
    total = N * len(names)

    # ---- real data: evaluation clips (reference set) and train clips ------------------------------------------------
    def real_clips(split_: str, stride_: int, lim, only_=None):
        wins = split_windows(cache, split_, frames, stride_, lim, only_)
        feats = [np.asarray(cache.features[cache.takes[t].start + a: cache.takes[t].start + a + frames], np.float32)
                 for t, a in wins]
        probs, emb = rec.score_clips(feats, what=f"{split_} window")
        labels = np.array([rec.labels[kind].index(cache.takes[t].labels[kind])
                           if cache.takes[t].labels.get(kind) in rec.labels[kind] else -1 for t, _ in wins])
        return wins, probs[kind], emb, labels

    test_wins, test_probs, test_emb, test_y = real_clips(split, stride, limit, only)
    train_wins, _, train_emb, _ = real_clips("train", frames, None)
    known = test_y >= 0
    real_acc = float((test_probs.argmax(-1)[known] == test_y[known]).mean()) if known.any() else None
    real_acc_label = {n: (float((test_probs.argmax(-1)[test_y == i] == i).mean()) if (test_y == i).any() else None)
                      for i, n in enumerate(rec.labels[kind])}
    test_skate = _foot_skate(list(iter_clips(cache, test_wins, frames)), fps)
    asked_n = samples_per_name(names, weighting if conditional else "uniform", N,
                               [int((test_y == rec.labels[kind].index(n)).sum()) for n in names], f"{split} {kind}")
    names = [n for n in names if asked_n[n] > 0]

    # ---- generated samples per repetition --------------------------------------------------------------------------
    per_rep: list[dict] = []
    pairs_d, pairs_m = int(s["diversity_pairs"]), int(s["multimodality_pairs"])
    for r in progress_bar(range(R), progress, f"generate {method_label(method)}"):
        motions, asked = [], []
        if conditional:
            for i, n in enumerate(rec.labels[kind]):
                if n not in names:
                    continue
                out = method.complete(rest, mask, label={kind: n}, n_samples=asked_n[n], seed=_seed(seed, r, i))
                motions += list(out.samples)
                asked += [i] * len(out.samples)
        else:
            motions = list(method.complete(rest, mask, label=None, n_samples=total, seed=_seed(seed, r)).samples)
        if len(motions) != (total if not conditional else len(asked)) or any(m.num_frames != frames for m in motions):
            raise MotionsynthError(f"the generator returned {len(motions)} samples (asked {total}) or samples of "
                                   f"the wrong length")
        probs, emb = rec.score_clips([encode(m, dtype=np.float32) for m in motions], what="generated sample")
        rng = np.random.default_rng(_seed(seed, r, 99991))
        rep: dict[str, Any] = {"fid": float(M.fid(emb, test_emb)), "diversity": float(M.diversity(emb, pairs_d, rng)),
               "foot_skate": _foot_skate(motions, fps)}
        if conditional:
            asked_a, pred = np.array(asked), probs[kind].argmax(-1)
            rep["accuracy"] = float((pred == asked_a).mean())
            rep["multimodality"] = float(M.multimodality(emb, asked_a, pairs_m, rng))
            rep["per_label"] = {}
            for i, n in enumerate(rec.labels[kind]):
                sel = asked_a == i
                if not sel.any():
                    continue
                rep["per_label"][n] = {
                    "accuracy": float((pred[sel] == i).mean()),
                    "multimodality": float(M.diversity(emb[sel], pairs_m, rng)) if sel.sum() >= 2 else None,
                    "foot_skate": _foot_skate([motions[j] for j in np.flatnonzero(sel)], fps)}
        # the real reference, drawn per repetition like the generated set
        tr = train_emb[_draw(len(train_emb), total, rng)]
        te_idx = _draw(len(test_emb), min(total, len(test_emb)), rng)
        rep["real_fid"] = float(M.fid(tr, test_emb))
        rep["real_diversity"] = float(M.diversity(test_emb[te_idx], pairs_d, rng))
        lab = test_y[te_idx]
        rep["real_multimodality"] = float(M.multimodality(test_emb[te_idx][lab >= 0], lab[lab >= 0], pairs_m, rng)) \
            if (lab >= 0).sum() >= 2 else None
        per_rep.append(rep)

    def stat(key, reps=per_rep):
        mean, ci = interval([p.get(key) for p in reps])
        return {key: mean, f"{key}_ci95": ci}

    rows = []
    if conditional:
        for n in names:
            reps = [p["per_label"][n] for p in per_rep]
            rows.append({"data": "generated", "label": n, **stat("accuracy", reps), "real_accuracy": real_acc_label[n],
                         **_na("fid", "diversity"), **stat("multimodality", reps), **stat("foot_skate", reps),
                         "samples": asked_n[n]})
    rows.append({"data": "generated", "label": "all",
                 **(stat("accuracy") if conditional else _na("accuracy")),
                 "real_accuracy": real_acc if conditional else None, **stat("fid"), **stat("diversity"),
                 **(stat("multimodality") if conditional else _na("multimodality")),
                 **stat("foot_skate"), "samples": total})
    real = {k: v for key in ("fid", "diversity", "multimodality")
            for k, v in zip((key, f"{key}_ci95"), stat(f"real_{key}").values())}
    rows.append({"data": "real", "label": "all", "accuracy": real_acc, "accuracy_ci95": None, "real_accuracy": None,
                 **real, "foot_skate": test_skate, "foot_skate_ci95": None, "samples": total})
    extra = {"classifier": str(rec.ckpt.path or ""), "classifier_hash": rec.checkpoint_hash,
             "kind": kind, "frames": frames, "stride": stride, "conditional": conditional, "labels": names,
             "label_weights": weighting, "samples_per_name": asked_n if conditional else None,
             "real_test_clips": int(len(test_emb)), "real_train_clips": int(len(train_emb)),
             "per_repetition": [{k: v for k, v in p.items() if k != "per_label"} for p in per_rep]}
    return rows, extra
