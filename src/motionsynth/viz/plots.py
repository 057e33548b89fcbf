"""Static plots for evaluation: per-frame error curves, series with error bars, confusion matrices (matplotlib,
headless).

Each function writes one figure to ``out`` (``.png``, ``.pdf`` or ``.svg``, by extension) atomically and returns the
path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MotionsynthError
from ..io.atomic import atomic_path

PLOT_FORMATS = (".png", ".pdf", ".svg")


def plot_error_curves(curves: dict[str, np.ndarray], out: str | os.PathLike, ylabel: str = "error (cm)",
                      title: str = "", xlabel: str = "frame", fps: float | None = None) -> Path:
    """One line per method of a per-frame quantity (error, acceleration…), as in HM-VAE Figure 3.

    Args:
        curves: method name → (T,) values per frame (lengths may differ; NaNs leave gaps).
        ylabel, title, xlabel: labels. With ``fps`` the x axis is in seconds instead of frames.
    """
    if not curves:
        raise MotionsynthError("no curves to plot")
    fig, ax = _figure((6.4, 3.6))
    for name, y in curves.items():
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        x = np.arange(len(y)) / fps if fps else np.arange(len(y))
        ax.plot(x, y, label=str(name), linewidth=1.6)
    ax.set_xlabel("time (s)" if fps else xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(left=0)
    if len(curves) > 1:
        ax.legend(frameon=False)
    return _save(fig, out)


def plot_series(series: dict[str, tuple[list[float], list[float]]], labels: list[str], out: str | os.PathLike,
                ylabel: str = "", xlabel: str = "", title: str = "") -> Path:
    """One line per series over categorical x positions (``labels``), with error bars.

    Args:
        series: name → (values, errors), one of each per label (NaN values leave gaps).
    """
    if not series or not labels:
        raise MotionsynthError("no series to plot")
    fig, ax = _figure((max(5.0, 1.1 * len(labels) + 2.5), 3.8))
    x = np.arange(len(labels))
    for name, (values, errors) in series.items():
        if len(values) != len(labels) or len(errors) != len(labels):
            raise MotionsynthError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
        ax.errorbar(x, values, yerr=errors, label=str(name), marker="o", capsize=3, linewidth=1.4)
    ax.set_xticks(x, [str(s) for s in labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(frameon=False)
    return _save(fig, out)


def plot_confusion(counts: np.ndarray, names: list[str], out: str | os.PathLike, title: str = "",
                   normalize: bool = True) -> Path:
    """A confusion matrix: rows the true label, columns the predicted one, each cell the share of its row (its count
    when ``normalize`` is False), written in the cell; the row totals beside the names.

    Args:
        counts: (C, C) counts (`bench.recognition.confusion`); names: the C label names.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != len(names) or c.shape[0] == 0:
        raise MotionsynthError(f"a confusion matrix is square with one row per name: got shape {c.shape} for "
                               f"{len(names)} names")
    totals = c.sum(1)
    shown = c / np.maximum(totals, 1)[:, None] if normalize else c
    n = len(names)
    fig, ax = _figure((max(6.0, 1.6 + 0.55 * n), 1.2 + 0.5 * n))
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1.0, shown.max()))
    for i in range(n):
        for j in range(n):
            if c[i, j]:
                text = f"{int(c[i, j])}" if not normalize else "<.01" if shown[i, j] < 0.005 else \
                    f"{shown[i, j]:.2f}".lstrip("0")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.6 * (1 if normalize else shown.max()) else "black")
    ax.set_xticks(range(n), [str(x) for x in names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [f"{x} ({int(t)})" for x, t in zip(names, totals)], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (count)")
    ax.set_title(title)
    return _save(fig, out)


def _figure(figsize):
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=150, layout="constrained")  # no pyplot: no global state, no GUI backend
    return fig, fig.add_subplot()


def _save(fig, out) -> Path:
    out = Path(out)
    if out.suffix.lower() not in PLOT_FORMATS:
        raise MotionsynthError(f"{out}: unknown plot format {out.suffix!r}; use one of {', '.join(PLOT_FORMATS)}")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lower()[1:])
    return out
