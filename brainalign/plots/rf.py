"""In-silico physiology figures: RF mosaics, tuning curves, property histograms model vs V1.

Bare matplotlib ``Figure`` objects (no pyplot): no window opens, no global state is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainalign.settings import PathLike


def _save(fig: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200)
    return fig


def _nice_length(span: float) -> float:
    """A round length (1, 2 or 5 × 10^k) of at most a third of ``span``."""
    target = span / 3
    k = np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * 10 ** k <= target:
            return float(m * 10 ** k)
    return float(10 ** k)


def plot_rf_mosaic(maps: np.ndarray, *, fits: pd.DataFrame | None = None, cell_deg: float | None = None,
                   crop: int | None = None, columns: int = 8, title: str = "",
                   path: PathLike | None = None) -> Figure:
    """Receptive-field maps as a grid of small images (red = light excites, blue = dark).

    Each map is scaled to its own peak (|weight| / max |weight|), so the colour bar reads −1…1 for
    every panel; with ``cell_deg`` a scale bar in degrees of visual angle sits in the first panel.

    Parameters
    ----------
    maps
        (units, m, m) RF maps (e.g. :attr:`RFMaps.maps`).
    fits
        Optional Gabor fits (:func:`fit_gabors`): each panel is titled with its r² and a failed
        fit is marked with ✗ so it is not mistaken for a good one.
    cell_deg
        Degrees per map cell, for the scale bar and the extent in the title.
    crop
        Show only the central ``crop`` × ``crop`` cells (RFs of early layers are small).

    Raises
    ------
    ValueError
        ``maps`` is not a non-empty (units, m, m) array.
    """
    maps = np.asarray(maps, float)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"plot_rf_mosaic: maps must be (units, m, m), got {maps.shape}")
    if crop is not None and crop < maps.shape[1]:
        a = (maps.shape[1] - crop) // 2
        maps = maps[:, a:a + crop, a:a + crop]
    peak = np.abs(maps).reshape(len(maps), -1).max(axis=1)
    maps = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    n = len(maps)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(cols * 0.8 + 0.9, rows * 0.85 + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        image = ax.imshow(maps[i], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        if fits is not None and i < len(fits):
            row = fits.iloc[i]
            ok = bool(row["ok"])
            r2 = row["r2"]
            label = f"{i} r²={r2:.2f}" if ok else f"{i} ✗"
            ax.set_title(label, fontsize=5, color="k" if ok else "firebrick")
        else:
            ax.set_title(str(i), fontsize=5)
    m = maps.shape[1]
    if cell_deg:
        length = _nice_length(m * cell_deg)
        x0, y = 0.08 * m, 0.9 * m
        axes[0].plot([x0, x0 + length / cell_deg], [y, y], color="k", lw=1.2, solid_capstyle="butt")
        axes[0].text(x0 + length / cell_deg / 2, y - 0.04 * m, f"{length:g}°", ha="center", va="bottom",
                     fontsize=5)
    bar = fig.colorbar(image, ax=axes.tolist(), shrink=0.8, ticks=[-1, 0, 1])
    bar.ax.set_yticklabels(["−1 dark", "0", "+1 light"], fontsize=5)
    bar.set_label("RF weight / its peak", fontsize=6)
    extent = f" ({m * cell_deg:.2g}° shown)" if cell_deg else ""
    fig.suptitle((title or "receptive fields") + extent, fontsize=7)
    return _save(fig, path)


def plot_tuning_curves(x: np.ndarray, curves: np.ndarray, *, units: Sequence[int] | None = None,
                       xlabel: str = "orientation (deg)", log_x: bool = False, title: str = "",
                       path: PathLike | None = None) -> Figure:
    """Tuning curves (units × conditions), one small panel per unit, each scaled to its peak."""
    curves = np.asarray(curves, float)
    units = list(units) if units is not None else list(range(min(len(curves), 16)))
    cols = min(4, len(units))
    rows = -(-len(units) // cols)
    fig = Figure(figsize=(cols * 1.3, rows * 1.0 + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, u in zip(axes, units, strict=False):
        ax.plot(x, curves[u], "-o", ms=2, lw=0.8, color="k")
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_title(f"unit {u}", fontsize=6)
        ax.tick_params(labelsize=5)
    for ax in axes[len(units):]:
        ax.set_axis_off()
    fig.supxlabel(xlabel, fontsize=7)
    fig.suptitle(title or "tuning curves", fontsize=7)
    return _save(fig, path)


def plot_property_histograms(model_values: Mapping[str, np.ndarray], distributions: Mapping[str, object], *,
                             scores: Mapping[str, float] | None = None, title: str = "",
                             path: PathLike | None = None) -> Figure:
    """Model units vs macaque V1, one panel per property, on the neural data's bins.

    ``distributions`` maps property → :class:`~brainalign.data.v1_readers.PropertyDistribution`;
    NaN model values are left out and their number is written in the panel.
    """
    from brainalign.data.v1_readers import histogram

    names = [n for n in distributions if n in model_values]
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(cols * 2.0, rows * 1.5 + 0.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names, strict=False):
        d = distributions[name]
        edges = np.asarray(d.edges)
        v = np.asarray(model_values[name], float)
        if name == "preferred_orientation":  # De Valois' bins run -22.5..157.5 (as in the benchmark)
            v = np.where(v >= edges[-1], v - 180, v)
        nan = int((~np.isfinite(v)).sum())
        centres = np.arange(len(edges) - 1)
        ax.bar(centres, d.counts / d.counts.sum(), width=0.9, color="0.7", label=f"V1 (n={d.n})")
        if np.isfinite(v).any():
            h = histogram(v[np.isfinite(v)], edges)
            ax.step(centres, h / h.sum(), where="mid", color="crimson", lw=1.2,
                    label=f"model (n={int(np.isfinite(v).sum())})")
        # Ticks on the bin edges (bar i spans i ± 0.5); when they do not all fit, every step-th
        # edge is labelled, and the axis says so.
        step = max(1, len(edges) // 5)
        at = np.arange(0, len(edges), step)
        ax.set_xticks(at - 0.5, [f"{edges[i]:.2g}" for i in at], fontsize=5)
        ax.set_xlabel("bin edges" + (f" (every {_ordinal(step)} edge labelled)" if step > 1 else ""),
                      fontsize=5)
        ax.tick_params(labelsize=5)
        t = name.replace("_", " ")
        if scores is not None and name in scores:
            t += f"  ({scores[name]:.2f})"
        ax.set_title(t, fontsize=6)
        if nan:
            ax.text(0.98, 0.95, f"{nan} NaN left out", transform=ax.transAxes, ha="right", va="top",
                    fontsize=5)
        ax.legend(fontsize=4, frameon=False, loc="upper left")
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle(title or "model units vs macaque V1", fontsize=7)
    return _save(fig, path)


def _ordinal(k: int) -> str:
    """2 → "2nd", 3 → "3rd", 4 → "4th", 11 → "11th"."""
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"
