"""Scores: a tidy per-layer table with its provenance, the best layer, and a figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainalign.errors import ResultsTableError
from brainalign.io import atomic_write, atomic_write_text, interrupt_after
from brainalign.results.details import load_details, save_details
from brainalign.results.provenance import merge_metas
from brainalign.results.table import COLUMNS, choose_best, read_table, with_count_types
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
        Settings of the rows (data files and their sha256, benchmark definition, …): one
        benchmark's flat, or one entry per benchmark (and version) under ``"benchmarks"``
        (:func:`brainalign.results.provenance.benchmark_entries` reads both).
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

    def compare(self, **kwargs: Any) -> pd.DataFrame:
        """Which model is better: every pair of models per benchmark at their chosen layers, with a
        paired bootstrap CI of the difference and a p-value corrected for the number of pairs.
        See :func:`brainalign.results.compare.compare_scores` for the arguments and the method."""
        from brainalign.results.compare import compare_scores

        return compare_scores(self, **kwargs)

    def save(self, out_dir: PathLike, name: str = "scores") -> Path:
        """Write ``<name>.csv``, ``<name>.meta.json`` and the per-layer details as netCDF
        (``<name>.details/NNNN.nc``, one file per (model, benchmark, layer, session)) into
        ``out_dir``, each atomically (readers see the old file or the whole new one); returns
        the CSV path. Details that are not numeric arrays (NIfTI images, property tables) are
        left out of the netCDF and listed in its ``skipped`` attribute."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv = out / f"{name}.csv"
        table = with_count_types(self.table)  # counts written as 33, not 33.0
        with interrupt_after():  # a Ctrl-C meanwhile is raised once the three are whole
            atomic_write(csv, lambda p: table.to_csv(p, index=False))
            atomic_write_text(out / f"{name}.meta.json", json.dumps(self.meta, indent=2, default=str))
            save_details(self.details, out / f"{name}.details")
        return csv

    @classmethod
    def load(cls, out_dir: PathLike, name: str = "scores") -> ScoreResult:
        """Read what :meth:`save` wrote: table, meta and the numeric details (netCDF)."""
        out = Path(out_dir)
        csv = out / f"{name}.csv"
        if not csv.is_file():
            raise ResultsTableError(f"{out}: no {csv.name} (ScoreResult.save writes {name}.csv)")
        table = read_table(csv)
        meta_path = out / f"{name}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        details = load_details(out / f"{name}.details")
        for pair in _pair_details(out, table):  # a batch folder: details per pair
            details.update(load_details(pair))
        return cls(table, details, meta)

    @classmethod
    def concat(cls, results: Sequence[ScoreResult]) -> ScoreResult:
        """One result from several (e.g. several models on one benchmark)."""
        # Int64 counts beside float ones (an older table) would come out Float64: whole again.
        table = with_count_types(pd.concat([r.table for r in results], ignore_index=True))
        details: dict = {}
        for r in results:
            details.update(r.details)
        # One entry per benchmark (and version), each with its own settings: taking the first
        # result's meta for all described a second benchmark by the first one's provenance.
        meta = merge_metas([r.meta for r in results])
        return cls(table, details, meta)


def _pair_details(out: Path, table: pd.DataFrame) -> list[Path]:
    """The ``pairs/<key>.details`` folders of a batch folder that belong to ``table``: those of the
    pair keys its rows name (``pair_key``). Files of pairs scored anew under another key (other
    settings or code) may still lie beside them and would otherwise mix stale samples in. A
    table without ``pair_key`` (written before it existed): every folder, oldest first, so the
    newest of a pair wins."""
    folder = out / "pairs"
    if not folder.is_dir():
        return []
    if "pair_key" in table.columns:
        keys = dict.fromkeys(str(k) for k in table["pair_key"].dropna() if str(k))
        return [folder / f"{k}.details" for k in keys]
    return sorted(folder.glob("*.details"), key=lambda p: p.stat().st_mtime_ns)
