"""The augmentation experiment (``motionsynth bench augment``, issue 13): do a generator's synthetic takes help an
action recogniser trained on little real data?

Regimes (`Regime`, ``--regimes 5%,10%,25%,cut5``), each a selection of the real **train** takes of the label kind
``kind`` (``content``), drawn by seed (`select_regime`):

- ``P%``: P % of every class's train takes (rounded, at least 1). The draw is a seeded permutation per class whose
  first k takes are kept, so with one seed 5 % ⊂ 10 % ⊂ 25 %: regimes differ only in the amount of data.
- ``cutN``: one class cut to its first N takes (the same permutation), every other class at 100 % — a rare class.
  The class is ``cut_class``; by default the one with the fewest train takes (ties: vocabulary order), the natural
  tail class (``walk`` on Bandai 2).

Takes without a label of ``kind`` are left out. Conditions (one recogniser each, per regime and seed):

- ``real``: the selected real takes, no augmentation;
- ``classic``: the same takes with MEVA §3.3's augmentation (`models.meva.AUGMENT`: mirroring with the left/right
  label map, p = 0.5; speed 0.8–1.25×; root yaw) — how the project trains with augmentation (``train.augment``);
- ``synthetic-xR`` (``--ratios``): the real takes plus R synthetic takes per real take of each class, labelled with
  the class they were generated for (a ``cutN`` regime adds synthetic takes to the cut class only: the others are
  complete);
- ``classic+synthetic-xR`` (``--combined``): both — the takes of ``synthetic-xR`` under classic augmentation. Synthetic takes are ``frames`` long (default the generator's window; real Bandai takes are longer —
  median 120 frames — so R counts takes, not windows).

Synthetic takes are written once by `synthesize.synthesize` (npz takes + manifest, per-take seeds, optional
classifier filtering) into ``OUT/synthetic`` — one call per class for the most any condition needs — and every
condition uses the first takes of each class (by index), so ×1 ⊂ ×4 and a rerun generates nothing.

Training data: a `ComposedCache`, an in-memory view of the real cache (no copy, no folder): the selected real train
takes and the real val takes keep their rows of the real memory maps, the synthetic takes' arrays are appended
behind them (`_Rows`), and the **real** cache's feature statistics normalise everything, so the recogniser sees
the features the evaluation gives it. It is a `MotionCache` (split, rows, motion, stats, label_names), so the one
trainer (`train.train(..., cache=view)`) and `WindowDataset` (with or without augmentation) read it unchanged.
Recognisers are the ``classifier`` family with its training defaults (`models.classifier.CLASSIFIER_TRAIN`, the
``cpu`` preset: one thread) but ``steps`` steps, warm-up ``steps / 10`` and no validation (``overrides`` go on top).

Evaluation: the ``classify`` protocol (`bench.recognition.run_classify`) on the real **test** split: accuracy per
window and per take for ``kind``, per class (windows), their mean (``balanced_accuracy``) and, for ``cutN``, the cut
class's window accuracy (``cut_class_accuracy``).

Output folder ``OUT``: ``settings.json`` (what results depend on; a rerun with other settings is refused),
``synthetic/``, ``runs/KEY/`` (the trainer's run folders; ``checkpoints/`` dropped when done), ``results/KEY.json``
(one per finished (regime, condition, seed): a rerun skips them — resume) and ``record.json``, the benchmark record
(`bench.report`): ``results`` rows per (regime, condition) with the mean and (sample) std over seeds, ``per_seed``
with every unit.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, cast

import numpy as np

from ..config import deep_merge
from ..data.cache import MotionCache, Take
from ..data.features import encode
from ..errors import MotionsynthError, ParamError
from ..io import load_motion
from ..io.atomic import atomic_open
from ..models.meva import AUGMENT
from .clips import method_label, progress_bar
from .report import save_json

__all__ = ["Regime", "AugmentConfig", "parse_regimes", "parse_numbers", "class_takes", "default_cut_class",
           "select_regime", "synthetic_counts", "ComposedCache", "run_augment", "augment_markdown", "plot_augment"]

CLASSIC = dict(AUGMENT)
"""The ``classic`` condition's `data.augment.Augment` arguments: MEVA's mirror, speed change and root rotation."""


@dataclass(frozen=True)
class Regime:
    """A low-data regime: ``fraction`` of every class's train takes (``P%``), or one class cut to ``cut`` takes."""

    name: str
    fraction: float | None = None
    cut: int | None = None

    @property
    def key(self) -> str:
        """The name in file names: ``5%`` → ``p5``, ``cut5`` → ``cut5``."""
        return self.name if self.cut is not None else f"p{cast(float, self.fraction) * 100:g}"  # cut or fraction


def parse_regimes(text: str) -> list[Regime]:
    """``"5%,10%,25%,cut5"`` → regimes; an unknown item is a `MotionsynthError`."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)%|cut(\d+)", item)
        if not m or (m[1] and not 0 < float(m[1]) <= 100) or (m[2] and int(m[2]) < 1):
            raise ParamError(f"`regimes`: unknown regime {item!r}; give P% (0 < P ≤ 100, e.g. 5%) or cutN "
                             f"(one class cut to N ≥ 1 takes, e.g. cut5), comma-separated", "regimes")
        regime = Regime(item, fraction=float(m[1]) / 100) if m[1] else Regime(item, cut=int(m[2]))
        if regime not in out:
            out.append(regime)
    return out


def parse_numbers(text: str, flag: str, kind=int, minimum: float = 0) -> list:
    """``"0,1,2"`` → ``[0, 1, 2]`` (``kind`` each, at least ``minimum``, duplicates dropped)."""
    out = []
    for item in (s.strip() for s in text.split(",") if s.strip()):
        try:
            value = kind(item)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum:
            raise MotionsynthError(f"{flag}: {item!r} is not a {'whole ' if kind is int else ''}number ≥ {minimum:g}")
        if value not in out:
            out.append(value)
    if not out:
        raise MotionsynthError(f"{flag} is empty")
    return out


@dataclass
class AugmentConfig:
    """Settings of the experiment (module docstring).

    regimes, seeds, ratios: what is run (``real`` always, ``classic`` when ``classic``, ``classic+synthetic-xR``
    when ``combined``); steps: training steps per
    recogniser; kind: the label kind recognised and generated; cut_class: the ``cutN`` class (None: the default);
    frames: synthetic take length (None: the generator's window); synthetic_seed: the synthesize run's seed;
    filter_threshold: with a ``classifier`` (`Recognizer`), keep synthetic takes it gives their label at least this
    probability (`synthesize`); overrides: ``{"train": …, "model": …}`` for every recogniser.
    """

    regimes: list[Regime] = field(default_factory=lambda: parse_regimes("5%,10%,25%,cut5"))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ratios: list[float] = field(default_factory=lambda: [1, 4])
    steps: int = 200
    classic: bool = True
    combined: bool = False
    kind: str = "content"
    cut_class: str | None = None
    frames: int | None = None
    synthetic_seed: int = 0
    filter_threshold: float | None = None
    overrides: dict = field(default_factory=dict)

    def conditions(self) -> list[tuple[str, dict | None, float]]:
        """(name, augment arguments or None, synthetic takes per real take) of every condition."""
        out: list[tuple[str, dict | None, float]] = [("real", None, 0.0)] + ([("classic", CLASSIC, 0.0)] if self.classic else [])
        out += [(f"synthetic-x{r:g}", None, float(r)) for r in self.ratios if r > 0]
        return out + [(f"classic+synthetic-x{r:g}", CLASSIC, float(r)) for r in self.ratios if r > 0 and self.combined]


# ---- regimes ---------------------------------------------------------------------------------------------------------
def class_takes(cache, kind: str = "content") -> dict[str, list[int]]:
    """Class name → indices of its train takes (vocabulary order; classes without train takes left out)."""
    if kind not in cache.label_names:
        raise MotionsynthError(f"the cache has no label kind {kind!r}; its kinds: {', '.join(cache.label_names)}")
    out: dict[str, list[int]] = {n: [] for n in cache.label_names[kind]}
    for i in cache.split("train"):
        name = cache.takes[i].labels.get(kind)
        if name in out:
            out[name].append(i)
    return {n: v for n, v in out.items() if v}


def default_cut_class(cache, kind: str = "content") -> str:
    """The class with the fewest train takes (ties: the first in the vocabulary)."""
    per = class_takes(cache, kind)
    return min(per, key=lambda n: len(per[n]))


def select_regime(cache, regime: Regime, seed: int, kind: str = "content", cut_class: str | None = None
                  ) -> dict[str, list[int]]:
    """Class → the train takes ``regime`` keeps with ``seed`` (sorted): the first k of a permutation drawn from
    ``(seed, class position)``; k = max(1, round(P · n)) for ``P%``, k = min(N, n) for the cut class of ``cutN``."""
    per = class_takes(cache, kind)
    cut_class = cut_class or default_cut_class(cache, kind)
    if regime.cut is not None and cut_class not in per:
        raise MotionsynthError(f"cut class {cut_class!r} has no {kind} train takes; classes: {', '.join(per)}")
    out = {}
    for name, idx in per.items():
        order = np.random.default_rng([int(seed), cache.label_names[kind].index(name)]).permutation(len(idx))
        if regime.cut is None:
            k = max(1, int(round(cast(float, regime.fraction) * len(idx))))  # cut or fraction
        else:
            k = min(regime.cut, len(idx)) if name == cut_class else len(idx)
        out[name] = sorted(idx[i] for i in order[:k])
    return out


def synthetic_counts(real: dict[str, list[int]], regime: Regime, ratio: float, cut_class: str | None
                     ) -> dict[str, int]:
    """Class → synthetic takes for a selection ``real`` at ``ratio`` per real take (``cutN``: the cut class only)."""
    return {n: int(round(ratio * len(v))) if regime.cut is None or n == cut_class else 0 for n, v in real.items()}


# ---- the composed training data ------------------------------------------------------------------------------------
class _Rows:
    """Arrays (N_i, …) back to back, read as one by row slices that stay inside one of them (windows and
    `MotionCache.rows` never cross takes, and a take lies in one part)."""

    def __init__(self, parts: list):
        self.parts = parts
        self.bounds = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.bounds[-1]), *parts[0].shape[1:])
        self.dtype, self.ndim = parts[0].dtype, parts[0].ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
            i = int(np.searchsorted(self.bounds, start, side="right")) - 1
            i = min(i, len(self.parts) - 1)
            if stop <= self.bounds[i + 1] or stop <= start:
                return self.parts[i][start - self.bounds[i]: max(start, stop) - self.bounds[i]]
        raise IndexError(f"rows {key!r}: only slices inside one take are read")


@dataclass
class SyntheticTake:
    """A generated take as the cache stores one: float32 rotations (T, J, 4), root positions (T, 3), features
    (T, D); its name and labels."""

    name: str
    labels: dict
    rotations: np.ndarray
    root_positions: np.ndarray
    features: np.ndarray


class ComposedCache(MotionCache):
    """Training data for one recogniser: ``real``'s takes ``train_takes`` (split train) and all its val takes, plus
    ``synthetic`` takes (split train) — a view, not a folder (module docstring). ``stats`` are ``real``'s;
    ``data_hash`` is a hash of the real data hash and the take names; test takes are left out."""

    def __init__(self, real: MotionCache, train_takes: list[int], synthetic: Sequence[SyntheticTake] = ()):
        import hashlib

        keep = sorted(set(int(i) for i in train_takes) | set(real.split("val")))
        if any(real.takes[i].split == "test" for i in keep):
            raise MotionsynthError("a test take cannot be training data")
        N = real.num_frames
        self.path, self.skeleton = real.path, real.skeleton
        self.takes = [real.takes[i] for i in keep]
        start = N
        for s in synthetic:
            self.takes.append(Take(s.name, start, len(s.features), "train", dict(s.labels)))
            start += len(s.features)
        self.features = _Rows([real.features] + [s.features for s in synthetic])
        self.rotations = _Rows([real.rotations] + [s.rotations for s in synthetic])
        self.root_positions = _Rows([real.root_positions] + [s.root_positions for s in synthetic])
        self.offsets = None
        if real.offsets is not None:
            own = np.asarray(real.skeleton.offsets, np.float32)
            self.offsets = np.stack([np.asarray(real.offsets[i]) for i in keep] + [own] * len(synthetic))
        digest = hashlib.sha256(real.data_hash.encode())
        for t in self.takes:
            digest.update(t.name.encode() + b"\0")
        self.meta = {**{k: v for k, v in real.meta.items() if k != "takes"}, "data_hash": digest.hexdigest(),
                     "dataset": f"{real.dataset} (composed: {len(keep)} real, {len(synthetic)} synthetic takes)"}
        self.__dict__["stats"] = real.stats  # the real normalisation (cached_property slot)

    def __getstate__(self) -> dict:  # in memory: pickled whole (MotionCache pickles by path)
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


# ---- synthetic takes -------------------------------------------------------------------------------------------------
class _SyntheticPool:
    """The synthetic takes in ``folder``: generated on demand with `synthesize.synthesize`, loaded once."""

    def __init__(self, method, cache, folder: Path, cfg: AugmentConfig, frames: int, classifier, progress: bool):
        self.method, self.cache, self.folder, self.cfg = method, cache, folder, cfg
        self.frames, self.classifier, self.progress = frames, classifier, progress
        self.loaded: dict[str, SyntheticTake] = {}
        self.names: dict[str, list[str]] = {}

    def ensure(self, need: dict[str, int]) -> dict[str, int]:
        """Generate what is missing of ``need`` (class → takes); returns class → takes available (filtering may
        reject some)."""
        from ..synthesize import MANIFEST, read_manifest, synthesize

        kind = self.cfg.kind
        for name, n in need.items():
            if n > 0:
                synthesize(self.method, self.folder, frames=self.frames, fps=self.cache.fps, per_label=n,
                           labels=[f"{kind}={name}"], seed=self.cfg.synthetic_seed, fmt="npz",
                           classifier=self.classifier, min_prob=0.5 if self.cfg.filter_threshold is None
                           else self.cfg.filter_threshold,
                           progress=self.progress)
        rows = read_manifest(self.folder / MANIFEST) if (self.folder / MANIFEST).is_file() else []
        for name in need:
            own = [r for r in rows if r.get(kind) == name and (self.folder / r["file"]).is_file()]
            index = {int(r["name"].rsplit("_", 1)[1]): r["file"] for r in own}
            self.names[name] = [index[i] for i in sorted(index) if i < need[name]]
        return {n: len(v) for n, v in self.names.items()}

    def takes(self, name: str, n: int) -> list[SyntheticTake]:
        """The first ``n`` synthetic takes of class ``name`` (fewer if filtering rejected some)."""
        out = []
        for file in self.names.get(name, [])[:n]:
            if file not in self.loaded:
                m = load_motion(self.folder / file)
                m.skeleton.check_compatible(self.cache.skeleton, what=f"synthetic take {file}")
                self.loaded[file] = SyntheticTake(Path(file).stem, {self.cfg.kind: name},
                                                  m.rotations.astype(np.float32), m.root_positions.astype(np.float32),
                                                  np.asarray(encode(m, dtype=np.float32), np.float32))
            out.append(self.loaded[file])
        return out


# ---- the experiment --------------------------------------------------------------------------------------------------
def _check_settings(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            raise MotionsynthError(f"{out} holds results of other settings ({', '.join(diff)}: "
                                   f"{', '.join(f'{old.get(k)!r} → {settings.get(k)!r}' for k in diff)}); rerun "
                                   f"with the same ones to resume, or write into another out folder")
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(settings, f, indent=1)


def _evaluate(cache, model: Path, kind: str, cut_class: str | None) -> dict:
    from .protocol import resolve_settings
    from .recognition import Recognizer, run_classify

    rows, extra = run_classify(cache, Recognizer(model), resolve_settings("classify", {}), "test", 0, None, False)
    acc = {r["unit"]: r["accuracy"] for r in rows if r["kind"] == kind}
    conf = np.asarray(extra["confusion"][kind]["window"], np.float64)
    names = extra["confusion"][kind]["names"]
    per_class = {n: float(conf[i, i] / conf[i].sum()) for i, n in enumerate(names) if conf[i].sum() > 0}
    return {"accuracy": acc["window"], "take_accuracy": acc["take"], "balanced_accuracy":
            float(np.mean(list(per_class.values()))), "cut_class_accuracy": per_class.get(cut_class),
            "per_class": per_class, "test_windows": int(conf.sum())}


def run_augment(method, cache, out, cfg: AugmentConfig, classifier=None, model: str = "",
                progress: bool = False) -> dict:
    """Run (or resume) the experiment of the module docstring into ``out``; returns the record (also written to
    ``out/record.json``).

    Args:
        method: the generator, a `tasks.Method` whose ``vocabulary`` has ``cfg.kind`` (`registry.load_method`).
        cache: the real `MotionCache`. classifier: a `Recognizer` for ``cfg.filter_threshold`` (or None).
        model: the generator's checkpoint folder, for the record.
    """
    from ..train import train

    out, kind = Path(out), cfg.kind
    who = f"the {method_label(method)} model {model}".strip()
    vocab = getattr(method, "vocabulary", None) or {}
    if kind not in vocab:
        raise MotionsynthError(f"{who} is not conditioned on {kind} labels (its vocabulary: "
                               f"{', '.join(vocab) or 'none'}); bench augment needs a generator of labelled takes")
    if (classifier is None) != (cfg.filter_threshold is None):
        raise ParamError("`filter_threshold` and `classifier` go together (the classifier filters the takes)",
                         "filter_threshold", "classifier")
    if cfg.steps < 1:
        raise ParamError(f"`steps` must be at least 1, got {cfg.steps}", "steps")
    if method.skeleton is not None:
        method.skeleton.check_compatible(cache.skeleton, what="the real data")
    per = class_takes(cache, kind)
    unknown = [n for n in per if n not in vocab[kind]]
    if unknown:
        raise MotionsynthError(f"{who} cannot generate the {kind} classes {', '.join(unknown)} of the data")
    cut_class = cfg.cut_class or default_cut_class(cache, kind)
    if cut_class not in per:
        raise ParamError(f"`cut_class` {cut_class!r} is not a {kind} class with train takes; classes: "
                         f"{', '.join(per)}", "cut_class")
    frames = int(cfg.frames or getattr(method, "window", None) or 64)
    settings = {"generator_hash": getattr(method, "checkpoint_hash", None), "data_hash": cache.data_hash,
                "kind": kind, "steps": cfg.steps, "cut_class": cut_class, "frames": frames,
                "synthetic_seed": cfg.synthetic_seed, "filter_threshold": cfg.filter_threshold,
                "classifier_hash": getattr(classifier, "checkpoint_hash", None), "overrides": cfg.overrides}
    _check_settings(out, settings)

    units = [(r, c, s) for r in cfg.regimes for c in cfg.conditions() for s in cfg.seeds]
    need: dict[str, int] = {}
    for regime in cfg.regimes:
        real = select_regime(cache, regime, 0, kind, cut_class)  # counts per class do not depend on the seed
        for ratio in cfg.ratios:
            for n, k in synthetic_counts(real, regime, ratio, cut_class).items():
                need[n] = max(need.get(n, 0), k)
    pool = _SyntheticPool(method, cache, out / "synthetic", cfg, frames, classifier, progress)
    available = pool.ensure(need) if any(need.values()) else {}

    results = []
    for regime, (cond, augment, ratio), seed in progress_bar(units, progress, "bench augment"):
        key = f"{regime.key}_{cond}_s{seed}"
        path = out / "results" / f"{key}.json"
        if path.is_file():
            results.append(json.loads(path.read_text()))
            continue
        real = select_regime(cache, regime, seed, kind, cut_class)
        counts = synthetic_counts(real, regime, ratio, cut_class)
        synthetic = [t for n, k in counts.items() if k for t in pool.takes(n, k)]
        view = ComposedCache(cache, [i for v in real.values() for i in v], synthetic)
        run = out / "runs" / key
        if run.exists():  # an interrupted training: start it again
            shutil.rmtree(run)
        fixed = {"train": {"steps": cfg.steps, "seed": int(seed), "augment": augment, "val_every": 0,
                           "warmup_steps": cfg.steps // 10, "ckpt_every": cfg.steps,
                           "log_every": max(1, min(50, cfg.steps))}}
        t0 = time.perf_counter()
        folder = train("classifier", cache.path, run, preset="cpu", overrides=deep_merge(cfg.overrides, fixed),
                       cache=view, progress=False, command=f"motionsynth bench augment ({key})")
        seconds = time.perf_counter() - t0
        shutil.rmtree(run / "checkpoints", ignore_errors=True)
        result = {"regime": regime.name, "condition": cond, "seed": int(seed),
                  "real_takes": sum(len(v) for v in real.values()), "synthetic_takes": len(synthetic),
                  "train_seconds": round(seconds, 1), "model": str(folder),
                  **_evaluate(cache, folder, kind, cut_class if regime.cut is not None else None)}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "w") as f:
            json.dump(result, f, indent=1)
        results.append(result)

    record = {"task": "augment", "method": method_label(method), "model": str(model),
              "checkpoint_hash": getattr(method, "checkpoint_hash", None), "data_hash": cache.data_hash,
              "split": "test", "seed": list(cfg.seeds),
              "settings": {**settings, "regimes": [r.name for r in cfg.regimes], "ratios": list(cfg.ratios),
                           "conditions": [c for c, _, _ in cfg.conditions()], "classic_augment": CLASSIC,
                           "recogniser": "classifier", "real_train_takes": {n: len(v) for n, v in per.items()},
                           "synthetic_takes": available},
              "results": _aggregate(results, cfg), "per_seed": results}
    save_json(record, out / "record.json")
    return record


METRICS = ("accuracy", "take_accuracy", "balanced_accuracy", "cut_class_accuracy")


def _aggregate(results: list[dict], cfg: AugmentConfig) -> list[dict]:
    """One row per (regime, condition): mean and sample std over the seeds of every metric."""
    rows = []
    for regime in cfg.regimes:
        for cond, _, _ in cfg.conditions():
            rs = [r for r in results if r["regime"] == regime.name and r["condition"] == cond
                  and r["seed"] in cfg.seeds]
            if not rs:
                continue
            row = {"setting": regime.name, "data": cond, "real_takes": rs[0]["real_takes"],
                   "synthetic_takes": rs[0]["synthetic_takes"]}
            for m in METRICS:
                v = np.array([r[m] for r in rs if r.get(m) is not None], np.float64)
                row[m] = float(v.mean()) if len(v) else None
                row[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None)
            rows.append({**row, "seeds": len(rs)})
    return rows


def _headline(row: dict, regime_cut: bool) -> tuple[float | None, float | None]:
    """The plotted value of a row: window accuracy; for a ``cutN`` regime the cut class's."""
    m = "cut_class_accuracy" if regime_cut else "accuracy"
    return row.get(m), row.get(f"{m}_std")


def augment_markdown(record: dict) -> str:
    """Tables (rows: regimes, columns: conditions) of test window accuracy, and the cut class's for ``cutN``
    regimes, as ``mean ± std %`` over the seeds."""
    rows, s = record["results"], record["settings"]
    conds = [c for c in s["conditions"] if any(r["data"] == c for r in rows)]

    def table(metric: str, regimes: list[str]) -> list[str]:
        lines = ["| regime | real takes | " + " | ".join(conds) + " |", "|---|---|" + "---|" * len(conds)]
        for reg in regimes:
            cells = []
            for c in conds:
                r = next((r for r in rows if r["setting"] == reg and r["data"] == c), None)
                v = None if r is None else r.get(metric)
                cells.append("–" if v is None else f"{100 * v:.1f} ± {100 * (cast(dict, r)[f'{metric}_std'] or 0):.1f}")
            takes = next(r["real_takes"] for r in rows if r["setting"] == reg)
            lines.append(f"| {reg} | {takes} | " + " | ".join(cells) + " |")
        return lines

    regimes = list(dict.fromkeys(r["setting"] for r in rows))
    seeds = record["seed"]
    parts = [f"**augment** — {record['method']} ({record['model']}): {s['kind']} recognition, accuracy (%) on the "
             f"test windows, mean ± std over seeds {', '.join(map(str, seeds))} ({s['steps']} steps per recogniser)", "",
             *table("accuracy", regimes)]
    cut = [r for r in regimes if r.startswith("cut")]
    if cut:
        parts += ["", f"Cut class {s['cut_class']!r}, its test windows:", "", *table("cut_class_accuracy", cut)]
    return "\n".join(parts) + "\n"


def plot_augment(record: dict, out) -> Path:
    """Accuracy vs regime, one line per condition with std error bars (`viz.plots.plot_series`); a ``cutN``
    regime's point is the cut class's accuracy."""
    from ..viz.plots import plot_series

    rows, s = record["results"], record["settings"]
    regimes = list(dict.fromkeys(r["setting"] for r in rows))
    series = {}
    for c in s["conditions"]:
        vals = []
        for reg in regimes:
            r = next((r for r in rows if r["setting"] == reg and r["data"] == c), None)
            m, sd = (None, None) if r is None else _headline(r, reg.startswith("cut"))
            vals.append((float("nan") if m is None else 100 * m, 0.0 if sd is None else 100 * sd))
        series[c] = ([v for v, _ in vals], [e for _, e in vals])
    labels = [f"{r}\n({s['cut_class']})" if r.startswith("cut") else r for r in regimes]
    return plot_series(series, labels, out, ylabel="test accuracy per window (%)\n(cutN: the cut class's)",
                       xlabel="real training data",
                       title=f"{s['kind']} recognition with synthetic takes\n({record['method']})")

