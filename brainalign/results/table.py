"""The one results-table schema every benchmark kind writes, its row builder and the one
best-layer rule.

A row is one (model, benchmark, session, layer[, metric]) score. A kind computes the statistics
(:class:`LayerScore`); :func:`make_row` adds what identifies the model, the benchmark and the run
(:class:`RowContext`) and returns a row with exactly the columns of :data:`COLUMNS`.

Columns
-------
model, benchmark, benchmark_version
    What was scored on what (the benchmark's version from its YAML).
session
    ``"all"`` for the aggregate over every recording (and the only row of a one-session
    benchmark), else a session name or ``"roi:<name>"`` (fMRI regions).
layer, layer_index, depth
    The layer, its position in the scored list and its relative depth in the network (0..1).
metric
    The comparison, e.g. ``"rsa:correlation/spearman"``, ``"ridge:pearson/median"``.
raw, raw_ci_low, raw_ci_high
    The score and its bootstrap percentile CI. A percentile CI need not contain the score: the
    median over neuroids of a resample is pulled towards 0 when few neuroids are reliable, so an
    interval can end just short of the score (seen on small sessions). It is the interval the
    bootstrap gives, reported as is (Efron & Tibshirani 1993, §13.3), not widened to hold it.
ceiling_lower, ceiling_upper
    Lower and upper bounds of the noise ceiling (NaN where the benchmark has none or defines
    only one bound; a single-valued ceiling is the upper bound).
normalised, normalised_ci_low, normalised_ci_high
    raw / ceiling_upper and its CI from the same bootstrap samples (the ceiling recomputed on
    each sample where the kind can). NaN without a ceiling.
above_ceiling
    ``normalised > 1``. This is not an error: the ceiling is itself an estimate from noisy
    repeats (split-half reliability with a Spearman–Brown correction is unbiased only on
    average), and a model close to the noise-free signal scores within noise of it, so about
    half of such models land above 1. The unbiased value is kept and flagged rather than
    clipped; read it with its CI.
dev_score, heldout_score
    The score (normalised where a ceiling applies) on two disjoint parts of the stimuli: the
    best layer is chosen on ``dev_score`` and reported by ``heldout_score``.
selected, selection
    ``selected`` is True on the row of the layer :func:`choose_best` picks per (model,
    benchmark); ``selection`` says how layers of this benchmark can be chosen: ``"development
    stimuli"`` or why they cannot be split (then the choice is in-sample).
n_stimuli, n_neuroids, n_bootstrap, seed
    Stimuli scored, neuroids (voxels, cells, subjects' RDMs…) with a finite score, bootstrap
    samples actually used (finite ones), and the bootstrap seed (the benchmark's, not the model's).
weights, model_seed, weights_hash, preprocessing, mode
    The model's weights, the seed of its random initial weights (empty for trained or loaded
    weights; missing in tables written before it was recorded), their sha256, its input
    preprocessing and the module mode (``eval`` / ``train``) activations were recorded in.
reduction, placement
    How the layer's features were reduced (JSON) and how the stimuli were placed in the
    model's field of view.
data_sha256, versions, ceiling_note
    Hash of the data files' checksums, software versions, and why a row has no ceiling.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

COLUMNS: list[str] = [
    "model", "benchmark", "benchmark_version", "session", "layer", "layer_index", "depth", "metric",
    "raw", "raw_ci_low", "raw_ci_high", "ceiling_lower", "ceiling_upper", "normalised",
    "normalised_ci_low", "normalised_ci_high", "above_ceiling", "dev_score", "heldout_score",
    "selected", "selection", "n_stimuli", "n_neuroids", "n_bootstrap", "seed", "weights", "model_seed",
    "weights_hash", "preprocessing", "mode", "reduction", "placement", "data_sha256", "versions",
    "ceiling_note",
]
"""Every column of a results table, in order (see the module docstring for meanings)."""

DEV_SELECTION = "development stimuli"
"""``selection`` of a benchmark whose layers are chosen on development stimuli."""

NAN = float("nan")


@dataclass
class LayerScore:
    """The statistics of one row, as a benchmark kind computes them for one layer.

    ``details`` holds arrays kept beside the table (per neuroid, per split, per subject, the
    bootstrap samples ``bootstrap_raw`` / ``bootstrap_normalised``); it does not enter the row.
    ``n_bootstrap`` is counted from ``bootstrap_raw`` when it is given and this is None.
    """

    raw: float
    metric: str
    session: str = "all"
    raw_ci_low: float = NAN
    raw_ci_high: float = NAN
    ceiling_lower: float = NAN
    ceiling_upper: float = NAN
    normalised: float = NAN
    normalised_ci_low: float = NAN
    normalised_ci_high: float = NAN
    dev_score: float = NAN
    heldout_score: float = NAN
    selection: str = DEV_SELECTION
    n_stimuli: int | float = NAN
    n_neuroids: int | float = NAN
    n_bootstrap: int | None = None
    ceiling_note: str = ""
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.n_bootstrap is None:
            boot = self.details.get("bootstrap_raw")
            self.n_bootstrap = 0 if boot is None else int(np.isfinite(np.asarray(boot, float)).sum())


@dataclass
class RowContext:
    """What identifies a row besides its statistics: model, benchmark, layer and run settings."""

    model: str
    benchmark: str
    benchmark_version: str
    layer: str
    layer_index: int
    depth: float
    seed: int
    weights: str
    weights_hash: str
    preprocessing: str
    mode: str
    versions: str
    reduction: str = ""
    placement: str = ""
    data_sha256: str = ""
    model_seed: int | None = None  # random initial weights only


_STAT_FIELDS = [f.name for f in fields(LayerScore) if f.name != "details"]


def make_row(score: LayerScore, context: RowContext) -> dict[str, Any]:
    """One table row (a dict with exactly :data:`COLUMNS`) from a kind's statistics and the run's
    context. ``above_ceiling`` is derived here (normalised > 1); ``selected`` starts False and is
    set by :func:`mark_selected`."""
    row: dict[str, Any] = {**{k: getattr(context, k) for k in RowContext.__dataclass_fields__},
                           **{k: getattr(score, k) for k in _STAT_FIELDS}}
    row["benchmark_version"] = str(row["benchmark_version"])
    norm = row["normalised"]
    row["above_ceiling"] = bool(norm is not None and math.isfinite(norm) and norm > 1)
    row["selected"] = False
    return {c: row[c] for c in COLUMNS}


def empty_table() -> pd.DataFrame:
    """A table with every column and no row."""
    return pd.DataFrame(columns=COLUMNS)


def make_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table of ``rows`` (from :func:`make_row`) with ``selected`` marked and the counts as
    whole numbers (:func:`with_count_types`)."""
    return with_count_types(mark_selected(pd.DataFrame(rows, columns=COLUMNS)))


COUNT_COLUMNS = ("layer_index", "n_stimuli", "n_neuroids", "n_bootstrap", "seed", "model_seed")
"""Columns that hold counts or indices: whole numbers, missing on some rows (an RSA row has no
neuroids), so stored as pandas' nullable ``Int64``, never as float (``33`` rather than ``33.0`` in
the CSV, the report and printed tables)."""


def with_count_types(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each of :data:`COUNT_COLUMNS` it has as nullable ``Int64`` (missing values
    kept as ``<NA>``, written as an empty CSV field). A column holding a non-whole number (not
    a count after all, e.g. a hand-made table) is left as it is. Returns a copy when it changes
    anything, else ``table`` itself."""
    change = {}
    for c in COUNT_COLUMNS:
        if c not in table or isinstance(table[c].dtype, pd.Int64Dtype):
            continue
        v = pd.to_numeric(table[c], errors="coerce")
        if v.isna().sum() > table[c].isna().sum():  # text that is not a number: not ours to retype
            continue
        finite = v.dropna()
        if len(finite) and not (np.isfinite(finite) & (finite == np.round(finite))).all():
            continue
        change[c] = v.astype("Int64")
    return table.assign(**change) if change else table


def reduction_json(desc: Any) -> str:
    """A reducer description as the ``reduction`` column's JSON text."""
    return json.dumps(desc, sort_keys=True, default=str)


# ----- the one best-layer rule ------------------------------------------------------------------
def _num(table: pd.DataFrame, col: str) -> pd.Series:
    if col not in table:
        return pd.Series(np.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[col], errors="coerce")


def _candidates(table: pd.DataFrame) -> pd.DataFrame:
    """Rows that can be chosen: per (model, benchmark), its aggregate rows (``session`` "all"
    or empty) where it has any, else all its rows; and of those, the pair's first metric."""
    t = table
    if "session" in t:
        agg = t["session"].isna() | t["session"].astype(str).isin(["all", ""])
        has_agg = agg.groupby([t["model"], t["benchmark"]], sort=False, dropna=False).transform("any").astype(bool)
        t = t[agg | ~has_agg]
    if "metric" in t and len(t):
        first = t.groupby([t["model"], t["benchmark"]], sort=False, dropna=False)["metric"].transform("first")
        t = t[(t["metric"] == first) | t["metric"].isna()]
    return t


def score_key(table: pd.DataFrame) -> pd.Series:
    """The in-sample value that ranks layers: normalised where a ceiling applies, raw elsewhere."""
    norm, raw = _num(table, "normalised"), _num(table, "raw")
    return norm.where(norm.notna(), raw)


def _best_positions(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row positions chosen, whether each was chosen honestly, its best_score)."""
    t = _candidates(table.reset_index(drop=True))
    if t.empty:
        return np.array([], int), np.array([], bool), np.array([], float)
    dev, held = _num(t, "dev_score"), _num(t, "heldout_score")
    honest = dev.notna() & held.notna()
    insample = score_key(t)
    group = [t["model"].astype(str), t["benchmark"].astype(str)]
    if "benchmark_version" in t:  # another version (a --max-stimuli subset) is another benchmark
        group.append(t["benchmark_version"].astype(str))
    if "epoch" in t:  # a model scored at several checkpoints: a best layer per checkpoint
        group.append(t["epoch"].astype(str))
    pair_honest = honest.groupby(group, sort=False, dropna=False).transform("any").astype(bool)
    key = dev.where(pair_honest, insample).where(~pair_honest | honest)
    ok = key.notna()
    if not ok.any():
        return np.array([], int), np.array([], bool), np.array([], float)
    pos = key[ok].groupby([g[ok] for g in group], sort=False, dropna=False).idxmax().to_numpy().astype(int)
    chosen = pair_honest.loc[pos].to_numpy(bool)
    value = np.where(chosen, held.loc[pos].to_numpy(float), insample.loc[pos].to_numpy(float))
    return pos, chosen, value


def choose_best(table: pd.DataFrame) -> pd.DataFrame:
    """The best layer of each (model, benchmark): one row each, with ``best_score``.

    The rule (the only one in brainalign; ``ScoreResult.best``, the CLI, plots and the report
    use it; tables with an ``epoch`` column get one per (model, benchmark, epoch)): among the
    pair's aggregate rows (``session`` "all" or empty where the pair has any, else all its rows;
    of those, the pair's first metric), if any row has both a ``dev_score`` and a
    ``heldout_score``, the layer with the highest ``dev_score`` among those rows is chosen and
    ``best_score`` is its ``heldout_score`` (a score on stimuli that played no part in the
    choice, so free of the winner's-curse bias of taking the maximum of noisy estimates).
    Else the layer with the highest normalised score (raw without a ceiling) is
    chosen and ``best_score`` is that in-sample value. Ties go to the earlier row. Pairs without
    any finite score are left out. ``selection`` of the returned rows says which way was used.

    Returns
    -------
    DataFrame
        The chosen rows (a copy; index reset), ``selected`` True, with ``best_score``; empty
        (with the same columns) when nothing can be chosen.
    """
    cols = [*table.columns, *(c for c in ("selected", "selection", "best_score") if c not in table)]
    pos, chosen, value = _best_positions(table)
    if not len(pos):
        return pd.DataFrame(columns=cols)
    best = table.iloc[pos].copy().reset_index(drop=True)
    best["best_score"] = value
    given = best["selection"].astype(object) if "selection" in best else pd.Series([""] * len(best))
    best["selection"] = [
        DEV_SELECTION if c else (g if isinstance(g, str) and g and g != DEV_SELECTION
                                 else "all stimuli (in-sample): no development / held-out scores")
        for c, g in zip(chosen, given, strict=True)]
    best["selected"] = True
    return best


def mark_selected(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``selected`` True exactly on the rows :func:`choose_best` picks."""
    t = table.copy()
    flags = np.zeros(len(t), bool)
    flags[_best_positions(t)[0]] = True
    t["selected"] = flags
    return t


_BOOL = ("above_ceiling", "selected")
_TEXT = ("model", "benchmark", "benchmark_version", "session", "layer", "metric", "selection", "weights",
         "weights_hash", "preprocessing", "mode", "reduction", "placement", "data_sha256", "versions",
         "ceiling_note")


def read_table(path: Any) -> pd.DataFrame:
    """A results CSV with the schema's types restored (text columns as text, empty text kept as
    ``""``, flags as bool), so a saved and re-read table equals the one that was saved."""
    t = pd.read_csv(path, dtype={c: str for c in _TEXT}, keep_default_na=False,
                    na_values={c: ["", "nan", "NaN"] for c in COLUMNS if c not in _TEXT})
    for c in _BOOL:
        if c in t:
            t[c] = t[c].map(lambda v: str(v).strip().lower() == "true").astype(bool)
    return with_count_types(t)


_SUBSET = re.compile(r"\+max_stimuli=(\d+)")


def subset_of(version: object) -> int | None:
    """N when a ``benchmark_version`` ends in ``+max_stimuli=N`` (scored on a stimulus subset),
    else None (the full benchmark)."""
    m = _SUBSET.search(str(version))
    return int(m.group(1)) if m else None


def subset_label(sub: pd.DataFrame) -> str | None:
    """"subset: N stimuli/session" when the rows were scored on a stimulus subset (``--max-stimuli
    N``, recorded as ``benchmark_version`` ending in ``+max_stimuli=N``), else None. Such scores
    are a quick look, not the benchmark's published number, and every figure and table says so."""
    if "benchmark_version" not in sub:
        return None
    found = sorted({n for v in sub["benchmark_version"].dropna() if (n := subset_of(v)) is not None})
    if not found:
        return None
    return f"subset: {'/'.join(map(str, found))} stimuli/session"


SUBSET_NOTE = "scored on a stimulus subset (--max-stimuli): not a paper number"


def versions_apart(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a benchmark scored at several ``benchmark_version`` values (a
    ``--max-stimuli`` subset beside the full benchmark, an edited YAML) split into one benchmark
    per version: on those rows ``benchmark`` reads ``<id> (version <v>)``, so summaries, figures,
    comparisons and best layers never pool them or label one with the other's subset. A table
    with one version per benchmark is returned as it is (the same object)."""
    if "benchmark_version" not in table or table.empty:
        return table
    version = table["benchmark_version"].astype(object).where(table["benchmark_version"].notna(), "–").astype(str)
    several = version.groupby(table["benchmark"].astype(str)).transform("nunique") > 1
    if not several.any():
        return table
    t = table.copy()
    t.loc[several, "benchmark"] = t.loc[several, "benchmark"].astype(str) + _VERSION_OPEN + version[several] + ")"
    return t


_VERSION_OPEN = " (version "


def benchmark_id(label: str) -> str:
    """The benchmark id of a label :func:`versions_apart` may have written (``<id> (version <v>)``)."""
    return label.split(_VERSION_OPEN, 1)[0]
