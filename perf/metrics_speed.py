"""Issue 15's metric rows, side by side: brainalign against its references in one process.

    PYTHONPATH=. OMP_NUM_THREADS=1 python perf/metrics_speed.py [--small] [--rows ridge,kernel,rsa,import]
        [--rounds 3] [--rsatoolbox-n 5000] [--before REV]

Rows (each variant is warmed up once on a small problem, then the variants are timed in turn,
interleaved, for ``--rounds`` rounds in rotating order; the best time of each is reported, with
the load average before and after; every variant's result is checked equal to the reference):

- ``ridge``: encoding score (CV ridge, α per target by exact leave-one-out), 2,560 × 1,000 → 168,
  10 ShuffleSplits 90/10, vs scikit-learn ``RidgeCV(alpha_per_target=True)`` fitted on the same
  splits: median held-out r equal to 1e-8.
- ``kernel``: ``RidgeCV(cv=5)`` per-target α, 1,000 × 10,000 → 500, vs himalaya
  ``KernelRidgeCV(cv=KFold(5))`` (warmed up): held-out mean r equal to 1e-6.
- ``rsa``: correlation RDM + Spearman against a fixed target vector, 5,000 × 4,096, numpy input
  and torch (CPU) input, vs a plain numpy implementation (``1 − corrcoef``, ``rankdata``) and
  rsatoolbox (``calc_rdm`` + ``compare``) at ``--rsatoolbox-n`` stimuli with 2 threads
  (minutes at n = 5,000; the other variants are timed at that n too). ρ equal to 1e-9.
- ``import``: ``import brainalign.metrics.rsa`` in a fresh interpreter vs ``import torch``; also
  reports which of torch / scikit-learn / pandas it loaded.

Ratios (reference time / brainalign time) are the numbers to compare across runs; absolute
times depend on the load of the shared machine. "Before" = the same script run with
``PYTHONPATH`` at the tree before the metrics work (commit 3217337), in the same time window.

Measured 2026-11-30 on the shared 2-core machine (OMP_NUM_THREADS=1, load average 9–14 from
other users, so absolute times are 3–10× an idle machine's; 3 interleaved rounds, best of each),
ratio = reference time / brainalign time, before (3217337) → after (this branch):

    row                                              before     after    goal
    CV ridge 2,560 × 1,000 → 168, 10 splits, f64     3.07×  →  3.67×    ≥ 5×     (vs sklearn RidgeCV)
      same, float32                                  4.38×  →  5.96×
    CV ridge 1,000 × 10,000 → 500, cv=5, f64         1.95×  →  3.26×    ≥ 1.5×   (vs himalaya, warm)
      same, float32                                  2.21×  →  3.75×
    RDM + Spearman 5,000 × 4,096, numpy input        1.93×  →  2.03×    ≥ 1.5×   (vs plain numpy)
    RDM + Spearman 5,000 × 4,096, torch input        0.75×  →  1.58×    ≥ 1.5×
    RDM + Spearman 1,500 × 4,096 vs rsatoolbox 2 thr    —   → 29.4×    ≥ 25×    (both 2 BLAS threads)
    RDM + Spearman 5,000 × 4,096 vs rsatoolbox 2 thr    —   →  8.8×    ≥ 25×    (303 s vs 34.5 s, 1 round)
    import brainalign.metrics.rsa                   14.3 s  →  0.97 s            (import torch: 10–18 s)
      loads torch / sklearn / pandas                   all  →  none

All values equal to the references (held-out median r to 1e-8, mean r to 1e-6, ρ to 1e-9).
A later single-round rerun of the RSA row (with tests running beside it) gave 1.32× / 1.38×:
at this load one round is ±30 %. rsatoolbox's time grows only 4.9× from n = 1,500 to 5,000
(ours 16×, the n²·d Gram): at n = 5,000 it is BLAS-bound too, so ≥ 25× there would need more
than the 2× that syrk and the packed sorts give; the ratio at n = 5,000 stays below the goal.
CV ridge f64 stays below 5×: per fold one float64 eigh of the 1,000 × 1,000 covariance (~40 %
of the time; sklearn does the same one) and the leave-one-out residuals of every α (m·r·t·α,
inherent to an exact LOO over 10 α and 168 targets) are left; everything else (a second target
projection, a per-α Python loop, centred copies, a GEMM where syrk does half) was removed.

Second pass (2026-11-30, 11:22–11:38, load average 1.5–4.6, the lowest of the morning; 3
interleaved rounds, best of each; "before" = cac6603, the tree after the first pass):

    row                                              before     after    goal
    RDM + Spearman 5,000 × 4,096 vs rsatoolbox 2 thr  16.6×  → 25.7×    ≥ 25×    (1 round, same process:
                                                                                   142 s vs 8.57 s → 5.53 s)
    RDM + Spearman 5,000 × 4,096, numpy input         1.46×  →  2.30×   ≥ 1.5×   (vs plain numpy; 6.97 → 4.42 s)
    RDM + Spearman 5,000 × 4,096, torch input            —   →  2.23×   ≥ 1.5×
    CV ridge 2,560 × 1,000 → 168, 10 splits, f64  2.99, 4.73×  → 4.05, 4.12×   ≥ 5×   (vs sklearn RidgeCV,
                                                                                   two runs each, alternated)
      same, float32                              4.92, 4.98×  → 6.59, 5.80×

The RSA "before" is cac6603's ``rsa.py`` run in the same process (``--before cac6603``), so that
ratio is exact; the ridge rows are separate processes at different loads, and sklearn's own time
moved 20 → 38 s between them: at this load one ridge ratio is ±30 %, and before and after overlap.
Measured in one process, interleaved, 3 rounds (``solve_ridge_cv`` over the same 10 folds, cac6603's
``ridge.py`` loaded beside this one): 10.38 s → 9.06 s (1.15×), LOO errors equal to 5e-15.

What changed: (1) the packed-key rank sort quantises values over their range instead of keying on
the float bit pattern: correlation distances crowd around 1 and straddle an exponent change, so
2.8 M of 12.5 M neighbours shared a key and the sort fell back to ``np.argsort``; now ranking the
model RDM's 12.5 M pairs takes 1.9 s instead of 4.3 s (target vector 0.85 s instead of 1.5 s), ranks
identical. (2) Spearman centres the rank arrays in place on their exact mean (N + 1)/2 and takes
norms as dot products (the centred copies and squares of 12.5 M values cost 0.4 s). (3) LOO: the
hat diagonal (m × α) is formed once per fold, and the (α × targets) errors are weighted sums of the
squared residuals (one GEMV per α) instead of a divided copy and a mean.

Why CV ridge f64 stayed at ~4× (superseded by the third pass below; one fold, m = 2,304 training
rows, p = r = 1,000, 1 thread, load ~3): float64 ``eigh`` of the covariance 0.19–0.23 s (torch's ``syevd``; scipy
``driver="evd"`` 0.27 s, ``evr`` 0.45 s), the LOO residual GEMM m·r·(α·t) = 3.9 GMAC 0.17–0.18 s,
``T = X_c V`` m·p·r = 2.3 GMAC 0.08 s, the rest (Gram downdate, z = BᵀY, R0) ~0.05 s. The GEMMs are
what exact LOO for 10 α × 168 targets costs (the per-row weights 1/(I − H)ᵢᵢ(α) forbid reducing
it in the eigenbasis) and ``eigh`` is the one factorisation per fold; sklearn does the same
residuals plus an SVD of the 2,304 × 1,001 design, so the ratio is bounded near 4–5× in float64.
RDM + Spearman at n = 5,000: the float64 Gram (syrk, 51 GMAC) is 3.8 s of our 4.4 s on one thread,
~2 s on two; the two rankings run in parallel threads (1.9 s). 25× is reached, with no margin.

Third pass, CV ridge f64 (2026-11-30, 13:41–14:06, branch ridge3; ``perf/issue15_speed.py --rows
ridge --rounds 3 --before <6415fb9 unpacked>``: before and after each in its own child per round,
each against sklearn in the same child; per-round ratios, load average at the rounds):

    run (load)           before 6415fb9                      after (this branch)
    1 (3.8 → 1.5)        3.20× (rounds 3.20 3.65 2.92)        4.87× (rounds 5.49 4.87 4.53)
    2 (0.4 → 2.0)        4.01× (rounds 3.96 4.01 4.08)        7.59× (rounds 7.59 5.02 8.09)
    3 (2.0 → 3.0)        3.65× (rounds 3.72 3.54 3.65)        4.74× (rounds 4.56 4.74 6.87)
    all 9 rounds         median 3.65×                         median 5.02× (4.53–8.09)
    float32              5.01×, 5.83×, 5.57×                  5.34×, 6.24×, 6.37×

Before and after in one process, interleaved (``encoding_score`` of 6415fb9 with its ``ridge.py``
loaded beside this one's, 4 rounds, best of each, load 2.8–3.3): 5.10 → 3.87 s (1.32×; per round
1.69, 1.33, 1.08, 1.50: at this load one round is ±25 %).
Exactness: held-out r equal to before to 9e-16 (float64) and the α chosen for every neuroid and
split identical; every LOO error computed equal to before to 3e-14 relative
(benchmark data; up to 3e-9 on ill-conditioned synthetic designs, columns over 4 decades or
near-collinear, where any change of rounding in ``eigh`` moves them that much); float32 r within
5.5e-8 of float64 (before 5.8e-8), α choices equal.
The goal of 5× is met in the median of the rounds, not in every round: the ratio swings with the
other users' load (sklearn's time moved 18 → 30 s between runs), and our time is about half a
memory-bound tridiagonal reduction, which suffers more from a busy neighbour than sklearn's GEMMs.

What changed (``brainalign/metrics/ridge.py``): (1) ``encoding_score`` needs only the chosen α, so
``solve_ridge_cv(best_only=True)`` forms the (m × α·t) leave-one-out residuals only for the (α,
target) pairs that proven bounds cannot rule out: with ``e = Y_c − B diag(s/(s+α)) z`` and weights
``w = 1/(I − H)ᵢᵢ²`` between their extremes, ``Σ w e²`` is bounded from (α × t) and (m × t) products
(``Y_cᵀB = zᵀ`` makes the cross term small); each target's α with the smallest upper bound is
computed first, and its exact error rules out more. 337 of 1,680 pairs per fold instead of all
(the bounds assume ``‖BᵀB − I‖`` below 1e-3: an a-priori rounding bound, 3e-6 here, or one measured
by a syrk when that costs less than the pairs it may save; otherwise, e.g. float32, every pair is
computed, as before). (2) The fold covariance:
held-out rows and the centring row in one syrk, no symmetrising copy (exactly symmetric on the CPU),
the eigenvalue cut as a slice (the boolean-mask copy of V cost 11 ms). (3) ``eigh`` reads the upper
triangle (MKL ``syevd`` 141 vs 152 ms, interleaved medians). (4) ``B = X (V s^-½) − 1 x̄ V s^-½`` with
the centring row as the GEMM's start value (one pass less over m × r), ``z = (Y_cᵀB)ᵀ`` (20 % faster
order) and no ``R0 = Y_c − Bz`` product unless the bounds leave > 3 α per target.

Per fold now (m = 2,304, p = r = 1,000, t = 168, 1 thread, load ~2; before in brackets): ``eigh``
145–175 ms [150–200], ``B`` 65–76 ms [73–89], LOO residuals of the candidate pairs 26–40 ms
[110–150 for all 1,680], ``z`` 12–17 ms, the rest (fold downdate, gathers, hat diagonal, bounds,
predictions) ~40 ms [~80]. sklearn per fold (``RidgeCV`` ``gcv_mode="cov"`` since the samples
outnumber the features): one ``eigh`` of the covariance, then per α ``(V D) Vᵀ`` (p³), the hat
diagonal ``diag(X H⁻¹ Xᵀ)`` (m·p², ``_sparse_multidot_diag``, 0.9 s of its ~1.9 s per fold) and the
residual GEMMs (m·p·t): ~3.9 GMAC per α. Our floor is ``eigh`` + ``B`` (2.3 GMAC) + ``z`` + the
candidate residuals, ~250 ms per fold on a quiet core against sklearn's ~1.9 s, so ~6–7× is the
bound at this size; what is left above it is ~40 ms per fold of memory passes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def interleaved(variants: dict[str, Callable[[], float]], rounds: int,
                warmup: dict[str, Callable[[], float]] | None = None) -> dict[str, tuple[float, float]]:
    """Best time and value of each variant over ``rounds`` interleaved rounds (rotating order)."""
    for fn in (warmup or variants).values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    names = list(variants)
    best: dict[str, float] = {k: float("inf") for k in names}
    value: dict[str, float] = {}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                v = variants[name]()
                dt = time.perf_counter() - t0
            best[name] = min(best[name], dt)
            value[name] = v
            print(f"    round {r + 1} {name}: {dt:.2f} s  value {v:.10f}", flush=True)
    return {k: (best[k], value[k]) for k in names}


def _report(title: str, res: dict[str, tuple[float, float]], reference: str, tol: float) -> None:
    t_ref, v_ref = res[reference]
    print(f"\n{title}   (load {_load()})")
    print(f"{'variant':44s} {'best s':>8s} {'× ' + reference[:24]:>28s} {'value':>16s}")
    for name, (t, v) in res.items():
        print(f"{name:44s} {t:8.2f} {t_ref / t:28.2f} {v:16.10f}")
    for name, (_, v) in res.items():
        assert abs(v - v_ref) <= tol, f"{name}: {v} differs from {reference}: {v_ref}"
    print(f"all values equal to {reference} within {tol:g}")


def _r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def row_ridge(small: bool, rounds: int) -> None:
    from sklearn.linear_model import RidgeCV as SkRidgeCV
    from sklearn.model_selection import ShuffleSplit

    from brainalign.metrics import encoding_score

    n, p, t = (640, 250, 42) if small else (2560, 1000, 168)
    rng = np.random.default_rng(0)
    k = 100
    Z = rng.normal(size=(n, k)) / np.sqrt(np.arange(1, k + 1))
    X = Z @ rng.normal(size=(k, p)) + 0.5 * rng.normal(size=(n, p))
    S = X @ (rng.normal(size=(p, t)) * (rng.random((p, t)) < 0.05))
    Y = S / S.std(0) + rng.normal(size=(n, t)) * rng.uniform(0.5, 2.0, t)
    alphas = np.logspace(-2, 7, 10)
    splits = list(ShuffleSplit(10, test_size=0.1, random_state=0).split(X))

    def sklearn() -> float:
        rs = [_r(SkRidgeCV(alphas=alphas, alpha_per_target=True).fit(X[tr], Y[tr]).predict(X[te]), Y[te])
              for tr, te in splits]
        return float(np.median(np.mean(rs, 0)))

    variants = {
        "brainalign encoding_score ridge float64": lambda: encoding_score(X, Y, alphas=alphas, cv=splits).median,
        "brainalign encoding_score ridge float32": lambda: encoding_score(X, Y, alphas=alphas, cv=splits,
                                                                          dtype="float32").median,
        "sklearn RidgeCV(alpha_per_target)": sklearn,
    }
    Xs, Ys = X[:120, :40], Y[:120, :5]
    warm = {"torch": lambda: encoding_score(Xs, Ys, cv=2).median,
            "sklearn": lambda: float(SkRidgeCV(alpha_per_target=True).fit(Xs, Ys).alpha_[0])}
    res = interleaved(variants, rounds, warm)
    f32 = res.pop("brainalign encoding_score ridge float32")
    _report(f"CV ridge {n} × {p} → {t}, 10 splits, LOO α per target (median held-out r)", res,
            "sklearn RidgeCV(alpha_per_target)", 1e-8)
    diff = abs(f32[1] - res["brainalign encoding_score ridge float64"][1])
    print(f"float32: {f32[0]:.2f} s, × sklearn {res['sklearn RidgeCV(alpha_per_target)'][0] / f32[0]:.2f}, "
          f"median r differs from float64 by {diff:.1e}")


def row_kernel(small: bool, rounds: int) -> None:
    from himalaya.kernel_ridge import KernelRidgeCV
    from sklearn.model_selection import KFold

    from brainalign.metrics import RidgeCV

    n, p, t, n_test = (200, 2000, 100, 100) if small else (1000, 10000, 500, 200)
    rng = np.random.default_rng(0)
    k = 200
    Z = rng.normal(size=(n + n_test, k)) * (1.0 / np.arange(1, k + 1) ** 0.5)
    X = Z @ rng.normal(size=(k, p)) / np.sqrt(k) + 0.3 * rng.normal(size=(n + n_test, p))
    S = X @ (rng.normal(size=(p, t)) / np.sqrt(p))
    Y = S / S.std(0) + rng.normal(size=(n + n_test, t)) * rng.uniform(0.5, 3.0, t)
    X, Xte, Y, Yte = X[:n], X[n:], Y[:n], Y[n:]
    alphas = np.logspace(-1, 8, 10)

    def ours(dtype: str) -> float:
        return float(np.mean(_r(RidgeCV(alphas, cv=5, dtype=dtype).fit(X, Y).predict(Xte), Yte)))

    def himalaya() -> float:
        est = KernelRidgeCV(kernel="linear", alphas=alphas, cv=KFold(5), fit_intercept=True).fit(X, Y)
        return float(np.mean(_r(np.asarray(est.predict(Xte)), Yte)))

    variants = {"brainalign RidgeCV(cv=5) float64": lambda: ours("float64"),
                "brainalign RidgeCV(cv=5) float32": lambda: ours("float32"),
                "himalaya KernelRidgeCV(cv=5)": himalaya}
    res = interleaved(variants, rounds)  # warm-up: one full call of each (himalaya's first is cold)
    f32 = res.pop("brainalign RidgeCV(cv=5) float32")
    _report(f"CV ridge {n} × {p} → {t}, per-target α, 5 inner folds (held-out mean r)", res,
            "himalaya KernelRidgeCV(cv=5)", 1e-6)
    print(f"float32: {f32[0]:.2f} s, × himalaya {res['himalaya KernelRidgeCV(cv=5)'][0] / f32[0]:.2f}, "
          f"mean r differs from float64 by {abs(f32[1] - res['brainalign RidgeCV(cv=5) float64'][1]):.1e}")


def _rsa_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    labels = rng.integers(0, 20, n)
    X = centres[labels] + 2.0 * rng.standard_normal((n, d))
    k = min(d, 256)
    Y = centres[labels][:, :k] + 3.0 * rng.standard_normal((n, k))
    return X, 1.0 - np.corrcoef(Y)[np.triu_indices(n, k=1)]


def _rsa_module_at(rev: str):
    """``brainalign/metrics/rsa.py`` as of git revision ``rev``, imported beside this tree's
    (its own imports resolve to this tree), so before and after run interleaved in one process."""
    import importlib.util
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = subprocess.run(["git", "-C", root, "show", f"{rev}:brainalign/metrics/rsa.py"],
                         capture_output=True, text=True, check=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "rsa_before.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("rsa_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def row_rsa(small: bool, rounds: int, rsatoolbox_n: int, n: int = 5000, before: str = "") -> None:
    import torch
    from scipy.stats import rankdata

    from brainalign.metrics import compare_rdms, rdm

    n, d = (1000, 512) if small else (n, 4096)
    X, target = _rsa_data(n, d)
    Xt = torch.from_numpy(X)

    def plain_numpy(X: np.ndarray = X, target: np.ndarray = target) -> float:
        D = 1.0 - np.corrcoef(X)
        v = D[np.triu_indices(len(D), k=1)]
        return float(np.corrcoef(rankdata(v), rankdata(target))[0, 1])

    variants = {"brainalign numpy input": lambda: float(compare_rdms(rdm(X), target, "spearman")),
                "brainalign torch input": lambda: float(compare_rdms(rdm(Xt), torch.from_numpy(target),
                                                                     "spearman")),
                "plain numpy": plain_numpy}
    old = _rsa_module_at(before) if before else None
    if old is not None:
        variants[f"before ({before}) numpy input"] = lambda: float(
            old.compare_rdms(old.rdm(X), target, "spearman"))
    Xs, ts = _rsa_data(200, 64)
    warm = {"numpy": lambda: float(compare_rdms(rdm(Xs), ts)),
            "torch": lambda: float(compare_rdms(rdm(torch.from_numpy(Xs)), torch.from_numpy(ts))),
            "plain": lambda: plain_numpy(Xs, ts)}
    res = interleaved(variants, rounds, warm)
    _report(f"RDM (correlation) + Spearman, {n} × {d}", res, "plain numpy", 1e-9)
    if rsatoolbox_n <= 0:
        return
    import rsatoolbox

    m = min(rsatoolbox_n, n) if small else rsatoolbox_n
    Xm, tm = _rsa_data(m, d, seed=1)

    def rsatb() -> float:
        model = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(Xm), method="correlation")
        return float(rsatoolbox.rdm.compare(model, rsatoolbox.rdm.RDMs(tm[None]), method="spearman")[0, 0])

    variants = {"brainalign numpy input": lambda: float(compare_rdms(rdm(Xm), tm, "spearman")),
                "rsatoolbox (2 threads)": rsatb}
    if old is not None:
        variants[f"before ({before}) numpy input"] = lambda: float(old.compare_rdms(old.rdm(Xm), tm, "spearman"))
    warm = {"rsatoolbox": lambda: float(rsatoolbox.rdm.compare(
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(Xs), method="correlation"),
        rsatoolbox.rdm.RDMs(ts[None]), method="spearman")[0, 0])}
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2):  # rsatoolbox takes minutes at n = 5,000: one round
        res = interleaved(variants, 1, warm)
    _report(f"RDM + Spearman, {m} × {d}, 2 threads", res, "rsatoolbox (2 threads)", 1e-9)


def row_import(rounds: int) -> None:
    code_rsa = ("import sys, time; t = time.perf_counter(); import brainalign.metrics.rsa; "
                "print(time.perf_counter() - t, "
                "sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))")
    code_torch = "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t, [])"
    best: dict[str, float] = {}
    loaded = ""
    for _ in range(rounds):
        for name, code in (("import brainalign.metrics.rsa", code_rsa), ("import torch", code_torch)):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            dt, mods = out.stdout.split(" ", 1)
            best[name] = min(best.get(name, float("inf")), float(dt))
            if name.startswith("import brainalign"):
                loaded = mods.strip()
    print(f"\nimports, fresh interpreter, best of {rounds}   (load {_load()})")
    for name, dt in best.items():
        print(f"{name:44s} {dt:8.2f} s")
    print(f"brainalign.metrics.rsa loaded: {loaded}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="small sizes (a CI smoke run)")
    ap.add_argument("--rows", default="import,rsa,ridge,kernel")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rsa-n", type=int, default=5000, help="stimuli of the RSA row")
    ap.add_argument("--before", default="", help="git revision whose rsa.py runs as an extra RSA variant")
    ap.add_argument("--rsatoolbox-n", type=int, default=0,
                    help="time rsatoolbox at this many stimuli (5000 as issue 15; 0: skip)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))  # every variant alike
    print(f"python {sys.version.split()[0]}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load {_load()}")
    for row in args.rows.split(","):
        if row == "import":
            row_import(args.rounds)
        elif row == "rsa":
            row_rsa(args.small, args.rounds, args.rsatoolbox_n, args.rsa_n, args.before)
        elif row == "ridge":
            row_ridge(args.small, args.rounds)
        elif row == "kernel":
            row_kernel(args.small, args.rounds)
        else:
            raise SystemExit(f"unknown row {row!r}")


if __name__ == "__main__":
    main()
