"""Scores: a tidy per-layer table with its provenance, the best layer, and a figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainalign.settings import PathLike

TABLE_COLUMNS = [
    "model", "benchmark", "benchmark_version", "layer", "layer_index", "depth", "metric",
    "raw", "raw_ci_low", "raw_ci_high", "ceiling", "ceiling_lower", "normalised", "ci_low",
    "ci_high", "n_stimuli", "n_bootstrap", "seed", "weights", "weights_hash", "versions",
]


@dataclass
class ScoreResult:
    """The outcome of scoring one or more models on one or more benchmarks.

    Attributes
    ----------
    table
        One row per (model, benchmark, layer): raw score, ceiling, normalised score, confidence
        intervals and provenance.
    details
        Per-(model, benchmark, layer) arrays: per-subject values, bootstrap samples, …
    meta
        Settings shared by the rows (data files and their sha256, benchmark definition, …).
    """

    table: pd.DataFrame
    details: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> pd.Series | pd.DataFrame:
        """The best layer per (model, benchmark), chosen honestly when the benchmark allows it.

        Where the table has ``dev_score`` / ``heldout_score`` (every brainalign benchmark), the
        layer is chosen on the development stimuli and ``best_score`` is its score on the
        held-out stimuli, which played no part in the choice (the split is in ``meta``). Else
        the layer with the highest normalised score (raw where no ceiling applies) is returned,
        and ``best_score`` is that in-sample value. Rows of single sessions are not candidates
        where an aggregate (``session == "all"``) row exists. One row per (model, benchmark).
        """
        t = self.table
        if "session" in t:
            t = t[t["session"].isna() | (t["session"] == "all")]
        key = t["normalised"].where(t["normalised"].notna(), t["raw"])
        honest = pd.Series(False, index=t.index)
        if "dev_score" in t:
            honest = t["dev_score"].notna() & t["heldout_score"].notna()
            key = t["dev_score"].where(honest, key)
        idx = key.groupby([t["model"], t["benchmark"]]).idxmax().dropna()
        best = t.loc[idx.astype(int).to_numpy()].copy()
        chosen = honest.loc[best.index]
        fallback = best["normalised"].where(best["normalised"].notna(), best["raw"])
        best["best_score"] = best["heldout_score"].where(chosen, fallback) if "heldout_score" in best \
            else fallback
        best["selected_on"] = ["development stimuli" if c else "all stimuli (in-sample)" for c in chosen]
        return best.iloc[0] if len(best) == 1 else best.reset_index(drop=True)

    def compare(self, **kwargs: Any) -> pd.DataFrame:
        """Which model is better: every pair of models per benchmark at their chosen layers, with a
        paired bootstrap CI of the difference and a p-value corrected for the number of pairs.
        See :func:`brainalign.results.compare.compare_scores` for the arguments and the method."""
        from brainalign.results.compare import compare_scores

        return compare_scores(self, **kwargs)

    def plot(self, path: PathLike | None = None, **kwargs: Any):
        """Score against relative layer depth, with the ceiling band and CIs (see
        :func:`brainalign.plots.plot_layers`). Returns the matplotlib figure."""
        from brainalign.plots.layers import plot_layers

        return plot_layers(self.table, path=path, **kwargs)

    def save(self, out_dir: PathLike, name: str = "scores") -> Path:
        """Write ``<name>.csv`` and ``<name>.meta.json`` into ``out_dir``; returns the CSV path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv = out / f"{name}.csv"
        self.table.to_csv(csv, index=False)
        (out / f"{name}.meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return csv

    @classmethod
    def concat(cls, results: Sequence[ScoreResult]) -> ScoreResult:
        """One result from several (e.g. several models on one benchmark)."""
        table = pd.concat([r.table for r in results], ignore_index=True)
        details: dict = {}
        meta: dict = {}
        for r in results:
            details.update(r.details)
            for k, v in r.meta.items():
                meta.setdefault(k, v)
        return cls(table, details, meta)
