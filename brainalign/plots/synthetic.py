"""Synthetic results tables with a known shape, for demos, tests and timing the report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.results.result import TABLE_COLUMNS


def synthetic_table(n_models: int = 3, n_benchmarks: int = 2, n_layers: int = 8, *, seed: int = 0,
                    ceiling: bool | list[bool] = True, epochs: int | None = None) -> pd.DataFrame:
    """A results table (``TABLE_COLUMNS``) whose scores follow an inverted U over depth.

    Model ``k`` peaks at a depth that grows with ``k``; its peak height falls with ``k``, so the
    best model is ``model-00`` on every benchmark. ``ceiling`` (one flag or one per benchmark)
    says which benchmarks carry a noise ceiling. With ``epochs``, each (model, benchmark, layer)
    is repeated per epoch with an ``epoch`` column and scores rising with training.
    """
    rng = np.random.default_rng(seed)
    flags = ceiling if isinstance(ceiling, list) else [ceiling] * n_benchmarks
    rows = []
    depth = np.linspace(0, 1, n_layers)
    for b in range(n_benchmarks):
        bench = f"synthetic{b}.region-rsa"
        upper, lower = 0.6 + 0.05 * b, 0.45 + 0.05 * b
        for k in range(n_models):
            peak = 0.2 + 0.6 * k / max(n_models - 1, 1)
            height = 0.5 - 0.3 * k / max(n_models, 1)
            for e in range(epochs or 1):
                grow = 1.0 if epochs is None else (e + 1) / epochs
                for i, d in enumerate(depth):
                    raw = grow * height * np.exp(-((d - peak) ** 2) / 0.08) + rng.normal(0, 0.005)
                    half = 0.03 + 0.01 * rng.random()
                    row = {
                        "model": f"model-{k:02d}", "benchmark": bench, "benchmark_version": "1",
                        "layer": f"layer{i}", "layer_index": i, "depth": d, "metric": "rsa:synthetic",
                        "raw": raw, "raw_ci_low": raw - half, "raw_ci_high": raw + half,
                        "n_stimuli": 92, "n_bootstrap": 100, "seed": 0, "weights": "random", "model_seed": 0,
                        "weights_hash": f"{k:064x}", "versions": "brainalign=0.1.0",
                    }
                    if flags[b]:
                        row.update(ceiling_upper=upper, ceiling_lower=lower, normalised=raw / upper,
                                   normalised_ci_low=(raw - half) / upper,
                                   normalised_ci_high=(raw + half) / upper)
                    else:
                        row.update(ceiling_upper=np.nan, ceiling_lower=np.nan, normalised=np.nan,
                                   normalised_ci_low=np.nan, normalised_ci_high=np.nan)
                    if epochs is not None:
                        row["epoch"] = e
                    rows.append(row)
    cols = [*TABLE_COLUMNS, "epoch"] if epochs is not None else TABLE_COLUMNS
    return pd.DataFrame(rows, columns=cols)
