"""Metrics: pure functions over arrays that compare model and brain representations.

Names load on first use (PEP 562 ``__getattr__``), so importing a numpy-only part such as
:mod:`brainalign.metrics.rsa` or :mod:`brainalign.metrics.cka` does not import torch,
scikit-learn or pandas; the regression metrics (ridge, PLS, encoding scores) import torch and
scikit-learn when they are first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "cka": "brainalign.metrics.cka",
    "EncodingScore": "brainalign.metrics.encoding",
    "encoding_ceiling": "brainalign.metrics.encoding",
    "encoding_score": "brainalign.metrics.encoding",
    "make_splits": "brainalign.metrics.encoding",
    "normalise": "brainalign.metrics.encoding",
    "pearson_columns": "brainalign.metrics.encoding",
    "DEFAULT_ALPHAS": "brainalign.metrics.estimators",
    "PLSRegression": "brainalign.metrics.estimators",
    "RidgeCV": "brainalign.metrics.estimators",
    "spearman_brown": "brainalign.metrics.reliability",
    "split_half_reliability": "brainalign.metrics.reliability",
    "RSABootstrap": "brainalign.metrics.rsa",
    "compare_rdms": "brainalign.metrics.rsa",
    "pool_rdms": "brainalign.metrics.rsa",
    "rdm": "brainalign.metrics.rsa",
    "rsa_noise_ceiling": "brainalign.metrics.rsa",
    "upper": "brainalign.metrics.rsa",
    "BootstrapCI": "brainalign.metrics.stats",
    "PairedComparison": "brainalign.metrics.stats",
    "PermutationTest": "brainalign.metrics.stats",
    "bootstrap_neuroids": "brainalign.metrics.stats",
    "bootstrap_stimuli": "brainalign.metrics.stats",
    "paired_comparison": "brainalign.metrics.stats",
    "permutation_test": "brainalign.metrics.stats",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'brainalign.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
