"""Brain alignment over training: score against epoch, one line per layer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from brainalign.plots.layers import SINGLE_COLUMN_IN
from brainalign.plots.style import primary_rows
from brainalign.results.result import ScoreResult
from brainalign.settings import PathLike


def plot_training(table: pd.DataFrame | ScoreResult, *, path: PathLike | None = None, normalised: bool = False,
                  history: pd.DataFrame | None = None, width: float = SINGLE_COLUMN_IN) -> Figure:
    """Score against epoch for each layer, one panel per benchmark (a benchmark with several
    sessions or regions: its pooled rows).

    Parameters
    ----------
    table
        :func:`brainalign.score_checkpoints`' result or its table (needs an ``epoch`` column).
    path
        Where to write the figure (suffix picks the format).
    normalised
        Plot ceiling-normalised scores (default: raw scores with the noise-ceiling band).
    history
        The run's history (``TrainResult.history``): validation accuracy is drawn on a second axis.
    width
        Figure width in inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = table.table if isinstance(table, ScoreResult) else table
    if table.empty or "epoch" not in table:
        raise ValueError("plot_training needs a non-empty table with an 'epoch' column "
                         "(from brainalign.score_checkpoints)")
    # One line per layer: the pooled row of a benchmark with several sessions or regions (its
    # per-session rows, drawn as one series, zig-zagged between them at every epoch).
    table = primary_rows(table)
    benches = list(dict.fromkeys(table["benchmark"]))
    layers = list(dict.fromkeys(table.sort_values("layer_index")["layer"]))
    cmap = colormaps["viridis"]
    colours = {ly: cmap(i / max(len(layers) - 1, 1)) for i, ly in enumerate(layers)}
    fig = Figure(figsize=(width * len(benches), width * 0.8), layout="constrained")
    axes = fig.subplots(1, len(benches), squeeze=False)
    y, lo, hi = (("normalised", "normalised_ci_low", "normalised_ci_high") if normalised
                 else ("raw", "raw_ci_low", "raw_ci_high"))
    for ax, bench in zip(axes[0], benches, strict=True):
        sub = table[table["benchmark"] == bench]
        with_ceiling = sub[sub["ceiling_upper"].notna()]
        if not normalised and len(with_ceiling):  # the first row that has one (a NaN band is drawn nowhere)
            upper = float(with_ceiling["ceiling_upper"].iloc[0])
            lower = with_ceiling["ceiling_lower"].iloc[0]
            if pd.isna(lower):
                ax.axhline(upper, color="0.6", lw=0.8, ls=":", zorder=0, label="noise ceiling (upper bound)")
            else:
                ax.axhspan(float(lower), upper, color="0.85", zorder=0, label="noise ceiling")
        for ly in layers:
            d = sub[sub["layer"] == ly].sort_values("epoch")
            if d.empty:
                continue
            ax.plot(d["epoch"], d[y], "-o", color=colours[ly], ms=2.5, lw=1, label=ly)
            if d[lo].notna().any():
                ax.fill_between(d["epoch"], d[lo], d[hi], color=colours[ly], alpha=0.15, lw=0)
        if history is not None and "val_acc" in history:
            ax2 = ax.twinx()
            ax2.plot(history["epoch"], history["val_acc"], "--", color="k", lw=0.8, label="val. accuracy")
            ax2.set_ylabel("validation accuracy", fontsize=7)
            ax2.set_ylim(0, 1)
            ax2.tick_params(labelsize=6)
        ax.set_title(bench, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel("score / ceiling" if normalised else "score", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.axhline(0, color="0.5", lw=0.5)
    # One legend for every panel, below them: inside a panel it covered the ceiling band or the
    # curves (and the validation-accuracy line, drawn on the twin axis, was not in it).
    handles: dict[str, object] = {}
    for a in fig.axes:
        for h, label in zip(*a.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", fontsize=5, frameon=False,
               ncols=max(1, min(len(handles), 4 * len(benches))))
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200)
    return fig
