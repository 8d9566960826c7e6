"""Runner: scoring models on benchmarks, one at a time or in resumable batches."""

from brainalign.runner.batch import BatchReport, ModelEntry, read_models, run_batch
from brainalign.runner.checkpoints import list_checkpoints, score_checkpoints
from brainalign.runner.score import score

__all__ = ["BatchReport", "ModelEntry", "list_checkpoints", "read_models", "run_batch", "score",
           "score_checkpoints"]
