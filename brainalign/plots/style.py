"""Shared figure conventions: paper sizes, font sizes, stable model colours, saving."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from brainalign.errors import ResultsTableError
from brainalign.results.table import (  # noqa: F401  (re-exported for the plots)
    SUBSET_NOTE,
    choose_best,
    score_key,
    subset_label,
    versions_apart,
)
from brainalign.settings import PathLike

SINGLE_COLUMN_IN = 3.5  # a paper's single-column width in inches
# Font sizes in points; nothing below 6 pt, so a 3.5-inch figure stays readable in print.
TITLE_PT, LABEL_PT, TICK_PT, LEGEND_PT, ANNOT_PT = 8, 7, 6, 6, 6
MIN_FONT_PT = 6
DEFAULT_FORMATS = ("png", "svg")
# Saved figures are cropped to what is drawn, so a label outside the axes grid (the heatmap's
# colour-bar label, a long note) is never cut at the figure's edge; a small margin is kept.
SAVE_BBOX = {"bbox_inches": "tight", "pad_inches": 0.05}


def model_colours(models: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per model, fixed by the model's position, so panels and figures agree."""
    n = len(models)
    if n <= 10:
        cmap, xs = colormaps["tab10"], range(n)
        return {m: cmap(i) for m, i in zip(models, xs, strict=True)}
    if n <= 20:
        cmap = colormaps["tab20"]
        return {m: cmap(i) for i, m in enumerate(models)}
    cmap = colormaps["turbo"]
    return {m: cmap(x) for m, x in zip(models, np.linspace(0.05, 0.95, n), strict=True)}


def require_columns(table: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a :class:`ResultsTableError` naming the columns ``what`` needs and lacks."""
    if not isinstance(table, pd.DataFrame):
        raise ResultsTableError(f"{what}: expected a pandas DataFrame (ScoreResult.table), "
                                f"got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ResultsTableError(f"{what}: the results table lacks column(s) {missing}; "
                                f"it has {list(table.columns)}")
    if table.empty:
        raise ResultsTableError(f"{what}: the results table is empty; nothing to plot")


def pooled(t: pd.DataFrame) -> pd.Series:
    """Rows that pool a benchmark's sessions (``session`` empty or ``"all"``); every row of a
    table without a ``session`` column."""
    if "session" not in t:
        return pd.Series(True, index=t.index)
    return t["session"].isna() | (t["session"].astype(str) == "all")


def primary_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a layer plot or a leaderboard shows: one per (model, benchmark, layer[, epoch]).

    Tables from benchmarks with several sessions or regions carry a ``session`` column; only the
    aggregate rows (``session`` empty or ``"all"``) are kept where the pair has them. Where a
    benchmark still has several rows per layer (e.g. encoding and RSA rows of one fMRI
    benchmark), each metric becomes its own panel, labelled ``benchmark [metric]``.
    """
    t = table
    if "session" in t:
        agg = pooled(t)
        has_agg = agg.groupby([t["model"], t["benchmark"]]).transform("any")
        t = t[agg | ~has_agg]
    key = ["model", "benchmark", "layer"] + (["epoch"] if "epoch" in t else [])
    if "metric" in t and t.duplicated(key).any():
        n_metrics = t.groupby("benchmark")["metric"].transform("nunique")
        t = t.assign(benchmark=t["benchmark"].where(n_metrics <= 1,
                                                     t["benchmark"] + " [" + t["metric"].astype(str) + "]"))
    return t.drop_duplicates(key, keep="first")


def region_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a benchmark's regions of interest (an fMRI benchmark's ``roi:<name>``
    sessions), each region its own benchmark label for a panel of its own, ``benchmark
    [roi:<name>]`` (and ``· metric`` where the region has several metrics). :func:`primary_rows`
    keeps the whole mask only, where the signal of a small region is diluted: a layer plot of it
    alone read ~0.04 for a region at ~0.68."""
    if "session" not in table:
        return table.iloc[0:0]
    t = table[table["session"].astype(str).str.startswith("roi:")]
    if t.empty:
        return t
    label = t["benchmark"].astype(str) + " [" + t["session"].astype(str)
    if "metric" in t:
        several = t.groupby(["benchmark", "session"])["metric"].transform("nunique") > 1
        label = label + (" · " + t["metric"].astype(str)).where(several, "")
    return t.assign(benchmark=label + "]")


def best_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, benchmark): its best layer, with the value to show in ``best_score``
    (the one rule, :func:`brainalign.results.choose_best`; ``selection`` says how it was chosen)."""
    return choose_best(table)


def has_ceiling(sub: pd.DataFrame) -> bool:
    """Whether any row of ``sub`` carries a noise ceiling."""
    return bool(numeric(sub, *CEILING).notna().any())


def save_figure(fig: Figure, path: PathLike, formats: Sequence[str] | None = None,
                dpi: int = 200) -> list[Path]:
    """Write ``fig``, cropped to what is drawn (nothing clipped at its edges). A path with a
    suffix writes that one file; a path without one writes ``path.png`` and ``path.svg`` (or
    ``formats``). Missing folders are created. Returns the paths written."""
    path = Path(path)
    if path.suffix and formats is None:
        targets = [path]
    else:
        targets = [path.with_name(f"{path.name}.{f.lstrip('.')}") for f in (formats or DEFAULT_FORMATS)]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(t, dpi=dpi, metadata={"Date": None} if t.suffix == ".svg" else None, **SAVE_BBOX)
    return targets


def note(ax, text: str) -> None:
    """A short message inside an axes (e.g. why a panel is empty)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=LABEL_PT, color="0.3",
            transform=ax.transAxes, wrap=True)


def numeric(table: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` the table has, as numbers (NaN where none is there). The result
    schema renamed ``ceiling`` → ``ceiling_upper`` and ``ci_low/ci_high`` →
    ``normalised_ci_low/high``; figures read either."""
    for n in names:
        if n in table:
            return pd.to_numeric(table[n], errors="coerce")
    return pd.Series(np.nan, index=table.index, dtype=float)


CEILING = ("ceiling_upper", "ceiling")
NORM_CI_LOW = ("normalised_ci_low", "ci_low")
NORM_CI_HIGH = ("normalised_ci_high", "ci_high")

_COMPARE = {"spearman": "Spearman ρ", "pearson": "Pearson r", "kendall_tau_a": "Kendall τa",
            "kendall": "Kendall τ", "cosine": "cosine", "median": "median", "mean": "mean"}
_KIND = {"rsa": "RSA", "ridge": "ridge encoding", "pls": "PLS encoding", "linear": "linear encoding",
         "cka": "CKA"}


def metric_label(metric: object) -> str:
    """A reader's name for a ``metric`` column value: ``"rsa:correlation/spearman"`` →
    ``"RSA, Spearman ρ"``; ``"ridge:pearson/median"`` → ``"ridge encoding, Pearson r (median)"``;
    free text is kept as it is."""
    if not isinstance(metric, str) or not metric.strip():
        return "score"
    kind, sep, rest = metric.partition(":")
    if not sep or kind not in _KIND:
        text = {"ks_similarity": "KS similarity"}.get(metric, metric)
        cut = text.find(", ", 10)  # free text: keep the name, drop trailing settings (CV splits, …)
        return text[:cut] if len(text) > 40 and cut > 0 else text
    parts = rest.split("/")
    if kind == "rsa":
        return f"RSA, {_COMPARE.get(parts[-1], parts[-1])}"
    label = f"{_KIND[kind]}, {_COMPARE.get(parts[0], parts[0])}"
    return label + (f" ({_COMPARE.get(parts[1], parts[1])})" if len(parts) > 1 else "")


def axis_label(sub: pd.DataFrame, normalised: bool) -> str:
    """The y-axis label of a panel: which score, and whether it is divided by the noise ceiling."""
    metrics = list(dict.fromkeys(sub["metric"].dropna())) if "metric" in sub else []
    base = metric_label(metrics[0]) if len(metrics) == 1 else "score"
    tail = "/ noise ceiling (upper bound)" if normalised else "(raw)"
    return f"{base}\n{tail}" if len(base) + len(tail) > 34 else f"{base} {tail}"


def weights_label(weights: object) -> str:
    """``"random"`` / ``"random(seed=0)"`` → ``"random weights"``, ``"pretrained"`` →
    ``"pretrained"``, a checkpoint path → its file name."""
    if not isinstance(weights, str) or not weights:
        return "weights unknown"
    w = weights.strip()
    if w.startswith("random"):
        return "random weights"
    if w.startswith("pretrained"):
        return "pretrained"
    m = re.fullmatch(r"([\w-]+)\(seed=\d+\)", w)
    if m:  # "gabor-init(seed=0)" → "gabor-init weights"
        return f"{m.group(1)} weights"
    if "/" in w or w.endswith((".pt", ".pth", ".ckpt", ".safetensors")):
        return f"checkpoint {Path(w).name}"
    return w
