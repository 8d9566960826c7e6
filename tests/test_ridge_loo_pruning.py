"""Leave-one-out α selection that skips the (α, target) errors proven not to be a target's best.

``solve_ridge_cv(..., best_only=True)`` (what ``encoding_score`` uses) must choose exactly the α of
the full grid and compute every error it computes exactly as the full computation does; the
bounds it prunes with must contain every leave-one-out error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainalign.metrics.ridge import (
    Design,
    _loo_bounds,
    _loo_bounds_r0,
    loo_errors,
    solve_ridge_cv,
)


def _problem(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "primal":  # samples > features, a decaying spectrum, sparse linear targets + noise
        n, p, t = 300, 60, 25
        Z = rng.normal(size=(n, 15)) / np.sqrt(np.arange(1, 16))
        X = Z @ rng.normal(size=(15, p)) + 0.3 * rng.normal(size=(n, p))
        Y = X @ (rng.normal(size=(p, t)) * (rng.random((p, t)) < 0.2)) + rng.normal(size=(n, t))
    elif kind == "scaled":  # columns over 4 decades and nearly collinear pairs: ill-conditioned
        n, p, t = 250, 40, 12
        X = rng.normal(size=(n, p))
        X[:, 20:] = X[:, :20] + 1e-3 * rng.normal(size=(n, 20))
        X *= 10.0 ** rng.uniform(-2, 2, p)
        Y = X[:, :5] @ rng.normal(size=(5, t)) + rng.normal(size=(n, t))
    elif kind == "noise":  # targets unrelated to X: errors nearly flat in α, near-ties
        n, p, t = 200, 30, 20
        X, Y = rng.normal(size=(n, p)), rng.normal(size=(n, t))
    elif kind == "kernel":  # samples < features: complete kernel basis
        n, p, t = 80, 200, 15
        X = rng.normal(size=(n, p))
        Y = X[:, :10] @ rng.normal(size=(10, t)) + rng.normal(size=(n, t))
    elif kind == "kernel_low_rank":  # samples < features but rank 20: an incomplete basis
        n, p, t = 80, 200, 15
        X = rng.normal(size=(n, 20)) @ rng.normal(size=(20, p))
        Y = X[:, :10] @ rng.normal(size=(10, t)) + rng.normal(size=(n, t))
    else:
        raise ValueError(kind)
    return X, Y


KINDS = ["primal", "scaled", "noise", "kernel", "kernel_low_rank"]


def _fold(X, Y, seed=0):
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    d = Design(Xt)
    train = np.sort(np.random.default_rng(seed).permutation(len(X))[: int(0.8 * len(X))])
    return d, train, Yt


@pytest.mark.parametrize("kind", KINDS)
def test_bounds_contain_every_leave_one_out_error(kind):
    X, Y = _problem(kind)
    d, train, Yt = _fold(X, Y)
    alphas = torch.logspace(-3, 6, 10, dtype=torch.float64)
    fold = d.fold(train)
    full, *_ = loo_errors(fold, Yt, alphas)
    B, z, _, _, Yc, R0, q, B2 = fold.loo_parts(Yt)
    shrink = alphas[:, None] / (fold.s[None, :] + alphas[:, None])
    keep = fold.s[None, :] / (fold.s[None, :] + alphas[:, None])
    w = (q[:, None] + B2 @ shrink.T).reciprocal().square()
    delta = fold.measured_orthonormality(B)
    # the measured bound holds (≥ the exact 2-norm) and the a-priori one is above it
    exact = float(torch.linalg.matrix_norm(B.T @ B - torch.eye(B.shape[1], dtype=B.dtype), 2))
    assert exact <= delta <= max(fold.orthonormality_bound(), 1e-300) + 1e-9
    complete = kind == "kernel"
    assert bool((R0 == 0).all()) == complete
    lo, hi, _ = _loo_bounds(z, None if complete else Yc, w, keep, shrink, delta)
    lo_r, hi_r = _loo_bounds_r0(z, R0, w, shrink, delta)
    tol = 1e-12 * full.abs()
    for low, high in ((lo, hi), (lo_r, hi_r)):
        assert bool((low <= full + tol).all()) and bool((high >= full - tol).all())
    # and they are informative: on the well-conditioned primal problem they rule out most α
    if kind == "primal":
        best_hi = torch.minimum(hi, hi_r).amin(0)
        assert float((torch.maximum(lo, lo_r) > best_hi).float().mean()) > 0.3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e6])
def test_best_only_chooses_the_full_grids_alpha_and_computes_the_same_errors(kind, scale):
    for seed in range(3):
        X, Y = _problem(kind, seed)
        d, train, Yt = _fold(X, Y * scale, seed)
        for alphas in (np.logspace(-3, 6, 10), np.r_[np.logspace(-2, 5, 8), 10.0, 10.0], np.array([3.0])):
            a = torch.from_numpy(alphas)
            full = solve_ridge_cv(d, train, Yt, a)
            fast = solve_ridge_cv(d, train, Yt, a, best_only=True)
            assert torch.equal(full.alpha_index, fast.alpha_index), (kind, scale, seed, alphas)
            done = fast.cv_computed
            if done is None:
                done = torch.ones_like(full.cv_errors, dtype=torch.bool)
            assert bool(done[fast.alpha_index, torch.arange(Y.shape[1])].all())  # the chosen α was computed
            assert bool(torch.isinf(fast.cv_errors[~done]).all())
            np.testing.assert_allclose(fast.cv_errors[done].numpy(), full.cv_errors[done].numpy(), rtol=1e-10)
            np.testing.assert_array_equal(fast.G.numpy(), full.G.numpy())
            # the candidate pairs in small batches (bounded memory): the same choice
            small = solve_ridge_cv(d, train, Yt, a, best_only=True, n_targets_batch=2)
            assert torch.equal(small.alpha_index, full.alpha_index)


def test_best_only_skips_most_pairs_on_a_well_conditioned_primal_problem():
    X, Y = _problem("primal")
    d, train, Yt = _fold(X, Y)
    fit = solve_ridge_cv(d, train, Yt, torch.logspace(-3, 6, 10, dtype=torch.float64), best_only=True)
    assert fit.cv_computed is not None and float(fit.cv_computed.float().mean()) < 0.5


def test_float32_computes_every_pair():
    # float32's basis is orthonormal only to ~1e-4: the bounds' premises do not hold, no pruning.
    X, Y = _problem("primal")
    d = Design(torch.from_numpy(X).float())
    train = np.arange(240)
    fit = solve_ridge_cv(d, train, torch.from_numpy(Y).float(), torch.logspace(-3, 6, 10), best_only=True)
    assert fit.cv_computed is None and bool(torch.isfinite(fit.cv_errors).all())


@pytest.mark.parametrize("best_only", [False, True])
def test_a_repeated_alpha_is_solved_once_and_its_copies_agree(best_only):
    """A grid that repeats α: the copies' errors are bit-identical (one solve per distinct value,
    so no BLAS can round equal columns apart), the first copy is chosen, and everything equals
    the grid without the repeats."""
    X, Y = _problem("primal")
    d, train, Yt = _fold(X, Y)
    a = torch.tensor([1.0, 10.0, 100.0, 10.0, 10.0], dtype=torch.float64)
    fit = solve_ridge_cv(d, train, Yt, a, best_only=best_only)
    e = fit.cv_errors
    assert torch.equal(e[1], e[3]) and torch.equal(e[1], e[4])
    assert int(fit.alpha_index.max()) <= 2 and bool((fit.alpha_index == 1).any())
    ref = solve_ridge_cv(d, train, Yt, a[:3], best_only=best_only)
    assert torch.equal(fit.alpha_index, ref.alpha_index) and torch.equal(e[:3], ref.cv_errors)
    assert torch.equal(fit.G, ref.G)
