"""Centered kernel alignment (Kornblith et al. 2019), linear and RBF, biased and debiased.

CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) for stimulus × stimulus Gram matrices K of X
and L of Y. The biased estimator uses HSIC ∝ tr(HKHL) with the centering matrix H = I − 11ᵀ/n;
the debiased one uses the unbiased HSIC estimator of Song et al. (2012), as in Kornblith's and
Nguyen et al.'s code. Inputs are numpy arrays or torch tensors (computed on their device, float64).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from brainalign.errors import MetricInputError
from brainalign.metrics._backend import as_float64, as_torch, first_nonfinite, is_torch

Kernel = Literal["linear", "rbf"]


def _features(X: Any, what: str) -> Any:
    X = as_float64(X, what)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D (stimulus × feature) array, got shape "
                               f"{tuple(X.shape)}")
    idx = first_nonfinite(X)
    if idx is not None:
        raise MetricInputError(f"{what}: NaN/inf value at stimulus row {idx[0]}, feature {idx[1]}")
    return X


def gram_linear(X: Any) -> Any:
    """Linear kernel Gram matrix X Xᵀ."""
    return X @ X.T


def _median(v: Any) -> float:
    if is_torch(v):
        flat = v.reshape(-1)
        m = flat.numel()
        lo = flat.kthvalue((m + 1) // 2).values
        hi = flat.kthvalue(m // 2 + 1).values
        return float((lo + hi) / 2)  # numpy's median (the mean of the two middles)
    return float(np.median(v))


def gram_rbf(X: Any, sigma: float | None = None, sigma_scale: float = 1.0) -> Any:
    """RBF kernel Gram matrix exp(−‖xᵢ − xⱼ‖² / (2σ²)).

    ``sigma=None`` uses Kornblith et al.'s heuristic σ² = sigma_scale² × median of all squared
    distances (their ``threshold`` is ``sigma_scale``).
    """
    sq = (X * X).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    if sigma is None:
        s2 = sigma_scale**2 * _median(d2)
        if not s2 > 0:
            raise MetricInputError("cka(kernel='rbf'): median squared distance between stimuli is 0 "
                                   "(most stimuli identical); pass sigma= explicitly")
    else:
        if not sigma > 0:
            raise MetricInputError(f"cka: sigma must be > 0, got {sigma}")
        s2 = float(sigma) ** 2
    return (d2 / (-2.0 * s2)).exp() if is_torch(d2) else np.exp(d2 / (-2.0 * s2))


def center_gram(K: Any, unbiased: bool = False) -> Any:
    """Centre a Gram matrix so that ⟨center(K), center(L)⟩ is (a multiple of) HSIC.

    Biased: H K H. Unbiased: the U-statistic form of Song et al. 2012 (Kornblith's
    ``center_gram(unbiased=True)``): zero diagonal, row/column means over n − 2, zero diagonal.
    """
    n = K.shape[0]
    K = K.clone() if is_torch(K) else K.copy()
    if unbiased:
        K = K.fill_diagonal_(0.0) if is_torch(K) else _fill_diag(K)
        means = K.sum(axis=0) / (n - 2)
        means = means - means.sum() / (2 * (n - 1))
        K -= means[:, None]
        K -= means[None, :]
        return K.fill_diagonal_(0.0) if is_torch(K) else _fill_diag(K)
    means = K.mean(axis=0)
    means = means - means.mean() / 2
    K -= means[:, None]
    K -= means[None, :]
    return K


def _fill_diag(K: np.ndarray) -> np.ndarray:
    np.fill_diagonal(K, 0.0)
    return K


def _ratio(num: Any, nx: Any, ny: Any) -> float:
    nx, ny, num = float(nx), float(ny), float(num)
    if not nx > 0:
        raise MetricInputError("cka(X): the representation does not vary across stimuli (zero "
                               "centred kernel); CKA is undefined")
    if not ny > 0:
        raise MetricInputError("cka(Y): the representation does not vary across stimuli (zero "
                               "centred kernel); CKA is undefined")
    return num / (nx * ny)


def _linear_cka_features(X: Any, Y: Any, debiased: bool) -> float:
    """Linear CKA from feature-space products (Kornblith's ``feature_space_linear_cka``):
    O(n·dx·dy) instead of the O(n²) Gram matrices, for few features."""
    X = X - X.mean(axis=0, keepdims=True)
    Y = Y - Y.mean(axis=0, keepdims=True)
    xty = ((X.T @ Y) ** 2).sum()
    xtx = ((X.T @ X) ** 2).sum()
    yty = ((Y.T @ Y) ** 2).sum()
    if debiased:
        n = X.shape[0]
        ssx, ssy = (X * X).sum(axis=1), (Y * Y).sum(axis=1)
        snx, sny = ssx.sum(), ssy.sum()

        def helper(dot: Any, a: Any, b: Any, na: Any, nb: Any) -> Any:
            return dot - n / (n - 2.0) * (a * b).sum() + na * nb / ((n - 1) * (n - 2))

        xty = helper(xty, ssx, ssy, snx, sny)
        xtx = helper(xtx, ssx, ssx, snx, snx)
        yty = helper(yty, ssy, ssy, sny, sny)
        if float(xtx) < 0 or float(yty) < 0:  # only where an estimate is pure noise
            raise MetricInputError("cka: a debiased self-similarity is negative (too few stimuli "
                                   "for the debiased estimator)")
    return _ratio(xty, xtx**0.5, yty**0.5)


def cka(X: Any, Y: Any, kernel: Kernel = "linear", debiased: bool = False,
        sigma: float | None = None, sigma_scale: float = 1.0) -> float:
    """Centered kernel alignment between two representations of the same stimuli.

    Parameters
    ----------
    X, Y
        (stimulus × feature) arrays with the same stimuli in the same row order (feature counts
        may differ); numpy arrays or torch tensors.
    kernel
        ``"linear"`` or ``"rbf"`` (Gaussian).
    debiased
        Use the unbiased HSIC estimator (Song et al. 2012); needs ≥ 4 stimuli. Removes the
        upward bias of CKA with few stimuli and many features; can be slightly negative.
    sigma
        RBF bandwidth σ in feature units (the same for X and Y); None: σ² = sigma_scale² × the
        median squared distance between stimuli, per representation (Kornblith et al. 2019).
    sigma_scale
        Multiplier of the median heuristic (Kornblith's ``threshold``); ignored when ``sigma``
        is given.

    Returns
    -------
    float
        CKA in [0, 1] (biased); 1 for representations equal up to rotation and isotropic scale
        (linear kernel).
    """
    X, Y = _features(X, "cka(X)"), _features(Y, "cka(Y)")
    if X.shape[0] != Y.shape[0]:
        raise MetricInputError(f"cka: X has {X.shape[0]} stimuli (rows) but Y has {Y.shape[0]}; "
                               f"rows must be the same stimuli in the same order")
    n = X.shape[0]
    if n < (4 if debiased else 2):
        raise MetricInputError(f"cka: needs at least {4 if debiased else 2} stimuli, got {n}")
    if kernel not in ("linear", "rbf"):
        raise MetricInputError(f"cka: unknown kernel {kernel!r}; use 'linear' or 'rbf'")
    if is_torch(X) != is_torch(Y) or (is_torch(X) and X.device != Y.device):
        import torch

        dev = X.device if is_torch(X) else Y.device
        X, Y = (as_torch(A, dtype=torch.float64, device=dev) for A in (X, Y))
    dx, dy = X.shape[1], Y.shape[1]
    if kernel == "linear" and dx * dy + dx * dx + dy * dy < n * (dx + dy):
        return _linear_cka_features(X, Y, debiased)
    if kernel == "linear":
        K, L = gram_linear(X), gram_linear(Y)
    else:
        K, L = gram_rbf(X, sigma, sigma_scale), gram_rbf(Y, sigma, sigma_scale)
    Kc, Lc = center_gram(K, debiased), center_gram(L, debiased)
    num = (Kc * Lc).sum()
    nk, nl = (Kc * Kc).sum(), (Lc * Lc).sum()
    if debiased and (float(nk) < 0 or float(nl) < 0):
        raise MetricInputError("cka: a debiased self-similarity is negative (too few stimuli)")
    return _ratio(num, nk**0.5, nl**0.5)
