"""`make demo`: every task on held-out Bandai Namco test clips, each learned model beside its best baseline, on one
HTML page (``out/demo/index.html``).

1. finds ``bandai-namco-motion-2.zip`` in the data folder (or downloads the public dataset there) and prepares the
   memory-mapped cache (once);
2. picks a model per task (`choose_models`): ``--model TASK=NAME_OR_PATH`` if given, else the first shipped model
   of `PREFERRED` (`checkpoint.shipped_models`) whose family can do the task; when none ships, the section says so
   and shows the baseline alone — the demo never needs a model to run;
3. per task, runs the benchmark harness (`bench.protocol.run_benchmark`, its windows, masks and metrics) for the
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
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console

from .errors import MotionsynthError

console = Console(stderr=True)
ZIP_NAME = "bandai-namco-motion-2.zip"

TASKS = ("inbetween", "complete", "denoise", "predict", "generate")
ROLES = TASKS + ("classify",)  # what --model TASK=… may name: the tasks and the classifier that scores generation
TITLES = {"inbetween": "In-betweening", "complete": "Completion (lower body missing)",
          "denoise": "Denoising (estimator-like mixed noise)", "predict": "Prediction",
          "generate": "Label-conditioned generation", "classify": "Action recognition"}
NAMES = {"inbetween": "in-betweening", "complete": "completion", "denoise": "denoising", "predict": "prediction",
         "generate": "label-conditioned generation", "classify": "action recognition"}
# Shipped models the demo looks for, per task, in order of preference.
PREFERRED = {
    "inbetween": ("cvae-bandai", "diffusion-cond-bandai", "hmvae-bandai", "diffusion-bandai"),
    "complete": ("diffusion-cond-bandai", "hmvae-bandai", "cvae-bandai", "diffusion-bandai"),
    "denoise": ("meva-bandai", "diffusion-bandai", "hmvae-bandai"),
    "predict": ("cvae-bandai", "diffusion-cond-bandai", "diffusion-bandai", "hmvae-bandai"),
    "generate": ("diffusion-bandai", "cvae-bandai"),
    "classify": ("classifier-bandai",),
}
_PRIOR = frozenset({"inbetween", "complete", "denoise", "predict"})
# What a checkpoint of each family can be used for here (its method refuses the rest; the HM-VAE prior takes no label).
CAPABLE = {"hmvae": _PRIOR, "hmvae-m": _PRIOR, "hmvae-tcn": _PRIOR, "meva": frozenset({"denoise"}),
           "cvae": frozenset({"inbetween", "complete", "predict", "generate"}), "diffusion": frozenset(TASKS),
           "classifier": frozenset({"classify"})}
# The best baseline per task on the benchmark (docs/BENCHMARKS.md); `EXTRA_BASELINES` only add table rows.
BASELINE = {"inbetween": "slerp", "complete": "nearest-neighbour", "denoise": "smooth", "predict": "constant-velocity"}
EXTRA_BASELINES = {"complete": ("mean-pose",), "denoise": ("gaussian",), "inbetween": ("zero-velocity",)}
# Benchmark settings of the demo (the harness's defaults otherwise); tuning of the filters on 16 val windows.
DEMO_SETTINGS = {"inbetween": {"gaps": [30]}, "complete": {"missing": ["lower_body"]},
                 "denoise": {"noise_models": ["mixed"], "tune_windows": 16}, "predict": {}}
# The test window shown per task: the first of the benchmark's windows whose take has this content label.
SHOWN_CONTENT = {"inbetween": "walk-turn-left", "complete": "walk", "denoise": "raise-up-both-hands", "predict": "run"}
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
        if key not in ROLES:
            raise MotionsynthError(f"--model {item!r}: unknown task {key!r}; use one of {', '.join(ROLES)}")
        if not value:
            raise MotionsynthError(f"--model {item!r}: give a shipped model name, a run folder or a checkpoint folder")
        out[key] = value
    return out


def choose_models(overrides: dict[str, str] | None = None, tasks=ROLES, root=None) -> dict[str, Choice]:
    """A `Choice` per task: the override if given (checked now: a clear error for a bad one, or a model that cannot
    do the task), else the first shipped model of `PREFERRED` whose family can do it, else none (with a note)."""
    from .checkpoint import read_checkpoint, resolve_model, shipped_models

    overrides = dict(overrides or {})
    shipped = shipped_models(root)
    out = {}
    for task in tasks:
        if task in overrides:
            value = overrides[task]
            path = resolve_model(value, root)
            family = read_checkpoint(path).family
            if task not in CAPABLE.get(family, ()):
                able = sorted(f for f, t in CAPABLE.items() if task in t)
                raise MotionsynthError(f"--model {task}={value}: a {family} model cannot be used for {NAMES[task]} "
                                       f"here; families that can: {', '.join(able)}")
            out[task] = Choice(task, value, path, family, "given by --model")
            continue
        skipped = []
        for name in PREFERRED[task]:
            entry = shipped.get(name)
            if entry is None:
                continue
            family = str(entry.get("family", ""))
            if task not in CAPABLE.get(family, ()):
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
            note = (f"no shipped model for {NAMES[task]} (looked for {', '.join(PREFERRED[task])}"
                    + (f"; unusable: {'; '.join(skipped)}" if skipped else "") + ")")
            out[task] = Choice(task, note=note)
    return out


# At most this many benchmark windows per task when the task's model is of a slow family (the HM-VAE optimises its
# latent per window: ≈ 8 s a window with 4 restarts on one CPU thread), so that the demo stays within minutes.
WINDOW_CAP = {"hmvae": 8, "hmvae-m": 8, "hmvae-tcn": 8}


def method_options(family: str | None, task: str) -> dict:
    """Options of a family's method for the demo's time budget (the HM-VAE's latent optimisation is the slow one)."""
    if family in ("hmvae", "hmvae-m", "hmvae-tcn"):
        return {"refine": "overlap"} if task == "denoise" else {"restarts": 4, "phase1_iters": 50,
                                                                 "phase2_iters": 100}
    return {}


# ---- one clip: run methods, measure, render -------------------------------------------------------------------------
@dataclass
class Result:
    """One panel and table row: a method's output on the clip (``seconds``: its run time), or the truth / input."""

    title: str
    motion: object
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


def frame_errors(task: str, truth, motion, mask) -> np.ndarray:
    """(T,) per-frame error (cm) of ``motion`` against ``truth``: MPJPE over the moving joints; for completion over
    the missing joints, root-relative (the pose, not where the root was guessed to be)."""
    from . import metrics as M

    sk = truth.skeleton
    g, p = truth.global_positions(), motion.global_positions()
    if task == "complete":
        return np.asarray(M.mpjpe(M.root_relative(p, sk.root), M.root_relative(g, sk.root),
                                  joints=_missing_joints(truth, mask) or None, reduce=False))
    mv = sk.subtree(sk.root)
    return np.asarray(M.mpjpe(p[:, mv], g[:, mv], reduce=False))


CLIP_COLUMNS = {
    "inbetween": ["MPJPE cm (missing frames)", "max cm", "time s"],
    "predict": ["MPJPE cm (predicted frames)", "last frame cm", "time s"],
    "complete": ["MPJPE root-rel. cm (missing joints)", "MPJPE global cm (missing joints)", "time s"],
    "denoise": ["MPJPE cm", "PA-MPJPE cm", "ACCEL error cm/frame²", "time s"],
    "denoise-no-truth": ["ACCEL cm/frame²", "mean change from input cm", "time s"],
}


def clip_numbers(task: str, truth, given, result: Result, mask) -> list:
    """One table row (the cells of `CLIP_COLUMNS`) for ``result`` on the clip."""
    from . import metrics as M

    motion = result.motion
    sk = motion.skeleton
    mv = sk.subtree(sk.root)
    p = motion.global_positions()[:, mv]
    if task == "denoise" and truth is None:
        q = given.global_positions()[:, mv]
        return [float(M.accel(p)), float(M.mpjpe(p, q)), result.seconds]
    g = truth.global_positions()[:, mv]
    if task == "denoise":
        return [float(M.mpjpe(p, g)), float(M.pa_mpjpe(p, g)), float(M.accel_error(p, g)), result.seconds]
    err = frame_errors(task, truth, motion, mask)
    if task == "complete":
        rows = ~mask.joints.all(1)
        missing = _missing_joints(truth, mask)
        glob = M.mpjpe(motion.global_positions()[rows], truth.global_positions()[rows], joints=missing or None)
        return [float(err[rows].mean()), float(glob), result.seconds]
    rows = ~mask.frames
    if not rows.any():
        return [None, None, result.seconds]
    return [float(err[rows].mean()), float(err[rows].max() if task == "inbetween" else err[rows][-1]),
            result.seconds]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def clip_section(task: str, title: str, folder: Path, stem: str, truth, given, mask, results: list[Result],
                 notes: list[str] = (), warnings: list[str] = (), caption: str = ""):
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
    if task == "denoise":
        shown.append(Result("noisy input" if truth is not None else "input", given, role="input"))
    shown += results
    masks = [None if r.role in ("truth", "input") and task == "denoise" else mask for r in shown]
    gif = render([r.motion for r in shown], folder / f"{stem}.gif", masks=masks, titles=[r.title for r in shown],
                 size=PANEL)
    section = Section(title, notes=list(notes), warnings=list(warnings), anchor=stem)
    section.media.append(Media(gif, caption or ("observed parts grey, synthesised parts in colour"
                                                if task != "denoise" else "every part is an estimate (colour)")))
    if truth is not None:
        curves = {r.title: frame_errors(task, truth, r.motion, mask) for r in shown if r.role != "truth"}
        what = "root-relative MPJPE of the missing joints" if task == "complete" else "MPJPE"
        png = plot_error_curves(curves, folder / f"{stem}_error.png", ylabel=f"{what} (cm)",
                                title=f"{NAMES.get(task, task).capitalize()}: per-frame error on this clip")
        section.media.append(Media(png, "per-frame error against the ground truth"))
    key = "denoise-no-truth" if task == "denoise" and truth is None else task
    rows = [[r.title, *clip_numbers(task, truth, given, r, mask)] for r in shown if r.role != "truth"]
    section.tables.append(Table(["this clip", *CLIP_COLUMNS[key]], rows, caption="The clip shown"))
    (folder / "files").mkdir(exist_ok=True)
    for r in shown:
        path = folder / "files" / f"{stem}_{_slug(r.title)}.bvh"
        save_motion(r.motion, path)
        section.files.append(Media(path, f"{r.title} (BVH)"))
    return section


# ---- the benchmark's numbers ------------------------------------------------------------------------------------------
BENCH_COLUMNS = {
    "inbetween": [("l2q", "L2Q"), ("l2p", "L2P"), ("npss", "NPSS"), ("mpjpe_cm", "MPJPE cm"),
                  ("foot_skate", "foot skate cm/s")],
    "complete": [("mpjpe_rel_cm", "MPJPE root-rel. cm"), ("mpjpe_local_cm", "MPJPE local cm"),
                 ("mpjpe_cm", "MPJPE global cm")],
    "denoise": [("mpjpe_cm", "MPJPE cm"), ("pa_mpjpe_cm", "PA-MPJPE cm"), ("accel_error", "ACCEL error cm/frame²")],
}


def bench_table(task: str, records: list[tuple[str, dict]], windows: int) -> "object":
    """The harness's rows of several methods as one `viz.report.Table` (one row per method)."""
    from .viz.report import Table

    caption = f"Benchmark protocol on {windows} test windows (`motionsynth bench {task}`)"
    if task == "predict":
        horizons = [r["horizon"] for r in records[0][1]["results"]]
        cols = [f"MPJPE cm @{h}" if not isinstance(h, str) else f"MPJPE cm {h}" for h in horizons] + ["NPSS"]
        rows = [[name, *[r["mpjpe_cm"] for r in rec["results"]], rec["results"][-1]["npss"]] for name, rec in records]
        return Table(["method", *cols], rows, caption)
    cols = BENCH_COLUMNS[task]
    rows = []
    if task == "denoise":
        first = records[0][1]["results"][0]
        rows.append(["noisy input", first["input_mpjpe_cm"], first["input_pa_mpjpe_cm"], first["input_accel_error"]])
    for name, rec in records:
        row = rec["results"][0]
        params = row.get("params") if task == "denoise" and rec.get("checkpoint_hash") is None else None
        label = f"{name} ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else name
        rows.append([label, *[row.get(k) for k, _ in cols]])
    return Table(["method", *[c for _, c in cols]], rows, caption)


def _bench(task, cache, windows, seed, **kw) -> dict:
    from .bench.protocol import run_benchmark

    return run_benchmark(task, cache, settings=dict(DEMO_SETTINGS.get(task, {})), seed=seed, limit=windows,
                         progress=False, **kw)


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

    s = resolve_settings(task, DEMO_SETTINGS.get(task))
    wins = split_windows(cache, "test", s["window"], s["stride"], windows)
    want = SHOWN_CONTENT.get(task)
    pick = next((i for i, (t, _) in enumerate(wins) if cache.takes[int(t)].labels.get("content") == want),
                len(wins) // 2)
    [clip] = list(iter_clips(cache, wins[pick:pick + 1], s["window"]))
    take = cache.takes[int(wins[pick][0])]
    return clip, {"window": pick, "take": take.name, "start": int(wins[pick][1]), **dict(take.labels)}


def _task_mask(task: str, cache, clip):
    from . import tasks
    from .bench.protocol import COMPLETE_SETTINGS, DEFAULT_SETTINGS

    sk, T = cache.skeleton, clip.num_frames
    if task == "inbetween":
        s = {**DEFAULT_SETTINGS["inbetween"], **DEMO_SETTINGS["inbetween"]}
        n = s["context"] + s["gaps"][0] + 1
        return clip[:n], tasks.inbetween_mask(n, len(sk), s["context"], s["gaps"][0])
    if task == "complete":
        return clip, tasks.joints_mask(T, sk, COMPLETE_SETTINGS["lower_body"][1](sk))
    if task == "predict":
        return clip, tasks.predict_mask(T, len(sk), DEFAULT_SETTINGS["predict"]["given"])
    return clip, tasks.denoise_mask(T, len(sk))


def demo_task(task: str, cache, choice: Choice, folder: Path, windows: int, seed: int):
    """One task's section: the harness on ``windows`` test windows for the baseline(s) and the learned model, and
    one of those windows shown. Returns (section, records)."""
    from .bench.protocol import hide, make_method
    from .data.noise import NOISE_MODELS, NoiseConfig, add_noise
    from .registry import load_method

    base_name = BASELINE[task]
    records: list[tuple[str, dict]] = []
    warnings, notes = [], []
    if windows > WINDOW_CAP.get(choice.family, windows):
        windows = WINDOW_CAP[choice.family]
        notes.append(f"{windows} benchmark windows only: {choice.family} models are slow on a CPU.")
    if task == "denoise":  # tuned on val windows by the harness; the chosen parameters are reused for the clip
        rec = _bench(task, cache, windows, seed, method_name=base_name)
        baseline = make_method(base_name, **rec["results"][0]["params"])
    else:
        baseline = _baseline(base_name, cache, seed)
        rec = _bench(task, cache, windows, seed, method=baseline)
    records.append((base_name, rec))
    for extra in EXTRA_BASELINES.get(task, ()):
        kw = {"method_name": extra} if task == "denoise" else {"method": _baseline(extra, cache, seed)}
        records.append((extra, _bench(task, cache, windows, seed, **kw)))
    learned = None
    if choice.path is not None:
        label = f"{choice.value} ({choice.family})"
        try:
            learned = load_method(choice.path, **method_options(choice.family, task))
            records.append((label, _bench(task, cache, windows, seed, method=learned, model=str(choice.path))))
        except MotionsynthError as e:
            warnings.append(f"the model {choice.value} failed: {e}")
            learned = None
    else:
        warnings.append(choice.note + "; the baseline is shown alone")

    clip, info = _shown_window(cache, task, windows)
    truth, mask = _task_mask(task, cache, clip)
    if task == "denoise":  # the noise the harness gave this window (`bench.protocol._noisy`)
        given = add_noise(truth, "mixed", [seed, 0, info["window"], NOISE_MODELS.index("mixed")], NoiseConfig())
    else:
        given = hide(truth, mask)
    results = run_method(base_name, baseline, given, mask, "baseline", seed=seed)
    if learned is not None:
        try:
            results += run_method(f"{choice.value}", learned, given, mask, "learned", seed=seed)
        except MotionsynthError as e:
            warnings.append(f"the model {choice.value} failed on the clip: {e}")
    notes.append(f"Test take {info['take']}, frames {info['start']}–{info['start'] + truth.num_frames - 1} "
                 f"({', '.join(f'{k} {v}' for k, v in info.items() if k not in ('window', 'take', 'start'))}); "
                 + TASK_NOTES[task])
    if choice.path is not None:
        notes.append(f"Learned model: {choice.value} ({choice.family}, {choice.note}).")
    section = clip_section(task, TITLES[task], folder, task, truth, given, mask, results, notes, warnings)
    section.tables.append(bench_table(task, records, windows))
    return section, records


TASK_NOTES = {
    "inbetween": "10 context frames and 1 target frame given, the 30 frames between synthesised.",
    "complete": "the upper body is given on every frame; the legs and the root trajectory are synthesised.",
    "denoise": "the clean clip corrupted by the benchmark's mixed noise (drift, jitter, spikes, dropped frames); "
               "the methods see only the noisy input.",
    "predict": "the first 10 frames given, the next 30 predicted.",
}


# ---- generation ---------------------------------------------------------------------------------------------------
def demo_generate(cache, choice: Choice, classifier: Choice, folder: Path, windows: int, seed: int,
                  samples_per_label: int = 4):
    """Generated clips for a few labels beside real test clips of those labels (the classifier's reading in each
    title), and the harness's ``generate`` protocol on ``samples_per_label`` samples per label."""
    from .bench.protocol import iter_clips, run_benchmark, split_windows
    from .bench.recognition import Recognizer
    from .io import save_motion
    from .ops import rest_motion
    from .registry import load_method
    from .tasks import generate_mask
    from .viz.render import render
    from .viz.report import Media, Section, Table

    section = Section(TITLES["generate"], anchor="generate")
    gen, rec = None, None
    if choice.path is not None:
        try:
            gen = load_method(choice.path, **method_options(choice.family, "generate"))
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
    if motions:
        gif = render(motions, folder / "generate.gif", titles=titles, size=PANEL)
        section.media.append(Media(gif, f"real test clips and generated clips ({frames} frames) per {kind} label"))
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
        record = run_benchmark("generate", cache, method=gen, model=str(choice.path), settings=settings, seed=seed,
                               limit=max(windows, 64), progress=False)
        record["settings"]["classifier"] = str(classifier.path)
        records.append((str(choice.value), record))
        rows = [[r["label"] if r["data"] == "generated" else "real test clips", r["accuracy"], r["real_accuracy"],
                 r["fid"], r["diversity"], r["multimodality"], r["foot_skate"], r["samples"]]
                for r in record["results"]]
        section.tables.append(Table(["label", "recognised (accuracy)", "real clips' accuracy", "FID", "diversity",
                                     "multimodality", "foot skate cm/s", "samples"], rows,
                                    caption=f"`motionsynth bench generate`, {samples_per_label} samples per label, "
                                            f"one repetition (FID against {record['settings'].get('real_test_clips')} "
                                            "real test clips: indicative only at this size)"))
    return section, records


# ---- the page ------------------------------------------------------------------------------------------------------
def models_table(choices: dict[str, Choice]):
    from .viz.report import Table

    rows = [[TITLES[t], c.value or "none", c.family or "–", str(c.path) if c.path else "–", c.note]
            for t, c in choices.items()]
    return Table(["task", "model", "family", "checkpoint folder", "why"], rows, caption="Models used")


def run_demo(cache, out: Path, overrides: dict[str, str] | None = None, windows: int = 32, seed: int = 0,
             tasks=TASKS) -> Path:
    """Every task of ``tasks`` on the cache's test split → ``out/index.html`` (built in a temporary folder, moved into
    ``out`` once complete). Returns the page's path."""
    import torch

    from .viz.report import staged, write_page

    if windows < 1:
        raise MotionsynthError(f"--windows must be at least 1, got {windows}")
    out = Path(out)
    start = time.perf_counter()
    choices = choose_models(overrides, tasks=tuple(tasks) + ("classify",) if "generate" in tasks else tasks)
    for c in choices.values():
        console.print(f"  {TITLES[c.task]:<40} {c.value or '[yellow]' + c.note + '[/]'}")
    np.random.seed(seed)
    torch.manual_seed(seed)
    sections, records = [], {}
    with staged(out) as folder:
        for task in tasks:
            t0 = time.perf_counter()
            console.print(f"[bold]{TITLES[task]}[/] …")
            if task == "generate":
                section, recs = demo_generate(cache, choices["generate"], choices["classify"], folder, windows, seed)
            else:
                section, recs = demo_task(task, cache, choices[task], folder, windows, seed)
            seconds = time.perf_counter() - t0
            section.notes.append(f"This section took {seconds:.0f} s.")
            console.print(f"  done in {seconds:.0f} s")
            sections.append(section)
            records[task] = [{"method": name, **rec} for name, rec in recs]
        with open(folder / "numbers.json", "w") as f:
            json.dump(records, f, indent=1, default=str)
        info = cache.info()
        total = time.perf_counter() - start
        intro = [f"Held-out test clips of {info['dataset']} ({info['takes']} takes, {info['hours']:.2f} h at "
                 f"{info['fps']:g} fps); every learned model beside the best baseline of the benchmark "
                 f"(docs/BENCHMARKS.md). Numbers: the benchmark harness on {windows} evenly spaced test windows "
                 f"per task (seed {seed}); numbers.json holds every record.",
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
             "--model", help="TASK=NAME_OR_PATH: the model for a task (inbetween, complete, denoise, predict, "
                             "generate, classify): a shipped name, a run folder or a checkpoint folder; "
                             "repeatable. Default: the shipped models.")] = None,
         windows: int = typer.Option(32, help="test windows per task for the numbers"),
         seed: int = typer.Option(0, help="random seed")) -> None:
    """Every task on held-out Bandai Namco clips, learned models beside the baselines, on one HTML page."""
    try:
        start = time.perf_counter()
        overrides = parse_model_overrides(model or [])
        c = open_or_prepare(data_dir, cache)
        info = c.info()
        console.print(f"[bold]dataset[/]: {info['takes']} takes, {info['frames']} frames "
                      f"({info['hours']:.2f} h) at {info['fps']:g} fps, {info['joints']} joints")
        page = run_demo(c, out, overrides, windows, seed)
        console.print(f"wrote {page} in {time.perf_counter() - start:.0f} s")
    except MotionsynthError as e:
        console.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from None


if __name__ == "__main__":
    typer.run(main)
