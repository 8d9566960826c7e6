"""Layer-by-layer curves: score against relative depth, with the ceiling band and CIs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from brainalign.settings import PathLike

SINGLE_COLUMN_IN = 3.5  # a paper's single-column width in inches


def plot_layers(table: pd.DataFrame, *, path: PathLike | None = None, normalised: bool | None = None,
                width: float = SINGLE_COLUMN_IN) -> Figure:
    """Score against relative layer depth, one panel per benchmark, one colour per model.

    Parameters
    ----------
    table
        A results table (``ScoreResult.table``).
    path
        Where to write the figure; the suffix picks the format (``.png``, ``.svg``, ``.pdf``).
    normalised
        Plot ceiling-normalised scores; by default raw scores with the ceiling band, which shows
        both the score and how far the ceiling is.
    width
        Figure width in inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if table.empty:
        raise ValueError("plot_layers: the results table is empty; nothing to plot")
    benches = list(dict.fromkeys(table["benchmark"]))
    models = list(dict.fromkeys(table["model"]))
    colours = {m: colormaps["tab10"](i % 10) for i, m in enumerate(models)}
    # A bare Figure (no pyplot): no window opens and no global backend state is touched.
    fig = Figure(figsize=(width * len(benches), width * 0.8), layout="constrained")
    axes = fig.subplots(1, len(benches), squeeze=False)
    norm = bool(normalised)
    y, lo, hi = ("normalised", "ci_low", "ci_high") if norm else ("raw", "raw_ci_low", "raw_ci_high")
    for ax, bench in zip(axes[0], benches, strict=True):
        sub = table[table["benchmark"] == bench]
        if not norm and sub["ceiling"].notna().any():
            c_lo, c_hi = sub["ceiling_lower"].iloc[0], sub["ceiling"].iloc[0]
            ax.axhspan(c_lo, c_hi, color="0.85", zorder=0, label="noise ceiling")
        for m in models:
            d = sub[sub["model"] == m].sort_values("depth")
            if d.empty:
                continue
            c = colours[m]
            ax.plot(d["depth"], d[y], "-o", color=c, ms=2.5, lw=1, label=m)
            if d[lo].notna().any():
                ax.fill_between(d["depth"], d[lo], d[hi], color=c, alpha=0.25, lw=0)
            b = d.loc[d[y].idxmax()]
            ax.plot([b["depth"]], [b[y]], marker="*", ms=8, color=c, mec="k", mew=0.5, zorder=5)
        ax.set_title(bench, fontsize=8)
        ax.set_xlabel("relative layer depth", fontsize=7)
        ax.set_ylabel("score / ceiling" if norm else "score", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.legend(fontsize=5, frameon=False, loc="best")
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200)
    return fig


