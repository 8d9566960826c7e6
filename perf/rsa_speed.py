"""RDM (correlation distance) + Spearman comparison: brainalign vs rsatoolbox vs direct numpy.

Run:  PYTHONPATH=. python perf/rsa_speed.py [--n 5000] [--features 4096] [--rsatoolbox-n 1500]

All three pipelines compute the model RDM of X and its Spearman correlation with a fixed target
RDM (given as a condensed vector, as a benchmark holds it), in float64. Times are the best of
``--repeats`` runs, measured side by side in one process; values must agree to 1e-6. rsatoolbox
(einsum without BLAS) takes minutes at full size, so it is timed at ``--rsatoolbox-n`` stimuli
against brainalign at the same size; pass ``--rsatoolbox-n 5000`` to time it at full size.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from brainalign.metrics import compare_rdms, rdm


def numpy_direct(X: np.ndarray, target: np.ndarray) -> float:
    D = 1.0 - np.corrcoef(X)
    v = D[np.triu_indices(len(D), k=1)]
    return float(np.corrcoef(rankdata(v), rankdata(target))[0, 1])


def brainalign_pipeline(X: np.ndarray, target: np.ndarray) -> float:
    return compare_rdms(rdm(X, "correlation"), target, "spearman")


def rsatoolbox_pipeline(X: np.ndarray, target: np.ndarray) -> float:
    import rsatoolbox

    model = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(X), method="correlation")
    return float(rsatoolbox.rdm.compare(model, rsatoolbox.rdm.RDMs(target[None]), method="spearman")[0, 0])


def best_time(f: Callable[[], float], repeats: int) -> tuple[float, float]:
    times, value = [], np.nan
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = f()
        times.append(time.perf_counter() - t0)
    return min(times), value


def data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features with category-like structure, and a noisy target RDM sharing that structure."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    labels = rng.integers(0, 20, n)
    X = centres[labels] + 2.0 * rng.standard_normal((n, d))
    Y = centres[labels][:, :256] + 3.0 * rng.standard_normal((n, 256))
    target = 1.0 - np.corrcoef(Y)[np.triu_indices(n, k=1)]
    return X, target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--features", type=int, default=4096)
    ap.add_argument("--rsatoolbox-n", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    X, target = data(args.n, args.features)
    t_ours, v_ours = best_time(lambda: brainalign_pipeline(X, target), args.repeats)
    t_np, v_np = best_time(lambda: numpy_direct(X, target), args.repeats)
    print(f"n={args.n} stimuli × {args.features} features ({len(target)} pairs), float64, "
          f"best of {args.repeats}")
    print(f"  brainalign   {t_ours:8.2f} s   rho={v_ours:.12f}")
    print(f"  numpy direct {t_np:8.2f} s   rho={v_np:.12f}   brainalign is {t_np / t_ours:5.2f}× faster")
    assert abs(v_ours - v_np) < 1e-6, (v_ours, v_np)

    m = args.rsatoolbox_n
    Xs, ts = data(m, args.features, seed=1)
    t_small, v_small = best_time(lambda: brainalign_pipeline(Xs, ts), args.repeats)
    t_rsa, v_rsa = best_time(lambda: rsatoolbox_pipeline(Xs, ts), 1)
    print(f"n={m} stimuli × {args.features} features")
    print(f"  brainalign   {t_small:8.2f} s   rho={v_small:.12f}")
    print(f"  rsatoolbox   {t_rsa:8.2f} s   rho={v_rsa:.12f}   brainalign is {t_rsa / t_small:5.1f}× faster")
    assert abs(v_small - v_rsa) < 1e-6, (v_small, v_rsa)
    if m != args.n:
        # RDM cost grows as n²·d (rsatoolbox's einsum) and the ranking as n² log n.
        scale = (args.n / m) ** 2
        print(f"  rsatoolbox extrapolated to n={args.n} (× (n/m)² = {scale:.1f}, lower bound): "
              f"≈ {t_rsa * scale:.0f} s vs brainalign {t_ours:.2f} s measured → "
              f"≈ {t_rsa * scale / t_ours:.0f}×")


if __name__ == "__main__":
    main()
