"""Runner: scoring models on benchmarks, one at a time or in resumable batches."""

from brainalign.runner.batch import BatchReport, ModelEntry, read_models, run_batch
from brainalign.runner.score import score

__all__ = ["BatchReport", "ModelEntry", "read_models", "run_batch", "score"]
