"""The results-folder reader lives in :mod:`brainalign.results.folder` (data flows one way:
results never import plots); these names stay importable from here."""

from brainalign.results.folder import KEY, REQUIRED, ResultsFolder, final_epoch, read_results

__all__ = ["KEY", "REQUIRED", "ResultsFolder", "final_epoch", "read_results"]
