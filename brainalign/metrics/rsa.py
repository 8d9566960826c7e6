"""Representational similarity analysis: RDMs, their comparison and the RSA noise ceiling."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import rankdata

from brainalign.errors import MetricInputError

Distance = Literal["correlation", "euclidean", "cosine"]
Comparator = Literal["spearman", "pearson", "kendall_tau_a", "cosine"]
COMPARATORS: tuple[str, ...] = ("spearman", "pearson", "kendall_tau_a", "cosine")


def _finite_2d(X: np.ndarray, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D (stimulus × feature) array, got shape {X.shape}")
    bad = ~np.isfinite(X)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise MetricInputError(f"{what}: {int(bad.sum())} NaN/inf values (first in stimulus row {row})")
    return X


def rdm(X: np.ndarray, distance: Distance = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix of the rows of ``X``.

    Parameters
    ----------
    X
        (stimulus × feature) responses.
    distance
        ``"correlation"``: 1 − Pearson r between stimulus patterns;
        ``"cosine"``: 1 − cosine similarity;
        ``"euclidean"``: squared Euclidean distance divided by the number of features
        (rsatoolbox's convention, so values do not grow with the number of features).

    Returns
    -------
    numpy.ndarray
        (stimulus × stimulus), symmetric, zero diagonal, float64.
    """
    X = _finite_2d(X, "rdm")
    if distance == "correlation":
        Z = X - X.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(Z, axis=1)
        if np.any(norms == 0):
            i = int(np.flatnonzero(norms == 0)[0])
            raise MetricInputError(f"rdm: stimulus row {i} has zero variance; correlation undefined")
        Z /= norms[:, None]
        D = 1.0 - Z @ Z.T
    elif distance == "cosine":
        norms = np.linalg.norm(X, axis=1)
        if np.any(norms == 0):
            i = int(np.flatnonzero(norms == 0)[0])
            raise MetricInputError(f"rdm: stimulus row {i} is all zeros; cosine undefined")
        Z = X / norms[:, None]
        D = 1.0 - Z @ Z.T
    elif distance == "euclidean":
        sq = np.einsum("ij,ij->i", X, X)
        D = (sq[:, None] + sq[None, :] - 2.0 * X @ X.T) / X.shape[1]
        np.maximum(D, 0.0, out=D)
    else:
        raise MetricInputError(f"rdm: unknown distance {distance!r}; use correlation, euclidean or cosine")
    D = (D + D.T) / 2.0
    np.fill_diagonal(D, 0.0)
    return D


def upper(rdms: np.ndarray) -> np.ndarray:
    """Upper-triangle vectors (k=1) of one (n × n) RDM or a stack (..., n, n)."""
    rdms = np.asarray(rdms, dtype=np.float64)
    if rdms.ndim < 2 or rdms.shape[-1] != rdms.shape[-2]:
        raise MetricInputError(f"RDMs must be square (…, n, n), got shape {rdms.shape}")
    iu = np.triu_indices(rdms.shape[-1], k=1)
    return rdms[..., iu[0], iu[1]]


def _as_vectors(r: np.ndarray, what: str) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim == 1:
        vecs = r[None]
    elif r.ndim == 2 and r.shape[0] == r.shape[1]:
        _check_symmetric(r, what)
        vecs = upper(r)[None]
    elif r.ndim == 2:
        vecs = r  # a stack of condensed vectors
    elif r.ndim == 3:
        if r.shape[1] != r.shape[2]:
            raise MetricInputError(f"{what}: RDM stack must be (k, n, n), got shape {r.shape}")
        for k in range(r.shape[0]):
            _check_symmetric(r[k], f"{what}[{k}]")
        vecs = upper(r)
    else:
        raise MetricInputError(f"{what}: expected an RDM, a stack or condensed vectors, got shape {r.shape}")
    if not np.all(np.isfinite(vecs)):
        raise MetricInputError(f"{what}: RDM holds NaN/inf")
    return vecs


def _check_symmetric(r: np.ndarray, what: str) -> None:
    if not np.allclose(r, r.T, rtol=1e-5, atol=1e-8):
        i, j = np.unravel_index(np.argmax(np.abs(r - r.T)), r.shape)
        raise MetricInputError(f"{what}: RDM is not symmetric (entry [{i}, {j}] = {r[i, j]:.6g} "
                               f"but [{j}, {i}] = {r[j, i]:.6g})")


def _is_single(r: np.ndarray) -> bool:
    shape = np.shape(r)
    return len(shape) == 1 or (len(shape) == 2 and shape[0] == shape[1])


def _rank_rows(v: np.ndarray) -> np.ndarray:
    return rankdata(v, axis=-1)


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    return _cos_rows(a, b)


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a @ b.T) / np.outer(na, nb)


def _tau_a(a: np.ndarray, b: np.ndarray) -> float:
    # Kendall's tau-a: (concordant − discordant) / (n(n−1)/2), ties count as neither.
    n = a.size
    order = np.argsort(a, kind="mergesort")
    a, b = a[order], b[order]
    s = 0.0
    for i in range(n - 1):
        s += np.sum(np.sign(a[i + 1:] - a[i]) * np.sign(b[i + 1:] - b[i]))
    return float(s / (n * (n - 1) / 2))


def compare_rdms(a: np.ndarray, b: np.ndarray, method: Comparator = "spearman") -> float | np.ndarray:
    """Similarity of RDMs (higher = more similar).

    Parameters
    ----------
    a, b
        An (n × n) RDM, a stack (k, n, n), or condensed upper-triangle vectors (k, n(n−1)/2).
    method
        ``"spearman"`` (Pearson r of ranks, ties averaged), ``"pearson"``, ``"kendall_tau_a"``,
        ``"cosine"``; the same definitions as rsatoolbox's ``compare``.

    Returns
    -------
    float or numpy.ndarray
        A float when both are single RDMs, else the (k_a × k_b) matrix of similarities.
    """
    va, vb = _as_vectors(a, "compare_rdms(a)"), _as_vectors(b, "compare_rdms(b)")
    if va.shape[1] != vb.shape[1]:
        raise MetricInputError(
            f"compare_rdms: RDMs of different sizes ({va.shape[1]} vs {vb.shape[1]} pairs)")
    if method == "spearman":
        out = _corr_rows(_rank_rows(va), _rank_rows(vb))
    elif method == "pearson":
        out = _corr_rows(va, vb)
    elif method == "cosine":
        out = _cos_rows(va, vb)
    elif method == "kendall_tau_a":
        out = np.array([[_tau_a(x, y) for y in vb] for x in va])
    else:
        raise MetricInputError(f"compare_rdms: unknown method {method!r}; use one of {COMPARATORS}")
    return float(out[0, 0]) if _is_single(a) and _is_single(b) else out


def pool_rdms(rdms: np.ndarray, method: Comparator = "spearman") -> np.ndarray:
    """The group RDM that is best under ``method`` (rsatoolbox's ``pool_rdm``).

    Ranks are averaged for spearman and kendall_tau_a, z-scored vectors for pearson,
    RMS-normalised vectors for cosine. Returns a condensed vector.
    """
    v = _as_vectors(rdms, "pool_rdms")
    if method in ("spearman", "kendall_tau_a"):
        return _rank_rows(v).mean(axis=0)
    if method == "pearson":
        z = (v - v.mean(axis=1, keepdims=True)) / v.std(axis=1, keepdims=True)
        pooled = z.mean(axis=0)
        return pooled - pooled.min() + 0.01
    if method == "cosine":
        return (v / np.sqrt(np.mean(v**2, axis=1, keepdims=True))).mean(axis=0)
    raise MetricInputError(f"pool_rdms: unknown method {method!r}; use one of {COMPARATORS}")


def _pool_rows(v: np.ndarray, method: str) -> np.ndarray:
    """Per-RDM transform whose mean is rsatoolbox's pooled RDM for ``method``."""
    if method in ("spearman", "kendall_tau_a"):
        return _rank_rows(v)
    if method == "pearson":
        return (v - v.mean(axis=-1, keepdims=True)) / v.std(axis=-1, keepdims=True)
    if method == "cosine":
        return v / np.sqrt(np.mean(v**2, axis=-1, keepdims=True))
    raise MetricInputError(f"unknown method {method!r}; use one of {COMPARATORS}")


def rsa_noise_ceiling(subject_rdms: np.ndarray, method: Comparator = "spearman") -> tuple[float, float]:
    """Noise ceiling of an RSA comparison (Nili et al. 2014), as rsatoolbox's ``boot_noise_ceiling``.

    Upper bound: mean over subjects of the similarity between the subject's RDM and the pooled
    RDM of all subjects (the subject included; overfits, so it bounds the true best from above).
    Lower bound: the same with the subject left out of the pool. Pooling follows
    :func:`pool_rdms` (mean of ranks for spearman).

    Parameters
    ----------
    subject_rdms
        (subject, n, n) RDMs or (subject, pairs) condensed vectors; at least 2 subjects.

    Returns
    -------
    (lower, upper)
    """
    v = _as_vectors(subject_rdms, "rsa_noise_ceiling")
    k = v.shape[0]
    if k < 2:
        raise MetricInputError(f"rsa_noise_ceiling: needs at least 2 subjects' RDMs, got {k}")
    t = _pool_rows(v, method)
    total = t.sum(axis=0)
    # Row 0: pool of all subjects; row 1 + i: pool without subject i.
    pools = np.vstack([total / k, (total[None] - t) / (k - 1)])
    sims = np.asarray(compare_rdms(pools, v, method))
    return float(np.mean(np.diag(sims[1:]))), float(np.mean(sims[0]))


class RSABootstrap:
    """Bootstrap over stimuli of an RSA score and its noise ceiling.

    The resampled stimulus pairs, the subjects' resampled RDM vectors (ranked for spearman) and
    the ceiling of each sample are computed once; :meth:`score` then ranks the model RDM in all
    samples at once. Pairs of a stimulus with its own duplicate are dropped, as in rsatoolbox's
    bootstrap; the remaining pairs of each sample are padded to a common length with +inf, which
    ranks after every real value and is masked out of the correlations.

    Parameters
    ----------
    subject_rdms
        (subject, n, n) RDMs.
    method
        ``spearman``, ``pearson`` or ``cosine``.
    n_boot
        Bootstrap samples.
    seed
        Seed of the resampling.
    """

    def __init__(self, subject_rdms: np.ndarray, method: Comparator = "spearman",
                 n_boot: int = 1000, seed: int = 0):
        subject_rdms = np.asarray(subject_rdms, dtype=np.float64)
        if method not in ("spearman", "pearson", "cosine"):
            raise MetricInputError(f"RSABootstrap: method {method!r} not supported")
        self.method, self.n_boot, self.seed = method, n_boot, seed
        n = subject_rdms.shape[-1]
        rng = np.random.default_rng(seed)
        iu, ju = np.triu_indices(n, k=1)
        idx = rng.integers(0, n, size=(n_boot, n))
        a, c = idx[:, iu], idx[:, ju]
        self._mask = a != c  # drop pairs of a stimulus with its own copy
        # Move the kept pairs to the front of each row, then pad.
        order = np.argsort(~self._mask, axis=1, kind="stable")
        self._a = np.take_along_axis(a, order, 1)
        self._c = np.take_along_axis(c, order, 1)
        self._mask = np.take_along_axis(self._mask, order, 1)
        k = subject_rdms.shape[0]
        raw = np.stack([subject_rdms[i][self._a, self._c] for i in range(k)], 1)  # (b, k, p)
        self._subj = self._prep(raw)
        self.ceiling_lower: np.ndarray | None = None
        self.ceiling_upper: np.ndarray | None = None
        if k >= 2:
            # The noise ceiling of every sample at once (see rsa_noise_ceiling).
            t = self._pool_transform(raw)
            total = t.sum(axis=1, keepdims=True)
            pools = np.concatenate([total / k, (total - t) / (k - 1)], axis=1)  # (b, 1 + k, p)
            sims = np.einsum("bip,bkp->bik", self._prep(pools), self._subj)
            self.ceiling_upper = sims[:, 0, :].mean(axis=1)
            self.ceiling_lower = np.diagonal(sims[:, 1:, :], axis1=1, axis2=2).mean(axis=1)

    def _pool_transform(self, v: np.ndarray) -> np.ndarray:
        mask = self._mask[:, None, :]
        cnt = mask.sum(axis=-1, keepdims=True)
        if self.method == "spearman":
            return np.where(mask, rankdata(np.where(mask, v, np.inf), axis=-1), 0.0)
        v = np.where(mask, v, 0.0)
        if self.method == "pearson":
            mean = v.sum(axis=-1, keepdims=True) / cnt
            d = np.where(mask, v - mean, 0.0)
            return d / np.sqrt((d**2).sum(axis=-1, keepdims=True) / cnt)
        return v / np.sqrt((v**2).sum(axis=-1, keepdims=True) / cnt)

    def _prep(self, v: np.ndarray) -> np.ndarray:
        """(n_boot, [rows,] pairs) values → centred (per method), unit-norm rows, zero on padding."""
        mask = self._mask if v.ndim == 2 else self._mask[:, None, :]
        if self.method == "spearman":
            v = rankdata(np.where(mask, v, np.inf), axis=-1)
        v = np.where(mask, v, 0.0)
        if self.method in ("spearman", "pearson"):
            mean = v.sum(axis=-1, keepdims=True) / mask.sum(axis=-1, keepdims=True)
            v = np.where(mask, v - mean, 0.0)
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    def score(self, model_rdm: np.ndarray) -> np.ndarray:
        """Mean-over-subjects similarity of ``model_rdm`` in every bootstrap sample."""
        m = self._prep(np.asarray(model_rdm, dtype=np.float64)[self._a, self._c])
        return np.einsum("bkp,bp->bk", self._subj, m).mean(axis=1)

    def check_against_direct(self, b: int, subject_rdms: np.ndarray) -> tuple[float, float]:
        """Ceiling of sample ``b`` computed directly (for tests of the vectorised path)."""
        m = self._mask[b]
        return rsa_noise_ceiling(np.asarray(subject_rdms)[:, self._a[b, m], self._c[b, m]],
                                 self.method)
