"""Runner: scoring models on benchmarks."""

from brainalign.runner.score import score

__all__ = ["score"]
