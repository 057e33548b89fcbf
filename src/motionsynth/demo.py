"""`make demo`: every task on held-out Bandai Namco test clips, each learned model beside its best baseline, on one
HTML page (``out/demo/index.html``).

1. finds ``bandai-namco-motion-2.zip`` in the data folder (or downloads the public dataset there) and prepares the
   memory-mapped cache (once);
2. picks a model per task (`choose_models`): ``--model TASK=NAME_OR_PATH`` if given, else the first shipped model
   of the task's preferences (`bench.protocol.DemoPlan.models`, `checkpoint.shipped_models`) whose method serves
   the task; when none ships, the section says so and shows the baseline alone — the demo never needs a model;
3. per task of the task table with a demo plan (`demo_tasks`: `tasks.TASKS`, each protocol's
   `bench.protocol.DemoPlan`), runs the benchmark harness (`bench.protocol.run_benchmark`, its windows, masks and metrics) for the
   baseline and the learned model on ``--windows`` evenly spaced test windows, and shows one of those windows:
   an animation (`viz.render`: observed parts grey, synthesised in colour), per-frame error curves (`viz.plots`),
   the numbers, and the results as BVH;
4. label-conditioned generation: samples per label beside real test clips of the label, recognised by the action
   classifier, and the harness's ``generate`` protocol (accuracy, FID, diversity) on a few samples per label.

The clip comparison (`run_method`, `clip_section`) is shared with ``motionsynth report`` (a user's own clip).

Run: ``python -m motionsynth.demo --data-dir ../shared/data --cache cache/bandai2 --out out/demo
[--model inbetween=runs/cvae/best …]``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, Sequence, cast

import numpy as np
import typer
from rich.console import Console

from .errors import MotionsynthError

if TYPE_CHECKING:
    from .motion import Motion
    from .viz.report import Table

console = Console(stderr=True)
ZIP_NAME = "bandai-namco-motion-2.zip"

CLASSIFY = "classify"  # the role beside the tasks: the action classifier that scores generation
CLASSIFIER_MODELS = ("classifier-bandai",)  # shipped classifiers, in order of preference
GENERATE_SHOWN = ("walk", "run", "wave-both-hands")
PANEL = (240, 240)


# ---- data ----------------------------------------------------------------------------------------------------------
def find_or_fetch_source(data_dir: Path) -> Path:
    """The Bandai Namco 2 zip in ``data_dir``, or the folder the public download is extracted to."""
    zip_path = data_dir / ZIP_NAME
    if zip_path.is_file():
        return zip_path
    from .data.download import fetch_bandai

    console.print(f"[yellow]{zip_path} not found: downloading the public dataset into {data_dir}[/]")
    return fetch_bandai(2, data_dir)


def open_or_prepare(source_dir: Path, cache_dir: Path):
    from .data.cache import MotionCache, prepare

    if (cache_dir / "meta.json").is_file():
        return MotionCache(cache_dir)
    source = find_or_fetch_source(source_dir)
    console.print(f"preparing {source} → {cache_dir}")
    return prepare(source, "bandai-namco", cache_dir)


# ---- the tasks shown ---------------------------------------------------------------------------------------------------
def demo_tasks() -> list[str]:
    """The tasks of `tasks.TASKS` whose protocol has a demo plan, in the table's order."""
    from .tasks import TASKS

    return [t.name for t in TASKS.values() if t.bench is not None and t.protocol().demo is not None]


def roles() -> list[str]:
    """What ``--model ROLE=…`` may name: the demo's tasks, and `CLASSIFY` (the classifier that scores generation)."""
    return [*demo_tasks(), CLASSIFY]


def plan(task: str):
    """The task's `bench.protocol.DemoPlan`."""
    from .tasks import TASKS

    return TASKS[task].protocol().demo


def role_title(role: str) -> str:
    return "Action recognition" if role == CLASSIFY else plan(role).title


def role_noun(role: str) -> str:
    from .tasks import TASKS

    return "action recognition" if role == CLASSIFY else TASKS[role].noun


def _serves(family: str, role: str) -> bool:
    """Whether a checkpoint of ``family`` can take ``role``: an evaluator for `CLASSIFY` (the registry's role), else a
    method that serves the task."""
    from .registry import FAMILIES

    spec = FAMILIES.get(family)
    if spec is None:
        return False
    return spec.role == "evaluator" if role == CLASSIFY else spec.method is not None and role in spec.method.tasks


# ---- which model for which task --------------------------------------------------------------------------------------
@dataclass
class Choice:
    """The model used for a task: ``value`` as given (a shipped name or a path), its checkpoint folder and family;
    all None when there is none (``note`` says why)."""

    task: str
    value: str | None = None
    path: Path | None = None
    family: str | None = None
    note: str = ""


def parse_model_overrides(items: list[str]) -> dict[str, str]:
    """``["inbetween=runs/cvae/best", …]`` (``--model TASK=NAME_OR_PATH``) → ``{task: value}``."""
    from .config import parse_key_values

    parse_key_values(list(items or []), "--model")  # the one KEY=VALUE check; values are kept as typed (paths)
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in roles():
            raise MotionsynthError(f"--model {item!r}: unknown task {key!r}; use one of {', '.join(roles())}")
        if not value:
            raise MotionsynthError(f"--model {item!r}: give a shipped model name, a run folder or a checkpoint folder")
        out[key] = value
    return out


def choose_models(overrides: dict[str, str] | None = None, tasks=None, root=None) -> dict[str, Choice]:
    """A `Choice` per task (default: every role, `roles`): the override if given (checked now: a clear error for a bad
    one, or a model that cannot do the task), else the first shipped model of the task's preferences whose method
    serves it, else none (with a note)."""
    from .checkpoint import read_checkpoint, resolve_model, shipped_models
    from .registry import FAMILIES

    overrides = dict(overrides or {})
    shipped = shipped_models(root)
    out = {}
    for task in roles() if tasks is None else tasks:
        if task in overrides:
            value = overrides[task]
            path = resolve_model(value, root)
            family = read_checkpoint(path).family
            if not _serves(family, task):
                able = sorted(f for f in FAMILIES if _serves(f, task))
                raise MotionsynthError(f"--model {task}={value}: a {family} model cannot be used for {role_noun(task)} "
                                       f"here; families that can: {', '.join(able)}")
            out[task] = Choice(task, value, path, family, "given by --model")
            continue
        skipped = []
        preferred = CLASSIFIER_MODELS if task == CLASSIFY else plan(task).models
        for name in preferred:
            entry = shipped.get(name)
            if entry is None:
                continue
            family = str(entry.get("family", ""))
            if not _serves(family, task):
                skipped.append(f"{name} (a {family or 'unknown'} model)")
                continue
            try:
                path = resolve_model(name, root)
            except MotionsynthError as e:
                skipped.append(f"{name} ({e})")
                continue
            out[task] = Choice(task, name, path, family, "shipped model")
            break
        else:
            note = (f"no shipped model for {role_noun(task)} (looked for {', '.join(preferred)}"
                    + (f"; unusable: {'; '.join(skipped)}" if skipped else "") + ")")
            out[task] = Choice(task, note=note)
    return out


# At most this many benchmark windows per task when the task's method is slow (`tasks.BaseMethod.slow`: the HM-VAE
# optimises its latent per window, ≈ 8 s a window with its quick options on one CPU thread), so the demo stays within
# minutes.
SLOW_WINDOWS = 8


def _method_class(family: str | None):
    from .registry import method_class

    return None if family is None else method_class(family)


# ---- one clip: run methods, measure, render -------------------------------------------------------------------------
@dataclass
class Result:
    """One panel and table row: a method's output on the clip (``seconds``: its run time), or the truth / input."""

    title: str
    motion: Motion
    seconds: float | None = None
    role: str = "method"  # truth | input | baseline | learned


def run_method(title: str, method, given, mask, role: str, label=None, seed: int = 0, samples: int = 1,
               warm_up: bool = False) -> list[Result]:
    """``method.complete`` on ``given`` (unobserved values already hidden, or the noisy input), timed; K samples
    become K results (titled ``title #k``, best first). ``warm_up``: run it once untimed first (a process's first
    call pays for lazy imports and allocations; for cheap methods such as the baselines)."""
    if warm_up:
        method.complete(given, mask, label=label, n_samples=1, seed=seed)
    start = time.perf_counter()
    out = method.complete(given, mask, label=label, n_samples=samples, seed=seed).samples
    seconds = time.perf_counter() - start
    if samples == 1:
        return [Result(title, out[0], seconds, role)]
    return [Result(f"{title} #{k + 1}", m, seconds / samples, role) for k, m in enumerate(out)]


def _missing_joints(motion, mask) -> list[int]:
    sk = motion.skeleton
    return [j for j in sk.subtree(sk.root) if not mask.joints[:, j].all()]


def _parts_missing(mask) -> bool:
    """Joints are missing within frames (completion), not only whole frames."""
    return bool((mask.joints.any(1) & ~mask.joints.all(1)).any())


def frame_errors(truth, motion, mask) -> np.ndarray:
    """(T,) per-frame error (cm) of ``motion`` against ``truth``: MPJPE over the moving joints; where joints are
    missing within frames (completion), over the missing joints, root-relative (the pose, not where the root was
    guessed to be)."""
    from . import metrics as M

    sk = truth.skeleton
    g, p = truth.global_positions(), motion.global_positions()
    if _parts_missing(mask):
        return np.asarray(M.mpjpe(M.root_relative(p, sk.root), M.root_relative(g, sk.root),
                                  joints=_missing_joints(truth, mask) or None, reduce=False))
    mv = sk.subtree(sk.root)
    return np.asarray(M.mpjpe(p[:, mv], g[:, mv], reduce=False))


NO_TRUTH_COLUMNS = ("ACCEL cm/frame²", "mean change from input cm", "time s")
"""The clip's columns when a noisy clip has no ground truth (`motionsynth report` on a user's noisy clip)."""


def clip_numbers(truth, given, result: Result, mask) -> list:
    """One table row for ``result`` on the clip (the cells of the plan's ``clip_columns``, `NO_TRUTH_COLUMNS` for a
    noisy clip without truth): for cleaning, MPJPE, PA-MPJPE and acceleration error; for missing joints, the pose
    error and the global error of the missing joints; for missing frames, the mean error and the max (a gap) or the
    last frame's (an open end)."""
    from . import metrics as M

    motion = result.motion
    sk = motion.skeleton
    mv = sk.subtree(sk.root)
    p = motion.global_positions()[:, mv]
    if mask.noisy and truth is None:
        q = given.global_positions()[:, mv]
        return [float(M.accel(p)), float(M.mpjpe(p, q)), result.seconds]
    g = truth.global_positions()[:, mv]
    if mask.noisy:
        return [float(M.mpjpe(p, g)), float(M.pa_mpjpe(p, g)), float(M.accel_error(p, g)), result.seconds]
    err = frame_errors(truth, motion, mask)
    if _parts_missing(mask):
        rows = ~mask.joints.all(1)
        missing = _missing_joints(truth, mask)
        glob = M.mpjpe(motion.global_positions()[rows], truth.global_positions()[rows], joints=missing or None)
        return [float(err[rows].mean()), float(glob), result.seconds]
    rows = ~mask.frames
    if not rows.any():
        return [None, None, result.seconds]
    open_end = not mask.frames[int(np.argmax(rows)):].any()  # nothing observed after the first missing frame
    return [float(err[rows].mean()), float(err[rows][-1] if open_end else err[rows].max()), result.seconds]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def clip_section(task: str, title: str, folder: Path, stem: str, truth, given, mask, results: list[Result],
                 notes: Sequence[str] = (), warnings: Sequence[str] = (), caption: str = ""):
    """A `viz.report.Section` for one clip: the animation (truth, input for denoising, each result; observed parts
    grey), per-frame error curves against the truth (when there is one), a numbers table and every motion as BVH
    under ``folder/files``."""
    from .io import save_motion
    from .viz.plots import plot_error_curves
    from .viz.render import render
    from .viz.report import Media, Section, Table

    shown: list[Result] = []
    if truth is not None:
        shown.append(Result("ground truth", truth, role="truth"))
    if mask.noisy:
        shown.append(Result("noisy input" if truth is not None else "input", given, role="input"))
    shown += results
    masks = [None if r.role in ("truth", "input") and mask.noisy else mask for r in shown]
    gif = render([r.motion for r in shown], folder / f"{stem}.gif", masks=masks, titles=[r.title for r in shown],
                 size=PANEL)
    section = Section(title, notes=list(notes), warnings=list(warnings), anchor=stem)
    section.media.append(Media(gif, caption or ("observed parts grey, synthesised parts in colour"
                                                if not mask.noisy else "every part is an estimate (colour)")))
    if truth is not None:
        curves = {r.title: frame_errors(truth, r.motion, mask) for r in shown if r.role != "truth"}
        what = "root-relative MPJPE of the missing joints" if _parts_missing(mask) else "MPJPE"
        png = plot_error_curves(curves, folder / f"{stem}_error.png", ylabel=f"{what} (cm)",
                                title=f"{role_noun(task).capitalize()}: per-frame error on this clip")
        section.media.append(Media(png, "per-frame error against the ground truth"))
    columns = NO_TRUTH_COLUMNS if mask.noisy and truth is None else plan(task).clip_columns
    listed = [r for r in shown if r.role != "truth"]
    rows = [[r.title, *clip_numbers(truth, given, r, mask)] for r in listed]
    table = Table(["this clip", *columns], rows, caption="The clip shown")
    if truth is not None:
        learned = [i for i, r in enumerate(listed) if r.role == "learned"]
        loss_note(table, learned, [i for i, r in enumerate(listed) if r.role == "baseline"],
                  " / ".join(dict.fromkeys(listed[i].title.split(" #")[0] for i in learned)))
    section.tables.append(table)
    (folder / "files").mkdir(exist_ok=True)
    for r in shown:
        path = folder / "files" / f"{stem}_{_slug(r.title)}.bvh"
        save_motion(r.motion, path)
        section.files.append(Media(path, f"{r.title} (BVH)"))
    return section


# ---- what the numbers mean, and where a learned model loses ---------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """What a table column measures: ``pattern`` (a regular expression matched at the start of the column's name),
    ``what`` (in words), ``unit``, ``better``: "lower", "higher" or "" (neither: a cost or a count, never marked)."""

    pattern: str
    what: str
    unit: str
    better: str


METRICS = (
    Metric(r"L2Q", "distance between the global joint rotations (unit quaternions) of the result and of the truth, "
                   "over the missing frames (LAFAN1's L2Q)", "none (quaternion distance)", "lower"),
    Metric(r"L2P", "distance between global joint positions, each coordinate divided by its spread over the training "
                   "data (LAFAN1's L2P)", "none (standard deviations)", "lower"),
    Metric(r"NPSS", "normalised power-spectrum similarity: how far the frequency content of the result's joint "
                    "rotations is from the truth's (Gopalakrishnan et al. 2019)", "none", "lower"),
    Metric(r"PA-MPJPE", "MPJPE after each frame is aligned to the truth by the best rotation, translation and scale "
                        "(Procrustes): the shape of the pose alone", "cm", "lower"),
    Metric(r"MPJPE root-rel", "mean per-joint position error of the missing joints after each frame's root position "
                              "is subtracted from result and truth: the pose, not where the body is", "cm", "lower"),
    Metric(r"MPJPE local", "as root-relative, with each body also turned to face forward: the pose alone, not which "
                           "way it faces", "cm", "lower"),
    Metric(r"MPJPE global", "mean per-joint position error of the missing joints in world space: it counts where the "
                            "root was put", "cm", "lower"),
    Metric(r"MPJPE", "mean per-joint position error: the mean distance between the result's joints and the truth's "
                     "(over the frames or joints the column names)", "cm", "lower"),
    Metric(r"max cm", "the largest per-frame error over the missing frames", "cm", "lower"),
    Metric(r"last frame cm", "the error of the last predicted frame, the farthest from what was given", "cm", "lower"),
    Metric(r"\d+ frames \(cm\)", "MPJPE that many frames after the last given frame", "cm", "lower"),
    Metric(r"1-\d+ \(cm\)", "MPJPE averaged over every predicted frame", "cm", "lower"),
    Metric(r"ACCEL error", "mean difference between the joint accelerations of the result and of the truth: jitter "
                           "left in, or motion smoothed away", "cm/frame²", "lower"),
    Metric(r"ACCEL", "mean joint acceleration: how jittery the motion is", "cm/frame²", "lower"),
    Metric(r"mean change from input", "mean distance between the joints of the output and of the noisy input",
           "cm", ""),
    Metric(r"foot skate", "mean horizontal speed of the feet (toes and ankles) while they touch the floor: feet that "
                          "slide", "cm/s", "lower"),
    Metric(r"time s", "seconds the method took on this clip on this machine (a cost, not a quality)", "s", ""),
    Metric(r"recognised \(accuracy\)", "fraction of the generated clips that the action classifier recognises as the "
                                       "label asked for", "fraction, 0–1", "higher"),
    Metric(r"real clips' accuracy", "the classifier's accuracy on real test clips of the label: the reference for the "
                                    "generated ones", "fraction, 0–1", "higher"),
    Metric(r"FID", "Fréchet distance between Gaussians fitted to the classifier's embeddings of generated and of real "
                   "clips: realism and coverage together", "none (squared embedding distance)", "lower"),
    Metric(r"diversity", "mean distance between the classifier's embeddings of random pairs of clips, any labels: "
                         "variety; the real clips' value is the target", "embedding distance", "higher"),
    Metric(r"multimodality", "mean distance between the embeddings of random pairs of clips of the same label: "
                             "variety within a label; the real clips' value is the target", "embedding distance",
           "higher"),
    Metric(r"samples", "generated clips behind the row", "count", ""),
    Metric(r"recognised ", "the label the action classifier finds most probable in the clip", "label", ""),
    Metric(r"probability", "the classifier's probability for that label", "0–1", "higher"),
)
"""The columns of the demo's and the report's tables, explained on the page (`metrics_table`)."""


def metric_of(column: str) -> Metric | None:
    """The `Metric` of a table column, None for a column that is no measurement (method, label, …)."""
    return next((m for m in METRICS if re.match(m.pattern, column)), None)


def metrics_table(tables) -> Table:
    """A `viz.report.Table` explaining every measured column of ``tables``: what, unit, which way is better."""
    from .viz.report import Table

    seen: dict[str, tuple] = {}
    for table in tables:
        for column in table.columns:
            m = metric_of(column)
            if m is not None and column not in seen:
                seen[column] = (column, m.what, m.unit, f"{m.better} is better" if m.better else "–")
    return Table(["column", "what it measures", "unit", "better"], list(seen.values()),
                 caption="What the numbers mean", text=True)


def _shown_value(value):
    """A cell's number as the page shows it (`viz.report.fmt`), so that a difference too small to see is none."""
    from .viz.report import fmt

    try:
        return float(fmt(value))
    except (TypeError, ValueError):
        return None


def mark_losses(table, learned: list[int], baselines: list[int]) -> list[str]:
    """Mark (`viz.report.Table.marked`) the cells of the ``learned`` rows that are worse than the best of the
    ``baselines`` rows in a column with a direction (`METRICS`); → one phrase per marked cell, e.g. "MPJPE global cm
    24.1 against mean-pose's 18.3"."""
    from .viz.report import fmt

    phrases = []
    for c, column in enumerate(table.columns):
        m = metric_of(column)
        if m is None or m.better not in ("lower", "higher"):
            continue
        pick = min if m.better == "lower" else max
        base = [(_shown_value(table.rows[r][c]), str(table.rows[r][0])) for r in baselines]
        base = [b for b in base if b[0] is not None]
        if not base:
            continue
        best, name = pick(base, key=lambda b: b[0])
        for r in learned:
            value = _shown_value(table.rows[r][c])
            if value is not None and value != best and pick(value, best) == best:
                table.marked.add((r, c))
                phrases.append(f"{column} {fmt(value)} against {name}'s {fmt(best)}"
                               + (f" ({table.rows[r][0]})" if len(learned) > 1 else ""))
    return phrases


def loss_note(table, learned: list[int], baselines: list[int], who: str) -> list[str]:
    """Mark where ``who`` (the learned rows) loses to a baseline and say so under the table (``Table.note``); → the
    phrases (`mark_losses`)."""
    if not learned or not baselines:
        return []
    phrases = mark_losses(table, learned, baselines)
    table.note = (f"Red: where {who} is worse than the best baseline — {'; '.join(phrases)}." if phrases else
                  f"{who} is at least as good as every baseline in every quality column here.")
    return phrases


# ---- the benchmark's numbers ------------------------------------------------------------------------------------------
def bench_table(task: str, records: list[tuple[str, dict]], windows: int) -> "object":
    """The harness's rows of several methods as one `viz.report.Table` (one row per method): the plan's
    ``bench_columns`` of each record's first result row, else the bench summary's columns (`Protocol.columns`); a
    "noisy input" row first where the records score the input too (cleaning); a tuned baseline's parameters."""
    from .tasks import TASKS
    from .viz.report import Table

    caption = f"Benchmark protocol on {windows} test windows (`motionsynth bench {task}`)"
    protocol = TASKS[task].protocol()
    learned = [name for name, rec in records if rec.get("checkpoint_hash") is not None]
    if not protocol.demo.bench_columns:
        cols = protocol.columns(records[0][1]["settings"])
        rows = [[name, *[cell(rec) for _, cell in cols]] for name, rec in records]
        table = Table(["method", *[c for c, _ in cols]], rows, caption)
        loss_note(table, [i for i, (n, _) in enumerate(records) if n in learned],
                  [i for i, (n, _) in enumerate(records) if n not in learned], " / ".join(learned))
        return table
    cols = protocol.demo.bench_columns
    rows = []
    first = records[0][1]["results"][0]
    if "input_mpjpe_cm" in first:
        rows.append(["noisy input", *[first.get(f"input_{k}") for k, _ in cols]])
    skip = len(rows)
    for name, rec in records:
        row = rec["results"][0]
        params = row.get("params") if protocol.tunes and rec.get("checkpoint_hash") is None else None
        label = f"{name} ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else name
        rows.append([label, *[row.get(k) for k, _ in cols]])
    table = Table(["method", *[c for _, c in cols]], rows, caption)
    loss_note(table, [skip + i for i, (n, _) in enumerate(records) if n in learned],
              [skip + i for i, (n, _) in enumerate(records) if n not in learned], " / ".join(learned))
    return table


def _bench(task, cache, windows, seed, **kw) -> dict:
    from .bench.protocol import run_benchmark

    return run_benchmark(task, cache, settings=dict(plan(task).settings), seed=seed, limit=windows, progress=False,
                         **kw)


def _baseline(name: str, cache, seed: int):
    """A baseline by name, fitted on the train split when it learns (nearest neighbour, mean pose)."""
    from .bench.protocol import fit_method, make_method

    method = make_method(name)
    if method.needs_fit:
        fit_method(method, cache, None, seed)
    return method


def _shown_window(cache, task: str, windows: int) -> tuple[object, dict]:
    """The benchmark window shown for ``task`` (a motion of the protocol's window length) and where it comes from:
    its index among the benchmark's windows, its take, first frame and labels."""
    from .bench.protocol import iter_clips, resolve_settings, split_windows

    s = resolve_settings(task, plan(task).settings)
    wins = split_windows(cache, "test", s["window"], s["stride"], windows)
    want = plan(task).shown
    pick = next((i for i, (t, _) in enumerate(wins) if cache.takes[int(t)].labels.get("content") == want),
                len(wins) // 2)
    [clip] = list(iter_clips(cache, wins[pick:pick + 1], s["window"]))
    take = cache.takes[int(wins[pick][0])]
    return clip, {"window": pick, "take": take.name, "start": int(wins[pick][1]), **dict(take.labels)}


def demo_task(task: str, cache, choice: Choice, folder: Path, windows: int, seed: int, log=None):
    """One task's section: the harness on ``windows`` test windows for the baseline(s) and the learned model, and
    one of those windows shown (`DemoPlan.request` made by the task, `tasks.Task.make`); ``log``: a
    `progress.Lines` told of each step. Returns (section, records)."""
    from .bench.protocol import hide, make_method, resolve_settings
    from .data.noise import NOISE_MODELS, NoiseConfig, add_noise
    from .progress import Lines
    from .registry import load_method
    from .tasks import TASKS

    log = log or Lines(quiet=True)
    the_task, the_plan = TASKS[task], plan(task)
    protocol = the_task.protocol()
    base_name = cast(str, the_task.baseline)  # the demo's tasks with a section of their own name one
    records: list[tuple[str, dict]] = []
    warnings, notes = [], []
    cls = _method_class(choice.family)
    if cls is not None and cls.slow and windows > SLOW_WINDOWS:
        windows = SLOW_WINDOWS
        notes.append(f"{windows} benchmark windows only: {choice.family} models are slow on a CPU.")
    noun = the_task.noun
    with log.step(f"{noun}: {base_name} on {_windows(windows)}"
                  + (" (tuned on validation windows first)" if protocol.tunes else "")):
        if protocol.tunes:  # tuned on val windows by the harness; the chosen parameters are reused for the clip
            rec = _bench(task, cache, windows, seed, method_name=base_name)
            baseline = make_method(base_name, **rec["results"][0]["params"])
        else:
            baseline = _baseline(base_name, cache, seed)
            rec = _bench(task, cache, windows, seed, method=baseline)
    records.append((base_name, rec))
    for extra in the_plan.baselines:
        with log.step(f"{noun}: {extra} on {_windows(windows)}"):
            kw = {"method_name": extra} if protocol.tunes else {"method": _baseline(extra, cache, seed)}
            records.append((extra, _bench(task, cache, windows, seed, **kw)))
    learned = None
    if choice.path is not None:
        label = f"{choice.value} ({choice.family})"
        try:
            with log.step(f"{noun}: {choice.value} on {_windows(windows)}"):
                learned = load_method(choice.path, **cls.quick_options(task))
                records.append((label, _bench(task, cache, windows, seed, method=learned, model=str(choice.path))))
        except MotionsynthError as e:
            warnings.append(f"the model {choice.value} failed: {e}")
            learned = None
    else:
        warnings.append(choice.note + "; the baseline is shown alone")

    clip, info = _shown_window(cache, task, windows)
    request = the_plan.request(clip, resolve_settings(task, the_plan.settings))
    mask = the_task.make(request).mask
    truth = request.motion
    if mask.noisy:  # the noise the harness gave this window (`bench.protocol._noisy`)
        noise = resolve_settings(task, the_plan.settings)["noise_models"][0]
        given = add_noise(truth, noise, [seed, 0, info["window"], NOISE_MODELS.index(noise)], NoiseConfig())
    else:
        given = hide(truth, mask)
    with log.step(f"{noun}: the clip shown (methods, animation, error curves)"):
        results = run_method(base_name, baseline, given, mask, "baseline", seed=seed)
        if learned is not None:
            try:
                results += run_method(f"{choice.value}", learned, given, mask, "learned", seed=seed)
            except MotionsynthError as e:
                warnings.append(f"the model {choice.value} failed on the clip: {e}")
        notes.append(f"Test take {info['take']}, frames {info['start']}–{info['start'] + truth.num_frames - 1} "
                     f"({', '.join(f'{k} {v}' for k, v in info.items() if k not in ('window', 'take', 'start'))}); "
                     + the_plan.note)
        if choice.path is not None:
            notes.append(f"Learned model: {choice.value} ({choice.family}, {choice.note}).")
        section = clip_section(task, the_plan.title, folder, task, truth, given, mask, results, notes, warnings)
    bench = bench_table(task, records, windows)
    section.tables.append(bench)
    losses = [f"{where}: {', '.join(marked)}"
              for where, marked in (("on the benchmark windows", _marked_columns(bench)),
                                    ("on the clip shown", _marked_columns(section.tables[0]))) if marked]
    if losses:
        section.warnings.append(f"Where {choice.value} loses to a baseline (red cells): {'; '.join(losses)}.")
    section.tables.append(metrics_table(section.tables))
    return section, records


def _windows(n: int) -> str:
    return f"{n} test window{'' if n == 1 else 's'}"


def _marked_columns(table) -> list[str]:
    """The columns with a marked (worse) cell, in order."""
    return [c for j, c in enumerate(table.columns) if any((i, j) in table.marked for i in range(len(table.rows)))]


# ---- generation ---------------------------------------------------------------------------------------------------
# Generation metrics are shown only at sample sizes where they mean something. FID fits a Gaussian — a D × D
# covariance of the classifier's D-dimensional embedding (128 for the shipped classifier) — to each set of clips:
# with fewer clips than a few times D its small-sample bias outweighs the differences between generators (at the
# demo's size, real clips score a worse FID than generated ones). The full protocol (`motionsynth bench generate`)
# asks 100 samples of each of 10 labels: 1,000 clips. Multimodality draws its pairs with replacement among the
# samples of a label: with 4 of them a quarter of its pairs are a clip with itself.
FID_MIN_CLIPS = 1000
MULTIMODALITY_MIN_PER_LABEL = 20


def generation_rows(record: dict, samples_per_label: int) -> tuple[list[list], list[str]]:
    """The demo's generation table rows from a ``generate`` record, with FID and multimodality left out (None) below
    `FID_MIN_CLIPS` / `MULTIMODALITY_MIN_PER_LABEL`; → (rows, notes saying what was left out and why)."""
    results = record["results"]
    generated = next((r["samples"] for r in results if r["data"] == "generated" and r["label"] == "all"), 0) or 0
    real = int(record["settings"].get("real_test_clips") or 0)
    show_fid = min(generated, real) >= FID_MIN_CLIPS
    show_mm = samples_per_label >= MULTIMODALITY_MIN_PER_LABEL
    notes = []
    if not show_fid:
        notes.append(f"FID is left out (–): it fits a covariance of the classifier's embedding to each set of clips "
                     f"and is only meaningful with at least {FID_MIN_CLIPS:,} clips on each side; here "
                     f"{generated} generated and {real} real clips (at this size even real clips score worse than "
                     f"generated ones). `motionsynth bench generate` (100 samples per label, 5 repetitions) gives it.")
    if not show_mm:
        notes.append(f"Multimodality is left out (–): its pairs are drawn among the samples of one label, and with "
                     f"{samples_per_label} per label many are a clip with itself; it needs at least "
                     f"{MULTIMODALITY_MIN_PER_LABEL} per label.")
    rows = [[r["label"] if r["data"] == "generated" else "real test clips", r["accuracy"], r["real_accuracy"],
             r["fid"] if show_fid else None, r["diversity"], r["multimodality"] if show_mm else None,
             r["foot_skate"], r["samples"]] for r in results]
    return rows, notes


def demo_generate(cache, choice: Choice, classifier: Choice, folder: Path, windows: int, seed: int,
                  samples_per_label: int = 4, log=None):
    """Generated clips for a few labels beside real test clips of those labels (the classifier's reading in each
    title), and the harness's ``generate`` protocol on ``samples_per_label`` samples per label (FID and
    multimodality only at sizes where they mean something, `generation_rows`); ``log``: a `progress.Lines`."""
    from .bench.protocol import run_benchmark
    from .bench.recognition import Recognizer
    from .io import save_motion
    from .progress import Lines
    from .registry import load_method
    from .viz.render import render
    from .viz.report import Media, Section, Table

    log = log or Lines(quiet=True)
    section = Section(role_title(choice.task), anchor=choice.task)
    gen, rec = None, None
    if choice.path is not None:
        try:
            gen = load_method(choice.path, **_method_class(choice.family).quick_options(choice.task))
        except MotionsynthError as e:
            section.warnings.append(f"the model {choice.value} failed: {e}")
    else:
        section.warnings.append(choice.note + "; real test clips of the labels are shown alone")
    if classifier.path is not None:
        try:
            rec = Recognizer(classifier.path)
        except MotionsynthError as e:
            section.warnings.append(f"the classifier {classifier.value} failed: {e}")
    else:
        section.warnings.append(classifier.note + ": the generated clips are not scored")
    vocab = getattr(gen, "vocabulary", None) or {}
    kind = rec.kinds[0] if rec is not None else next(iter(vocab), "content")
    names = list(vocab.get(kind) or (rec.labels[kind] if rec is not None else cache.label_names.get(kind, [])))
    shown = [n for n in GENERATE_SHOWN if n in names] or names[:3]
    frames = int(getattr(gen, "window", None) or (rec.window if rec is not None else 64))
    with log.step(f"generation: a clip per label ({', '.join(map(str, shown)) or 'no label'}), real and generated"):
        motions, titles = _generation_clips(cache, gen, choice, section, kind, shown, frames, seed)
        if motions:
            gif = render(motions, folder / "generate.gif", titles=titles, size=PANEL)
            section.media.append(Media(gif, f"real test clips and generated clips ({frames} frames) per {kind} "
                                            f"label"))
            (folder / "files").mkdir(exist_ok=True)
            for motion, title in zip(motions, titles):
                path = folder / "files" / f"generate_{_slug(title)}.bvh"
                save_motion(motion, path)
                section.files.append(Media(path, f"{title} (BVH)"))
        if rec is not None and motions:
            probs, _ = rec.score_motions(motions)
            rows = []
            for i, t in enumerate(titles):
                [(top, p)] = rec.top({k: v[i] for k, v in probs.items()}, 1)[kind]
                rows.append([t, top, p])
            section.tables.append(Table(["clip shown", f"recognised {kind}", "probability"], rows,
                                        caption="What the action classifier recognises in the clips shown"))
    section.notes.append(f"Each generated clip is asked for one {kind} label (nothing observed: every part "
                         "synthesised, in colour)." + (f" Generator: {choice.value} ({choice.family}, {choice.note})."
                                                       if gen is not None else ""))
    if rec is not None:
        section.notes.append(f"Classifier: {classifier.value} ({classifier.note}).")
    records = []
    if gen is not None and rec is not None:
        settings = {"classifier": rec, "samples_per_label": samples_per_label, "repetitions": 1}
        with log.step(f"generation: the benchmark protocol, {samples_per_label} samples per label"):
            record = run_benchmark(choice.task, cache, method=gen, model=str(choice.path), settings=settings,
                                   seed=seed, limit=max(windows, 64), progress=False)
        record["settings"]["classifier"] = str(classifier.path)
        records.append((str(choice.value), record))
        rows, left_out = generation_rows(record, samples_per_label)
        section.tables.append(Table(["label", "recognised (accuracy)", "real clips' accuracy", "FID", "diversity",
                                     "multimodality", "foot skate cm/s", "samples"], rows,
                                    caption=f"`motionsynth bench generate`, {samples_per_label} samples per label, "
                                            f"one repetition, against {record['settings'].get('real_test_clips')} "
                                            f"real test clips", note=" ".join(left_out)))
    if section.tables:
        section.tables.append(metrics_table(section.tables))
    return section, records


def _generation_clips(cache, gen, choice: Choice, section, kind: str, shown: list, frames: int, seed: int):
    """Per shown label, a real test clip (the middle one of the label's windows) and a generated one → (motions,
    titles); a label the generator refuses becomes a warning of ``section``."""
    from .bench.protocol import iter_clips, split_windows
    from .ops import rest_motion
    from .tasks import generate_mask

    sk, fps = cache.skeleton, float(cache.fps)
    motions, titles = [], []
    for i, name in enumerate(shown or [None]):  # no label known: one unconditional sample
        if name is not None:
            try:
                wins = split_windows(cache, "test", frames, frames, None, {kind: [name]})
                [real] = list(iter_clips(cache, wins[len(wins) // 2:len(wins) // 2 + 1], frames))
                motions.append(real)
                titles.append(f"real {name}")
            except MotionsynthError:
                pass
        if gen is not None:
            try:
                [sample] = gen.complete(rest_motion(sk, frames, fps), generate_mask(frames, len(sk)),
                                        label={kind: name} if name else None, n_samples=1, seed=seed + i).samples
                motions.append(sample)
                titles.append(f"generated {name or '(no label)'}")
            except MotionsynthError as e:
                section.warnings.append(f"{choice.value} could not generate {kind}={name}: {e}")
    return motions, titles


# ---- the page ------------------------------------------------------------------------------------------------------
def models_table(choices: dict[str, Choice]):
    from .viz.report import Table

    rows = [[role_title(t), c.value or "none", c.family or "–", str(c.path) if c.path else "–", c.note]
            for t, c in choices.items()]
    return Table(["task", "model", "family", "checkpoint folder", "why"], rows, caption="Models used")


def run_demo(cache, out: Path, overrides: dict[str, str] | None = None, windows: int = 32, seed: int = 0,
             tasks=None, log=None) -> Path:
    """Every task of ``tasks`` (default: `demo_tasks`) on the cache's test split → ``out/index.html`` (built in a
    temporary folder, moved into ``out`` once complete); ``log``: a `progress.Lines` told of every step (none: quiet).
    Returns the page's path."""
    import torch

    from .progress import Lines
    from .tasks import TASKS
    from .viz.report import staged, write_page

    log = log or Lines(quiet=True)
    if windows < 1:
        raise MotionsynthError(f"--windows must be at least 1, got {windows}")
    out = Path(out)
    start = time.perf_counter()
    tasks = demo_tasks() if tasks is None else list(tasks)
    generates = [t for t in tasks if not TASKS[t].needs_motion]  # nothing observed: scored by the classifier
    choices = choose_models(overrides, tasks=tuple(tasks) + ((CLASSIFY,) if generates else ()))
    for c in choices.values():
        console.print(f"  {role_title(c.task):<40} {c.value or '[yellow]' + c.note + '[/]'}")
    np.random.seed(seed)
    torch.manual_seed(seed)
    sections, records = [], {}
    with staged(out) as folder:
        for k, task in enumerate(tasks):
            t0 = time.perf_counter()
            log.say(f"{role_title(task)} ({k + 1} of {len(tasks)})")
            if task in generates:
                section, recs = demo_generate(cache, choices[task], choices[CLASSIFY], folder, windows, seed, log=log)
            else:
                section, recs = demo_task(task, cache, choices[task], folder, windows, seed, log=log)
            seconds = time.perf_counter() - t0
            section.notes.append(f"This section took {seconds:.0f} s.")
            sections.append(section)
            records[task] = [{"method": name, **rec} for name, rec in recs]
        with open(folder / "numbers.json", "w") as f:
            json.dump(records, f, indent=1, default=str)
        info = cache.info()
        total = time.perf_counter() - start
        intro = [f"Held-out test clips of {info['dataset']} ({info['takes']} takes, {info['hours']:.2f} h at "
                 f"{info['fps']:g} fps); every learned model beside the best baseline of the benchmark "
                 f"(docs/BENCHMARKS.md). Numbers: the benchmark harness on {windows} evenly spaced test windows "
                 f"per task (seed {seed}); numbers.json holds every record. Each section ends with what its "
                 f"columns measure, their unit and which way is better; red cells are where the learned model is "
                 f"worse than a baseline, and the section says so at its top.",
                 f"Made by `python -m motionsynth.demo` in {total:.0f} s on {torch.get_num_threads()} torch "
                 f"thread(s)."]
        footer = ["The Bandai Namco Research Motion Dataset and every model trained on it are CC BY-NC 4.0 "
                  "(non-commercial)."]
        write_page(folder, "motionsynth demo: every task, learned vs baseline", sections, intro,
                   [models_table(choices)], footer)
    return out / "index.html"


def main(data_dir: Path = typer.Option(Path("../shared/data"), help="folder holding bandai-namco-motion-2.zip"),
         cache: Path = typer.Option(Path("cache/bandai2"), help="cache folder (prepared once)"),
         out: Path = typer.Option(Path("out/demo"), help="output folder (index.html + files)"),
         model: Annotated[Optional[list[str]], typer.Option(
             "--model", help="TASK=NAME_OR_PATH: the model for a task (a task command's name) or for classify (the "
                             "classifier that scores generation): a shipped name, a run folder or a checkpoint "
                             "folder; repeatable. Default: the shipped models.")] = None,
         windows: int = typer.Option(32, help="test windows per task for the numbers"),
         seed: int = typer.Option(0, help="random seed")) -> None:
    """Every task on held-out Bandai Namco clips, learned models beside the baselines, on one HTML page."""
    try:
        from .progress import Lines

        log = Lines()
        overrides = parse_model_overrides(model or [])
        with log.step(f"data: the prepared cache {cache}"):
            c = open_or_prepare(data_dir, cache)
        info = c.info()
        log.say(f"dataset: {info['takes']} takes, {info['frames']} frames ({info['hours']:.2f} h) at "
                f"{info['fps']:g} fps, {info['joints']} joints")
        page = run_demo(c, out, overrides, windows, seed, log=log)
        log.say(f"wrote {page} in {log.elapsed():.0f} s")
    except MotionsynthError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None


if __name__ == "__main__":
    typer.run(main)
