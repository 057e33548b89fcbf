"""One run, every method of every task side by side: quality and cost on the same test windows (``make bench``).

For each task of the task table with a protocol (`summary_tasks`: `tasks.TASKS`, each task's `bench.protocol.Protocol`)
the task's baselines (`tasks.Task.baselines`) and every learned model given run through the one harness
(`protocol.run_benchmark`) on the same evenly spaced test windows (``limit``), and one table per task puts the task's
main quality figures (`Protocol.columns`, under `Protocol.title`) beside what the method cost:

- **latency**: mean wall time of the method's ``complete`` calls, per window (per generated clip for ``generate``),
  in ms — the method alone: masking, metrics, fitting and tuning are outside the timed calls. Each call is timed
  from outside (`Timed`), the same way for a baseline and a learned model; the first call of each row (lazy imports
  and initialisation) is left out when there are others (its time and the median are in the JSON).
- **frames/s**: frames of the windows handed to the method (context included; ``n_samples`` × frames for
  ``generate``) per second of those calls.
- **peak memory**: each (task, method) row runs in a fresh Python process (``isolate``) and reports its own peak
  resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``): the interpreter, numpy/torch, the opened cache, the
  harness's windows and metrics and the method together. ``rss_base_mb``, the peak of the same process after its
  imports and opening the cache (before the model is loaded), is recorded beside it and named under the tables. On a
  GPU, ``gpu_peak_mb`` is ``torch.cuda.max_memory_allocated`` of the process. Without ``isolate`` (tests) memory is
  not measured.

A learned model runs on every task; the tasks its method refuses (`MotionsynthError`, e.g. the CVAE for denoising,
MEVA for anything but denoising) show "n/a" with the method's reason. The slow latent optimisation of the HM-VAE
prior families (methods marked ``slow``, `tasks.BaseMethod`) runs on ``prior_limit`` windows (the evenly spaced
``prior_limit`` of the split's; a subset of the others' when ``(limit - 1)`` is a multiple of ``(prior_limit - 1)``, which the tables say) with its
own options (``prior_options``, e.g. fewer restarts); its rows say so. ``generate`` scores generators with a
classifier over every real test clip (``limit`` does not apply: FID needs many clips) with ``samples_per_label`` and
``repetitions`` of its own (fewer than the full protocol's 100 × 5, so its FIDs are not comparable with full runs').
Denoising filters are tuned per noise model on validation windows as in the harness (`protocol.tune`).

Outputs: `run_summary` returns the summary (every record, timing, memory, the machine, the windows); `save_summary`
writes it as JSON; `summary_markdown` makes the section and `update_markdown` replaces the part of a markdown file
between `BEGIN` and `END` with it (adding the markers after the title when absent), atomically.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

from ..checkpoint import read_checkpoint, resolve_model, shipped_models
from ..errors import MotionsynthError, ParamError
from ..io.atomic import atomic_open
from ..registry import family, load_checkpoint
from ..tasks import TASKS
from .clips import open_cache, split_windows

if TYPE_CHECKING:
    from ..tasks import BaseMethod
from .protocol import _pick, load_model, make_method, protocol_of, resolve_settings, run_benchmark
from .report import _fmt, _table
from .timing import Timed, machine_info, rss_peak_mb, timing

__all__ = ["summary_tasks", "BEGIN", "END", "Timed", "run_summary", "run_row", "save_summary",
           "summary_markdown", "replace_section", "update_markdown", "machine_info", "default_models",
           "default_classifier"]

BEGIN, END = "<!-- bench-summary:begin -->", "<!-- bench-summary:end -->"
DEFAULT_CLASSIFIER = "classifier-bandai"
# generate in the summary: fewer samples than the full protocol (100 per label, 5 repetitions)
GENERATE_SETTINGS = {"samples_per_label": 20, "repetitions": 2}


# ---- one row: one (task, method) -----------------------------------------------------------------------------------
def _baseline_record(task: str, name: str, cache, settings: dict, limit, seed: int, calls: list) -> dict:
    """A baseline's record (denoising filters tuned per noise model on val by the harness), the ``complete`` calls
    of the methods it evaluates timed."""
    return run_benchmark(task, cache, method_name=name, settings=settings, seed=seed, limit=limit, progress=False,
                         wrap=lambda m: Timed(m, calls))


def run_row(spec: dict, cache=None) -> dict:
    """Run one (task, method) of the summary in this process → its entry (`run_summary`'s ``rows``).

    ``spec``: ``task``, ``kind`` ("baseline" or "model"), ``name`` (baseline name or the ``--model`` value),
    ``model`` (the checkpoint folder), ``options``, ``settings``, ``limit``, ``seed``, ``device``, ``threads``,
    ``data`` (the cache folder, when ``cache`` is not given), ``measure_memory``.
    """
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    cache = open_cache(cache if cache is not None else spec["data"])
    device = spec.get("device") or "cpu"
    cuda = device.startswith("cuda")
    measure = bool(spec.get("measure_memory"))
    base = rss_peak_mb() if measure else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    calls: list[Any]
    task, calls, seed = spec["task"], [], int(spec.get("seed", 0))
    settings, limit = dict(spec.get("settings") or {}), spec.get("limit")
    start = time.perf_counter()
    record, status, reason = None, "ok", None
    try:
        if spec["kind"] == "baseline":
            record = _baseline_record(task, spec["name"], cache, settings, limit, seed, calls)
        else:
            ckpt = load_checkpoint(spec["model"], device)
            method = Timed(load_model(ckpt, task, cache, **(spec.get("options") or {})), calls)
            record = run_benchmark(task, cache, model=spec["name"], method=method, settings=settings, seed=seed,
                                   limit=limit, progress=False)
            if spec.get("options"):
                record["options"] = spec["options"]
    except MotionsynthError as e:  # the method refuses the task (or cannot run it): n/a, with its reason
        status, reason = "n/a", " ".join(str(e).split())
    wall = time.perf_counter() - start
    memory = {"rss_base_mb": base, "rss_peak_mb": rss_peak_mb() if measure else None,
              "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if cuda else None}
    return {"task": task, "kind": spec["kind"], "name": spec["name"],
            "family": spec.get("family"), "model": spec.get("model"), "options": spec.get("options") or {},
            "limit": limit, "status": status, "reason": reason, "wall_s": wall, "timing": timing(calls),
            "memory": memory, "threads": torch.get_num_threads(), "device": device, "record": record}


_WORKER = ("import json, sys; from motionsynth.bench.summary import run_row; "
           "spec = json.load(open(sys.argv[1])); json.dump(run_row(spec), open(sys.argv[2], 'w'))")


def _run_isolated(spec: dict) -> dict:
    """`run_row` in a fresh Python process (its own peak memory); its stderr goes to ours."""
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "row.json"
        spec_path.write_text(json.dumps({**spec, "measure_memory": True}))
        proc = subprocess.run([sys.executable, "-c", _WORKER, str(spec_path), str(out_path)],
                              stdout=subprocess.DEVNULL)
        if proc.returncode != 0 or not out_path.is_file():
            raise MotionsynthError(f"bench summary: the {spec['task']} run of {spec['name']} failed (exit code "
                                   f"{proc.returncode}; its error is above)")
        return json.loads(out_path.read_text())


# ---- the whole run -------------------------------------------------------------------------------------------------
def default_models(root=None) -> list[str]:
    """The shipped models that are task methods (`checkpoint.shipped_models`), in index order."""
    out = []
    for name, entry in shipped_models(root).items():
        fam = entry.get("family")
        if fam is not None and fam in _method_families():
            out.append(name)
    return out


def default_classifier(root=None) -> str | None:
    """The shipped classifier `DEFAULT_CLASSIFIER` if it ships, else None."""
    return DEFAULT_CLASSIFIER if DEFAULT_CLASSIFIER in shipped_models(root) else None


def _method_families() -> set[str]:
    from ..registry import names

    return set(names("method"))


def _is_prior(fam: str) -> bool:
    """Whether the family's method is slow (latent optimisation: the HM-VAE prior), so scored on fewer windows."""
    return bool(cast("type[BaseMethod]", family(fam).method).slow)  # a method family


def _check_model(value: str, cache) -> tuple[str, str]:
    """A ``--model`` value → (checkpoint folder, family), checked before any work: a task method of this data's
    skeleton."""
    path = resolve_model(value)
    ckpt = read_checkpoint(path)
    if family(ckpt.family).role != "method":
        raise MotionsynthError(f"{value}: a {ckpt.family} checkpoint is not a task method "
                               f"({family(ckpt.family).role}); the summary scores task methods")
    ckpt.check_skeleton(cache.skeleton, what="benchmark data")
    return str(path), ckpt.family


def _check_classifier(value: str, cache) -> str:
    path = resolve_model(value)
    ckpt = read_checkpoint(path)
    if family(ckpt.family).role != "evaluator":
        raise ParamError(f"`classifier` {value}: a {ckpt.family} checkpoint is not an action classifier", "classifier")
    ckpt.check_skeleton(cache.skeleton, what="benchmark data")
    return str(path)


def _windows(cache, task: str, settings: dict, limit) -> dict:
    """The test windows a task scores: how many the split has, and the (take name, start) of those kept."""
    s = resolve_settings(task, settings)
    every = split_windows(cache, "test", s["window"], s["stride"])
    kept = split_windows(cache, "test", s["window"], s["stride"], limit)
    return {"window": s["window"], "stride": s["stride"], "available": int(len(every)), "kept": int(len(kept)),
            "takes_starts": [[cache.takes[int(t)].name, int(a)] for t, a in kept]}


def run_summary(cache, models: list[str] | None = None, classifier: str | None = None, tasks=None,
                limit: int | None = 33, prior_limit: int | None = 3, prior_options: dict | None = None,
                options: dict | None = None, generate: dict | None = None, tune_windows: int | None = None,
                seed: int = 0, device: str = "cpu", threads: int | None = None, isolate: bool = True,
                baselines: dict[str, list[str]] | None = None, command: str = "", log: Callable[[str], None] | None = None) -> dict:
    """Run every task's baselines and every learned model on the same test windows → the summary (module docstring).

    Args:
        cache: a prepared cache folder (or `MotionCache`; ``isolate`` needs its folder).
        models: ``--model`` values (`checkpoint.resolve_model`); None: the shipped task methods (`default_models`).
        classifier: the classifier ``generate`` is scored with; None: `default_classifier` (no classifier: generate
            is skipped with a note).
        tasks: a subset of `summary_tasks` (None: all of them).
        limit: test windows per task (evenly spaced; None: all); ``prior_limit``: the same for the HM-VAE prior
            families (None: ``limit``); ``prior_options``: their method options (e.g. ``{"restarts": 4}``).
        options: method options of every learned model (``--option``), under ``prior_options`` for the prior.
        generate: ``generate`` settings (default `GENERATE_SETTINGS`); ``tune_windows``: denoising's val windows for
            tuning the filters (None: the protocol's).
        device: where learned models run ("cpu", "cuda", "cuda:1"); ``threads``: torch threads (None: torch's).
        isolate: run each row in its own process (peak memory measured); else in this one (no memory figure).
        baselines: task → baseline names, replacing the task's own (`tasks.Task.baselines`) for the tasks it names.
        command: the command line, recorded; ``log``: called with one line per finished row.
    """
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.perf_counter()
    tasks = summary_tasks() if tasks is None else list(tasks)
    unknown = [t for t in tasks if t not in summary_tasks()]
    if unknown or not tasks:
        raise MotionsynthError(f"unknown summary task(s) {', '.join(unknown) or '(none)'}; choose from "
                               f"{', '.join(summary_tasks())}")
    for name, count in (("limit", limit), ("prior_limit", prior_limit), ("threads", threads)):
        if count is not None and count < 1:
            raise MotionsynthError(f"{name} must be at least 1, got {count}")
    if device != "cpu" and not device.startswith("cuda"):
        raise MotionsynthError(f"device must be cpu or cuda[:N], got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise MotionsynthError(f"device {device}: torch sees no CUDA device here (torch {torch.__version__})")
    cache_obj = open_cache(cache)
    data = str(getattr(cache_obj, "path", cache))
    if isolate and not isinstance(cache, (str, os.PathLike)) and getattr(cache_obj, "path", None) is None:
        raise MotionsynthError("isolate needs the cache's folder")
    models = default_models() if models is None else list(models)
    learned = [(value, *_check_model(value, cache_obj)) for value in models]  # every model checked before any work
    classifier = default_classifier() if classifier is None else classifier
    clf_path = _check_classifier(classifier, cache_obj) if classifier and "generate" in tasks else None
    gen = {**GENERATE_SETTINGS, **(generate or {})}
    task_settings: dict[str, dict[str, Any]] = {t: {} for t in tasks}
    if "generate" in task_settings:
        task_settings["generate"] = {**gen, "classifier": clf_path}
    if tune_windows is not None and "denoise" in task_settings:
        task_settings["denoise"]["tune_windows"] = int(tune_windows)
    for t, s in task_settings.items():
        resolve_settings(t, s)  # unknown keys fail before any work
    baselines = {**{t: list(TASKS[t].baselines) for t in tasks}, **(baselines or {})}
    for name in {n for t in tasks for n in baselines.get(t, [])}:
        make_method(name)  # unknown names fail before any work

    notes: dict[str, list[str]] = {t: [] for t in tasks}
    specs = []
    for task in tasks:
        if task == "generate" and clf_path is None:
            notes[task].append("skipped: no action classifier (give --classifier; none ships)")
            continue
        if task == "generate" and not learned:
            notes[task].append("skipped: no learned model (baselines cannot generate)")
            continue
        common = {"task": task, "settings": task_settings[task], "seed": seed, "device": device, "threads": threads,
                  "data": data}
        lim = None if task == "generate" else limit
        for name in baselines.get(task, []):
            specs.append({**common, "kind": "baseline", "name": name, "family": None, "model": None, "options": {},
                          "limit": lim})
        for value, path, fam in learned:
            prior = _is_prior(fam)
            opts = {**(options or {}), **((prior_options or {}) if prior else {})}
            lim_m = lim if not prior or task == "generate" else (prior_limit or limit)
            specs.append({**common, "kind": "model", "name": value, "family": fam, "model": path, "options": opts,
                          "limit": lim_m, "prior": prior})

    rows = []
    for spec in specs:
        row = _run_isolated(spec) if isolate else run_row(spec, cache_obj)
        row["prior"] = bool(spec.get("prior"))
        rows.append(row)
        if log is not None:
            log(_row_line(row))
    windows = {t: _windows(cache_obj, t, task_settings[t], limit) for t in tasks if t != "generate"}
    prior_windows = {}
    if prior_limit is not None and any(r["prior"] for r in rows):
        for t in windows:
            sub = _windows(cache_obj, t, task_settings[t], prior_limit)
            sub["subset"] = all(w in windows[t]["takes_starts"] for w in sub["takes_starts"])
            prior_windows[t] = sub
    return {
        "kind": "bench-summary",
        "command": command,
        "date": started.isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - t0,
        "data": data,
        "data_hash": getattr(cache_obj, "data_hash", None),
        "split": "test",
        "seed": seed,
        "limit": limit,
        "prior_limit": prior_limit,
        "prior_options": prior_options or {},
        "options": options or {},
        "generate": {**gen, "classifier": clf_path} if "generate" in tasks else None,
        "tasks": list(tasks),
        "windows": windows,
        "prior_windows": prior_windows,
        "isolate": isolate,
        "machine": machine_info(device, threads),
        "notes": notes,
        "rows": rows,
    }


def _row_line(row: dict) -> str:
    t = row["timing"]
    what = row["name"] if row["kind"] == "baseline" else f"{row['family']} ({row['name']})"
    if row["status"] != "ok":
        return f"{row['task']} {what}: n/a ({row['reason'][:120]}) [{row['wall_s']:.1f} s]"
    lat = f"{t['latency_ms']:.2f} ms per window" if t["latency_ms"] is not None else "no calls"
    mem = f", peak {row['memory']['rss_peak_mb']:.0f} MB" if row["memory"]["rss_peak_mb"] is not None else ""
    return f"{row['task']} {what}: {lat}{mem} [{row['wall_s']:.1f} s]"


def save_summary(summary: dict, path) -> None:
    """The summary as JSON, atomically."""
    with atomic_open(path, "w") as f:
        json.dump(summary, f, indent=1, allow_nan=True)
        f.write("\n")


# ---- markdown ------------------------------------------------------------------------------------------------------
def summary_tasks() -> list[str]:
    """The tasks the summary scores: those of `tasks.TASKS` with a harness protocol, in the table's order."""
    return [t.name for t in TASKS.values() if t.bench is not None]


def _num(v, digits: int = 3) -> str:
    """A speed or size: ``digits`` significant figures below 1,000, whole numbers with thousands separators above."""
    if v is None:
        return "–"
    if abs(v) >= 10 ** (digits - 1):
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _method_cell(row: dict) -> str:
    if row["kind"] == "baseline":
        return row["name"]
    text = f"{row['family']} (`{row['name']}`)"
    if row.get("options"):
        text += " " + ", ".join(f"{k}={v}" for k, v in row["options"].items())
    return text


def _windows_cell(row: dict) -> str:
    rec = row.get("record")
    if rec is None:
        return "–"
    counts = [r.get("windows") for r in rec["results"] if isinstance(r.get("windows"), int)]
    if row["task"] == "generate":
        return str(next((r["samples"] for r in rec["results"] if r.get("label") == "all"
                         and r.get("data") == "generated"), "–"))
    return str(max(counts)) if counts else "–"


def _task_settings(summary: dict, task: str) -> dict:
    rec = next((r["record"] for r in summary["rows"] if r["task"] == task and r["record"] is not None), None)
    if rec is not None:
        return rec["settings"]
    return resolve_settings(task, summary.get("generate") if task == "generate" else None)


def summary_markdown(summary: dict) -> str:
    """The section that goes between `BEGIN` and `END`: command, date, machine, windows, one table per task."""
    m = summary["machine"]
    device = m["device"] + (f" ({m['gpu']}, CUDA {m.get('cuda')})" if m.get("gpu") else "")
    date = datetime.datetime.fromisoformat(summary["date"]).strftime("%Y-%m-%d %H:%M")
    lines = [
        "## Summary: every method side by side",
        "",
        "Regenerated by `make bench` (`scripts/bench_summary.py`; the JSON with every record, timing and memory: "
        "`docs/bench/summary.json`). Command:",
        "",
        "```",
        summary["command"] or "(not recorded)",
        "```",
        "",
        f"- **When, where**: {date} UTC, {summary['wall_s'] / 60:.1f} min in all; {m['cpu']} ({m['cpus_usable']} "
        f"usable of {m['cpu_count']} cores; load average {', '.join(map(str, m['load_average'] or []))} at the "
        f"start), device {device}, torch {m['torch']} with {m['torch_threads']} thread(s) "
        f"(OMP_NUM_THREADS={m['omp_num_threads'] or 'unset'}), Python {m['python']}, commit {m['git'] or 'unknown'}.",
        f"- **Data**: the test split of `{summary['data']}` (data hash `{str(summary['data_hash'])[:12]}`), seed "
        f"{summary['seed']}; every method of a task scores the same windows: "
        + "; ".join(f"{t} {w['kept']} of {w['available']} ({w['window']} frames every {w['stride']})"
                    for t, w in summary["windows"].items()) + (" (evenly spaced)." if summary["windows"] else "."),
        "- **Latency**: mean wall time of the method's own calls per window (per generated clip for generation), ms, "
        "one window at a time, the first call of each row (lazy initialisation) left out — masking, metrics, fitting (mean pose, nearest neighbour on the train split) and "
        "the filters' tuning (on val) are not in it. **frames/s**: frames handed to the method per second of those "
        "calls.",
    ]
    if summary["isolate"]:
        bases = [r["memory"]["rss_base_mb"] for r in summary["rows"] if r["memory"]["rss_base_mb"] is not None]
        lo, hi = (round(min(bases)), round(max(bases))) if bases else (None, None)
        base = "–" if lo is None else f"{lo} MB" if lo == hi else f"{lo}–{hi} MB"
        lines.append("- **Peak memory**: peak resident set size of the process that ran the row (each row in a fresh "
                     "process: Python, numpy, torch, the opened cache, the harness's windows and metrics and the "
                     f"method together; the same processes peaked at {base} after their imports and opening the "
                     "cache, before loading a model)"
                     + ("; **GPU MB**: `torch.cuda.max_memory_allocated`." if m["device"] != "cpu" else "."))
    else:
        lines.append("- **Peak memory**: not measured (rows ran in one process).")
    prior_rows = [r for r in summary["rows"] if r.get("prior") and r["task"] != "generate"]
    if prior_rows:
        pw = summary.get("prior_windows") or {}
        sub = all(w.get("subset") for w in pw.values()) if pw else True
        opts = ", ".join(f"{k}={v}" for k, v in (summary.get("prior_options") or {}).items())
        lines.append(f"- **HM-VAE prior** (latent optimisation, the slow one): {summary['prior_limit']} windows per "
                     f"task, evenly spaced ({'a subset of' if sub else 'NOT a subset of'} the others' windows)"
                     + (f", options {opts}" if opts else ", its default options")
                     + "; see the windows column.")
    if summary.get("generate"):
        g = summary["generate"]
        lines.append(f"- **Generation**: {g['samples_per_label']} samples per label × {g['repetitions']} repetitions "
                     f"(the full protocol: 100 × 5, so FIDs here are not comparable with full runs'), classifier "
                     f"`{g['classifier']}`, against every real test clip; samples: generated per repetition.")
    for task in summary["tasks"]:
        protocol = protocol_of(task)
        lines += ["", f"### {protocol.title or TASKS[task].title}", ""]
        rows = [r for r in summary["rows"] if r["task"] == task]
        if not rows:
            lines += [f"Not run: {'; '.join(summary['notes'].get(task) or ['no method'])}."]
            continue
        cols = protocol.columns(_task_settings(summary, task)) if protocol.columns else []
        gpu = m["device"] != "cpu"
        count = "samples" if task == "generate" else "windows"
        head = ["method", *[c for c, _ in cols], "latency ms", "frames/s", "peak MB", *(["GPU MB"] if gpu else []),
                count]
        table, notes = [], []
        first = next((r["record"] for r in rows if r["record"] is not None), None)
        if task == "denoise" and first is not None:
            table.append({"method": "noisy input (no method)",
                          **{c: f"{_fmt(r['input_mpjpe_cm'])} / {_fmt(r['input_accel_error'])}"
                             for (c, _), r in zip(cols, first["results"])}})
        if task == "generate" and first is not None:
            real = _pick(first, data="real", label="all") or {}
            table.append({"method": "real data (test clips; FID: train vs test)",
                          **{c: (_fmt(real.get(k)) + (f" ± {_fmt(real[k + '_ci95'])}"
                                                      if real.get(k + "_ci95") is not None else ""))
                             for (c, _), k in zip(cols, ("accuracy", "fid", "diversity", "multimodality",
                                                         "foot_skate"))}})
        for r in rows:
            t, mem = r["timing"], r["memory"]
            cells = {"method": _method_cell(r) + (" †" if r.get("prior") and task != "generate" else "")}
            if r["status"] != "ok":
                cells.update({c: "n/a" for c, _ in cols})
                notes.append(f"- n/a, {_method_cell(r)}: {r['reason']}")
            else:
                cells.update({c: f(r["record"]) for c, f in cols})
                cells.update({"latency ms": _num(t["latency_ms"]), "frames/s": _num(t["frames_per_s"]),
                              "peak MB": _num(mem["rss_peak_mb"]), "GPU MB": _num(mem["gpu_peak_mb"]),
                              count: _windows_cell(r)})
            table.append(cells)
        lines.append(_table(head, table))
        params = [f"- {r['name']}: " + "; ".join(f"{row['noise']}: {_fmt(row['params'])}"
                                                 for row in r["record"]["results"])
                  for r in rows if task == "denoise" and r["kind"] == "baseline" and r["record"] is not None
                  and any(row.get("params") for row in r["record"]["results"])]
        if params:
            lines += ["", "Filter parameters (tuned per noise model on the val split):", *params]
        if notes or summary["notes"].get(task):
            lines += ["", *notes, *[f"- {n}" for n in summary["notes"].get(task) or []]]
        if any(r.get("prior") for r in rows) and task != "generate":
            lines += ["", f"† HM-VAE prior: {summary['prior_limit']} windows (see above)."]
    return "\n".join(lines) + "\n"


def replace_section(text: str, body: str) -> str:
    """``text`` with everything between `BEGIN` and `END` replaced by ``body``; the markers are added after the
    title (the first ``# `` line) when absent. Nothing else changes."""
    nb, ne = text.count(BEGIN), text.count(END)
    if nb == 0 and ne == 0:
        lines = text.splitlines(keepends=True)
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
        block = f"\n{BEGIN}\n{END}\n" if at else f"{BEGIN}\n{END}\n"
        if at < len(lines) and lines[at].strip():
            block += "\n"
        text = "".join(lines[:at]) + block + "".join(lines[at:])
    elif nb != 1 or ne != 1 or text.index(BEGIN) > text.index(END):
        raise MotionsynthError(f"the summary markers must appear once each, {BEGIN} before {END} "
                               f"(found {nb} and {ne})")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    inner = "\n" + (body.strip("\n") + "\n" if body.strip() else "")
    return text[:start] + inner + text[end:]


def update_markdown(path, body: str) -> None:
    """Replace the summary section of the markdown file ``path`` (`replace_section`), atomically."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    new = replace_section(text, body)
    with atomic_open(path, "w") as f:
        f.write(new)
