"""Ridge regression solvers with the regularisation α chosen per target by cross-validation.

Pure functions over torch tensors; everything runs on the device the tensors are on.

The design matrix is decomposed once per training set: the Gram matrix ``X Xᵀ`` (kernel form,
used when samples ≤ features) or the covariance ``XᵀX`` (primal form) is computed once for the whole
data set, and the centred sub-matrix of each (inner or outer) training fold is read from it and
eigendecomposed. With the eigenpairs ``(s, ·)`` every α costs only a diagonal rescaling:

    predictions(α) = T · diag(1 / (s + α)) · G

where ``T`` maps test samples into the eigenbasis and ``G`` is the projection of the centred
training targets (see :class:`FoldDecomposition`). α is then chosen per target either by the
exact leave-one-out identity (``cv="loo"``: ``[(I − H)y]ᵢ / (I − H)ᵢᵢ``, one decomposition per
training set, as scikit-learn's ``RidgeCV``) or by an inner K-fold (one decomposition per inner fold,
scored by mean squared error averaged over folds, as himalaya's ``RidgeCV``/``KernelRidgeCV``).
Ties between α go to the larger α (himalaya's rule); a non-finite error never wins.

The leave-one-out residuals are formed from terms that shrink with α (``α/(s+α)``), never as
``1 − (a hat value close to 1)``, so small α over a large spectrum does not cancel to 0/0 (which
made float32 give NaN errors); a float32 fold whose errors are still not all finite is redone in
float64. All α go through one GEMM per block of targets (no Python loop over α × targets), the
targets' projection is computed once per fold and reused for the fit, and the Gram / covariance
is formed block by block over its upper triangle (≈ 5/8 of a GEMM's work, :func:`_gram`). Tensors
stay on their device and every product stays in torch's own thread pool throughout.

When only the choice of α matters (``best_only``, as in ``encoding_score``), the (m × α·t) residuals
are formed only for the (α, target) pairs that proven bounds cannot rule out (:func:`_loo_bounds`:
weighted sums bounded by the extreme leave-one-out weights, from (α × t) and (m × t) products): each
target's most promising α first, whose exact error then rules out more. Typically 2 of 10 α per
target are computed; the chosen α and every computed error are those of the full grid. The bounds
assume the computed basis orthonormal to a known tolerance (a rounding-error bound, or one Gram
that measures it); where that fails (float32, a very ill-conditioned fold) every pair is computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from brainalign.errors import MetricInputError
from brainalign.metrics._backend import as_torch

Split = tuple[np.ndarray, np.ndarray]


DEFAULT_ALPHAS: np.ndarray = np.logspace(-2, 8, 11)
"""Default α grid: 10⁻² … 10⁸ in decades. Wide because the scale of α follows the scale of the
features (summed squared activations grow with layer width); a chosen α at either end of the grid
is reported by :func:`brainalign.metrics.encoding_score` as a warning sign."""


def check_alphas(alphas: object) -> np.ndarray:
    """The α grid as a float64 array (``None``: :data:`DEFAULT_ALPHAS`).

    Raises
    ------
    ValueError
        Not a non-empty 1-D grid of positive finite numbers.
    """
    a = DEFAULT_ALPHAS if alphas is None else np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"alphas must be a non-empty 1-D grid of positive finite numbers, got {alphas!r}")
    return a


def as_tensor(a: np.ndarray | torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``a`` as a tensor of ``dtype`` on ``device`` (no copy when it already is one)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device=device, dtype=dtype)
    return as_torch(np.asarray(a), dtype=dtype, device=device)


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
    k_col_mean: torch.Tensor | None = None  # kernel form: mean over training rows of K[train, train]
    basis64: torch.Tensor | None = None  # kernel form: U in float64, applied to the float64 Gram

    def project_targets(self, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G, y_mean) for targets ``Y`` (all samples × targets; the training rows are used)."""
        Ytr = Y[self.train]
        y_mean = Ytr.mean(0) if self.fit_intercept else torch.zeros_like(Ytr[0])
        Yc = Ytr - y_mean
        if self.kernel:
            return self.basis.T @ Yc, y_mean
        # X_cᵀY_c = X_trᵀY_c because Y_c sums to zero over the training rows.
        return self.basis.T @ (self.design.X[self.train].T @ Yc), y_mean

    def loo_parts(self, Y: torch.Tensor, residual: bool = True) -> tuple[torch.Tensor | None, ...]:
        """Pieces of the leave-one-out identity for targets ``Y`` (all samples × targets).

        Returns ``B`` (train × r, orthonormal columns spanning the fitted directions), ``z = BᵀY_c``,
        ``G`` and ``y_mean`` (as :meth:`project_targets`), ``Y_c`` (the centred training targets),
        ``R0`` (train × targets, the part of ``Y_c`` outside ``B``: unpenalised-free, its LOO weight
        does not depend on α; None unless ``residual`` or known to be 0), ``q`` (train,), the
        leverage outside ``B`` (``1 − 1/m − Σⱼ Bᵢⱼ²``, 0 when ``B`` is complete) and ``B²``
        (elementwise, for the hat diagonal of every α).
        """
        Ytr = Y[self.train]
        y_mean = Ytr.mean(0) if self.fit_intercept else torch.zeros_like(Ytr[0])
        Yc = Ytr - y_mean
        m = Yc.shape[0]
        base = 1.0 - (1.0 / m if self.fit_intercept else 0.0)
        R0 = None
        if self.kernel:
            B = self.basis
            z = G = B.T @ Yc
            B2 = B * B
            if B.shape[1] >= m - int(self.fit_intercept):  # complete: nothing outside the basis
                q = torch.zeros(m, dtype=Yc.dtype, device=Yc.device)
                return B, z, G, y_mean, Yc, torch.zeros_like(Yc), q, B2
            U64 = self.basis64
            q = (base - (U64 * U64).sum(1)).clamp_min(0.0).to(Yc.dtype)
            if residual:
                R0 = self.outside(Yc, B, z)
            return B, z, G, y_mean, Yc, R0, q, B2
        # Primal: B = X_c V diag(s)^-½ without a centred copy of X: X (V s^-½) − 1 (x̄ V s^-½), the
        # centring row being the GEMM's initial value (V is scaled, not the larger m × r product).
        Xtr = self.design.X[self.train]
        sq = self.s.sqrt()
        Vs = self.basis / sq
        B = torch.addmm(-(self.x_mean @ Vs)[None, :], Xtr, Vs)
        z = (Yc.T @ B).T  # as (Bᵀ Y_c), ~20 % faster in this order; zᵀ contiguous for the pairs
        G = z * sq[:, None]
        if residual:
            R0 = self.outside(Yc, B, z)
        B2 = B * B
        q = (base - B2.sum(1)).clamp_min(0.0)
        return B, z, G, y_mean, Yc, R0, q, B2

    def outside(self, Yc: torch.Tensor, B: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``R0 = Y_c − B z`` of :meth:`loo_parts` (kernel form: in float64 from the float64 basis;
        0 when the basis is complete)."""
        if not self.kernel:
            return Yc - B @ z
        if B.shape[1] >= Yc.shape[0] - int(self.fit_intercept):
            return torch.zeros_like(Yc)
        U64, Y64 = self.basis64, Yc.double()
        return (Y64 - U64 @ (U64.T @ Y64)).to(Yc.dtype)

    def orthonormality_bound(self) -> float:
        """Bound on ‖BᵀB − I‖₂ for the basis ``B`` of :meth:`loo_parts` (from rounding error
        analysis, with a factor 10 to spare).

        Kernel form: ``B = U`` from ``eigh``, orthonormal to O((m + r)·ε). Primal form:
        ``B = X_c V diag(s)^-½``, whose Gram is ``diag(s)^-½ Vᵀ(C − E)V diag(s)^-½`` with ``E`` the
        rounding in the covariance (its products and the downdate, ≤ (2n + 3)·ε·‖X‖_F²) and in ``eigh``
        (≤ p·ε·‖C‖), hence ≤ (2n + 2p + 3)·ε·‖X‖_F²/s_min; the product ``X_c V`` in the working
        dtype adds ≤ 3·p·ε_dt·(r‖X‖_F²/s_min)^½.
        """
        eps = float(torch.finfo(self.s.dtype).eps)
        m, r = self.train.numel(), self.s.numel()
        base = (m + r) * eps
        if self.kernel:
            return 30.0 * base
        d = self.design
        eps64 = float(torch.finfo(torch.float64).eps)
        smin = float(self.s.min()) if r else 0.0
        if not smin > 0:
            return float("inf")
        ratio = d.trace / smin
        return 10.0 * ((2 * d.n + 2 * d.p + 3) * eps64 * ratio + 3 * d.p * eps * (r * ratio) ** 0.5 + base)

    def measured_orthonormality(self, B: torch.Tensor) -> float:
        """‖BᵀB − I‖_F of the computed basis (≥ the 2-norm), plus the rounding of that product
        (≤ m·r·ε): one Gram (:func:`_gram`), for folds whose a-priori bound is too loose."""
        m, r = B.shape
        D = _gram(B, rows=False)
        D.diagonal().sub_(1.0)
        return float(torch.linalg.matrix_norm(D)) + 2.0 * m * r * float(torch.finfo(B.dtype).eps)

    def test_map(self, test: torch.Tensor | None = None, X_new: torch.Tensor | None = None) -> torch.Tensor:
        """``T`` for design rows ``test`` (indices into the design) or for new samples ``X_new``."""
        d = self.design
        if self.kernel:
            if X_new is not None:
                Xc_tr = d.X[self.train] - self.x_mean
                Kt = (X_new - self.x_mean) @ Xc_tr.T
            else:
                return (d.centred_kernel(test, self.train, self.k_col_mean) @ self.basis64).to(self.s.dtype)
            return Kt @ self.basis
        Xt = X_new if X_new is not None else d.X[test]
        return (Xt - self.x_mean) @ self.basis

    def coef(self, G: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Primal weights (features × targets) for per-target ``alpha`` (targets,)."""
        D = G / (self.s[:, None] + alpha[None, :])
        if self.kernel:
            A = self.basis @ D  # (train × targets)
            # X_cᵀA = X_trᵀA − x̄ (1ᵀA): no centred copy of the training rows.
            return self.design.X[self.train].T @ A - torch.outer(self.x_mean, A.sum(0))
        return self.basis @ D


class Design:
    """The feature matrix with its Gram or covariance matrix computed once, for many folds.

    Parameters
    ----------
    X
        (samples × features) tensor; its mean over all samples is subtracted first (which changes
        no fold's result, since every fold is re-centred on its own training mean, but keeps the
        later subtractions well conditioned). Products with X (and targets) use X's dtype; the Gram /
        covariance and its eigendecomposition are always float64, because in float32 the small
        eigenvalues of a spectrum with a large dynamic range — often the predictive ones — are
        lost in rounding.
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
        X64 = self.X.double()
        self.gram = _gram(X64, rows=self.kernel)
        # ‖X‖_F² (= trace of either form): scales the rounding error of every fold's Gram.
        self.trace = float(self.gram.diagonal().sum())

    def centred_kernel(self, rows: torch.Tensor, train: torch.Tensor,
                       col: torch.Tensor | None = None) -> torch.Tensor:
        """Gram of ``rows`` against ``train``, both centred on the training mean (``col``: the
        column means of the train × train block, when known)."""
        Kr = self.gram[rows][:, train]
        if not self.fit_intercept:
            return Kr
        if col is None:
            col = self.gram[train][:, train].mean(0)
        return Kr - Kr.mean(1, keepdim=True) - col[None, :] + col.mean()

    def as_float64(self) -> Design:
        """This design with float64 products (the Gram is shared; it is float64 already)."""
        d = Design.__new__(Design)
        d.__dict__.update(self.__dict__)
        d.X, d.offset = self.X.double(), self.offset.double()
        return d

    def fold(self, train: np.ndarray | torch.Tensor, rank_tol: float | None = None) -> FoldDecomposition:
        """Decompose the training set ``train`` (indices into the rows of ``X``)."""
        train = torch.as_tensor(np.asarray(train), dtype=torch.long, device=self.X.device)
        m = train.numel()
        others = None
        if m > self.n // 2:
            mask = torch.ones(self.n, dtype=torch.bool, device=self.X.device)
            mask[train] = False
            others = self.X[mask]
        f64 = torch.float64
        if not self.fit_intercept:
            x_mean = torch.zeros_like(self.X[0], dtype=f64)
        elif others is not None:
            x_mean = -others.sum(0, dtype=f64) / m  # the design's rows sum to zero
        else:
            x_mean = self.X[train].sum(0, dtype=f64) / m
        col = None
        if self.kernel:
            Ktt = self.gram[train][:, train]
            if self.fit_intercept:
                col = Ktt.mean(0)
                Ktt = Ktt - Ktt.mean(1, keepdim=True) - col[None, :] + col.mean()
            M = (Ktt + Ktt.T) / 2
        else:
            # Covariance of the training rows X_trᵀX_tr − m x̄x̄ᵀ. When the held-out rows are fewer:
            # the full XᵀX minus [held-out rows; √m x̄]ᵀ[held-out rows; √m x̄], one Gram.
            if others is not None:
                o = others.double()
                if self.fit_intercept:
                    o = torch.cat([o, (x_mean * m ** 0.5)[None, :]])
                M = self.gram - _gram(o, rows=False)
            else:
                M = _gram(self.X[train].double(), rows=False)
                if self.fit_intercept:
                    xx = torch.outer(x_mean, x_mean)
                    xx *= m
                    M -= xx
            # Every term is exactly symmetric (_gram mirrors its upper triangle; the outer product
            # is symmetric), so M is: averaging with Mᵀ would change nothing.
        # M is symmetric; MKL's syevd reads the upper triangle ~7 % faster than the lower one
        # (measured interleaved at p = 1,000; results equal to rounding).
        s, vecs = torch.linalg.eigh(M, UPLO="U")
        # Drop only eigenvalues at the rounding level of the largest (eigh sorts them ascending,
        # so the kept ones are a trailing slice: a view, no copy).
        tol = rank_tol if rank_tol is not None else float(torch.finfo(f64).eps) * 10
        k0 = int((s <= tol * s.max().clamp_min(torch.finfo(f64).tiny)).sum())
        s, vecs = s[k0:], vecs[:, k0:]
        dt = self.X.dtype
        return FoldDecomposition(train, self.kernel, s.to(dt), vecs.to(dt), x_mean.to(dt), self.fit_intercept,
                                 self, col, vecs if self.kernel else None)


_GRAM_BLOCK = 256
"""Fewest rows of the Gram matrix per block of :func:`_gram` (narrower GEMMs run below peak)."""


def _gram(A: torch.Tensor, rows: bool) -> torch.Tensor:
    """``A Aᵀ`` (rows) or ``AᵀA``, exactly symmetric: GEMMs over the blocks of its upper triangle
    (k ≤ 8 row blocks of ≥ :data:`_GRAM_BLOCK`: (k + 1)/2k of a full GEMM's work), mirrored.

    This replaces numpy's BLAS ``syrk`` (half a GEMM's work), measured at torch's default two
    threads on 2 cores (``perf/issue15_speed.py``, ridge row): numpy's BLAS (OpenBLAS) keeps a
    second pool of threads, which spin after each call and halved the speed of the ``eigh``
    that follows in torch's pool (0.19 s instead of 0.09 s at p = 1,000); CV ridge as a whole
    went from 3.6× to 5.1× scikit-learn's ``RidgeCV``. On one thread this costs ≈ 0.02 s per
    2,560 × 1,000 design.
    """
    B = A if rows else A.T
    n = B.shape[0]
    k = max(1, min(8, n // _GRAM_BLOCK))
    edges = [round(i * n / k) for i in range(k + 1)]
    C = torch.empty(n, n, dtype=A.dtype, device=A.device)
    for a, b in itertools.pairwise(edges):
        blk = B[a:b] @ B[a:].T  # rows a:b against every row from a on: the upper triangle
        C[a:b, a:] = blk
        C[b:, a:b] = blk[:, b - a:].T
        # The diagonal block too: a GEMM of A with Aᵀ is not exactly symmetric on every CPU
        # (MKL on AMD EPYC rounds its two triangles differently).
        D = C[a:b, a:b]
        D.copy_(torch.triu(D) + torch.triu(D, 1).T)
    return C


def _batches(n: int, size: int | None) -> list[slice]:
    size = n if not size else size
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


_BLOCK_BYTES = 256 * 2**20
"""Largest (samples × α × targets) block of residuals held at once; larger jobs go in target chunks."""


def select_alphas(errors: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """Index of the best α per target from (α × target) mean squared errors; ties → larger α.

    Non-finite errors never win: they count as +inf (a target whose errors are all non-finite is
    refused by the callers before this point).
    """
    e = torch.where(torch.isfinite(errors), errors, torch.full_like(errors, float("inf")))
    score = -e + (torch.log(alphas) * 1e-10)[:, None]
    return torch.argmax(score, dim=0)


def _loo_block(B: torch.Tensor, z: torch.Tensor, R0: torch.Tensor, den: torch.Tensor,
               shrink: torch.Tensor) -> torch.Tensor:
    """(α × targets) leave-one-out mean squared errors for one block of targets.

    With the hat matrix ``H(α) = 11ᵀ/m + B diag(s/(s+α)) Bᵀ`` (``B`` orthonormal columns), the LOO
    residual is ``[(I − H)y]ᵢ / (I − H)ᵢᵢ`` with ``(I − H)y = R0 + B diag(α/(s+α)) z`` and
    ``(I − H)ᵢᵢ = qᵢ + Σⱼ Bᵢⱼ² α/(sⱼ+α)`` (``R0``, ``q``: the parts outside the eigenbasis). Both are
    sums of terms that shrink with α rather than ``1 − (something close to 1)``, so there is no
    cancellation as α → 0 (which made float32 give NaN/inf). All α in one GEMM.
    """
    n_alpha, r = shrink.shape
    m, t = R0.shape
    num = B @ (shrink[:, :, None] * z[None]).permute(1, 0, 2).reshape(r, n_alpha * t)  # (m, α·t)
    num = num.view(m, n_alpha, t)
    num += R0[:, None, :]
    num.square_()
    # Σᵢ numᵢ² / denᵢ²: one weighted sum per α over the squared block (no divided copy).
    w = den.reciprocal().square_()
    out = torch.empty(n_alpha, t, dtype=num.dtype, device=num.device)
    for a in range(n_alpha):
        torch.mv(num[:, a, :].T, w[:, a], out=out[a])
    return out.div_(m)


def _loo_pairs(B: torch.Tensor, zT: torch.Tensor, YcT: torch.Tensor | None, w: torch.Tensor,
               coef: torch.Tensor, a_idx: torch.Tensor, t_idx: torch.Tensor) -> torch.Tensor:
    """Leave-one-out mean squared errors of the (α, target) pairs ``(a_idx[k], t_idx[k])`` only
    (pairs sorted by α), by the identity of :func:`_loo_block` without forming ``R0``:

    - ``YcT`` given: ``(I − H)y = Y_c − B diag(s/(s+α)) z`` (``coef`` = ``s/(s+α)``, α × r);
    - ``YcT`` None (the basis is complete, ``R0 = 0``): ``(I − H)y = B diag(α/(s+α)) z``
      (``coef`` = ``α/(s+α)``), with no cancellation as α → 0.

    ``zT``, ``YcT``: ``z``, ``Y_c`` transposed (targets × ·, so that a pair's rows are gathered
    whole); ``w = 1/(I − H)ᵢᵢ²`` (m × α).
    """
    U = coef[a_idx] * zT[t_idx]  # (pairs, r)
    if YcT is None:
        num = U @ B.T  # (pairs, m): ((I − H)y)ᵀ
    else:
        num = torch.addmm(YcT[t_idx], U, B.T, alpha=-1)  # Y_c added by the GEMM itself
    num.square_()
    out = torch.empty(a_idx.numel(), dtype=num.dtype, device=num.device)
    alpha_of, counts = torch.unique_consecutive(a_idx, return_counts=True)
    start = 0
    for a, c in zip(alpha_of.tolist(), counts.tolist(), strict=True):
        torch.mv(num[start:start + c], w[:, a], out=out[start:start + c])
        start += c
    return out.div_(num.shape[1])


_PRUNE_MARGIN = 1e-6
"""Relative margin by which an α's lower bound must exceed the best upper bound to be skipped
(rounding in the computed errors is ~1e-12 relative in float64)."""


def _loo_bounds(z: torch.Tensor, Yc: torch.Tensor | None, w: torch.Tensor, keep: torch.Tensor,
                shrink: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower, upper) bounds on every (α × target) leave-one-out error, and the rounding slack
    (targets,) in units of the squared residual.

    Proven bounds from (α × targets) and (m × targets) products only, never the (m × α·t)
    residuals. With ``u = diag(s/(s+α)) z`` the residual is ``e = Y_c − Bu`` and ``m·E = Σ w e²``
    with weights ``wᵢ = 1/(I − H)ᵢᵢ²`` in ``[w₋, w₊]`` (w̄, w_d: their midpoint and half-range):

    - ``Σ w e² = Σ w Y_c² − 2 Σ w Y_c (Bu) + Σ w (Bu)²``; the first term is exact (an (α × m)(m × t)
      product), ``Σ w Y_c Bu = w̄ zᵀu + Σ (w − w̄) Y_c Bu`` because ``Y_cᵀB = zᵀ``, so it lies within
      ``w̄ zᵀu ± w_d ‖Y_c‖ ‖Bu‖``, and ``Σ w (Bu)² ∈ [w₋, w₊] ‖Bu‖²`` (tight for large α);
    - ``Σ w e² ∈ [w₋, w₊] ‖e‖²`` with ``‖e‖² = ‖Y_c‖² − 2 zᵀu + ‖Bu‖²`` (tight where w is even).

    ``Yc`` None: the basis is complete (``R0 = 0``) and ``e = Bv``, ``v = diag(α/(s+α)) z``
    (``shrink``), so ``Σ w e² ∈ [w₋, w₊] ‖Bv‖²``.

    ``delta`` bounds ‖BᵀB − I‖ (the computed basis is orthonormal only to rounding): ``‖Bu‖² ∈
    (1 ± δ)‖u‖²``; rounding of the sums is covered by a further ``(m + r)·ε`` of ``‖Y_c‖²``. All in
    float64.
    """
    f64 = torch.float64
    m = w.shape[0]
    zsq = z.to(f64).square()
    w, h = w.to(f64), keep.to(f64)
    w_lo, w_hi = w.amin(0)[:, None], w.amax(0)[:, None]  # (α, 1)
    eps = (delta + 4 * (m + z.shape[0]) * float(torch.finfo(z.dtype).eps))
    if Yc is None:
        v2 = shrink.to(f64).square() @ zsq  # (α, t): ‖v‖²
        lo, hi = w_lo * v2 * (1 - eps), w_hi * v2 * (1 + eps)
        slack = eps * zsq.sum(0)
    else:
        w_mid, w_dev = (w_lo + w_hi) / 2, (w_hi - w_lo) / 2
        Ysq = Yc.to(f64).square()
        y2 = Ysq.sum(0)  # (t,)
        zu = h @ zsq  # (α, t): zᵀu ≥ 0
        u2 = h.square() @ zsq  # (α, t): ‖u‖²
        slack = eps * y2  # (t,): δ and rounding, in units of ‖Y_c‖²
        Bu_lo, Bu_hi = u2 * (1 - delta), u2 * (1 + delta)
        # First form.
        a = w.T @ Ysq  # (α, t): Σ w Y_c²
        c_dev = w_dev * y2.sqrt() * Bu_hi.sqrt() + w_mid * slack
        lo1 = a - 2 * w_mid * zu - 2 * c_dev + w_lo * Bu_lo
        hi1 = a - 2 * w_mid * zu + 2 * c_dev + w_hi * Bu_hi
        # Second form.
        e2_lo = (y2 - 2 * zu + Bu_lo - slack).clamp_min(0.0)
        e2_hi = y2 - 2 * zu + Bu_hi + slack
        lo, hi = torch.maximum(lo1, w_lo * e2_lo), torch.minimum(hi1, w_hi * e2_hi)
    return lo / m, hi / m, slack


def _loo_bounds_r0(z: torch.Tensor, R0: torch.Tensor, w: torch.Tensor, shrink: torch.Tensor,
                   delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds as :func:`_loo_bounds`, from the residual outside the basis ``R0 = Y_c − Bz`` (one
    more (m × r)(r × t) product; tight for small α, where :func:`_loo_bounds` is not when the
    leverages vary). ``e = R0 + Bv``, ``v = diag(α/(s+α)) z``: ``m·E = a + 2c + b`` with
    ``a = Σ w R0²`` exact, ``b = Σ w (Bv)² ∈ [w₋, w₊]‖Bv‖²`` and, because ``R0 ⊥ B`` up to
    ``|R0ᵀBv| ≤ δ ‖z‖ ‖v‖``, ``|c| ≤ w_d ‖R0‖ ‖Bv‖ + w̄ δ ‖z‖ ‖v‖`` (and ``≤ √(a b)``)."""
    f64 = torch.float64
    m = R0.shape[0]
    R0sq = R0.to(f64).square()
    zsq = z.to(f64).square()
    w, c = w.to(f64), shrink.to(f64)
    w_lo, w_hi = w.amin(0)[:, None], w.amax(0)[:, None]
    w_mid, w_dev = (w_lo + w_hi) / 2, (w_hi - w_lo) / 2
    a = w.T @ R0sq  # (α, t)
    v2 = c.square() @ zsq  # (α, t): ‖v‖²
    v, rn, zn = v2.sqrt(), R0sq.sum(0).sqrt(), zsq.sum(0).sqrt()
    b_lo, b_hi = w_lo * v2 * (1 - delta), w_hi * v2 * (1 + delta)
    cross = torch.minimum(w_dev * rn * v * (1 + delta) ** 0.5 + w_mid * delta * zn * v, (a * b_hi).sqrt())
    return (a + b_lo - 2 * cross) / m, (a + b_hi + 2 * cross) / m


def _loo_skip(lo: torch.Tensor, best: torch.Tensor, slack: torch.Tensor, w: torch.Tensor,
              alphas: torch.Tensor) -> torch.Tensor:
    """(α × targets) mask of the pairs that cannot be their target's best: lower bound above
    ``best`` (targets,: an upper bound on the target's smallest error) by a relative margin,
    :func:`select_alphas`'s tie term and the rounding of the computed errors (``Y_c − Bu`` loses
    ~ε‖Y_c‖ when the fit is near perfect). NaN anywhere: not skipped."""
    la = torch.log(alphas.to(torch.float64))
    tie = 1e-10 * float(la.max() - la.min())  # select_alphas's tie term, at most
    err_round = w.max().to(torch.float64) * slack / w.shape[0]
    return lo * (1 - _PRUNE_MARGIN) > best[None, :] * (1 + _PRUNE_MARGIN) + tie + err_round


_PRUNE_MAX_DELTA = 1e-3
"""Above this bound on ‖BᵀB − I‖ (a very ill-conditioned fold, or float32) every pair is computed."""


def loo_errors(fold: FoldDecomposition, Y: torch.Tensor, alphas: torch.Tensor,
               n_targets_batch: int | None = None, best_only: bool = False,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Exact leave-one-out mean squared error, (α × target), for the training set of ``fold``;
    also (G, y_mean) of :meth:`FoldDecomposition.project_targets` for reuse, and the mask of the
    errors computed (None: all).

    ``best_only``: compute only the (α, target) errors that bounds cannot rule out as the best of
    their target (see :func:`_loo_candidates`; typically 2–3 α of 10); the others are +inf in the
    result and False in the mask. The α that :func:`select_alphas` chooses is the same as with the
    full grid, and every computed error is the same number.
    """
    prune = best_only and len(alphas) > 1
    B, z, G, y_mean, Yc, R0, q, B2 = fold.loo_parts(Y, residual=not prune)
    m, t = Yc.shape
    n_alpha = len(alphas)
    shrink = alphas[:, None] / (fold.s[None, :] + alphas[:, None])  # (α × r): α/(s+α)
    den = q[:, None] + B2 @ shrink.T  # (m, α): (I − H)ᵢᵢ, the same for every target block
    if prune:
        # The bounds need a basis orthonormal to well below their slack: the a-priori bound, or
        # (float64, when it is too loose and the check costs less than the errors it may save)
        # the measured one. Otherwise (float32, a very ill-conditioned fold) every pair is computed.
        delta = fold.orthonormality_bound()
        if delta > _PRUNE_MAX_DELTA and B.dtype == torch.float64 and B.shape[1] < n_alpha * t:
            delta = fold.measured_orthonormality(B)
        w = den.reciprocal().square_()
        if delta <= _PRUNE_MAX_DELTA and bool(torch.isfinite(w).all()):
            keep = fold.s[None, :] / (fold.s[None, :] + alphas[:, None])  # (α × r): s/(s+α)
            complete = R0 is not None  # the kernel form's complete basis: R0 = 0, never cancels
            lo, hi, slack = _loo_bounds(z, None if complete else Yc, w, keep, shrink, delta)
            need = ~_loo_skip(lo, hi.amin(0), slack, w, alphas)
            if not complete and int(need.sum()) > 3 * t:
                # Loose for small α (uneven leverages): R0 costs what t pairs cost and can leave ~2t.
                R0 = fold.outside(Yc, B, z)
                lo_r, hi_r = _loo_bounds_r0(z, R0, w, shrink, delta)
                lo, hi = torch.maximum(lo, lo_r), torch.minimum(hi, hi_r)
            out = torch.full((n_alpha, t), float("inf"), dtype=Y.dtype, device=Y.device)
            zT = z.T.contiguous()
            YcT, coef = (None, shrink) if complete else (Yc.T.contiguous(), keep)
            per_pair = m * Y.element_size()
            size = max(1, min(n_alpha * (n_targets_batch or t), _BLOCK_BYTES // per_pair))

            def compute(mask: torch.Tensor) -> None:
                a_idx, t_idx = torch.nonzero(mask, as_tuple=True)  # sorted by α
                for b in _batches(a_idx.numel(), size):
                    out[a_idx[b], t_idx[b]] = _loo_pairs(B, zT, YcT, w, coef, a_idx[b], t_idx[b])

            # First each target's α with the smallest upper bound, exactly: that error, below the
            # bound, then rules out more of the others.
            cols, top = torch.arange(t, device=Y.device), hi.argmin(0)
            first = torch.zeros_like(lo, dtype=torch.bool)
            first[top, cols] = True
            compute(first)
            best = torch.minimum(hi[top, cols], out[top, cols].to(hi.dtype))
            need = first | ~_loo_skip(lo, best, slack, w, alphas)
            compute(need & ~first)
            if bool(torch.isfinite(out[need]).all()):
                return out, G, y_mean, need
        # Not pruned, or a hat value of 1 / a non-finite error (the bounds' premises fail): all.
        if R0 is None:
            R0 = fold.outside(Yc, B, z)
    out = torch.empty(n_alpha, t, dtype=Y.dtype, device=Y.device)
    per_target = m * n_alpha * Y.element_size()
    size = max(1, min(n_targets_batch or t, _BLOCK_BYTES // per_target))
    for b in _batches(t, size):
        out[:, b] = _loo_block(B, z[:, b], R0[:, b], den, shrink)
    return out, G, y_mean, None


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
        inv = 1.0 / (fold.s[None, :] + alphas[:, None])  # (α × r)
        r = inv.shape[1]
        per_target = len(va) * len(alphas) * Y.element_size()
        size = max(1, min(n_targets_batch or Y.shape[1], _BLOCK_BYTES // per_target))
        for b in _batches(Y.shape[1], size):
            G, y_mean = fold.project_targets(Y[:, b])
            t = G.shape[1]
            P = (T @ (inv[:, :, None] * G[None]).permute(1, 0, 2).reshape(r, -1)).view(len(va), len(alphas), t)
            P -= (Y[va_t][:, b] - y_mean)[:, None, :]
            out[:, b] += (P * P).mean(0)
    return out / len(inner)


@dataclass
class RidgeFit:
    """Result of :func:`solve_ridge_cv` (tensors on the data's device)."""

    alpha: torch.Tensor  # (targets,) chosen α
    alpha_index: torch.Tensor  # (targets,) index into the α grid
    cv_errors: torch.Tensor  # (α × targets) inner-CV mean squared error (+inf where not computed)
    y_mean: torch.Tensor  # (targets,)
    fold: FoldDecomposition
    G: torch.Tensor | None  # (r × targets) projected targets, kept for predictions
    cv_computed: torch.Tensor | None = None  # (α × targets) errors computed (None: all); see best_only


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
                   cv: str | int | object = "loo", n_targets_batch: int | None = None,
                   best_only: bool = False) -> RidgeFit:
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
    best_only
        With ``cv="loo"``: only the errors that may be the smallest of their target are computed
        (the others are proven larger, see :func:`loo_errors`); same chosen α, same fit, and
        ``cv_errors`` is +inf where ``cv_computed`` is False. For callers that need only the choice.
    """
    train = np.asarray(train)
    if len(train) < 2:
        raise MetricInputError(f"ridge: cross-validating α needs at least 2 training samples, got "
                               f"{len(train)} sample")
    distinct, inverse = torch.unique(alphas, return_inverse=True)
    if len(distinct) < len(alphas):
        # A repeated α is solved once: its copies get the same errors bit for bit, so the choice
        # (the first copy on a tie) cannot depend on how a BLAS rounds equal columns.
        fit = solve_ridge_cv(design, train, Y, distinct, cv, n_targets_batch, best_only)
        err = fit.cv_errors[inverse]
        computed = None if fit.cv_computed is None else fit.cv_computed[inverse]
        grid = alphas.to(fit.alpha.dtype)  # float64 where a float32 fold was redone in float64
        idx = select_alphas(err, grid)
        return RidgeFit(grid[idx], idx, err, fit.y_mean, fit.fold, fit.G, computed)
    fold = design.fold(train)
    if isinstance(cv, str):
        if cv != "loo":
            raise MetricInputError(f"inner cv {cv!r}: use 'loo', an int or an sklearn splitter")
        err, G, y_mean, computed = loo_errors(fold, Y, alphas, n_targets_batch, best_only)
    else:
        err = kfold_errors(design, train, Y, alphas, _inner_splits(cv, len(train)), n_targets_batch)
        G, y_mean = fold.project_targets(Y)
        computed = None
    bad = ~torch.isfinite(err)
    if computed is not None:
        bad &= computed
    if bool(bad.any()) and err.dtype != torch.float64:
        # float32 could not resolve some errors: this fold again in float64 (fit included).
        d64 = design.as_float64()
        return solve_ridge_cv(d64, train, Y.double(), alphas.double(), cv, n_targets_batch, best_only)
    if bool(bad.all(0).any()):
        j = int(torch.nonzero(bad.all(0))[0])
        raise MetricInputError(f"ridge: no finite cross-validation error for target {j} at any α "
                               f"(features or targets too badly scaled even in float64); rescale them")
    idx = select_alphas(err, alphas)
    return RidgeFit(alphas[idx], idx, err, y_mean, fold, G, computed)


def predict_rows(fit: RidgeFit, rows: np.ndarray | torch.Tensor | None = None,
                 X_new: torch.Tensor | None = None, add_mean: bool = True) -> torch.Tensor:
    """Predictions of ``fit`` (samples × targets) for design rows ``rows`` or for new (uncentred)
    samples ``X_new``.

    ``add_mean=False``: without the training mean of the targets (``fit.y_mean``, the intercept
    of the centred fit), i.e. the part of the prediction that varies between samples. Pearson r
    must be taken from this part: under strong shrinkage it can lie below the rounding of
    ``y_mean`` (features of SD ~1e-7 against α ≥ 10⁻²), and adding the mean first would leave a
    numerically constant prediction whose r is rounding noise.
    """
    fold = fit.fold
    if X_new is not None:
        X_new = X_new - fold.design.offset
        T = fold.test_map(X_new=X_new)
    else:
        rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=fold.s.device)
        T = fold.test_map(rows_t)
    D = fit.G / (fold.s[:, None] + fit.alpha[None, :])
    return T @ D + fit.y_mean if add_mean else T @ D


def ridge_coef(fit: RidgeFit) -> tuple[torch.Tensor, torch.Tensor]:
    """(coef (features × targets), intercept (targets,)) in the original feature space."""
    fold = fit.fold
    W = fold.coef(fit.G, fit.alpha)
    x_mean = fold.x_mean + fold.design.offset
    intercept = fit.y_mean - x_mean @ W if fold.fit_intercept else torch.zeros_like(fit.y_mean)
    return W, intercept
