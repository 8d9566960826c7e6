"""Results: tidy score tables with provenance."""

from brainalign.results.provenance import versions
from brainalign.results.result import TABLE_COLUMNS, ScoreResult

__all__ = ["TABLE_COLUMNS", "ScoreResult", "versions"]
