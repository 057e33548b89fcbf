"""Confusion matrices of an action classifier from its ``bench classify`` record (no model run here).

    .venv/bin/motionsynth bench classify --data cache/bandai2 --model runs/classifier/model \
        --json docs/bench/classify.json
    .venv/bin/python scripts/figures_classifier.py docs/bench/classify.json --out docs/img [--unit take]

Writes ``classifier_confusion_KIND.png`` for every label kind of the record (rows: true label with its count,
columns: predicted; each cell the share of its row), from the per-take (default) or per-window confusion matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("record", type=Path, help="JSON written by `motionsynth bench classify --json`")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--unit", choices=("take", "window"), default="take")
    args = ap.parse_args()

    import numpy as np

    from motionsynth.bench import load_records
    from motionsynth.errors import MotionsynthError
    from motionsynth.viz.plots import plot_confusion

    records = [r for r in load_records(args.record) if r["task"] == "classify"]
    if not records:
        raise SystemExit(f"error: {args.record} holds no classify record")
    rec = records[0]
    rows = {(r["kind"], r["unit"]): r for r in rec["results"]}
    for kind, conf in rec["settings"]["confusion"].items():
        counts = np.asarray(conf[args.unit])
        acc = rows[(kind, args.unit)]["accuracy"]
        title = f"{kind}: {rec['split']} split, per {args.unit}, accuracy {100 * acc:.1f} % (n = {int(counts.sum())})"
        try:
            path = plot_confusion(counts, conf["names"], args.out / f"classifier_confusion_{kind}.png", title=title)
        except MotionsynthError as e:
            raise SystemExit(f"error: {e}") from None
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
