"""Plots: layer-by-layer curves, heatmaps, RDM panels, curves over training, brain maps and an
HTML report, written without opening windows (bare matplotlib ``Figure`` objects, no pyplot)."""

from __future__ import annotations

import importlib
from typing import Any

from brainalign.plots.curves import plot_score_vs
from brainalign.plots.heatmap import plot_heatmap
from brainalign.plots.layers import plot_layers
from brainalign.plots.training import plot_training

# Loaded on first use: the brain maps need nilearn, the RDM panels scikit-learn's MDS.
_LAZY = {
    "plot_rdms": "brainalign.plots.rdm",
    "plot_mds": "brainalign.plots.rdm",
    "plot_glass_brain": "brainalign.plots.brain",
    "plot_slices": "brainalign.plots.brain",
    "plot_surface": "brainalign.plots.brain",
    "build_report": "brainalign.plots.report",
    "write_figures": "brainalign.plots.report",
    "read_results": "brainalign.plots.tables",
}

__all__ = ["plot_heatmap", "plot_layers", "plot_score_vs", "plot_training", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'brainalign.plots' has no attribute {name!r}")
