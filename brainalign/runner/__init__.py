"""Runner: scoring models on benchmarks."""

from brainalign.runner.checkpoints import list_checkpoints, score_checkpoints
from brainalign.runner.score import score

__all__ = ["list_checkpoints", "score", "score_checkpoints"]
