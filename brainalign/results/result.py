"""Scores: a tidy per-layer table with its provenance, the best layer, and a figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainalign.results.table import COLUMNS, choose_best
from brainalign.settings import PathLike

TABLE_COLUMNS = COLUMNS  # the one schema (brainalign.results.table)


@dataclass
class ScoreResult:
    """The outcome of scoring one or more models on one or more benchmarks.

    Attributes
    ----------
    table
        One row per (model, benchmark, session, layer[, metric]) with the columns of
        :data:`brainalign.results.COLUMNS`: raw score, ceiling bounds, normalised score,
        confidence intervals, the chosen layer and provenance.
    details
        Per-(model, benchmark, layer) arrays: per-subject values, bootstrap samples, …
    meta
        Settings shared by the rows (data files and their sha256, benchmark definition, …).
    """

    table: pd.DataFrame
    details: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> pd.DataFrame:
        """The best layer of each (model, benchmark), one row each, by the one rule of
        :func:`brainalign.results.choose_best`: chosen on development stimuli and reported by
        its held-out score (``best_score``) where the benchmark splits its stimuli, in-sample
        otherwise (``selection`` says which). Always a DataFrame (possibly empty)."""
        return choose_best(self.table)

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
