"""Seeing motion: stick-figure renders (GIF/MP4/PNG filmstrip) and evaluation plots.

- `render` (viz.render): motions side by side, observed parts grey and synthesised parts in colour.
- `plot_error_curves`, `plot_trajectories`, `plot_bars` (viz.plots): matplotlib figures.
"""

from .plots import plot_bars, plot_error_curves, plot_trajectories
from .render import render

__all__ = ["render", "plot_error_curves", "plot_trajectories", "plot_bars"]
