"""brainalign: measure how brain-like a deep network is.

>>> import brainalign as ba
>>> model = ba.load_model("torchvision:alexnet", weights="random")
>>> result = ba.score(model, "kriegeskorte2008.hIT-rsa")
>>> result.table, result.best; ba.plot_layers(result)

Attributes load on first use, so ``import brainalign`` (and the CLI's ``--help``) stays fast
and does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "brainalign.models",
    "wrap": "brainalign.models",
    "list_models": "brainalign.models",
    "BrainModel": "brainalign.models",
    "extract": "brainalign.activations",
    "iter_extract": "brainalign.activations",
    "load_benchmark": "brainalign.benchmarks",
    "list_benchmarks": "brainalign.benchmarks",
    "list_datasets": "brainalign.data",
    "fetch_file": "brainalign.data",
    "StimulusSet": "brainalign.data",
    "as_stimulus_set": "brainalign.data.stimuli",
    "score": "brainalign.runner",
    "run_batch": "brainalign.runner",
    "ScoreResult": "brainalign.results",
    "plot_layers": "brainalign.plots",
    "train": "brainalign.models.train",
    "score_checkpoints": "brainalign.runner",
    "plot_training": "brainalign.plots",
    "sentence_stimuli": "brainalign.data.text",
    "describe_stimuli": "brainalign.data.text",
    "compare_models": "brainalign.similarity",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in {"metrics", "data", "models", "activations", "benchmarks", "results", "runner",
                "plots", "insilico", "errors", "settings", "similarity"}:
        return importlib.import_module(f"brainalign.{name}")
    raise AttributeError(f"module 'brainalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
