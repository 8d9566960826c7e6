"""Results: one tidy score table (one schema for every benchmark kind) with provenance."""

from brainalign.results.provenance import versions
from brainalign.results.result import TABLE_COLUMNS, ScoreResult
from brainalign.results.table import (
    COLUMNS,
    DEV_SELECTION,
    LayerScore,
    RowContext,
    choose_best,
    make_row,
    make_table,
    mark_selected,
)

__all__ = ["COLUMNS", "DEV_SELECTION", "TABLE_COLUMNS", "LayerScore", "RowContext", "ScoreResult",
           "choose_best", "make_row", "make_table", "mark_selected", "versions"]
