"""Seeing motion: stick-figure renders (GIF/MP4/PNG filmstrip) and evaluation plots.

- `render` (viz.render): motions side by side, observed parts grey and synthesised parts in colour.
- `plot_error_curves` (viz.plots, with `plot_series` and `plot_confusion`): matplotlib figures.
"""

from .plots import plot_error_curves
from .render import render

__all__ = ["render", "plot_error_curves"]
