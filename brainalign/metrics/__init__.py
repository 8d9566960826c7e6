"""Metrics: pure functions over arrays that compare model and brain representations.

The numpy-only parts (RSA, CKA, reliability) import with the package; the regression metrics
(ridge, PLS, encoding scores, their statistics) load on first use (PEP 562 ``__getattr__``), so
``import brainalign.metrics.rsa`` imports neither torch nor scikit-learn nor pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

# numpy-only parts: imported now (cheap). ``cka`` must be bound here: the submodule of the same
# name would otherwise shadow the function once something imports ``brainalign.metrics.cka``.
from brainalign.metrics.cka import cka
from brainalign.metrics.reliability import spearman_brown, split_half_reliability
from brainalign.metrics.rsa import RSABootstrap, compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper

_LAZY: dict[str, str] = {
    "EncodingScore": "brainalign.metrics.encoding",
    "encoding_ceiling": "brainalign.metrics.encoding",
    "encoding_score": "brainalign.metrics.encoding",
    "make_splits": "brainalign.metrics.encoding",
    "normalise": "brainalign.metrics.encoding",
    "pearson_columns": "brainalign.metrics.encoding",
    "DEFAULT_ALPHAS": "brainalign.metrics.ridge",
    "PLSRegression": "brainalign.metrics.estimators",
    "RidgeCV": "brainalign.metrics.estimators",
    "BootstrapCI": "brainalign.metrics.stats",
    "PairedComparison": "brainalign.metrics.stats",
    "PermutationTest": "brainalign.metrics.stats",
    "bootstrap_neuroids": "brainalign.metrics.stats",
    "bootstrap_stimuli": "brainalign.metrics.stats",
    "paired_comparison": "brainalign.metrics.stats",
    "permutation_test": "brainalign.metrics.stats",
}

__all__ = ["RSABootstrap", "cka", "compare_rdms", "pool_rdms", "rdm", "rsa_noise_ceiling",  # noqa: RUF022
           "spearman_brown", "split_half_reliability", "upper",
           "EncodingScore", "encoding_ceiling", "encoding_score", "make_splits", "normalise",
           "pearson_columns", "DEFAULT_ALPHAS", "PLSRegression", "RidgeCV", "BootstrapCI",
           "PairedComparison", "PermutationTest", "bootstrap_neuroids", "bootstrap_stimuli",
           "paired_comparison", "permutation_test"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'brainalign.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
