"""Regression bootstrap: the former per-sample loop vs the vectorised gather (issue 11 measure).

``python perf/contract_bootstrap_speed.py``. Sizes of the largest Cowley V4 session (201025:
1,200 images, 89 neurons, 5 outer folds of 240 test images) and of an fMRI ROI set (3,666 voxels,
92 images, 4 folds); 1,000 bootstrap samples per fold, as the benchmarks use. Same index sets for
both; the outputs are checked equal (max |difference| printed). One warm-up, then 3 interleaved
rounds; median seconds per layer-session (all folds) and the ratio; load average recorded.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from brainalign.benchmarks.regression import bootstrap_fold_r
from brainalign.metrics.stats import pearson_last, resample_indices


def loop(p: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The code the benchmarks ran before: one Pearson r per index set."""
    return np.stack([pearson_last(p[:, kk], y[:, kk]) for kk in k])


def case(n_neuroid: int, n_test: int, folds: int, n_boot: int = 1000) -> dict:
    rng = np.random.default_rng(0)
    data = []
    for _ in range(folds):
        y = rng.normal(size=(n_neuroid, n_test))
        data.append((0.3 * y + rng.normal(size=y.shape), y, resample_indices(n_test, n_boot, rng)))
    for p, y, k in data[:1]:  # warm-up
        loop(p, y, k[:50]), bootstrap_fold_r(p, y, k[:50])
    times: dict[str, list[float]] = {"loop": [], "vectorised": []}
    diff = 0.0
    for _ in range(3):
        for name, fn in (("loop", loop), ("vectorised", bootstrap_fold_r)):
            t0 = time.perf_counter()
            out = [fn(p, y, k) for p, y, k in data]
            times[name].append(time.perf_counter() - t0)
            if name == "loop":
                ref = out
            else:
                diff = max(diff, max(float(np.nanmax(np.abs(a - b))) for a, b in zip(out, ref, strict=True)))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"neuroids": n_neuroid, "test_stimuli": n_test, "folds": folds, "n_boot": n_boot,
            "loop_s": round(med["loop"], 3), "vectorised_s": round(med["vectorised"], 3),
            "speedup": round(med["loop"] / med["vectorised"], 2), "max_abs_diff": diff,
            "load_average": os.getloadavg()}


if __name__ == "__main__":
    print(json.dumps(case(89, 240, 5)))
    print(json.dumps(case(50, 128, 5)))
    print(json.dumps(case(1000, 23, 4)))
