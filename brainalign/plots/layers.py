"""Layer-by-layer curves: score against relative depth, with the ceiling band and CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from brainalign.plots.style import (
    LABEL_PT,
    LEGEND_PT,
    SINGLE_COLUMN_IN,
    TICK_PT,
    TITLE_PT,
    best_rows,
    has_ceiling,
    model_colours,
    note,
    primary_rows,
    require_columns,
    save_figure,
)
from brainalign.settings import PathLike

NEEDED = ("model", "benchmark", "layer", "raw")


def relative_depth(table: pd.DataFrame) -> pd.Series:
    """The ``depth`` column, falling back to ``layer_index`` scaled to [0, 1] per model and benchmark
    (and to the row order where neither is there)."""
    depth = pd.to_numeric(table["depth"], errors="coerce") if "depth" in table else pd.Series(
        np.nan, index=table.index)
    if depth.notna().all():
        return depth
    if "layer_index" in table:
        idx = pd.to_numeric(table["layer_index"], errors="coerce")
    else:
        idx = table.groupby(["model", "benchmark"], sort=False).cumcount().astype(float)
    top = idx.groupby([table["model"], table["benchmark"]], sort=False).transform("max")
    return depth.fillna(idx / top.where(top > 0, 1.0))


def top_models(table: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` models with the highest best-layer score averaged over benchmarks."""
    best = best_rows(primary_rows(table))
    mean = best["best_score"].groupby(best["model"], sort=False).mean().sort_values(ascending=False)
    return list(mean.index[:n])


def plot_layers(table: pd.DataFrame | Any, *, path: PathLike | None = None, normalised: bool | None = None,
                width: float = SINGLE_COLUMN_IN, ncols: int | None = None,
                models: Sequence[str] | None = None, max_models: int | None = None,
                formats: Sequence[str] | None = None) -> Figure:
    """Score against relative layer depth, one panel per benchmark, one colour per model.

    ``table`` is a results table or a :class:`~brainalign.results.ScoreResult` (its ``.table``).
    Each panel shows the noise-ceiling band (lower to upper bound) where the benchmark has one,
    the bootstrap confidence interval of every layer as a ribbon, and the best layer of each model
    as a star. A model keeps its colour in every panel.

    Parameters
    ----------
    table
        A results table (``ScoreResult.table``, or several concatenated).
    path
        Where to write the figure. With a suffix (``.png``, ``.svg``, ``.pdf``) that one file is
        written; without one, ``path.png`` and ``path.svg``.
    normalised
        Plot ceiling-normalised scores (the band then spans lower/upper to 1). By default raw
        scores with the ceiling band, which shows both the score and how far the ceiling is.
        Benchmarks without a ceiling are always drawn raw.
    width
        Width in inches of one panel (3.5 in: a paper's single column).
    ncols
        Panels per row (default: up to 3).
    models
        Models to draw, in this order (default: every model in the table, in table order).
    max_models
        Draw only the best ``max_models`` models (mean best-layer score); the title says so.
    formats
        Formats written when ``path`` has no suffix (default PNG and SVG).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ResultsTableError
        An empty table or one without the model/benchmark/layer/raw columns.
    """
    table = getattr(table, "table", table)  # a ScoreResult plots its table
    require_columns(table, NEEDED, "plot_layers")
    table = primary_rows(table).copy()
    table["_depth"] = relative_depth(table)
    all_models = list(dict.fromkeys(table["model"]))
    chosen = list(models) if models is not None else all_models
    unknown = [m for m in chosen if m not in all_models]
    if unknown:
        from brainalign.errors import ResultsTableError

        raise ResultsTableError(f"plot_layers: model(s) {unknown} are not in the table; "
                                f"it holds {all_models}")
    shown_note = ""
    if max_models is not None and len(chosen) > max_models:
        keep = set(top_models(table[table["model"].isin(chosen)], max_models))
        chosen = [m for m in chosen if m in keep]
        shown_note = f" (best {len(chosen)} of {len(all_models)} models)"
    colours = model_colours(all_models)  # colour fixed by position in the whole table
    benches = list(dict.fromkeys(table["benchmark"]))
    ncols = ncols or min(len(benches), 3)
    nrows = int(np.ceil(len(benches) / ncols))
    legend_rows = int(np.ceil(len(chosen) / 3))
    legend_h = 0.14 * legend_rows + 0.1
    # A bare Figure (no pyplot): no window opens and no global backend state is touched.
    fig = Figure(figsize=(width * ncols, width * 0.72 * nrows + legend_h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    norm = bool(normalised)
    for ax in axes.flat[len(benches):]:
        ax.set_axis_off()
    for ax, bench in zip(axes.flat, benches, strict=False):
        sub = table[(table["benchmark"] == bench) & table["model"].isin(chosen)]
        ceil = has_ceiling(sub)
        use_norm = norm and ceil
        y, lo, hi = (("normalised", "normalised_ci_low", "normalised_ci_high") if use_norm
                     else ("raw", "raw_ci_low", "raw_ci_high"))
        if ceil:
            upper = float(pd.to_numeric(sub["ceiling_upper"], errors="coerce").median())
            lower = float(pd.to_numeric(sub.get("ceiling_lower"), errors="coerce").median()) \
                if "ceiling_lower" in sub else np.nan
            band = (lower / upper, 1.0) if use_norm else (lower, upper)
            if np.isfinite(band[0]):
                ax.axhspan(*band, color="0.85", zorder=0, lw=0)
            else:
                ax.axhline(band[1], color="0.6", lw=1, zorder=0)
        drawn = 0
        for m in chosen:
            d = sub[sub["model"] == m].copy()
            d[y] = pd.to_numeric(d[y], errors="coerce")
            d = d[d[y].notna()].sort_values("_depth")
            if d.empty:
                continue
            drawn += 1
            c = colours[m]
            ax.plot(d["_depth"], d[y], "-o", color=c, ms=2.5, lw=1, label=m)
            if lo in d and hi in d:
                band_lo = pd.to_numeric(d[lo], errors="coerce")
                band_hi = pd.to_numeric(d[hi], errors="coerce")
                if band_lo.notna().any():
                    ax.fill_between(d["_depth"], band_lo, band_hi, color=c, alpha=0.25, lw=0)
            # The best layer as the leaderboard picks it (on development stimuli where it can).
            pick = best_rows(d)["layer"]
            b = d[d["layer"] == pick.iloc[0]].iloc[0] if len(pick) else d.loc[d[y].idxmax()]
            ax.plot([b["_depth"]], [b[y]], marker="*", ms=8, color=c, mec="k", mew=0.5, zorder=5)
        if not drawn:
            note(ax, "no scores for these models")
        ax.set_title(bench, fontsize=TITLE_PT)
        ax.set_xlabel("relative layer depth", fontsize=LABEL_PT)
        ylabel = "score / ceiling" if use_norm else "score"
        if norm and not ceil:
            ylabel = "raw score (no ceiling)"
        ax.set_ylabel(ylabel, fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        ax.set_xlim(-0.03, 1.03)
        ax.axhline(0, color="0.5", lw=0.5)
    handles = [Line2D([], [], color=colours[m], marker="o", ms=2.5, lw=1, label=m) for m in chosen]
    handles.append(Line2D([], [], ls="", marker="*", ms=7, color="w", mec="k", mew=0.5, label="best layer"))
    if has_ceiling(table[table["model"].isin(chosen)]):
        handles.append(Patch(color="0.85", label="noise ceiling"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)),
               fontsize=LEGEND_PT, frameon=False)
    if shown_note:
        fig.suptitle(f"layer-by-layer scores{shown_note}", fontsize=TITLE_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
