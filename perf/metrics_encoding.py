"""Benchmark (b): encoding score, 2,560 stimuli × 1,000 features → 168 neuroids, 10 splits of 90/10.

brainalign's ``encoding_score`` (ridge with per-neuroid α by exact leave-one-out; PLS(25)) against
the same splits fitted with scikit-learn's ``PLSRegression(25)`` and ``RidgeCV(alpha_per_target=True)``.
Synthetic data with a known linear + noise structure. Prints times, ratios and the median held-out r,
all measured side by side in this one run.

    PYTHONPATH=. python perf/metrics_encoding.py [--small]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _data(n: int, p: int, t: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = 100
    Z = rng.normal(size=(n, k)) / np.sqrt(np.arange(1, k + 1))
    X = Z @ rng.normal(size=(k, p)) + 0.5 * rng.normal(size=(n, p))
    S = X @ (rng.normal(size=(p, t)) * (rng.random((p, t)) < 0.05))
    Y = S / S.std(0) + rng.normal(size=(n, t)) * rng.uniform(0.5, 2.0, t)
    return X, Y


def _r(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    n, p, t = (640, 250, 42) if args.small else (2560, 1000, 168)
    X, Y = _data(n, p, t)
    alphas = np.logspace(-2, 7, 10)
    from sklearn.cross_decomposition import PLSRegression as SkPLS
    from sklearn.linear_model import RidgeCV as SkRidgeCV
    from sklearn.model_selection import ShuffleSplit

    from brainalign.metrics import encoding_score

    splits = list(ShuffleSplit(10, test_size=0.1, random_state=0).split(X))

    def sk(make):
        rs = []
        for tr, te in splits:
            rs.append(_r(make().fit(X[tr], Y[tr]).predict(X[te]), Y[te]))
        return np.median(np.mean(rs, 0))

    runs = {
        "brainalign ridge (LOO α) float32": lambda: encoding_score(X, Y, alphas=alphas, cv=splits,
                                                                   dtype="float32").median,
        "brainalign ridge (LOO α) float64": lambda: encoding_score(X, Y, alphas=alphas, cv=splits).median,
        "brainalign pls(25) float32": lambda: encoding_score(X, Y, model="pls", cv=splits, dtype="float32").median,
        "brainalign pls(25) float64": lambda: encoding_score(X, Y, model="pls", cv=splits).median,
        "sklearn PLSRegression(25)": lambda: sk(lambda: SkPLS(25)),
        "sklearn RidgeCV(alpha_per_target)": lambda: sk(lambda: SkRidgeCV(alphas=alphas, alpha_per_target=True)),
    }
    encoding_score(X[:40, :5], Y[:40, :2], cv=2)  # warm up torch's linear algebra outside the timings
    rows = []
    for name, fn in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            med = fn()
            dt = time.perf_counter() - t0
        rows.append((name, dt, med))
        print(f"  {name}: {dt:.2f} s", flush=True)
    sk_times = {name: dt for name, dt, _ in rows if name.startswith("sklearn")}
    print(f"\n{n} stimuli × {p} features → {t} neuroids, 10 ShuffleSplits 90/10")
    print(f"{'method':36s} {'time s':>8s} " + " ".join(f"{'× ' + k.split()[1][:10]:>13s}" for k in sk_times)
          + f" {'median r':>9s}")
    for name, dt, med in rows:
        ratios = " ".join(f"{v / dt:13.2f}" for v in sk_times.values())
        print(f"{name:36s} {dt:8.2f} {ratios} {med:9.4f}")


if __name__ == "__main__":
    main()
