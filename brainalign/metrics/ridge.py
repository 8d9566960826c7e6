"""Ridge regression solvers with the regularisation α chosen per target by cross-validation.

Pure functions over torch tensors; everything runs on the device the tensors are on.

The design matrix is decomposed once per training set: the Gram matrix ``X Xᵀ`` (kernel form,
used when samples ≤ features) or the covariance ``XᵀX`` (primal form) is computed once for the whole
data set, and the centred sub-matrix of each (inner or outer) training fold is read from it and
eigendecomposed. With the eigenpairs ``(s, ·)`` every α costs only a diagonal rescaling:

    predictions(α) = T · diag(1 / (s + α)) · G

where ``T`` maps test samples into the eigenbasis and ``G`` is the projection of the centred
training targets (see :class:`FoldDecomposition`). α is then chosen per target either by the
exact leave-one-out identity (``cv="loo"``: residual / (1 − hat diagonal), one decomposition per
training set, as scikit-learn's ``RidgeCV``) or by an inner K-fold (one decomposition per inner fold,
scored by mean squared error averaged over folds, as himalaya's ``RidgeCV``/``KernelRidgeCV``).
Ties between α go to the larger α (himalaya's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from brainalign.errors import MetricInputError

Split = tuple[np.ndarray, np.ndarray]


def resolve_device(device: str | torch.device, *arrays: object) -> torch.device:
    """``"auto"``: the device of the first torch tensor among ``arrays``, else CUDA when available,
    else the CPU; anything else is passed to :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        return torch.device(device)
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_tensor(a: np.ndarray | torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``a`` as a tensor of ``dtype`` on ``device`` (no copy when it already is one)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


@dataclass
class FoldDecomposition:
    """Eigendecomposition of one centred training set, ready for all α at once.

    For a test block the predictions of the centred targets are ``T diag(1/(s+α)) G``:

    - kernel form: ``K_c = U diag(s) Uᵀ`` (centred train Gram); ``T = K_c(test, train) U``, ``G = UᵀY_c``;
    - primal form: ``C_c = V diag(s) Vᵀ`` (centred train covariance); ``T = X_c(test) V``,
      ``G = Vᵀ X_cᵀ Y_c``.

    ``hat_w`` gives the leave-one-out hat diagonal ``h_i(α) = 1/m + Σ_j hat_w[i, j] / (s_j + α)``
    (the ``1/m`` is the unpenalised intercept).
    """

    train: torch.Tensor
    kernel: bool
    s: torch.Tensor
    basis: torch.Tensor  # U (m × r) in kernel form, V (p × r) in primal form
    x_mean: torch.Tensor
    fit_intercept: bool
    design: Design

    def project_targets(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, y_mean) for targets ``Y`` (all samples × targets; the training rows are used)."""
        Ytr = Y[self.train]
        y_mean = Ytr.mean(0) if self.fit_intercept else torch.zeros_like(Ytr[0])
        Yc = Ytr - y_mean
        if self.kernel:
            return self.basis.T @ Yc, y_mean
        # X_cᵀY_c = X_trᵀY_c because Y_c sums to zero over the training rows.
        return self.basis.T @ (self.design.X[self.train].T @ Yc), y_mean

    def test_map(self, test: torch.Tensor | None = None, X_new: torch.Tensor | None = None) -> torch.Tensor:
        """``T`` for design rows ``test`` (indices into the design) or for new samples ``X_new``."""
        d = self.design
        if self.kernel:
            if X_new is not None:
                Xc_tr = d.X[self.train] - self.x_mean
                Kt = (X_new - self.x_mean) @ Xc_tr.T
            else:
                Kt = d.centred_kernel(test, self.train)
            return Kt @ self.basis
        Xt = X_new if X_new is not None else d.X[test]
        return (Xt - self.x_mean) @ self.basis

    def train_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(T_train, hat_w) for the training rows themselves (leave-one-out)."""
        if self.kernel:
            U = self.basis
            return U * self.s, U**2 * self.s
        T = (self.design.X[self.train] - self.x_mean) @ self.basis
        return T, T**2

    def coef(self, G: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Primal weights (features × targets) for per-target ``alpha`` (targets,)."""
        D = G / (self.s[:, None] + alpha[None, :])
        if self.kernel:
            Xc_tr = self.design.X[self.train] - self.x_mean
            return Xc_tr.T @ (self.basis @ D)
        return self.basis @ D


class Design:
    """The feature matrix with its Gram or covariance matrix computed once, for many folds.

    Parameters
    ----------
    X
        (samples × features) tensor; its mean over all samples is subtracted first (which changes
        no fold's result, since every fold is re-centred on its own training mean, but keeps the
        later subtractions well conditioned).
    fit_intercept
        Centre each training fold (unpenalised intercept), as scikit-learn's ``Ridge``.
    kernel
        Force the kernel (True) or primal (False) form; None: kernel when samples ≤ features.
    """

    def __init__(self, X: torch.Tensor, fit_intercept: bool = True, kernel: bool | None = None):
        self.n, self.p = X.shape
        self.fit_intercept = fit_intercept
        self.offset = X.mean(0) if fit_intercept else torch.zeros_like(X[0])
        self.X = X - self.offset
        self.kernel = self.n <= self.p if kernel is None else kernel
        self.gram = self.X @ self.X.T if self.kernel else self.X.T @ self.X

    def centred_kernel(self, rows: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
        """Gram of ``rows`` against ``train``, both centred on the training mean."""
        K = self.gram
        Kr = K[rows][:, train]
        if not self.fit_intercept:
            return Kr
        Ktt = K[train][:, train]
        col = Ktt.mean(0)  # k̄_j over training i
        return Kr - Kr.mean(1, keepdim=True) - col[None, :] + col.mean()

    def fold(self, train: np.ndarray | torch.Tensor, rank_tol: float | None = None) -> FoldDecomposition:
        """Decompose the training set ``train`` (indices into the rows of ``X``)."""
        train = torch.as_tensor(np.asarray(train), dtype=torch.long, device=self.X.device)
        m = train.numel()
        Xtr = self.X[train]
        x_mean = Xtr.mean(0) if self.fit_intercept else torch.zeros_like(self.X[0])
        if self.kernel:
            M = self.centred_kernel(train, train)
        else:
            # Covariance of the training rows: the full XᵀX minus the held-out rows, when fewer.
            if m > self.n // 2:
                mask = torch.ones(self.n, dtype=torch.bool, device=self.X.device)
                mask[train] = False
                Xo = self.X[mask]
                M = self.gram - Xo.T @ Xo
            else:
                M = Xtr.T @ Xtr
            if self.fit_intercept:
                M = M - m * torch.outer(x_mean, x_mean)
        M = (M + M.T) / 2
        s, vecs = torch.linalg.eigh(M)
        tol = rank_tol if rank_tol is not None else float(torch.finfo(M.dtype).eps) * max(M.shape) * 10
        keep = s > tol * s.max().clamp_min(torch.finfo(M.dtype).tiny)
        return FoldDecomposition(train, self.kernel, s[keep], vecs[:, keep], x_mean, self.fit_intercept, self)


def _batches(n: int, size: int | None) -> list[slice]:
    size = n if not size else size
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def select_alphas(errors: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Index of the best α per target from (α × target) mean squared errors; ties → larger α."""
    score = -errors + (torch.log(alphas) * 1e-10)[:, None]
    return torch.argmax(score, dim=0)


def loo_errors(fold: FoldDecomposition, Y: torch.Tensor, alphas: torch.Tensor,
               n_targets_batch: int | None = None) -> torch.Tensor:
    """Exact leave-one-out mean squared error, (α × target), for the training set of ``fold``."""
    T, hat_w = fold.train_map()
    m = T.shape[0]
    out = torch.empty(len(alphas), Y.shape[1], dtype=Y.dtype, device=Y.device)
    inv = 1.0 / (fold.s[None, :] + alphas[:, None])  # (α × r)
    base = 1.0 / m if fold.fit_intercept else 0.0
    hat = base + hat_w @ inv.T  # (m × α)
    for b in _batches(Y.shape[1], n_targets_batch):
        G, y_mean = fold.project_targets(Y[:, b])
        Yc = Y[fold.train][:, b] - y_mean
        for a in range(len(alphas)):
            resid = (Yc - T @ (G * inv[a][:, None])) / (1.0 - hat[:, a : a + 1])
            out[a, b] = (resid**2).mean(0)
    return out


def kfold_errors(design: Design, train: np.ndarray, Y: torch.Tensor, alphas: torch.Tensor,
                 inner: Sequence[Split], n_targets_batch: int | None = None) -> torch.Tensor:
    """Mean over inner folds of the validation mean squared error, (α × target).

    ``inner`` holds (train, validation) positions *within* ``train``.
    """
    train = np.asarray(train)
    out = torch.zeros(len(alphas), Y.shape[1], dtype=Y.dtype, device=Y.device)
    for itr, iva in inner:
        tr, va = train[np.asarray(itr)], train[np.asarray(iva)]
        fold = design.fold(tr)
        va_t = torch.as_tensor(va, dtype=torch.long, device=Y.device)
        T = fold.test_map(va_t)
        inv = 1.0 / (fold.s[None, :] + alphas[:, None])
        for b in _batches(Y.shape[1], n_targets_batch):
            G, y_mean = fold.project_targets(Y[:, b])
            Yv = Y[va_t][:, b] - y_mean
            for a in range(len(alphas)):
                out[a, b] += ((Yv - T @ (G * inv[a][:, None])) ** 2).mean(0)
    return out / len(inner)


@dataclass
class RidgeFit:
    """Result of :func:`solve_ridge_cv` (tensors on the data's device)."""

    alpha: torch.Tensor  # (targets,) chosen α
    alpha_index: torch.Tensor  # (targets,) index into the α grid
    cv_errors: torch.Tensor  # (α × targets) inner-CV mean squared error
    y_mean: torch.Tensor  # (targets,)
    fold: FoldDecomposition
    G: torch.Tensor | None  # (r × targets) projected targets, kept for predictions


def _inner_splits(cv: int | object | Sequence[Split], m: int) -> list[Split]:
    from sklearn.model_selection import KFold

    if isinstance(cv, int | np.integer):
        if cv < 2 or cv > m:
            raise MetricInputError(f"inner cv={cv} folds needs 2 ≤ folds ≤ {m} training samples")
        cv = KFold(int(cv))
    if hasattr(cv, "split"):
        return [(np.asarray(a), np.asarray(b)) for a, b in cv.split(np.zeros((m, 1)))]
    return [(np.asarray(a), np.asarray(b)) for a, b in cv]


def solve_ridge_cv(design: Design, train: np.ndarray, Y: torch.Tensor, alphas: torch.Tensor,
                   cv: str | int | object = "loo", n_targets_batch: int | None = None) -> RidgeFit:
    """Fit ridge on the rows ``train`` of ``design`` with α chosen per target.

    Parameters
    ----------
    design
        :class:`Design` of all samples.
    train
        Row indices of the training set.
    Y
        (all samples × targets) tensor on the design's device.
    alphas
        (α,) positive grid.
    cv
        ``"loo"``: exact leave-one-out (one decomposition); an int K: K-fold without shuffling over
        the training rows in order (himalaya's default); an sklearn splitter or a list of
        (train, validation) position pairs within ``train``.
    n_targets_batch
        Targets processed at once (bounds memory at samples × batch per α).
    """
    train = np.asarray(train)
    fold = design.fold(train)
    if isinstance(cv, str):
        if cv != "loo":
            raise MetricInputError(f"inner cv {cv!r}: use 'loo', an int or an sklearn splitter")
        err = loo_errors(fold, Y, alphas, n_targets_batch)
    else:
        err = kfold_errors(design, train, Y, alphas, _inner_splits(cv, len(train)), n_targets_batch)
    idx = select_alphas(err, alphas)
    G, y_mean = fold.project_targets(Y)
    return RidgeFit(alphas[idx], idx, err, y_mean, fold, G)


def predict_rows(fit: RidgeFit, rows: np.ndarray | torch.Tensor | None = None,
                 X_new: torch.Tensor | None = None) -> torch.Tensor:
    """Predictions of ``fit`` for design rows ``rows`` or for new (uncentred) samples ``X_new``."""
    fold = fit.fold
    if X_new is not None:
        X_new = X_new - fold.design.offset
        T = fold.test_map(X_new=X_new)
    else:
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=fold.s.device)
        T = fold.test_map(rows_t)
    D = fit.G / (fold.s[:, None] + fit.alpha[None, :])
    return T @ D + fit.y_mean


def ridge_coef(fit: RidgeFit) -> tuple[torch.Tensor, torch.Tensor]:
    """(coef (features × targets), intercept (targets,)) in the original feature space."""
    fold = fit.fold
    W = fold.coef(fit.G, fit.alpha)
    x_mean = fold.x_mean + fold.design.offset
    intercept = fit.y_mean - x_mean @ W if fold.fit_intercept else torch.zeros_like(fit.y_mean)
    return W, intercept
