"""Layer × layer similarity heatmap (the figure of Kornblith et al. 2019)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.figure import Figure

from brainalign.plots.style import LABEL_PT, TICK_PT, save_figure
from brainalign.settings import PathLike


def similarity_title(sim: xr.DataArray) -> str:
    """What the matrix compares, from its attrs: the metric, the two models (with their weights
    where the names alone do not tell them apart, and always when they are random: a reader
    would otherwise assume trained ones) and the stimuli, e.g.
    ``"linear CKA: layers of alexnet vs resnet18 (random), 92 stimuli (kriegeskorte2008)"``."""
    a = sim.attrs
    metric = str(a.get("metric_label", a.get("metric", sim.name or "similarity")))
    ma, mb = str(a.get("model_a", "A")), str(a.get("model_b", "B"))
    wa, wb = a.get("weights_a"), a.get("weights_b")

    def named(model: str, weights: Any, always: bool) -> str:
        return f"{model} ({weights if weights else '?'})" if always or weights == "random" else model

    if int(a.get("within_model", 0)):
        what = f"layers of {named(ma, wa, False)}"
    else:
        what = f"layers of {named(ma, wa, ma == mb)} vs {named(mb, wb, ma == mb)}"
    n = a.get("n_stimuli")
    stimuli = f"{int(n)} stimuli" if n is not None else "stimuli"
    name = str(a.get("stimuli", "") or "")
    if name and name != "tensor":
        stimuli += f" ({name})"
    return f"{metric}: {what}, {stimuli}"


def _axis_names(attrs: dict) -> tuple[str, str]:
    """The models' names for the axes; two models of one name (two checkpoints of one training
    run) told apart by their weights' file names, else as A and B."""
    a, b = str(attrs.get("model_a", "A")), str(attrs.get("model_b", "B"))
    if a != b or int(attrs.get("within_model", 0)):
        return a, b
    wa, wb = (Path(str(attrs.get(k, ""))).name for k in ("weights_a", "weights_b"))
    if wa and wb and wa != wb:
        return f"{a} ({wa})", f"{b} ({wb})"
    return f"{a} (A)", f"{b} (B)"


def plot_similarity(sim: xr.DataArray, path: PathLike | None = None, *, cmap: str = "magma",
                    title: str | None = None, formats: Sequence[str] | None = None) -> Figure:
    """Heatmap of a (layer_a × layer_b) matrix from :func:`brainalign.compare_models`.

    Layers are in forward order: A's from top to bottom, B's from left to right, named on the
    axes (axis labels name the models); the colour bar is labelled with the metric. The colour
    range is [0, 1] for CKA and [min(0, lowest), 1] for RSA. The title (default
    :func:`similarity_title`) names the metric, the models and the stimuli.

    Returns
    -------
    matplotlib.figure.Figure
    """
    v = np.asarray(sim.values, float)
    la, lb = [str(x) for x in sim["layer_a"].values], [str(x) for x in sim["layer_b"].values]
    # Sized to the matrix (a square figure left a tall, narrow matrix in white space), with room
    # for the layer names, the colour bar and a title of two or three lines.
    width = max(3.2, 2.5 + 0.22 * len(lb))
    fig = Figure(figsize=(width, 1.6 + 0.22 * len(la)), layout="constrained")
    ax = fig.subplots()
    finite = v[np.isfinite(v)]
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    im = ax.imshow(np.ma.masked_invalid(v), cmap=colormaps[cmap].with_extremes(bad="0.85"), vmin=vmin,
                   vmax=1.0, origin="upper", aspect="equal", interpolation="nearest")
    ax.set_xticks(range(len(lb)), lb, rotation=90, fontsize=TICK_PT)
    ax.set_yticks(range(len(la)), la, fontsize=TICK_PT)
    ax.tick_params(length=0)
    name_a, name_b = _axis_names(sim.attrs)
    ax.set_xlabel(f"{name_b} layer", fontsize=LABEL_PT)
    ax.set_ylabel(f"{name_a} layer", fontsize=LABEL_PT)
    # wrapped to the figure's width (about 15 characters per inch at this size)
    ax.set_title(textwrap.fill(title or similarity_title(sim), width=max(24, int(15 * width))),
                 fontsize=LABEL_PT)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label(str(sim.attrs.get("metric_label", sim.attrs.get("metric", sim.name))), fontsize=LABEL_PT)
    cb.ax.tick_params(labelsize=TICK_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
