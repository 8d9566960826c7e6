"""Benchmarks: brain data and the experiment run on a model, defined as YAML.

Listing and parsing definitions needs no torch; the benchmark kinds load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from brainalign.benchmarks.spec import BenchmarkSpec, list_benchmarks, parse_benchmark

_LAZY = {"Benchmark": "brainalign.benchmarks.base", "KINDS": "brainalign.benchmarks.registry",
         "load_benchmark": "brainalign.benchmarks.registry", "RSABenchmark": "brainalign.benchmarks.rsa",
         "RegressionBenchmark": "brainalign.benchmarks.regression", "FMRIBenchmark": "brainalign.benchmarks.fmri"}

__all__ = ["BenchmarkSpec", "list_benchmarks", "parse_benchmark", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'brainalign.benchmarks' has no attribute {name!r}")
