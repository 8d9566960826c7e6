"""scikit-learn-compatible estimators with a torch back end: :class:`RidgeCV` and :class:`PLSRegression`.

Both accept numpy arrays or torch tensors, compute on ``device`` and return numpy predictions, so
they drop into sklearn pipelines and ``cross_val_score``. The solvers live in
:mod:`brainalign.metrics.ridge` and :mod:`brainalign.metrics.pls` (no scikit-learn there:
only these wrappers import it).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from brainalign.device import DeviceLike, resolve_device
from brainalign.metrics.pls import pls_fit
from brainalign.metrics.ridge import (
    Design,
    as_tensor,
    check_alphas,
    ridge_coef,
    select_alphas,
    solve_ridge_cv,
)

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype {name!r}: use 'float64' or 'float32'") from None


def _validated_fit_data(est, X, y) -> tuple[torch.device, np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]:
    """The device to fit on (where ``X`` lives, unless ``est.device`` says otherwise) and
    ``X``, ``y`` checked: numpy input by scikit-learn's ``validate_data`` (float64 arrays); a
    torch ``X`` stays a tensor on its device (no round trip through host memory)."""
    device = resolve_device(est.device, X)
    if not isinstance(X, torch.Tensor):
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        X, y = validate_data(est, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        return device, X, y
    X = X.detach()
    y = y.detach().to(X.device) if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y), device=X.device)
    if X.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != X.shape[0] or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{type(est).__name__}.fit: X must be (samples × features) and y (samples,) or "
                         f"(samples × targets) with the same samples; got X {tuple(X.shape)}, y {tuple(y.shape)}")
    if X.is_complex() or y.is_complex():
        raise ValueError(f"{type(est).__name__}.fit: complex data are not supported")
    for name, a in (("X", X), ("y", y)):
        if not bool(torch.isfinite(a).all()):
            raise ValueError(f"{type(est).__name__}.fit: input {name} contains NaN or infinity")
    est.n_features_in_ = X.shape[1]
    return device, X, y


def _predict_input(est, X) -> np.ndarray | torch.Tensor:
    """``X`` for ``predict``: numpy validated by scikit-learn, or a tensor checked on its device."""
    if not isinstance(X, torch.Tensor):
        return validate_data(est, X, reset=False, dtype=np.float64)
    X = X.detach()
    if X.ndim != 2 or X.shape[1] != est.n_features_in_:
        raise ValueError(f"{type(est).__name__}.predict: X has shape {tuple(X.shape)}, expected "
                         f"(samples × {est.n_features_in_})")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{type(est).__name__}.predict: input X contains NaN or infinity")
    return X.to(torch.float64)


def _linear_predict(X: np.ndarray | torch.Tensor, coef: np.ndarray, intercept: np.ndarray | float,
                    x_mean: np.ndarray | float = 0.0) -> np.ndarray:
    """``(X − x_mean) coefᵀ + intercept``; a tensor ``X`` is multiplied on its device and only
    the predictions come back."""
    if not isinstance(X, torch.Tensor):
        return (X - x_mean) @ coef.T + intercept
    to = {"dtype": torch.float64, "device": X.device}
    out = (X - torch.as_tensor(x_mean, **to)) @ torch.as_tensor(coef, **to).T + torch.as_tensor(intercept, **to)
    return out.cpu().numpy()


class RidgeCV(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Ridge regression with α chosen per target by cross-validation, on a torch back end.

    Parameters
    ----------
    alphas
        Grid of regularisation strengths; None: :data:`brainalign.metrics.DEFAULT_ALPHAS`.
    cv
        ``"loo"`` (default): exact leave-one-out, one eigendecomposition (as sklearn's ``RidgeCV``);
        an int K: K-fold in sample order, one decomposition per fold (as himalaya's ``RidgeCV``);
        or an sklearn splitter.
    fit_intercept
        Fit an unpenalised intercept (centre X and Y on the training mean).
    alpha_per_target
        Choose α for each target separately (default; scikit-learn's default is False), else one
        α minimising the mean error over targets.
    n_targets_batch
        Targets processed at once; None: all. Bounds memory at samples × batch.
    device
        ``"auto"``: the device of a torch input, else CUDA when available, else CPU.
    dtype
        ``"float64"`` (exact) or ``"float32"`` for the products with X and y (faster; the Gram /
        covariance eigendecomposition stays float64). The leave-one-out errors use a form without
        cancellation (see :func:`brainalign.metrics.ridge.loo_errors`); a fold whose float32
        errors are not all finite is redone in float64, and a non-finite error never wins the α
        choice. Measured (2026-11-30, features with half the columns ×1e4, n < p and n > p):
        float32 predictions within 3e-6 × the prediction std of float64's, held-out r within
        1e-7, the same α for 80–100 % of targets (the others near-ties).

    Attributes
    ----------
    coef_ : ndarray (targets, features) or (features,) for 1-D y
    intercept_ : ndarray (targets,) or float
    alpha_ : ndarray (targets,) or float — the chosen α (a float for 1-D y or with
        ``alpha_per_target=False``, as scikit-learn's)
    cv_errors_ : ndarray (alphas, targets) — inner-CV mean squared error of every α
    """

    def __init__(self, alphas: np.ndarray | None = None, cv: str | int | object = "loo",
                 fit_intercept: bool = True, alpha_per_target: bool = True,
                 n_targets_batch: int | None = None, device: DeviceLike = "auto", dtype: str = "float64"):
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.alpha_per_target = alpha_per_target
        self.n_targets_batch = n_targets_batch
        self.device = device
        self.dtype = dtype

    def fit(self, X, y) -> RidgeCV:
        """Fit on (samples × features) ``X`` and (samples,) or (samples × targets) ``y``."""
        device, X, y = _validated_fit_data(self, X, y)
        alphas = check_alphas(self.alphas)
        dt = _dtype(self.dtype)
        one_d = y.ndim == 1
        Y = as_tensor(y.reshape(len(y), -1), device, dt)
        a = as_tensor(alphas, device, dt)
        design = Design(as_tensor(X, device, dt), fit_intercept=self.fit_intercept)
        cv = self.cv
        if isinstance(cv, int | np.integer) and cv > X.shape[0]:
            raise ValueError(f"cv={cv} folds but only {X.shape[0]} samples")
        fit = solve_ridge_cv(design, np.arange(X.shape[0]), Y, a, cv=cv, n_targets_batch=self.n_targets_batch)
        if not self.alpha_per_target:
            # One α for all targets: the per-target rule (ties → larger α, non-finite never
            # wins) applied to the mean error over targets.
            idx = select_alphas(fit.cv_errors.mean(1, keepdim=True), a.to(fit.cv_errors.dtype))
            fit.alpha_index = torch.full_like(fit.alpha_index, int(idx[0]))
            fit.alpha = a[fit.alpha_index]
        W, b = ridge_coef(fit)
        self.coef_ = W.T.cpu().numpy().astype(np.float64)
        self.intercept_ = b.cpu().numpy().astype(np.float64)
        self.alpha_ = alphas[fit.alpha_index.cpu().numpy()]  # exact grid values (also in float32)
        self.cv_errors_ = fit.cv_errors.cpu().numpy().astype(np.float64)
        if one_d:
            self.coef_ = self.coef_[0]
            self.intercept_ = float(self.intercept_[0])
        if one_d or not self.alpha_per_target:  # one α: a float, as scikit-learn's alpha_
            self.alpha_ = float(self.alpha_[0])
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions (samples,) or (samples × targets)."""
        check_is_fitted(self)
        return _linear_predict(_predict_input(self, X), self.coef_, self.intercept_)


class PLSRegression(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """PLS regression with 25 components by default (Brain-Score's standard), on a torch back end.

    Same model and predictions as ``sklearn.cross_decomposition.PLSRegression(n_components,
    scale=scale)``; see :func:`pls_fit`. Measured (2026-11-30, 1,152 × 500 → 84): float32
    predictions within 5e-6 × the prediction std of float64's (held-out r within 1e-7). Both
    differ from sklearn's default fit by up to 1e-2 × std, which is sklearn's NIPALS stopping
    at ``tol=1e-6``: against ``PLSRegression(25, tol=1e-14, max_iter=20000)`` the difference is
    1e-6 × std (the exact dominant singular vector is what NIPALS converges to).

    Attributes
    ----------
    coef_ : ndarray (targets, features)  (sklearn ≥ 1.3 layout)
    intercept_ : ndarray (targets,)
    """

    def __init__(self, n_components: int = 25, scale: bool = True, device: DeviceLike = "auto",
                 dtype: str = "float64"):
        self.n_components = n_components
        self.scale = scale
        self.device = device
        self.dtype = dtype

    def fit(self, X, y) -> PLSRegression:
        """Fit on (samples × features) ``X`` and (samples,) or (samples × targets) ``y``."""
        device, X, y = _validated_fit_data(self, X, y)
        if X.shape[0] < 2:
            raise ValueError(f"PLSRegression needs at least 2 samples, got {X.shape[0]} sample")
        dt = _dtype(self.dtype)
        self._one_d = y.ndim == 1
        coef, x_mean, y_mean = pls_fit(as_tensor(X, device, dt), as_tensor(y.reshape(len(y), -1), device, dt),
                                       self.n_components, self.scale)
        self.coef_ = coef.T.cpu().numpy().astype(np.float64)
        self._x_mean = x_mean.cpu().numpy().astype(np.float64)
        self.intercept_ = y_mean.cpu().numpy().astype(np.float64)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions (samples,) or (samples × targets)."""
        check_is_fitted(self)
        out = _linear_predict(_predict_input(self, X), self.coef_, self.intercept_, self._x_mean)
        return out.ravel() if self._one_d else out
