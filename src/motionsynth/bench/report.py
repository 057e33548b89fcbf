"""Benchmark records: JSON files and markdown tables made from the same rows.

A record (one task, one method) is::

    {"task", "method", "model", "checkpoint_hash", "data_hash", "split", "seed", "settings", "results"}

``results`` is a list of flat rows, e.g. ``{"gap": 30, "l2q": …, "l2p": …, "npss": …, "mpjpe_cm": …,
"accel": …, "foot_skate": …, "windows": K}``. A row's *key* columns (`KEY_COLUMNS`: gap, setting, noise, horizon;
data, kind, label, unit for the classifier's tasks) say which condition it measures; the others are numbers (lower is
better, except accuracy, diversity and multimodality) plus, for tuned filters, ``params``.

A record evaluated on some actions only has the setting ``only`` (``{kind: [patterns]}``, ``bench --only``); one of a
model trained with actions held out has ``hold_out`` (its ``train.hold_out``). Tables name both; when they are the
same filter the rows are marked "unseen actions". A completion record says whether the root path was synthesised or
observed (its setting ``root``; `root_text`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import MotionsynthError
from ..io.atomic import atomic_open

RECORD_KEYS = ("task", "method", "model", "checkpoint_hash", "data_hash", "split", "seed", "settings", "results")
KEY_COLUMNS = ("gap", "setting", "noise", "horizon", "data", "kind", "label", "unit")
_HIDDEN = ("params",)  # long values shown under the table, not in it
CI_SUFFIX = "_ci95"  # a column X_ci95 is X's 95 % half-interval: the table shows "X ± ci" in X's column


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        a = abs(v)
        return f"{v:.4f}" if a < 1 else f"{v:.3f}" if a < 100 else f"{v:.1f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items()) or "–"
    return str(v)


def _columns(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        seen += [k for k in r if k not in seen and k not in _HIDDEN]
    seen = [k for k in seen if not (k.endswith(CI_SUFFIX) and k[:-len(CI_SUFFIX)] in seen)]  # shown as "x ± ci"
    keys = [k for k in KEY_COLUMNS if k in seen]
    rest = [k for k in seen if k not in keys and k != "windows"]
    return keys + rest + (["windows"] if "windows" in seen else [])


def _cell(row: dict, column: str) -> str:
    """A value, with its 95 % interval (column ``X_ci95``) as ``X ± ci`` when the row has one."""
    ci = row.get(column + CI_SUFFIX)
    if ci is None or row.get(column) is None:
        return _fmt(row.get(column))
    return f"{_fmt(row[column])} ± {_fmt(ci)}"


def _table(columns: list[str], rows: list[dict]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(r, c) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _filter_text(filt: dict) -> str:
    return " ".join(f"{k}={','.join(v)}" for k, v in filt.items())


def subset_text(record: dict) -> str:
    """What part of the data a record scores: "" (everything), ``only content=run``, ``trained without …``, or
    ``unseen actions content=run,raise-up-*`` (scored only on the actions its training held out)."""
    only, held = record.get("settings", {}).get("only"), record.get("hold_out")
    if only and only == held:
        return f"unseen actions {_filter_text(only)}"
    return "; ".join([*([f"only {_filter_text(only)}"] if only else []),
                      *([f"trained without {_filter_text(held)}"] if held else [])])


def root_text(records: list[dict]) -> str:
    """What the records did with the root path (completion's setting ``root``): "root synthesised", "root observed",
    both, or "" (a record without the setting)."""
    roots = sorted({str(r.get("settings", {})["root"]) for r in records if "root" in r.get("settings", {})})
    return f"root {' / '.join(roots)}" if roots else ""


def _params_lines(record: dict) -> list[str]:
    out = []
    for r in record["results"]:
        if r.get("params"):
            key = next((f"{k}={r[k]}" for k in KEY_COLUMNS if k in r), "")
            out.append(f"- {record['method']} {key}: {_fmt(r['params'])}")
    return out


def to_markdown(record: dict) -> str:
    """A heading line and one markdown table of the record's rows (chosen filter parameters listed below it)."""
    check_record(record)
    title = f"**{record['task']}** — {record['method']}" + (f" ({record['model']})" if record.get("model") else "")
    title += f" — {record['split']} split, seed {record['seed']}"
    title += f" — {subset_text(record)}" if subset_text(record) else ""
    title += f" — {root_text([record])}" if root_text([record]) else ""
    parts = [title, "", _table(_columns(record["results"]), record["results"])]
    params = _params_lines(record)
    if params:
        parts += ["", _params_title([record]), *params]
    return "\n".join(parts) + "\n"


def _params_title(records: list[dict]) -> str:
    tuned = any("tuning" in r.get("settings", {}) for r in records)
    return "Parameters (tuned per condition on the val split):" if tuned else "Parameters:"


def compare_markdown(records: list[dict]) -> str:
    """One table for several methods on the same task: rows grouped by condition, then method."""
    if not records:
        raise MotionsynthError("no benchmark records to compare")
    for r in records:
        check_record(r)
    tasks = {r["task"] for r in records}
    if len(tasks) > 1:
        raise MotionsynthError(f"cannot compare records of different tasks: {sorted(tasks)}")
    rows: list[Any] = []  # (order, record, row), then the rows in that order
    order: dict[tuple[str, ...], int] = {}
    for i, rec in enumerate(records):
        label = rec["method"] + (f" ({rec['model']})" if rec.get("model") else "")
        label += f" [{subset_text(rec)}]" if subset_text(rec) else ""
        for j, row in enumerate(rec["results"]):
            key = tuple(str(row.get(k)) for k in KEY_COLUMNS)
            order.setdefault(key, j)
            rows.append((order[key], i, {"method": label, **row}))
    rows = [r for _, _, r in sorted(rows, key=lambda x: (x[0], x[1]))]
    cols = _columns(rows)
    keys = [c for c in cols if c in KEY_COLUMNS]
    cols = keys + ["method"] + [c for c in cols if c not in keys and c != "method"]
    splits = sorted({r["split"] for r in records})
    root = f" — {root_text(records)}" if root_text(records) else ""
    parts = [f"**{tasks.pop()}** — {', '.join(splits)} split{root}", "", _table(cols, rows)]
    params = [line for rec in records for line in _params_lines(rec)]
    if params:
        parts += ["", _params_title(records), *params]
    return "\n".join(parts) + "\n"


def check_record(record: dict) -> None:
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise MotionsynthError(f"not a benchmark record: missing {missing}")


def save_json(record: dict | list[dict], path) -> None:
    """Write one record (or a list of records) as JSON, atomically."""
    for r in record if isinstance(record, list) else [record]:
        check_record(r)
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=1, allow_nan=True)
        f.write("\n")


def load_records(path) -> list[dict]:
    """The records in a file written by `save_json` (always a list)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise MotionsynthError(f"{path}: not a benchmark JSON file: {e}") from None
    records = data if isinstance(data, list) else [data]
    for r in records:
        check_record(r)
    return records
