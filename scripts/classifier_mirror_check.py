"""Does the mirror label map fit the data? A classifier trained WITHOUT mirroring reads mirrored windows of a split:
with the labels mirrored by the derived map (`data.labels.mirror_label_map`) its accuracy should stay near its
accuracy on the windows as recorded; with the labels left as they are (the map switched off) it should collapse on
the left/right classes.

    .venv/bin/python scripts/classifier_mirror_check.py --data cache/bandai2 --model runs/classifier/model \
        [--split val] [--limit 400]

Prints per-window accuracy per label kind for: the windows as recorded, mirrored with mirrored labels, mirrored with
the original labels; and, for the mirrored windows, the accuracy on the classes whose name changes under the map.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=400, help="windows (evenly spaced over the split)")
    args = ap.parse_args()

    from motionsynth.bench.clips import open_cache, select
    from motionsynth.bench.recognition import Recognizer
    from motionsynth.data.augment import Augment
    from motionsynth.data.labels import mirror_label_map
    from motionsynth.data.windows import WindowDataset

    cache = open_cache(args.data)
    rec = Recognizer(args.model)
    W = rec.window
    no_swap = {k: {n: n for n in names} for k, names in cache.label_names.items()}
    sets = {
        "as recorded": WindowDataset(cache, args.split, W, W // 2, normalize=False),
        "mirrored, labels mirrored": WindowDataset(cache, args.split, W, W // 2, normalize=False,
                                                   augment=Augment(p_mirror=1.0, speed_range=None, yaw=False)),
        "mirrored, labels kept": WindowDataset(cache, args.split, W, W // 2, normalize=False, augment=Augment(
            p_mirror=1.0, speed_range=None, yaw=False, label_map=no_swap)),
    }
    idx = select(np.arange(len(sets["as recorded"])), args.limit)
    label_map = mirror_label_map(cache.label_names)
    for name, ds in sets.items():
        items = [ds[int(k)] for k in idx]
        probs, _ = rec.score_windows(np.stack([it["features"].numpy() for it in items]))
        parts = []
        for kind in rec.kinds:
            names = rec.labels[kind]
            y = np.array([names.index(cache.label_names[kind][it["labels"][kind]]) if it["labels"][kind] >= 0
                          else -1 for it in items])
            pred = probs[kind].argmax(-1)
            known = y >= 0
            sided = np.array([label_map[kind].get(names[v], names[v]) != names[v] if v >= 0 else False for v in y])
            acc = (pred[known] == y[known]).mean()
            sided_acc = (pred[sided] == y[sided]).mean() if sided.any() else float("nan")
            parts.append(f"{kind} {100 * acc:.1f} % (left/right classes {100 * sided_acc:.1f} %, n={int(sided.sum())})")
        print(f"{name:<28} " + "; ".join(parts) + f"  [{len(items)} windows]")


if __name__ == "__main__":
    main()
