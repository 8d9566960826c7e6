"""Layer-by-layer curves: score against relative depth, with the ceiling band and CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from brainalign.plots.style import (
    ANNOT_PT,
    CEILING,
    LABEL_PT,
    LEGEND_PT,
    NORM_CI_HIGH,
    NORM_CI_LOW,
    SINGLE_COLUMN_IN,
    TICK_PT,
    TITLE_PT,
    axis_label,
    best_rows,
    has_ceiling,
    model_colours,
    note,
    numeric,
    primary_rows,
    region_rows,
    require_columns,
    save_figure,
    subset_label,
    versions_apart,
    weights_label,
)
from brainalign.results.table import DEV_SELECTION
from brainalign.settings import PathLike

NEEDED = ("model", "benchmark", "layer", "raw")
CEILING_GREY = "0.85"
MIN_CONTINUOUS = 3  # a model with fewer layers in a panel is drawn as separate points


def legend_extras(kinds: set[str], colour: object = "0.45", ci_level: float = 0.95) -> list:
    """Legend entries for what a layer figure drew besides the models' lines: the CI (band or
    bars, with its level, e.g. "95% bootstrap CI"), the noise ceiling (band or line) and the
    chosen-layer star, each looking as drawn."""
    out: list = []
    ci = f"{ci_level:.0%} bootstrap CI"
    if "ci band" in kinds:
        out.append(Patch(facecolor=colour, alpha=0.25, lw=0, label=f"{ci} (band in the model's colour)"))
    if "ci bars" in kinds:
        out.append(Line2D([], [], color="0.3", marker="|", ms=8, mew=1, ls="",
                          label=f"{ci} (bars: separate layers)"))
    if "ceiling band" in kinds:
        out.append(Patch(facecolor=CEILING_GREY, lw=0, label="noise ceiling (lower–upper bound)"))
    if "ceiling line" in kinds:
        out.append(Line2D([], [], color="0.6", lw=1, label="noise ceiling (upper bound)"))
    star = dict(ls="", marker="*", ms=7, color="w", mec="k", mew=0.5)
    if "star held-out" in kinds:
        out.append(Line2D([], [], **star, label="chosen layer: held-out score (chosen on dev. stimuli)"))
    if "star chosen" in kinds:
        out.append(Line2D([], [], **star, label="chosen layer (on dev. stimuli)"))
    if "star in-sample" in kinds:
        out.append(Line2D([], [], **star, label="best layer (in-sample)"))
    return out


def keep_inside(fig: Figure, names: list[tuple[Any, Any]]) -> None:
    """Move each star's name (an annotation placed above and beside its star) inside its panel
    and off its horizontal lines: a star at the top of the y range would put it over the panel
    title, one just under the noise ceiling's line across that line, one at an end of the x
    range past the panel's side. Measured after the layout is done, so on the final positions."""
    if not names:
        return
    fig.draw_without_rendering()
    for ax, text in names:
        box, ext = ax.get_window_extent(), text.get_window_extent()
        dx, dy = text.xyann
        # axhline's lines (the ceiling, 0): x from 0 to 1 in axes units, one y in data units.
        rules = [ax.transData.transform((0.0, float(line.get_ydata()[0])))[1] for line in ax.get_lines()
                 if list(line.get_xdata()) == [0, 1] and len(set(line.get_ydata())) == 1]
        if ext.y1 > box.y1 or (dy > 0 and any(ext.y0 <= r <= ext.y1 for r in rules)):
            # over the top (the title) or across a line: below the star instead
            dy = -abs(dy)
            text.set_va("top")
        if ext.x1 > box.x1 and dx > 0:  # past the right side: to the star's left instead
            dx = -abs(dx)
            text.set_ha("right")
        elif ext.x0 < box.x0 and dx < 0:  # past the left side: to the star's right
            dx = abs(dx)
            text.set_ha("left")
        text.xyann = (dx, dy)
    # Two models that chose the same layer at about the same score: their names (one text in two
    # colours) would lie on each other and read as one. A later name that meets an earlier one in
    # its panel goes to the other side of its star, then, if that is taken too, below it. (Sides
    # in points from the star: they hold at any resolution the figure is drawn or saved at.)
    placed: dict[Any, list[Any]] = {}
    for ax, text in names:
        others = placed.setdefault(ax, [])
        if others and _clash(fig, ax, text, others):
            dx, dy = text.xyann
            text.xyann = (-dx, dy)
            text.set_ha("right" if dx > 0 else "left")
            if _clash(fig, ax, text, others):
                text.xyann = (dx, -dy)
                text.set_ha("left" if dx > 0 else "right")
                text.set_va("top" if dy > 0 else "bottom")
        others.append(text)


def _clash(fig: Figure, ax: Any, text: Any, others: list[Any]) -> bool:
    """Whether ``text`` lies on one of ``others`` or past a side of its panel (as drawn now)."""
    fig.draw_without_rendering()
    e, box = text.get_window_extent(), ax.get_window_extent()
    return any(e.overlaps(o.get_window_extent()) for o in others) or e.x0 < box.x0 or e.x1 > box.x1


MAX_NAME = 16  # characters of a layer name on a tick; longer ones keep their start and end
TICK_SPACING_IN = 0.18  # room one rotated tick label needs along the x axis


def short_name(layer: str, most: int = MAX_NAME) -> str:
    """``layer`` shortened to ``most`` characters (start … end: both ends tell layers apart)."""
    if len(layer) <= most:
        return layer
    head = (most - 1) // 2
    return f"{layer[:head]}…{layer[-(most - 1 - head):]}"


def thinned(n: int, most: int) -> list[int]:
    """At most ``most`` of the indices ``0 … n-1``, evenly spread, first and last included."""
    if n <= most:
        return list(range(n))
    return sorted(set(np.round(np.linspace(0, n - 1, max(most, 2))).astype(int).tolist()))


def name_layer_ticks(ax: Any, layers: Sequence[tuple[float, str]], width_in: float) -> int:
    """Layer names as the x tick labels at their depths, as many as fit in ``width_in`` inches
    (evenly thinned, rotated), shortened to :data:`MAX_NAME` characters. Returns how many layers
    are named (fewer than ``len(layers)`` when thinned: the axis label should say so)."""
    keep = thinned(len(layers), max(2, int(0.8 * width_in / TICK_SPACING_IN)))
    ax.set_xticks([layers[i][0] for i in keep], [short_name(str(layers[i][1])) for i in keep],
                  rotation=45, ha="right", rotation_mode="anchor")
    return len(keep)


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
                formats: Sequence[str] | None = None, ci_level: float | None = None) -> Figure:
    """Score against relative layer depth, one panel per benchmark, one colour per model.

    ``table`` is a results table or a :class:`~brainalign.results.ScoreResult` (its ``.table``).
    Each panel shows the noise-ceiling band (lower to upper bound) where the benchmark has one,
    the bootstrap confidence interval of every layer as a ribbon, and, as a star, the held-out
    score of the layer chosen on development stimuli (the leaderboard's number). The y-axis says
    which score it is (e.g. "RSA, Spearman ρ / noise ceiling"), the legend names each model with
    its weights (random, pretrained, a checkpoint) and explains every band and mark drawn. A
    model with fewer than three layers in a panel (a simulator's separate stages) is drawn as
    points with CI bars, nothing interpolated between them. A model keeps its colour in every
    panel; the legend sits below the panels, never on the data.

    The x axis names the layers where the panel's models share them (one model, or models with
    the same layers): the names are the tick labels, thinned evenly when they do not all fit and
    rotated; models with different layers keep relative depth as the axis. Either way the chosen
    layer's name is written beside its star, in the model's colour.

    Parameters
    ----------
    table
        A results table (``ScoreResult.table``, or several concatenated).
    path
        Where to write the figure. With a suffix (``.png``, ``.svg``, ``.pdf``) that one file is
        written; without one, ``path.png`` and ``path.svg``.
    normalised
        By default (``None``) and with ``True``: score / noise ceiling where the benchmark has a
        ceiling (the band then spans lower/upper to 1). ``False``: raw scores with the ceiling
        band, the star then at the chosen layer's score on all stimuli (the held-out score is on
        the normalised scale). Benchmarks without a ceiling are always drawn raw.
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
    ci_level
        Confidence level of the tables' CIs, for the legend (default: the table's ``ci_level``
        column where it has one, else 0.95, the level of every shipped benchmark).

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
    table = versions_apart(table)
    # The whole mask's panel, then one per region of interest (fMRI), where the signal is.
    regions = region_rows(table)
    primary = primary_rows(table)
    with_regions = set(table.loc[regions.index, "benchmark"])
    primary = primary.assign(benchmark=primary["benchmark"].where(
        ~primary["benchmark"].isin(with_regions), primary["benchmark"] + " [whole mask]"))
    table = pd.concat([primary, regions], ignore_index=True)
    if ci_level is None:
        levels = pd.to_numeric(table["ci_level"], errors="coerce").dropna() if "ci_level" in table else []
        ci_level = float(levels.median()) if len(levels) else 0.95
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
    weights = {m: weights_label(table.loc[table["model"] == m, "weights"].dropna().iloc[0])
               if "weights" in table and table.loc[table["model"] == m, "weights"].notna().any()
               else "" for m in all_models}
    benches = list(dict.fromkeys(table["benchmark"]))
    ncols = ncols or min(len(benches), 3)
    nrows = int(np.ceil(len(benches) / ncols))
    legend_rows = int(np.ceil((len(chosen) + 4) / ncols))
    legend_h = 0.14 * legend_rows + 0.1
    # A bare Figure (no pyplot): no window opens and no global backend state is touched.
    fig = Figure(figsize=(width * ncols, width * 0.72 * nrows + legend_h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    drawn_kinds: set[str] = set()  # what the legend must explain: ribbon, bars, band, line, stars
    star_names: list[tuple[Any, Any]] = []  # (panel, the chosen layer's name beside its star)
    for ax in axes.flat[len(benches):]:
        ax.set_axis_off()
    for ax, bench in zip(axes.flat, benches, strict=False):
        sub = table[(table["benchmark"] == bench) & table["model"].isin(chosen)]
        ceil = has_ceiling(sub)
        use_norm = normalised is not False and ceil
        y = "normalised" if use_norm else "raw"
        if ceil:
            upper = float(numeric(sub, *CEILING).median())
            lower = float(numeric(sub, "ceiling_lower").median())
            band = (lower / upper, 1.0) if use_norm else (lower, upper)
            if np.isfinite(band[0]):
                ax.axhspan(*band, color=CEILING_GREY, zorder=0, lw=0)
                drawn_kinds.add("ceiling band")
            else:
                ax.axhline(band[1], color="0.6", lw=1, zorder=0)
                drawn_kinds.add("ceiling line")
        drawn = 0
        named: list[list[tuple[float, str]]] = []  # each drawn model's (depth, layer), in order
        for m in chosen:
            d = sub[sub["model"] == m].copy()
            d[y] = pd.to_numeric(d[y], errors="coerce")
            d = d[d[y].notna()].sort_values("_depth")
            if d.empty:
                continue
            drawn += 1
            named.append([(float(x), str(name)) for x, name in zip(d["_depth"], d["layer"], strict=True)])
            c = colours[m]
            lo = numeric(d, *NORM_CI_LOW) if use_norm else numeric(d, "raw_ci_low")
            hi = numeric(d, *NORM_CI_HIGH) if use_norm else numeric(d, "raw_ci_high")
            if len(d) < MIN_CONTINUOUS:
                # A few separate layers (e.g. a simulator's stages) are not a depth continuum:
                # points with error bars, nothing interpolated between them.
                err = np.vstack([(d[y] - lo).clip(lower=0), (hi - d[y]).clip(lower=0)]).astype(float)
                ax.errorbar(d["_depth"], d[y], yerr=np.where(np.isfinite(err), err, 0), fmt="o", color=c,
                            ms=3.5, lw=1, capsize=2, label=m)
                drawn_kinds.add("ci bars")
            else:
                ax.plot(d["_depth"], d[y], "-o", color=c, ms=2.5, lw=1, label=m)
                if lo.notna().any():
                    ax.fill_between(d["_depth"], lo, hi, color=c, alpha=0.25, lw=0)
                    drawn_kinds.add("ci band")
            # The chosen layer as the leaderboard picks it: on development stimuli where the
            # benchmark splits them, drawn at its held-out score (which is on the plotted scale
            # when the panel is normalised or the benchmark has no ceiling).
            pick = best_rows(d)
            if len(pick):
                row = pick.iloc[0]
                honest = row.get("selection") == DEV_SELECTION
                x_star = float(d.loc[d["layer"] == row["layer"], "_depth"].iloc[0])
                if honest and (use_norm or not ceil):
                    y_star, kind = float(row["best_score"]), "star held-out"
                else:
                    y_star = float(d.loc[d["layer"] == row["layer"], y].iloc[0])
                    kind = "star chosen" if honest else "star in-sample"
                ax.plot([x_star], [y_star], marker="*", ms=8, color=c, mec="k", mew=0.5, zorder=5, ls="")
                # Its name beside it: which layer the star is, however the axis is labelled.
                right = x_star > 0.7
                star_names.append((ax, ax.annotate(
                    short_name(str(row["layer"])), (x_star, y_star), xytext=(-5 if right else 5, 5),
                    textcoords="offset points", ha="right" if right else "left", va="bottom",
                    fontsize=ANNOT_PT, color=c, zorder=6,
                    path_effects=[patheffects.withStroke(linewidth=2, foreground="w")])))
                drawn_kinds.add(kind)
        if not drawn:
            note(ax, "no scores for these models")
        subset = subset_label(table[table["benchmark"] == bench])
        ax.set_title(f"{bench}\n({subset}, not a paper number)" if subset else bench, fontsize=TITLE_PT)
        if named and all(n == named[0] for n in named):
            shown = name_layer_ticks(ax, named[0], width)
            thin = f"; {shown} of {len(named[0])} named" if shown < len(named[0]) else ""  # fits one column
            ax.set_xlabel(f"layer (placed by relative depth{thin})", fontsize=LABEL_PT)
        else:
            ax.set_xlabel("relative layer depth" + (" (layers differ by model)" if named else ""),
                          fontsize=LABEL_PT)
        ax.set_ylabel(axis_label(sub, use_norm), fontsize=LABEL_PT)
        ax.tick_params(labelsize=TICK_PT)
        ax.set_xlim(-0.05, 1.05)
        ax.axhline(0, color="0.5", lw=0.5)
    handles = [Line2D([], [], color=colours[m], marker="o", ms=2.5, lw=1,
                      label=f"{m} ({weights[m]})" if weights[m] else m) for m in chosen]
    handles += legend_extras(drawn_kinds, colours[chosen[0]] if chosen else "0.45", ci_level)
    # One column per 3.5-inch panel: long labels stay whole and never overlap the data.
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, min(ncols, 3)),
               fontsize=LEGEND_PT, frameon=False)
    if shown_note:
        fig.suptitle(f"layer-by-layer scores{shown_note}", fontsize=TITLE_PT)
    keep_inside(fig, star_names)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
