"""Plots: layer-by-layer curves and more, written without opening windows."""

from brainalign.plots.layers import plot_layers

__all__ = ["plot_layers"]
