"""Benchmark (a): per-target-α cross-validated ridge, 1,000 samples × 10,000 features → 500 targets.

10 α, 5 inner folds (or exact leave-one-out where that is the method), then held-out Pearson r on
200 new samples. Prints times and ratios measured side by side in this one run.

    PYTHONPATH=. python perf/metrics_ridge_cv.py [--small]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _data(n: int, p: int, t: int, n_test: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    # Features with a decaying spectrum (like network activations), targets linear + noise.
    k = 200
    Z = rng.normal(size=(n + n_test, k)) * (1.0 / np.arange(1, k + 1) ** 0.5)
    X = Z @ rng.normal(size=(k, p)) / np.sqrt(k) + 0.3 * rng.normal(size=(n + n_test, p))
    W = rng.normal(size=(p, t)) / np.sqrt(p)
    S = X @ W
    Y = S / S.std(0) + rng.normal(size=(n + n_test, t)) * rng.uniform(0.5, 3.0, t)
    return X[:n], Y[:n], X[n:], Y[n:]


def _r(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="a 5× smaller problem for a quick look")
    ap.add_argument("--skip-slow", action="store_true", help="skip sklearn RidgeCV(cv=5)")
    args = ap.parse_args()
    n, p, t = (200, 2000, 100) if args.small else (1000, 10000, 500)
    X, Y, Xte, Yte = _data(n, p, t, 200)
    alphas = np.logspace(-1, 8, 10)
    from himalaya.kernel_ridge import KernelRidgeCV
    from sklearn.linear_model import RidgeCV as SkRidgeCV
    from sklearn.model_selection import KFold

    from brainalign.metrics import RidgeCV

    runs = {
        "brainalign RidgeCV(cv=5) float32": lambda: RidgeCV(alphas, cv=5, dtype="float32"),
        "brainalign RidgeCV(cv=5) float64": lambda: RidgeCV(alphas, cv=5),
        "brainalign RidgeCV(cv='loo') float32": lambda: RidgeCV(alphas, cv="loo", dtype="float32"),
        "brainalign RidgeCV(cv='loo') float64": lambda: RidgeCV(alphas, cv="loo"),
        "himalaya KernelRidgeCV(cv=5)": lambda: KernelRidgeCV(kernel="linear", alphas=alphas, cv=KFold(5),
                                                              fit_intercept=True),
        "sklearn RidgeCV(alpha_per_target)": lambda: SkRidgeCV(alphas=alphas, alpha_per_target=True),
        "sklearn RidgeCV(cv=5)": lambda: SkRidgeCV(alphas=alphas, cv=5),
    }
    if args.skip_slow:
        runs.pop("sklearn RidgeCV(cv=5)")
    # Warm up torch's linear algebra (its first eigh loads libraries) outside the timings.
    RidgeCV(alphas, cv=2).fit(X[:20, :30], Y[:20, :3])
    rows = []
    for name, make in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est = make().fit(X, Y)
            pred = np.asarray(est.predict(Xte))
            dt = time.perf_counter() - t0
        rows.append((name, dt, float(np.mean(_r(pred, Yte)))))
        print(f"  {name}: {dt:.2f} s", flush=True)
    ref = min(dt for name, dt, _ in rows if not name.startswith("brainalign"))
    print(f"\n{n} samples × {p} features → {t} targets, {len(alphas)} α; held-out r on 200 samples")
    print(f"{'method':40s} {'time s':>8s} {'× fastest other':>16s} {'mean r':>8s}")
    for name, dt, r in rows:
        print(f"{name:40s} {dt:8.2f} {ref / dt:16.2f} {r:8.4f}")


if __name__ == "__main__":
    main()
