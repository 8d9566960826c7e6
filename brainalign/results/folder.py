"""Read every results table in a folder (as written by ``ScoreResult.save``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainalign.errors import ResultsTableError
from brainalign.settings import PathLike

KEY = ["model", "benchmark", "layer"]  # + session and metric where the table has them
REQUIRED = ("model", "benchmark", "layer", "raw")
FAILURES = "failures.csv"  # written by a batch run beside scores.csv
PROVENANCE = "provenance.json"
# CSVs brainalign itself writes that are not results tables: listed in ``other``, never warned of.
OTHER_FILES = {
    "compare.csv": "model comparison (brainalign compare)",
    "rf_gabor_fits.csv": "Gabor fits of the first-layer receptive fields (brainalign demo)",
    "history.csv": "training history (brainalign train)",
    "similarity.csv": "layer-by-layer model similarity (brainalign similarity)",
}


@dataclass
class ResultsFolder:
    """The results found in a folder.

    Attributes
    ----------
    table
        Every readable row, one table; a ``source`` column names the CSV it came from.
    metas
        CSV path (relative to the folder) → its ``.meta.json`` content (empty when absent).
    skipped
        (file, reason) for every CSV that could not be used.
    notes
        Other things a reader should know (duplicate rows, rows without a score, …).
    failures
        Failed (model, benchmark) pairs from every ``failures.csv`` a batch run wrote (columns
        model, benchmark, error_type, error, source).
    provenance
        Folder (relative) → the ``provenance.json`` a batch run wrote there (its runs' settings,
        models, benchmarks, versions and failures).
    other
        (file, what it is) for CSVs brainalign writes that are not results tables
        (:data:`OTHER_FILES`: comparisons, demo RF fits, training history, similarity).
    """

    root: Path
    table: pd.DataFrame
    metas: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["model", "benchmark", "error_type", "error", "source"]))
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    other: list[tuple[str, str]] = field(default_factory=list)


def _meta_for(csv: Path) -> tuple[dict[str, Any], str | None]:
    meta_path = csv.with_name(f"{csv.stem}.meta.json")
    if not meta_path.exists():
        if (csv.parent / PROVENANCE).is_file():  # a batch run: its settings are in provenance.json
            return {}, None
        return {}, f"{csv.name}: no {meta_path.name} beside it; provenance is limited to the table"
    try:
        return json.loads(meta_path.read_text()), None
    except (OSError, ValueError) as err:
        return {}, f"{meta_path}: unreadable ({err}); provenance is limited to the table"


def read_results(folder: PathLike) -> ResultsFolder:
    """Read every ``*.csv`` results table under ``folder`` (recursively) with its ``.meta.json``.

    CSVs that are not results tables (no model/benchmark/layer/raw columns) are listed in
    ``skipped``; a row present in several files is kept once (the last file, in sorted path
    order, wins) and noted.

    Raises
    ------
    ResultsTableError
        The folder does not exist, or holds no readable results table.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ResultsTableError(f"results folder {root} does not exist (or is not a folder); "
                                "pass the --out folder of `brainalign score` / `ScoreResult.save`")
    csvs = sorted(p for p in root.rglob("*.csv") if p.is_file())
    if not csvs:
        raise ResultsTableError(f"{root}: no *.csv results table found (ScoreResult.save writes "
                                "scores.csv and scores.meta.json)")
    csvs = [c for c in csvs if not any(p.name.endswith(".details") for p in c.parents)]
    frames, metas, skipped, notes, fails, other = [], {}, [], [], [], []
    provenance = {}
    for prov in sorted(root.rglob(PROVENANCE)):
        try:
            provenance[str(prov.parent.relative_to(root)) or "."] = json.loads(prov.read_text())
        except (OSError, ValueError) as err:
            notes.append(f"{prov.relative_to(root)}: unreadable ({err})")
    for csv in csvs:
        rel = str(csv.relative_to(root))
        if csv.name == FAILURES:  # a batch run's failed pairs: listed, not a results table
            try:
                f = pd.read_csv(csv)
            except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
                skipped.append((rel, f"unreadable: {err}"))
                continue
            if {"model", "benchmark"} <= set(f.columns):
                fails.append(f.assign(source=rel))
                continue
        try:
            t = pd.read_csv(csv)
        except (OSError, ValueError, pd.errors.ParserError) as err:
            skipped.append((rel, f"unreadable: {err}"))
            continue
        missing = [c for c in REQUIRED if c not in t.columns]
        if missing and csv.name in OTHER_FILES:
            other.append((rel, OTHER_FILES[csv.name]))
            continue
        if missing:
            skipped.append((rel, f"not a results table: lacks column(s) {missing}"))
            continue
        if t.empty:
            skipped.append((rel, "no rows"))
            continue
        meta, problem = _meta_for(csv)
        if problem:
            notes.append(problem)
        metas[rel] = meta
        frames.append(t.assign(source=rel))
    if not frames:
        # Every file is named with why it is not a score table: the other known outputs too
        # (a similarity folder holds only similarity.csv; the message once ended in ": ").
        reasons = "; ".join([*(f"{f}: {r}" for f, r in skipped),
                             *(f"{f}: {what}, not scores" for f, what in other)])
        raise ResultsTableError(f"{root}: no usable results table among {len(csvs)} CSV file(s): {reasons}")
    from brainalign.results.table import versions_apart, with_count_types

    table = with_count_types(pd.concat(frames, ignore_index=True))  # counts shown as 33, not 33.0
    for col in ("model", "benchmark", "layer"):
        table[col] = table[col].astype(str)
    # A benchmark at two versions (a --max-stimuli run beside a full one) is two benchmarks: their
    # rows are neither deduplicated against each other nor summarised under one label.
    table = versions_apart(table)
    key = KEY + [c for c in ("session", "metric", "epoch") if c in table]
    dup = table.duplicated(key, keep="last")
    if dup.any():
        notes.append(f"{int(dup.sum())} row(s) appear in more than one file; the last file's row is kept")
        table = table[~dup].reset_index(drop=True)
    raw = pd.to_numeric(table["raw"], errors="coerce")
    if raw.isna().any():
        bad = table.loc[raw.isna(), KEY].astype(str).agg("/".join, axis=1).tolist()
        notes.append(f"{len(bad)} row(s) have no score and are not plotted: {', '.join(bad[:5])}"
                     + (" …" if len(bad) > 5 else ""))
    failures = pd.concat(fails, ignore_index=True) if fails else ResultsFolder(root, table).failures
    return ResultsFolder(root=root, table=table, metas=metas, skipped=skipped, notes=notes,
                         failures=failures, provenance=provenance, other=other)


def final_epoch(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's last ``epoch`` (rows without an epoch are kept): what a leaderboard
    and layer curves should show for a model scored at several points of its training."""
    if "epoch" not in table:
        return table
    ep = pd.to_numeric(table["epoch"], errors="coerce")
    last = ep.groupby(table["model"]).transform("max")
    return table[ep.isna() | (ep == last)]
