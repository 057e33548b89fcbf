"""Synthetic datasets: a generator's takes written to a folder with a manifest (`motionsynth synthesize`).

What is written. ``OUT/<label>_<index>.bvh`` (or ``.npz``) per take — ``walk_0003.bvh``; two label kinds join with
``_`` (``walk_happy_0003.bvh``); unlabelled takes are ``sample_0003.bvh`` — and ``OUT/manifest.csv`` with one row per
take: ``name`` (the file stem), ``file``, one column per label kind, ``seed``, ``frames`` and ``model_hash`` (the
generator's weights hash). The manifest is also a labels CSV of the ``bvh-folder`` adapter (its bookkeeping columns
are `data.adapters.MANIFEST_COLUMNS`, not labels), so ``motionsynth data prepare OUT --dataset bvh-folder --labels
OUT/manifest.csv --out CACHE`` reads the takes back with their labels.

What is generated. ``per_label`` takes for each target label (``labels``; by default every name of the label kind
``kind`` — ``content`` — in the generator's vocabulary, optionally with ``style`` added to each), or ``count``
unlabelled takes. Every take is one call ``method.complete(rest_motion(...), generate_mask(...), label=...,
n_samples=1, seed=S)`` with its own seed ``S`` derived from the run's seed, its label and its index (`take_seed`), so
a take does not depend on which other takes were generated, in which order or batch: a rerun, a resumed run and a
larger ``per_label`` reproduce the same files, and the manifest's ``seed`` regenerates any one take.

Generators without labels (the HM-VAE prior) write unlabelled takes with ``count``; asking one for ``per_label``
(or for labels) is a clear error naming the model — label them afterwards by a classifier if needed.

Resume. The manifest is rewritten atomically after every batch of ``batch_size`` takes and every take file is
written atomically (`io.atomic`), so a run killed at any point leaves only whole takes, a manifest listing a subset
of them, and perhaps a temporary ``.NAME.XXXX.bvh``. A rerun with the same settings removes those temporaries, keeps
the takes that are in the manifest *and* on disk, and writes the others (a take on disk but not in the manifest is
written again — identically). Nothing is duplicated. A folder holding another model's manifest (another
``model_hash``), a manifest written with another ``--seed``, ``--frames`` or ``--format``, or a non-empty folder
without a manifest is refused before anything is written.

Several processes (``shard=(rank, world)``; the command's ``--devices N --num-nodes M`` through Lightning Fabric).
Rank r of W writes the planned takes r, r + W, r + 2W, … that are not done yet; a take's seed does not depend on who
writes it, so the files are those of a single-process run. Only rank 0 writes ``manifest.csv``: every rank lists its
takes done in its own ``.manifest-rank<r>.csv`` (rewritten atomically after every batch), and rank 0 merges these into
``manifest.csv`` after a ``barrier`` at the end and removes them. A rerun (with any number of processes) counts a
take listed in ``manifest.csv`` *or* in a rank's list, and on disk, as done; rank 0 removes the temporaries and
merges the lists left by a killed run before the others start writing.

Filtering by a classifier (optional, ``classifier`` + ``min_prob``). A take is kept only if the classifier
(`bench.recognition.Recognizer`) gives its label — every kind of it — a probability of at least ``min_prob`` (the
smallest over the kinds is recorded in the manifest's ``probability`` column); otherwise the take is drawn again
with the next seed of its sequence (`take_seed` with ``attempt`` 1, 2, …, ``max_tries`` draws in all). A take
without an accepted draw is not written (counted as ``rejected``; a rerun tries it again, with the same outcome).
"""


from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, cast

from .data.adapters import MANIFEST_COLUMNS
from .errors import MotionsynthError, ParamError
from .io import save_motion
from .io.atomic import atomic_open
from .ops import rest_motion
from .tasks import check_label, generate_mask

__all__ = ["MANIFEST", "FORMATS", "Take", "label_targets", "take_seed", "plan_takes", "read_manifest", "synthesize"]

MANIFEST = "manifest.csv"
FORMATS = ("bvh", "npz")
_REQUIRED = ("name", "file", "seed", "frames", "model_hash")


@dataclass(frozen=True)
class Take:
    """One planned take: its file stem ``name``, ``label`` ({kind: name}, or None), ``index`` and first ``seed``."""

    name: str
    label: dict | None
    seed: int
    index: int = 0


def take_seed(seed: int, label: dict | None, index: int, attempt: int = 0) -> int:
    """The seed of take ``index`` of ``label``: a hash of the run's seed, the label and the index (31 bits);
    ``attempt`` > 0: the seed of a redraw (classifier filtering)."""
    key = json.dumps([int(seed), sorted((label or {}).items()), int(index)] + ([int(attempt)] if attempt else []))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _parse_labels(items: list[str]) -> list[dict]:
    """``["content=walk,content=run", "content=jump"]`` → ``[{"content": "walk"}, {"content": "run"}, …]``."""
    out = []
    for text in items:
        for part in text.split(","):
            if not part.strip():
                continue
            kind, sep, name = part.partition("=")
            if not sep or not kind.strip() or not name.strip():
                raise ParamError(f"`labels` must be KIND=NAME[,KIND=NAME…] (one label each), e.g. "
                                 f"content=walk,content=run; got {text!r}", "labels")
            out.append({kind.strip(): name.strip()})
    return out


def label_targets(vocabulary: dict | None, labels: list[str] | None = None, kind: str | None = None,
                  style: str | None = None, who: str = "the generator") -> list[dict]:
    """The labels to generate ``per_label`` takes of, checked against the generator's ``vocabulary``.

    ``labels`` (``KIND=NAME`` items) if given, else every name of ``kind`` (default ``content``, or the vocabulary's
    only kind); ``style`` is added to each. Raises `MotionsynthError` for a generator without labels (naming it), an
    unknown kind or name (`tasks.check_label`), or a target given twice.
    """
    if not vocabulary:
        raise ParamError(f"{who} is not conditioned on labels, so it cannot write takes per label; use `count` N "
                         f"for unlabelled takes (or a generator trained with labels)", "count")
    if labels:
        if kind is not None:
            raise ParamError("give either `labels` or `kind` (all names of one label kind), not both", "labels", "kind")
        targets = _parse_labels(labels)
        if not targets:
            raise ParamError("`labels` is empty; give KIND=NAME items, e.g. content=walk", "labels")
    else:
        if kind is None:
            kind = "content" if "content" in vocabulary or len(vocabulary) != 1 else next(iter(vocabulary))
        if kind not in vocabulary:
            raise MotionsynthError(f"{who} has no label kind {kind!r}; its kinds are {', '.join(sorted(vocabulary))}")
        targets = [{kind: name} for name in vocabulary[kind]]
    if style is not None:
        if any("style" in t for t in targets):
            raise ParamError("`style` is added to every label; drop it or the style in `labels` / `kind`", "style", "labels",
                             "kind")
        targets = [{**t, "style": style} for t in targets]
    seen = set()
    for t in targets:
        check_label(t, vocabulary, who)
        key = tuple(sorted(t.items()))
        if key in seen:
            raise MotionsynthError(f"label {_text(t)} is asked for twice")
        seen.add(key)
    return targets


def _text(label: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in label.items())


def _stem(label: dict | None) -> str:
    if not label:
        return "sample"
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", v).strip(".") or "x" for v in label.values())


def plan_takes(targets: Sequence[dict | None], per_label: int, seed: int) -> list[Take]:
    """``per_label`` takes of each target (``[None]``: unlabelled), in order, with their names and seeds."""
    width = max(4, len(str(per_label - 1)))
    takes: list[Take] = []
    owner: dict[str, dict | None] = {}
    for label in targets:
        stem = _stem(label)
        if owner.setdefault(stem, label) != label:
            raise MotionsynthError(f"labels {_text(cast(dict, owner[stem]))} and {_text(cast(dict, label))} would share file names "
                                   f"({stem}_…); generate them into separate folders")
        takes += [Take(f"{stem}_{i:0{width}d}", label, take_seed(seed, label, i), i) for i in range(per_label)]
    return takes


def read_manifest(path: Path) -> list[dict]:
    """The rows of a synthesis manifest; a clear error for a CSV that is not one."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in header]
            if missing:
                raise ParamError(f"{path}: not a motionsynth synthesize manifest (no column "
                                 f"{', '.join(missing)}); write into another `out` folder", "out")
            return [dict(row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise MotionsynthError(f"{path}: cannot read the manifest ({e})") from None


def _write_manifest(path: Path, rows: dict[str, dict], kinds: list[str]) -> None:
    extra = [c for c in ("probability",) if any(c in r for r in rows.values())]
    columns = ["name", "file", *kinds, "seed", "frames", "model_hash", *extra]
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        for name in sorted(rows):
            writer.writerow({c: rows[name].get(c, "") for c in columns})


_TEMP = re.compile(r"^\.(.+)\.[^.]+\.(bvh|npz|csv)$")  # io.atomic's temporaries: .STEM.XXXXXXXX.SUFFIX
_PARTIAL = re.compile(r"^\.manifest-rank[0-9]+\.csv$")  # a rank's own list of its takes (several processes)


def _partial(out: Path, rank: int) -> Path:
    return out / f".manifest-rank{rank}.csv"


def _read_rows(out: Path) -> tuple[list[dict], list[Path]]:
    """The rows of ``manifest.csv`` and of the ranks' lists (each take once), and those lists' paths."""
    partials = sorted(p for p in out.iterdir() if _PARTIAL.match(p.name) and p.is_file()) if out.is_dir() else []
    rows = {}
    for path in [out / MANIFEST, *partials]:
        if path.is_file():
            rows.update({r["name"]: r for r in read_manifest(path)})
    return list(rows.values()), partials


def _kinds(targets: list, rows: list[dict]) -> list[str]:
    return list(dict.fromkeys([k for t in targets if t for k in t]
                              + [c for r in rows for c in r if c not in ("name", *MANIFEST_COLUMNS)]))


def _merge(out: Path, targets: list, force: bool = False) -> dict[str, dict]:
    """Rank 0: ``manifest.csv`` rewritten with every listed take that is on disk, the ranks' lists removed; the takes
    done. Writes only when something changed (or ``force``)."""
    rows, partials = _read_rows(out)
    kept = {r["name"]: r for r in rows if (out / r["file"]).is_file()}
    if force or partials or len(kept) != len(rows) or not (out / MANIFEST).is_file():
        _write_manifest(out / MANIFEST, kept, _kinds(targets, rows))
    for p in partials:
        p.unlink()
    return kept


def _check_folder(out: Path, rows: list[dict], takes: list[Take], model_hash: str, frames: int, fmt: str,
                  seed: int, tries: int) -> None:
    """Refuse, before writing anything, a folder this run must not write into."""
    manifest = out / MANIFEST
    if not rows and not manifest.is_file() and out.is_dir():
        other = [p.name for p in out.iterdir() if not (_TEMP.match(p.name) or _PARTIAL.match(p.name))]
        if other:
            raise MotionsynthError(f"{out} is not empty and holds no {MANIFEST} (it has {other[0]}"
                                   f"{' …' if len(other) > 1 else ''}); write into a new or empty folder")
    planned = {t.name: t for t in takes}
    for row in rows:
        if row["model_hash"] != model_hash:
            raise ParamError(f"{out} holds takes of another model (model hash {row['model_hash'][:12]}…, this "
                             f"one is {model_hash[:12]}…); write into another `out` folder", "out")
        if str(row["frames"]) != str(frames):
            raise ParamError(f"{out} holds takes of {row['frames']} frames; rerun with `frames` "
                             f"{row['frames']} to resume, or write into another `out` folder", "frames", "out")
        if Path(row["file"]).suffix.lower() != f".{fmt}":
            raise ParamError(f"{out} holds {Path(row['file']).suffix[1:]} takes ({row['file']}); rerun with "
                             f"that `format` to resume, or write into another `out` folder", "format", "out")
        take = planned.get(row["name"])
        if take is not None and row["seed"] not in {str(take_seed(seed, take.label, take.index, a))
                                                    for a in range(tries)}:
            raise ParamError(f"{out}: take {row['name']} was written with another `seed` (take seed "
                             f"{row['seed']}, now {take.seed}); rerun with the same `seed` to resume, or "
                             f"write into another `out` folder", "seed", "out")


def synthesize(method, out: str | Path, *, frames: int, fps: float, per_label: int | None = None,
               count: int | None = None, labels: list[str] | None = None, kind: str | None = None,
               style: str | None = None, seed: int = 0, fmt: str = "bvh", batch_size: int = 16,
               model_hash: str | None = None, who: str | None = None, progress: bool = False,
               classifier=None, min_prob: float = 0.5, max_tries: int = 10,
               on_batch: Callable[[int, int], None] | None = None, shard: tuple[int, int] = (0, 1),
               barrier: Callable[[], None] = lambda: None) -> dict:
    """Write a synthetic dataset into ``out`` (see the module's docstring); resume what is there.

    Args:
        method: a generative `tasks.Method` (`registry.load_method`); its ``vocabulary`` (kind → names), if any,
            is what it can be conditioned on.
        frames, fps: length and frame rate of every take.
        per_label: takes per target label (labelled generators); count: unlabelled takes. Exactly one of them.
        labels, kind, style: the target labels (`label_targets`).
        seed: the run's seed (each take's own is `take_seed`).
        fmt: ``bvh`` or ``npz``.
        batch_size: takes between two manifest updates.
        model_hash: recorded in the manifest (default ``method.checkpoint_hash``); who: the generator in messages.
        classifier: a `bench.recognition.Recognizer` to filter takes by (``min_prob``, ``max_tries``), or None.
        on_batch: called with (takes written so far, takes to write) after every manifest update.
        shard: ``(rank, world size)`` of this process among those writing ``out`` together: it writes the takes
            ``rank::world`` of the plan and lists them in its own ``.manifest-rank<r>.csv``; rank 0 writes
            ``manifest.csv`` (the progress bar is rank 0's too).
        barrier: waits for every process (e.g. ``Fabric.barrier``); the default does nothing (one process).
    Returns:
        ``{"out", "manifest", "takes", "written", "kept", "rejected", "labels"}`` — takes planned, written now,
        already there, and (classifier filtering) given up after ``max_tries`` draws; with several processes
        ``written`` and ``rejected`` count every rank's on rank 0, this rank's own on the others.
    """
    out = Path(out)
    who = who or f"the {getattr(method, 'name', 'generator')} model"
    checks = [(fmt in FORMATS, f"`format` must be one of {', '.join(FORMATS)}, got {fmt!r}", ("format",)),
              ((per_label is None) != (count is None), "give exactly one of `per_label` N (takes per label) and "
                                                        "`count` N (unlabelled takes)", ("per_label", "count")),
              (per_label is None or per_label >= 1, f"`per_label` must be at least 1, got {per_label}", ("per_label",)),
              (count is None or count >= 1, f"`count` must be at least 1, got {count}", ("count",)),
              (frames >= 1, f"`frames` must be at least 1, got {frames}", ("frames",)),
              (batch_size >= 1, f"`batch_size` must be at least 1, got {batch_size}", ("batch_size",)),
              (0.0 <= min_prob <= 1.0, f"`min_prob` must be in 0..1, got {min_prob}", ("min_prob",)),
              (max_tries >= 1, f"`max_tries` must be at least 1, got {max_tries}", ("max_tries",))]
    for ok, message, params in checks:
        if not ok:
            raise ParamError(message, *params)
    vocabulary = method.vocabulary
    if count is not None:
        if labels or kind is not None or style is not None:
            raise ParamError("`count` writes unlabelled takes; for labelled ones use `per_label` N with "
                             "`labels` / `kind` / `style`", "count", "per_label", "labels", "kind", "style")
        targets: list = [None]
        takes = plan_takes(targets, count, seed)
    else:
        targets = label_targets(vocabulary, labels, kind, style, who)
        takes = plan_takes(targets, cast(int, per_label), seed)
    if classifier is not None:
        if count is not None:
            raise ParamError("`classifier` keeps takes recognised as their label: use it with `per_label`", "classifier",
                             "per_label")
        for t in targets:
            check_label(t, classifier.labels, f"the classifier {getattr(classifier.ckpt, 'path', '')}".rstrip())
    model_hash = model_hash or getattr(method, "checkpoint_hash", None) or ""
    if not model_hash:
        raise MotionsynthError(f"{who} has no checkpoint hash to record in the manifest")
    if out.exists() and not out.is_dir():
        raise ParamError(f"{out} is a file; `out` is a folder", "out")

    rank, world = shard
    if not 0 <= rank < world:
        raise MotionsynthError(f"shard must be (rank, world size) with 0 <= rank < world size, got {shard}")
    manifest = out / MANIFEST
    rows, _ = _read_rows(out)
    tries = max_tries if classifier is not None else 1
    start = rest_motion(method.skeleton, frames, float(fps))
    if classifier is not None:
        classifier.check_motion(start, what=f"{who}'s motion")
    _check_folder(out, rows, takes, model_hash, frames, fmt, seed, max_tries)
    kept = {r["name"]: r for r in rows if (out / r["file"]).is_file()}
    barrier()  # every rank has read the folder before rank 0 changes it
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        for p in out.iterdir():  # temporaries of a killed run
            if _TEMP.match(p.name) and p.is_file():
                p.unlink()
        _merge(out, targets)
    barrier()  # … and before any rank writes
    out.mkdir(parents=True, exist_ok=True)
    kinds = _kinds(targets, rows)
    before = sum(t.name in kept for t in takes)
    mine = takes[rank::world]
    todo = [t for t in mine if t.name not in kept]
    # one process: manifest.csv itself; several: each rank its own list (its takes done), merged by rank 0 at the end
    listed, listing = (kept, manifest) if world == 1 else ({t.name: kept[t.name] for t in mine if t.name in kept},
                                                           _partial(out, rank))

    mask = generate_mask(frames, len(method.skeleton))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="synthesize", unit="take",
               disable=not progress or rank != 0, leave=False)
    written = rejected = 0
    try:
        for b in range(0, len(todo), batch_size):
            for take in todo[b:b + batch_size]:
                bar.update(1)
                drawn = _draw(method, start, mask, take, seed, tries, classifier, min_prob)
                if drawn is None:
                    rejected += 1
                    continue
                motion, take_s, prob = drawn
                file = f"{take.name}.{fmt}"
                save_motion(motion, out / file)
                listed[take.name] = {"name": take.name, "file": file, **(take.label or {}), "seed": str(take_s),
                                     "frames": str(frames), "model_hash": model_hash,
                                     **({} if prob is None else {"probability": f"{prob:.4f}"})}
                written += 1
            _write_manifest(listing, listed, kinds)
            if on_batch is not None:
                on_batch(written, len(todo))
    finally:
        bar.close()
    if world > 1:
        barrier()  # every rank has written its takes and its list
        if rank == 0:
            done = _merge(out, targets, force=True)
            written = sum(t.name in done for t in takes) - before
            rejected = len(takes) - before - written
    return {"out": str(out), "manifest": str(manifest), "takes": len(takes), "written": written,
            "kept": before, "rejected": rejected, "labels": [_text(t) if t else "" for t in targets]}


def _draw(method, start, mask, take: Take, seed: int, tries: int, classifier, min_prob: float):
    """A take's motion, the seed it was drawn with and (filtering) its probability; None: no draw accepted."""
    for attempt in range(tries):
        take_s = take_seed(seed, take.label, take.index, attempt)
        [motion] = method.complete(start, mask, label=take.label, n_samples=1, seed=take_s).samples
        prob = None if classifier is None else _probability(classifier, motion, cast(dict, take.label))  # labelled
        if prob is None or prob >= min_prob:
            motion.name = take.name
            motion.labels = dict(take.label or {})
            return motion, take_s, prob
    return None

def _probability(classifier, motion, label: dict) -> float:
    """The classifier's probability of ``label`` for ``motion``: the smallest over the label's kinds."""
    probs, _ = classifier.score_motions([motion])
    return float(min(probs[k][0, classifier.labels[k].index(v)] for k, v in label.items()))
