"""Plots: layer-by-layer curves and more, written without opening windows."""

from brainalign.plots.layers import plot_layers
from brainalign.plots.training import plot_training

__all__ = ["plot_layers", "plot_training"]
