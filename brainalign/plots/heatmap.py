"""Model × benchmark heatmap of best-layer scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from brainalign.plots.style import (
    ANNOT_PT,
    LABEL_PT,
    NORM_CI_HIGH,
    NORM_CI_LOW,
    SINGLE_COLUMN_IN,
    SUBSET_NOTE,
    TICK_PT,
    best_rows,
    numeric,
    primary_rows,
    require_columns,
    save_figure,
    subset_label,
    versions_apart,
)
from brainalign.results.folder import final_epoch
from brainalign.settings import PathLike


def _final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a model × benchmark cell summarises: the primary rows of each model's last
    training epoch (a table without ``epoch`` is kept whole)."""
    return final_epoch(primary_rows(table))


def normalised_cells(table: pd.DataFrame) -> pd.DataFrame:
    """model × benchmark booleans: True where the chosen layer's score is ceiling-normalised
    (score / noise ceiling), False where it is raw (the benchmark, or that pooled session, has no
    ceiling) or missing. Laid out as the unsorted pivot; :func:`best_matrix` reorders it."""
    best = best_rows(_final_rows(table))
    flag = best.assign(_norm=numeric(best, "normalised").notna() & numeric(best, "best_score").notna())
    return flag.pivot(index="model", columns="benchmark", values="_norm").fillna(False).astype(bool)


def normalised_benchmarks(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(normalised, raw_only): the benchmarks whose every scored chosen layer is ceiling-normalised,
    and the other scored ones. Only the first kind share a common scale (0 = chance-level, 1 = the noise
    ceiling), so only they may be averaged or ranked together (as Brain-Score does)."""
    scores, _ = best_matrix(table)
    norm = normalised_cells(table).reindex(index=scores.index, columns=scores.columns).fillna(False)
    scored = scores.notna()
    ok = [b for b in scores.columns if scored[b].any() and bool(norm[b][scored[b]].all())]
    return ok, [b for b in scores.columns if b not in ok and scored[b].any()]


def best_matrix(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(scores, layers): model × benchmark best-layer score (normalised where the benchmark has
    a ceiling, raw elsewhere) and the layer it came from. Rows are sorted by the mean over the
    ceiling-normalised cells (best first; over all cells when none is normalised: raw scores of
    different benchmarks are not on one scale); columns: normalised benchmarks first, each group
    by mean score. Pairs with no score are NaN."""
    require_columns(table, ("model", "benchmark", "layer", "raw"), "best_matrix")
    table = _final_rows(table)
    best = best_rows(table)
    best = best.assign(_score=best["best_score"],
                       _norm=numeric(best, "normalised").notna() & best["best_score"].notna())
    scores = best.pivot(index="model", columns="benchmark", values="_score")
    layers = best.pivot(index="model", columns="benchmark", values="layer")
    norm = best.pivot(index="model", columns="benchmark", values="_norm")
    models = list(dict.fromkeys(table["model"]))
    benches = list(dict.fromkeys(table["benchmark"]))
    scores = scores.reindex(index=models, columns=benches).astype(float)
    norm = norm.reindex(index=models, columns=benches).fillna(False).astype(bool)
    shown = scores.where(norm) if norm.to_numpy().any() else scores
    # Sort by mean over the (normalised) benchmarks a model has (ties keep table order).
    row_order = shown.mean(axis=1).sort_values(ascending=False, kind="stable").index
    normed = norm.where(scores.notna()).all(axis=0) & scores.notna().any(axis=0)
    col_mean = scores.mean(axis=0)
    col_order = list(col_mean[normed].sort_values(ascending=False, kind="stable").index) + \
        list(col_mean[~normed].sort_values(ascending=False, kind="stable").index)
    scores = scores.loc[row_order, col_order]
    layers = layers.reindex(index=row_order, columns=col_order)
    return scores, layers


def _all_stimuli(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(score, low, high): model × benchmark score of the chosen layer on all stimuli and its
    bootstrap CI (normalised where the benchmark has a ceiling, raw elsewhere), laid out as
    :func:`best_matrix`."""
    scores, _ = best_matrix(table)
    best = best_rows(_final_rows(table))
    norm = numeric(best, "normalised").notna()
    frame = best.assign(_score=numeric(best, "normalised").where(norm, numeric(best, "raw")),
                        _lo=numeric(best, *NORM_CI_LOW).where(norm, numeric(best, "raw_ci_low")),
                        _hi=numeric(best, *NORM_CI_HIGH).where(norm, numeric(best, "raw_ci_high")))
    out = []
    for c in ("_score", "_lo", "_hi"):
        m = frame.pivot(index="model", columns="benchmark", values=c)
        out.append(m.reindex(index=scores.index, columns=scores.columns).astype(float))
    return out[0], out[1], out[2]


# The one description of the dashed outline (figure note and report caption): what
# :func:`within_ci_of_best` computes.
WITHIN_CI_NOTE = ("dashed outline: the benchmark's best score on all stimuli lies inside this model's "
                  "bootstrap CI on all stimuli (a screen for the eye, not a paired test)")


def within_ci_of_best(table: pd.DataFrame) -> pd.DataFrame:
    """model × benchmark booleans: True where the benchmark's best model, by the chosen layers'
    scores on all stimuli, scores inside this model's bootstrap CI, i.e. the difference to the
    best is within this model's CI (the best model itself is True). Score and CI are both on all
    stimuli (the cell shows the held-out score, which has no CI, so it is not compared with one).
    A screen for the eye, not a paired test."""
    point, lo, hi = _all_stimuli(table)
    top = point.max(axis=0)
    return (lo.le(top, axis=1) & hi.ge(top, axis=1)) | point.eq(top, axis=1)


def plot_heatmap(table: pd.DataFrame, *, path: PathLike | None = None, annotate: bool = True,
                 width: float = SINGLE_COLUMN_IN, cmap: str = "viridis", scale: str = "fixed",
                 mark_within_ci: bool = True, formats: Sequence[str] | None = None) -> Figure:
    """Best-layer scores of every model on every benchmark, sorted, annotated with the values.

    Only ceiling-normalised scores (score / noise ceiling) are coloured, on one scale. Raw scores
    (a benchmark, or its pooled session, without a ceiling) are on no common scale: their cells
    are hatched, not coloured, annotated "raw", and their columns are labelled "(raw)" and put
    last. Normalised values above 1 (above the ceiling) are written with a "▲". Missing pairs
    are grey.

    Parameters
    ----------
    table
        A results table.
    path
        Where to write (suffix picks one format; none writes PNG and SVG).
    annotate
        Write each value in its cell.
    scale
        ``"fixed"`` (default): 0 to 1 (score / noise ceiling), so figures of different runs
        compare by colour (values outside are clipped in colour, not in the numbers written);
        ``"data"``: colours span the normalised values shown (all values when none is normalised).
    mark_within_ci
        Outline the cells whose model is within CI of the benchmark's best (see
        :func:`within_ci_of_best`); a note under the figure says so.
    width
        Figure width in inches; the height grows with the number of models.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ResultsTableError
        An empty table, missing columns or an unknown ``scale``.
    """
    table = versions_apart(table)
    scores, _ = best_matrix(table)
    table = _final_rows(table)
    norm = normalised_cells(table).reindex(index=scores.index, columns=scores.columns)
    norm = norm.fillna(False).astype(bool).to_numpy()
    _, raw_only = normalised_benchmarks(table)
    # One short line per part of a column's label (id, version, raw, subset): a long one-line
    # label, sloped, took the figure's height from the cells.
    subsets = {b: subset_label(table[table["benchmark"] == b]) for b in scores.columns}
    cols = ["\n".join([str(b).replace(" (version ", "\n(version "), *(["(raw)"] if b in raw_only else []),
                       *([f"[{subsets[b]}]"] if subsets[b] else [])]) for b in scores.columns]
    n_m, n_b = scores.shape
    # Room for the sloped labels (35°): their longest line and their number of lines, at the tick
    # font (a character ≈ 0.55 em), beyond the ≈ 0.5 in the cells' formula already leaves.
    lines = [c.split("\n") for c in cols]
    label_in = (max(len(x) for ls in lines for x in ls) * 0.55 * np.sin(np.radians(35))
                + max(map(len, lines)) * 1.25 * np.cos(np.radians(35))) * TICK_PT / 72
    height = max(2.0, 0.9 + 0.16 * n_m) + max(0.0, label_in - 0.5)  # room for the colour bar label
    fig = Figure(figsize=(max(width, 0.9 + 0.55 * n_b), height), layout="constrained")
    ax = fig.subplots()
    vals = scores.to_numpy()
    any_norm = bool(norm.any())
    # Raw cells are not coloured on the normalised scale (unless nothing is normalised at all).
    coloured = np.where(norm, vals, np.nan) if any_norm else vals
    finite = coloured[np.isfinite(coloured)]
    if scale not in ("data", "fixed"):
        from brainalign.errors import ResultsTableError

        raise ResultsTableError(f"plot_heatmap: scale must be 'data' or 'fixed', got {scale!r}")
    if scale == "fixed" and any_norm:
        vmin, vmax = 0.0, 1.0
    else:
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    cm = colormaps[cmap].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(coloured), cmap=cm, vmin=vmin, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    raw_cells = np.isfinite(vals) & ~norm if any_norm else np.zeros_like(norm)
    for i, j in zip(*np.nonzero(raw_cells), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, fc="white", ec="0.6", hatch="///", lw=0.0,
                               in_layout=False))
    ax.set_xticks(range(n_b), cols, rotation=35, ha="right", fontsize=TICK_PT)
    ax.set_yticks(range(n_m), list(scores.index), fontsize=TICK_PT)
    ax.tick_params(length=0)
    above = False
    if annotate:
        for i in range(n_m):
            for j in range(n_b):
                v = vals[i, j]
                if not np.isfinite(v):
                    ax.text(j, i, "–", ha="center", va="center", fontsize=ANNOT_PT, color="0.3",
                            in_layout=False)
                    continue
                # in_layout=False: cell labels sit inside the axes, so the layout engine need not
                # measure each of them (it dominated the time for 50 x 5 tables).
                if raw_cells[i, j]:
                    ax.text(j, i, f"{v:.2f} raw", ha="center", va="center", fontsize=ANNOT_PT,
                            color="k", in_layout=False,
                            bbox={"fc": "white", "ec": "none", "pad": 0.5})
                    continue
                lum = np.dot(cm(np.clip((v - vmin) / (vmax - vmin), 0, 1))[:3], [0.299, 0.587, 0.114])
                over = bool(norm[i, j] and v > 1.0)
                above |= over
                ax.text(j, i, f"{v:.2f}▲" if over else f"{v:.2f}", ha="center", va="center",
                        fontsize=ANNOT_PT, color="k" if lum > 0.5 else "w", in_layout=False)
    notes = []
    if mark_within_ci and n_m > 1:
        tied = within_ci_of_best(table).to_numpy()
        for i, j in zip(*np.nonzero(tied), strict=True):
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, lw=1.2, ls="--",
                                   ec="0.3" if raw_cells[i, j] else "w", in_layout=False))
        notes.append(WITHIN_CI_NOTE)
    if any(subsets.values()):
        notes.append("[subset: …]: " + SUBSET_NOTE)
    if raw_cells.any():
        notes.append("hatched: raw score (no noise ceiling), not on the colour scale")
    if above:
        notes.append("▲ above the noise ceiling (> 1)")
    if notes:
        fig.supxlabel("\n".join(notes), fontsize=ANNOT_PT, color="0.3")
    cb = fig.colorbar(im, ax=ax, shrink=min(1.0, 2.5 / height), pad=0.02)
    cb.set_label("chosen-layer score\n/ noise ceiling" if any_norm else "chosen-layer score\n(raw)",
                 fontsize=LABEL_PT)
    cb.ax.tick_params(labelsize=TICK_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
