"""Score against any per-row quantity (training epoch, step, …), one line per layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from brainalign.errors import ResultsTableError
from brainalign.plots.layers import relative_depth
from brainalign.plots.style import (
    LABEL_PT,
    LEGEND_PT,
    SINGLE_COLUMN_IN,
    TICK_PT,
    TITLE_PT,
    has_ceiling,
    note,
    primary_rows,
    require_columns,
    save_figure,
)
from brainalign.settings import PathLike


def plot_score_vs(table: pd.DataFrame, x: str = "epoch", *, path: PathLike | None = None,
                  normalised: bool | None = None, layers: Sequence[str] | None = None,
                  width: float = SINGLE_COLUMN_IN, ncols: int | None = None,
                  formats: Sequence[str] | None = None) -> Figure:
    """Score against column ``x`` (e.g. ``epoch``), one panel per (model, benchmark), one line
    per layer coloured by its relative depth, with CI ribbons where the table has them.

    Parameters
    ----------
    table
        A results table with an ``x`` column (e.g. scores of checkpoints saved during training).
    x
        The column on the horizontal axis.
    normalised
        Plot score / ceiling (default: normalised where the benchmark has a ceiling, else raw).
    layers
        Layers to draw (default: all).

    Raises
    ------
    ResultsTableError
        An empty table, or one without ``x``.
    """
    require_columns(table, ("model", "benchmark", "layer", "raw", x), f"plot_score_vs(x={x!r})")
    t = primary_rows(table).copy()
    t[x] = pd.to_numeric(t[x], errors="coerce")
    if t[x].isna().all():
        raise ResultsTableError(f"plot_score_vs: column {x!r} holds no numbers")
    if layers is not None:
        t = t[t["layer"].isin(list(layers))]
        if t.empty:
            raise ResultsTableError(f"plot_score_vs: none of the layers {list(layers)} is in the table")
    t["_depth"] = relative_depth(t)
    pairs = list(dict.fromkeys(zip(t["model"], t["benchmark"], strict=True)))
    ncols = ncols or min(len(pairs), 3)
    nrows = int(np.ceil(len(pairs) / ncols))
    fig = Figure(figsize=(width * ncols, width * 0.72 * nrows + 0.3), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.set_axis_off()
    cmap, norm_c = colormaps["viridis"], Normalize(0, 1)
    for ax, (model, bench) in zip(axes.flat, pairs, strict=False):
        sub = t[(t["model"] == model) & (t["benchmark"] == bench)]
        ceil = has_ceiling(sub)
        use_norm = ceil if normalised is None else (normalised and ceil)
        y, lo, hi = (("normalised", "normalised_ci_low", "normalised_ci_high") if use_norm
                     else ("raw", "raw_ci_low", "raw_ci_high"))
        drawn = 0
        layer_names = list(dict.fromkeys(sub.sort_values("_depth")["layer"]))
        for layer in layer_names:
            d = sub[sub["layer"] == layer].copy()
            d[y] = pd.to_numeric(d[y], errors="coerce")
            d = d[d[y].notna() & d[x].notna()].sort_values(x)
            if d.empty:
                continue
            drawn += 1
            c = cmap(norm_c(float(d["_depth"].iloc[0])))
            ax.plot(d[x], d[y], "-o", color=c, ms=2, lw=1, label=layer)
            if lo in d and pd.to_numeric(d[lo], errors="coerce").notna().any():
                ax.fill_between(d[x], pd.to_numeric(d[lo], errors="coerce"),
                                pd.to_numeric(d[hi], errors="coerce"), color=c, alpha=0.2, lw=0)
        if not drawn:
            note(ax, "no scores")
        ax.set_title(f"{model}\n{bench}", fontsize=TITLE_PT)
        ax.set_xlabel(x, fontsize=LABEL_PT)
        ax.set_ylabel("score / ceiling" if use_norm else "score", fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        if 0 < drawn <= 6:  # beside the panel: inside, "best" still covered ribbons
            ax.legend(fontsize=LEGEND_PT, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                      borderaxespad=0)
    if t["layer"].nunique() > 6:  # too many layers for a legend: a depth colour bar
        cb = fig.colorbar(ScalarMappable(norm_c, cmap), ax=axes.ravel().tolist(), shrink=0.8)
        cb.set_label("relative layer depth", fontsize=LABEL_PT)
        cb.ax.tick_params(labelsize=TICK_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
