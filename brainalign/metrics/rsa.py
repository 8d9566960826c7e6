"""Representational similarity analysis: RDMs, their comparison and the RSA noise ceiling.

Definitions follow rsatoolbox (``calc_rdm``, ``compare``, ``boot_noise_ceiling``) so that values
agree with it to floating-point precision. :func:`rdm` and :func:`compare_rdms` take numpy arrays or
torch tensors and compute on the tensor's device (in float64); the noise ceiling and the bootstrap
work on the CPU in numpy (their inputs are small). This module imports neither torch nor
scikit-learn.

Round-off and constant RDMs
---------------------------
Distances that are equal in exact arithmetic come out of floating point differing by ~1e-16
(e.g. 30 collinear patterns give correlation distances of ±4e-16 instead of 0), and a rank-based
comparison would rank that noise. So, with :data:`ROUNDOFF_RTOL` = 1e-12:

- :func:`rdm` sets every distance within ``ROUNDOFF_RTOL`` × the scale of its computation to
  exactly 0 (scale 1 for correlation and cosine distance, which are 1 − r; ``(‖xᵢ‖² + ‖xⱼ‖²) /
  features`` of the centred patterns for euclidean).
- Rank-based comparisons (``spearman``, ``kendall_tau_a``, the pooled ranks of the noise ceiling
  and of :class:`RSABootstrap`) tie two distances when they differ by at most ``ROUNDOFF_RTOL`` ×
  the RDM's scale (the largest |distance| of its pairs), chained through sorted neighbours.
- An RDM whose distances all tie (spread ≤ ``ROUNDOFF_RTOL`` × scale; an all-zero RDM included)
  carries no representational geometry: :func:`compare_rdms`, :func:`pool_rdms`,
  :func:`rsa_noise_ceiling` and :class:`RSABootstrap` raise
  :class:`~brainalign.errors.ConstantRDMError` naming the RDM (``a``/``b``, the stack index, the
  subject), for every method. Subjects are never dropped silently. Only a bootstrap *sample* that
  happens to be constant (few stimuli, few distinct ones drawn) gives NaN, kept in the returned
  samples (see :meth:`RSABootstrap.score`).

The tolerance is 4,500 × float64's machine epsilon (well above the round-off of a dot product of
unit vectors) and far below any meaningful difference of distances: among the 12.5 million pairs
of 5,000 stimuli, spread over [0, 2], about 150 neighbours fall closer than it by chance, which
moves a Spearman r by < 1e-15.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from brainalign.errors import ConstantRDMError, MetricInputError
from brainalign.metrics._backend import as_float64, check_finite, first_nonfinite, is_torch, to_numpy
from brainalign.metrics.stats import resample_indices

Distance = Literal["correlation", "euclidean", "cosine", "crossnobis"]
Comparator = Literal["spearman", "pearson", "kendall_tau_a", "cosine"]
DISTANCES: tuple[str, ...] = ("correlation", "euclidean", "cosine", "crossnobis")
COMPARATORS: tuple[str, ...] = ("spearman", "pearson", "kendall_tau_a", "cosine")
ROUNDOFF_RTOL = 1e-12
_UNDEFINED = {"correlation": "has zero variance; correlation distance undefined",
              "cosine": "is all zeros; cosine distance undefined"}
"""Why a stimulus row has no correlation / cosine distance (its norm after centring is 0)."""
"""Relative tolerance of round-off in distances; see the module docstring."""


# ----------------------------------------------------------------------------------------------
# RDMs
# ----------------------------------------------------------------------------------------------

def _features(X: Any, what: str) -> Any:
    X = as_float64(X, what)
    if X.ndim != 2:
        raise MetricInputError(f"{what}: expected a 2-D (stimulus × feature) array, got shape "
                               f"{tuple(X.shape)}")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise MetricInputError(f"{what}: needs at least 2 stimuli and 1 feature, got shape "
                               f"{tuple(X.shape)}")
    idx = first_nonfinite(X)
    if idx is not None:
        raise MetricInputError(f"{what}: NaN/inf value at stimulus row {idx[0]}, feature {idx[1]}")
    return X


def _unit_rows(Z: Any, what: str, why: str) -> Any:
    """Rows of ``Z`` scaled to unit norm."""
    norms = (Z * Z).sum(axis=1) ** 0.5 if is_torch(Z) else np.sqrt(np.einsum("ij,ij->i", Z, Z))
    zero = norms == 0
    if bool(zero.any()):
        i = int(np.flatnonzero(to_numpy(zero))[0])
        raise MetricInputError(f"{what}: stimulus row {i} {why}")
    return Z / norms[:, None]


def rdm(X: Any, distance: Distance = "correlation", *, conditions: Any = None,
        partitions: Any = None, noise: Any = None) -> Any:
    """Representational dissimilarity matrix of the rows of ``X``.

    Parameters
    ----------
    X
        (stimulus × feature) responses, a numpy array or a torch tensor (computed on its device).
        For ``"crossnobis"``: (observation × channel) measurements, see :func:`crossnobis_rdm`.
    distance
        ``"correlation"``: 1 − Pearson r between stimulus patterns;
        ``"cosine"``: 1 − cosine similarity;
        ``"euclidean"``: squared Euclidean distance divided by the number of features
        (rsatoolbox's convention, so values do not grow with the number of features);
        ``"crossnobis"``: cross-validated squared Mahalanobis distance per channel
        (needs ``conditions`` and ``partitions``; ``noise`` optional).
    conditions, partitions, noise
        Only for ``"crossnobis"``; see :func:`crossnobis_rdm`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        (stimulus × stimulus), symmetric, zero diagonal, float64; the same kind of array as ``X``
        (a tensor stays on its device). Distances within round-off of 0 are exactly 0 (see
        :data:`ROUNDOFF_RTOL`).

    Raises
    ------
    MetricInputError
        Not 2-D, fewer than 2 stimuli, NaN/inf (naming the stimulus row and feature), a stimulus
        row with zero variance (correlation) or all zeros (cosine).
    """
    if _host_tensors(X):
        # A CPU tensor shares its memory with a numpy view: numpy's path (BLAS syrk for Z Zᵀ,
        # SIMD sorts) is faster there than torch's; the result is a tensor again (no copy).
        import torch

        if isinstance(noise, (list, tuple)):
            noise = [_host(p) for p in noise]
        return torch.from_numpy(_rdm(_host(X), distance, _host(conditions), _host(partitions), _host(noise)))
    return _rdm(X, distance, conditions, partitions, noise)


def _host_tensors(*xs: Any) -> bool:
    """True when some input is a torch tensor and every tensor among them is on the CPU."""
    tensors = [x for x in xs if is_torch(x)]
    return bool(tensors) and all(t.device.type == "cpu" for t in tensors)


def _host(x: Any) -> Any:
    """A CPU tensor as a numpy view (other inputs unchanged)."""
    return x.detach().cpu().numpy() if is_torch(x) else x


def _rdm(X: Any, distance: str, conditions: Any, partitions: Any, noise: Any) -> Any:
    """:func:`rdm` on numpy arrays or (on their device) torch tensors."""
    if distance == "crossnobis":
        if conditions is None or partitions is None:
            raise MetricInputError("rdm(distance='crossnobis') needs conditions= (the stimulus of each "
                                   "row) and partitions= (the run/fold of each row)")
        return crossnobis_rdm(X, conditions, partitions, noise)
    if distance not in DISTANCES:
        raise MetricInputError(f"rdm: unknown distance {distance!r}; use one of {DISTANCES}")
    if conditions is not None or partitions is not None or noise is not None:
        raise MetricInputError(f"rdm: conditions/partitions/noise apply to crossnobis only, "
                               f"not to {distance!r}")
    if not is_torch(X):
        return _rdm_numpy(X, distance)
    X = _features(X, "rdm(X)")
    if distance in ("correlation", "cosine"):
        if distance == "correlation":
            X = X - X.mean(axis=1, keepdims=True)
            Z = _unit_rows(X, "rdm(X)", _UNDEFINED["correlation"])
        else:
            Z = _unit_rows(X, "rdm(X)", _UNDEFINED["cosine"])
        D = 1.0 - Z @ Z.T
        D = D.masked_fill_(D <= ROUNDOFF_RTOL, 0.0)  # round-off of 1 − r (scale 1) → exactly 0
    else:
        # Centred first (distances do not change): less cancellation in ‖a‖² + ‖b‖² − 2a·b.
        X = X - X.mean(axis=0, keepdims=True)
        sq = (X * X).sum(axis=1) / X.shape[1]
        scale = sq[:, None] + sq[None, :]
        D = scale - (2.0 / X.shape[1]) * (X @ X.T)
        D = D.masked_fill_(D <= ROUNDOFF_RTOL * scale, 0.0)
    # GPU matmul need not be exactly symmetric; numpy's Z @ Z.T is (BLAS syrk).
    D = (D + D.T) / 2.0
    D.fill_diagonal_(0.0)
    return D


RDM_BLOCK_BYTES = 4 * 2**20
"""Size of the float64 block of feature columns :func:`rdm` converts and multiplies at a time
(for fewer than 1,024 stimuli; 64 × that for more)."""


def _rdm_numpy(X: Any, distance: str) -> np.ndarray:
    """:func:`rdm` of a numpy array (any real dtype), in float64, one block of feature columns at a
    time: the Gram matrix of the (centred) rows is accumulated block by block (BLAS syrk), so no
    stimulus × feature float64 copy of a float32 layer is ever made (on a full-resolution early
    layer that copy was the largest transient of an RSA run) and each block is converted,
    centred and multiplied while it is in cache. Row means (correlation) are float64 sums over
    all features, taken first; column means (euclidean) are per column, so per block."""
    try:
        X = np.asarray(X)
        if np.iscomplexobj(X):
            raise MetricInputError("rdm(X): complex values are not supported")
        if not np.issubdtype(X.dtype, np.number):
            X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MetricInputError(f"rdm(X): cannot read as a float array ({e})") from None
    if X.ndim != 2:
        raise MetricInputError(f"rdm(X): expected a 2-D (stimulus × feature) array, got shape {X.shape}")
    n, f = X.shape
    if n < 2 or f < 1:
        raise MetricInputError(f"rdm(X): needs at least 2 stimuli and 1 feature, got shape {X.shape}")
    # Few stimuli: conversion is most of the work, so blocks of ~4 MB that stay in cache between
    # conversion and product. Many: the product is, so large blocks (memory stays bounded); at
    # least 2,048 columns, so adding each block's n × n product to G stays small beside it.
    width = min(f, max(2048, (RDM_BLOCK_BYTES if n < 1024 else 64 * RDM_BLOCK_BYTES) // (8 * n)))
    row_mean = X.mean(axis=1, dtype=np.float64)[:, None] if distance == "correlation" else None
    G = np.zeros((n, n))
    block = np.empty((n, width))
    for a in range(0, f, width):
        part = X[:, a:a + width]
        blk = block[:, :part.shape[1]]
        if row_mean is not None:
            np.subtract(part, row_mean, out=blk, dtype=np.float64)  # float64(x) − mean, one pass
        else:
            blk[...] = part
            if distance == "euclidean":
                # Centred first (distances do not change): less cancellation in ‖a‖² + ‖b‖² − 2a·b.
                blk -= blk.mean(axis=0, keepdims=True)
        G += blk @ blk.T
    # A NaN/inf anywhere makes its row's sum of squares (G's diagonal) NaN/inf: look for it only then.
    if not np.isfinite(np.diagonal(G)).all():
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            raise MetricInputError(f"rdm(X): NaN/inf value at stimulus row {bad[0][0]}, feature {bad[0][1]}")
        raise MetricInputError("rdm(X): values too large: their squares overflow float64")
    sq = np.diagonal(G).copy()
    if distance == "euclidean":
        sq /= f
        scale = sq[:, None] + sq[None, :]
        D = scale - (2.0 / f) * G
        np.copyto(D, 0.0, where=D <= ROUNDOFF_RTOL * scale)
    else:
        zero = sq == 0
        if zero.any():
            raise MetricInputError(f"rdm(X): stimulus row {int(np.flatnonzero(zero)[0])} {_UNDEFINED[distance]}")
        inv = 1.0 / np.sqrt(sq)
        G *= inv[:, None] * inv[None, :]  # one symmetric factor: G stays exactly symmetric
        D = np.subtract(1.0, G, out=G)
        np.copyto(D, 0.0, where=D <= ROUNDOFF_RTOL)  # round-off of 1 − r (scale 1) → exactly 0
    np.fill_diagonal(D, 0.0)
    return D


def crossnobis_rdm(X: Any, conditions: Any, partitions: Any, noise: Any = None) -> Any:
    """Cross-validated Mahalanobis (crossnobis) RDM, as rsatoolbox's
    ``calc_rdm(dataset, method='crossnobis', descriptor=..., noise=..., cv_descriptor=...)``.

    With one noise precision matrix (or none: identity), each partition in turn is the test set
    and the mean of the others the training set; the fold RDMs
    ``(a_i − a_j)ᵀ Λ (b_i − b_j) / n_channels`` are averaged (a = training, b = test means per
    condition). With one precision matrix per partition, every pair of partitions is used, with
    ``Λ = inv((Λ_p⁻¹ + Λ_q⁻¹) / 2)``. Distances can be negative (the estimate is unbiased).

    Parameters
    ----------
    X
        (observation × channel) measurements, e.g. one pattern estimate per stimulus and run.
    conditions
        (observation,) the stimulus/condition of each row; RDM rows follow ``numpy.unique`` order.
    partitions
        (observation,) the independent partition (run, session) of each row; ≥ 2 distinct values.
    noise
        None (identity), a (channel × channel) noise precision matrix, or a sequence with one
        precision matrix per partition (in ``numpy.unique(partitions)`` order).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        (condition × condition) symmetric RDM with zero diagonal, float64, same kind as ``X``.
    """
    X = _features(X, "crossnobis_rdm(X)")
    n_obs, n_chan = X.shape
    cond = np.asarray(to_numpy(conditions) if is_torch(conditions) else conditions)
    part = np.asarray(to_numpy(partitions) if is_torch(partitions) else partitions)
    for name, lab in (("conditions", cond), ("partitions", part)):
        if lab.shape != (n_obs,):
            raise MetricInputError(f"crossnobis_rdm({name}): expected one label per row of X "
                                   f"({n_obs}), got shape {lab.shape}")
    cond_values, cond_idx = np.unique(cond, return_inverse=True)
    folds, fold_idx = np.unique(part, return_inverse=True)
    if len(folds) < 2:
        raise MetricInputError(f"crossnobis_rdm(partitions): needs ≥ 2 partitions, got {folds.tolist()}")
    if len(cond_values) < 2:
        raise MetricInputError("crossnobis_rdm(conditions): needs ≥ 2 conditions")
    present = np.zeros((len(folds), len(cond_values)), dtype=bool)
    present[fold_idx, cond_idx] = True
    if not present.all():
        f, c = np.argwhere(~present)[0]
        raise MetricInputError(f"crossnobis_rdm: condition {cond_values.tolist()[c]!r} has no "
                               f"observation in partition {folds.tolist()[f]!r}; every condition must "
                               f"appear in every partition")

    torch_mode = is_torch(X)
    if torch_mode:
        import torch

        def tensor(a: np.ndarray) -> Any:
            return torch.as_tensor(a, dtype=torch.float64, device=X.device)
    else:
        def tensor(a: np.ndarray) -> Any:
            return a

    def means(rows: np.ndarray) -> Any:
        # Mean pattern per condition over the selected rows: one (condition × row) averaging GEMM.
        A = np.zeros((len(cond_values), n_obs))
        A[cond_idx[rows], np.flatnonzero(rows)] = 1.0
        A /= A.sum(axis=1, keepdims=True)
        return tensor(A) @ X

    def fold_rdm(a: Any, b: Any, prec: Any) -> Any:
        K = a @ prec @ b.T if prec is not None else a @ b.T
        d = K.diagonal()
        return (d[None, :] + d[:, None] - K - K.T) / n_chan

    if noise is None or (not isinstance(noise, (list, tuple)) and np.ndim(noise) == 2):
        prec = None
        if noise is not None:
            prec = _precision(noise, n_chan, "crossnobis_rdm(noise)")
            prec = tensor(prec) if not is_torch(prec) else prec.to(X.device)
        rdms = [fold_rdm(means(fold_idx != f), means(fold_idx == f), prec) for f in range(len(folds))]
    else:
        if len(noise) != len(folds):
            raise MetricInputError(f"crossnobis_rdm(noise): {len(noise)} precision matrices for "
                                   f"{len(folds)} partitions")
        precs = [to_numpy(_precision(p, n_chan, f"crossnobis_rdm(noise[{i}])")) for i, p in enumerate(noise)]
        covs = [np.linalg.inv(p) for p in precs]
        m = [means(fold_idx == f) for f in range(len(folds))]
        rdms = [fold_rdm(m[i], m[j], tensor(np.linalg.inv((covs[i] + covs[j]) / 2)))
                for i in range(len(folds)) for j in range(i + 1, len(folds))]
    D = sum(rdms[1:], rdms[0]) / len(rdms)
    D = (D + D.T) / 2.0
    if torch_mode:
        D.fill_diagonal_(0.0)
    else:
        np.fill_diagonal(D, 0.0)
    return D


def _precision(p: Any, n_chan: int, what: str) -> Any:
    p = as_float64(p, what)
    if tuple(p.shape) != (n_chan, n_chan):
        raise MetricInputError(f"{what}: expected a ({n_chan} × {n_chan}) precision matrix, "
                               f"got shape {tuple(p.shape)}")
    check_finite(p, what)
    return p


# ----------------------------------------------------------------------------------------------
# Vectors, ranks and comparisons
# ----------------------------------------------------------------------------------------------

def _upper_np(r: np.ndarray) -> np.ndarray:
    # Row slices (memcpy) beat fancy indexing with triu_indices by ~5x for large n.
    n = r.shape[-1]
    out = np.empty((*r.shape[:-2], n * (n - 1) // 2), dtype=np.float64)
    off = 0
    for i in range(n - 1):
        out[..., off:off + n - 1 - i] = r[..., i, i + 1:]
        off += n - 1 - i
    return out


def upper(rdms: Any) -> Any:
    """Upper-triangle vectors (k=1, row-major as ``scipy.spatial.distance.squareform``) of one
    (n × n) RDM or a stack (..., n, n); numpy or torch."""
    rdms = as_float64(rdms, "upper")
    if rdms.ndim < 2 or rdms.shape[-1] != rdms.shape[-2]:
        raise MetricInputError(f"RDMs must be square (…, n, n), got shape {tuple(rdms.shape)}")
    if is_torch(rdms):
        import torch

        iu = torch.triu_indices(rdms.shape[-1], rdms.shape[-1], offset=1, device=rdms.device)
        return rdms[..., iu[0], iu[1]]
    return _upper_np(rdms)


def _check_symmetric(r: Any, what: str) -> None:
    if is_torch(r):
        import torch

        if torch.equal(r, r.T) or torch.allclose(r, r.T, rtol=1e-5, atol=1e-8):
            return
        dev = (r - r.T).abs()
        i, j = (int(v) for v in np.unravel_index(int(dev.argmax()), tuple(r.shape)))
    else:
        # Square tiles of the upper half against the transposed lower ones: cache-friendly,
        # half the work of allclose(r, r.T) and no n × n temporaries.
        n, B = r.shape[0], 512
        for i0 in range(0, n, B):
            for j0 in range(i0, n, B):
                a, b = r[i0:i0 + B, j0:j0 + B], r[j0:j0 + B, i0:i0 + B].T
                if np.array_equal(a, b):  # the usual case (rdm() output): one cheap pass
                    continue
                dev = np.abs(a - b) - 1e-5 * np.abs(b)
                if dev.max() > 1e-8:
                    i, j = np.unravel_index(int(np.argmax(dev)), a.shape)
                    i, j = i + i0, j + j0
                    break
            else:
                continue
            break
        else:
            return
    raise MetricInputError(f"{what}: RDM is not symmetric (entry [{i}, {j}] = {float(r[i, j]):.6g} "
                           f"but [{j}, {i}] = {float(r[j, i]):.6g})")


def _check_not_constant(vecs: Any, what: str, item: str, stacked: bool) -> None:
    """Raise :class:`ConstantRDMError` for the first (pairs,) row of ``vecs`` whose values all tie."""
    if is_torch(vecs):
        hi, lo = to_numpy(vecs.amax(dim=-1)), to_numpy(vecs.amin(dim=-1))
    else:
        hi, lo = vecs.max(axis=-1), vecs.min(axis=-1)
    bad = np.flatnonzero(hi - lo <= ROUNDOFF_RTOL * np.maximum(np.abs(hi), np.abs(lo)))
    if bad.size:
        k = int(bad[0])
        where = f"{item} {k}" if stacked else "the RDM"
        more = f" ({bad.size} of {len(hi)} {item}s are constant)" if bad.size > 1 else ""
        raise ConstantRDMError(
            f"{what}: {where} is constant: all {vecs.shape[-1]} dissimilarities equal {float(hi[k]):.6g} "
            f"within round-off{more}. It has no rank order or variance, so an RSA comparison with it "
            f"is undefined (e.g. patterns that are all collinear, or all identical)", index=k if stacked else None)


def _as_vectors(r: Any, what: str, item: str = "RDM") -> Any:
    """(k, pairs) float64 vectors of an RDM, an RDM stack or condensed vectors; validated
    (finite, symmetric, not constant; ``item`` names a stack's entries in errors)."""
    r = as_float64(r, what)
    if r.ndim == 1:
        vecs = r[None]
        check_finite(vecs[0], what, "pair")
    elif r.ndim == 2 and r.shape[0] == r.shape[1]:
        check_finite(r, what, "entry")
        _check_symmetric(r, what)
        vecs = upper(r)[None]
    elif r.ndim == 2:
        check_finite(r, what, "[rdm, pair]")
        vecs = r  # a stack of condensed vectors
    elif r.ndim == 3:
        if r.shape[1] != r.shape[2]:
            raise MetricInputError(f"{what}: RDM stack must be (k, n, n), got shape {tuple(r.shape)}")
        check_finite(r, what, "[rdm, row, column]")
        for k in range(r.shape[0]):
            _check_symmetric(r[k], f"{what}[{k}]")
        vecs = upper(r)
    else:
        raise MetricInputError(f"{what}: expected an (n × n) RDM, a (k, n, n) stack or (k, pairs) "
                               f"condensed vectors, got shape {tuple(r.shape)}")
    if vecs.shape[-1] < 2:
        raise MetricInputError(f"{what}: needs at least 2 pairs (3 stimuli) to compare, got {vecs.shape[-1]}")
    _check_not_constant(vecs, what, item, stacked=r.ndim == 3 or (r.ndim == 2 and r.shape[0] != r.shape[1]))
    return vecs


def _is_single(r: Any) -> bool:
    shape = tuple(np.shape(r)) if not is_torch(r) else tuple(r.shape)
    return len(shape) == 1 or (len(shape) == 2 and shape[0] == shape[1])


def _argsort_packed(v: np.ndarray, tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``np.argsort`` of a 1-D float64 array by one sort of uint64 keys, and the tie structure.

    Each key packs a fixed-point quantisation of the value over the array's range,
    ``⌊(v − min) · scale⌋`` in the high ``64 − ⌈log₂ n⌉`` bits, with the index in the low bits, and
    numpy sorts uint64 with SIMD several times faster than it argsorts. The quantisation is
    monotone (never reverses two values), so only neighbours that share a bucket can be out of
    order: they are put in order afterwards by a small lexsort on their exact values; with many
    shared buckets (heavily tied data) a plain argsort is used instead. Buckets are uniform over
    the range, so values crowded in a narrow band (correlation distances near 1, where the float
    bit pattern would change exponent) still spread over ~2⁴⁰ buckets. Returns ``order`` and
    ``new``: True where a sorted value exceeds the one before by more than ``tol`` (the start of
    a group of ties); only neighbours at most ``⌈tol · scale⌉ + 2`` buckets apart need their exact
    gap compared with ``tol`` (a small gather instead of one over all n).
    """
    n = v.size
    ib = max(1, (n - 1).bit_length())
    lo, hi = (float(v.min()), float(v.max())) if n else (0.0, 0.0)
    span = hi - lo
    if ib <= 40 and n > 1 and 0.0 < span < np.inf:
        # Largest bucket index kept below 2^(64 − ib) with room for the rounding of (v − lo)·scale.
        scale = 2.0 ** (64 - ib) * (1.0 - 2.0**-20) / span
        q = np.subtract(v, lo)
        q *= scale
        key = q.astype(np.uint64)
        del q
        shift = np.uint64(ib)
        key <<= shift
        key |= np.arange(n, dtype=np.uint64)
        key.sort()
        packed = key
        order = (packed & np.uint64((1 << ib) - 1)).view(np.int64)
        top = packed >> shift
        del packed, key
        d = np.diff(top)  # ascending: no wrap-around
        eq = d == 0  # candidates for misordering
        n_eq = int(np.count_nonzero(eq))
        if n_eq <= n // 8:
            if n_eq:
                in_run = np.zeros(n, dtype=bool)
                in_run[1:] |= eq
                in_run[:-1] |= eq
                pos = np.flatnonzero(in_run)
                sub = order[pos]
                order[pos] = sub[np.lexsort((v[sub], top[pos]))]  # by value within each bucket
            del eq, top
            # Sorted neighbours whose buckets differ by d are more than (d − 1 − 2⁻¹⁰)/scale apart.
            cand = np.flatnonzero(d <= np.uint64(min(np.ceil(tol * scale) + 2.0, 2.0**62))) + 1
            del d
            new = np.ones(n, dtype=bool)
            if cand.size:
                new[cand] = (v[order[cand]] - v[order[cand - 1]]) > tol
            return order, new
    order = np.argsort(v)
    s = v[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.greater(s[1:] - s[:-1], tol, out=new[1:])
    return order, new


def _tie_tol(v: Any) -> Any:
    """Per-row tie tolerance: ``ROUNDOFF_RTOL`` × the largest |value| of the row (…, 1)."""
    if is_torch(v):
        return v.abs().amax(dim=-1, keepdim=True) * ROUNDOFF_RTOL
    return np.maximum(v.max(axis=-1, keepdims=True), -v.min(axis=-1, keepdims=True)) * ROUNDOFF_RTOL


def rank_rows(v: Any) -> Any:
    """Ranks (1-based, ties get their average rank) along the last axis; numpy or torch.

    Equal to ``scipy.stats.rankdata(v, axis=-1)`` except that values within round-off of each
    other tie (sorted neighbours ≤ :data:`ROUNDOFF_RTOL` × the row's largest |value| apart);
    one (packed) sort and a few linear passes.
    """
    if is_torch(v):
        if v.device.type == "cpu":
            import torch

            return torch.from_numpy(rank_rows(v.detach().numpy()))
        return _rank_torch(v)
    v = np.asarray(v, dtype=np.float64)
    shape, n = v.shape, v.shape[-1]
    v2 = v.reshape(-1, n)
    rows = v2.shape[0]
    if rows <= 64:
        return np.stack([_rank_1d(row) for row in v2]).reshape(shape)
    order = np.argsort(v2, axis=-1)
    s = np.take_along_axis(v2, order, axis=-1)
    new = np.empty(s.shape, dtype=bool)
    new[:, 0] = True
    np.greater(np.diff(s, axis=-1), _tie_tol(v2), out=new[:, 1:])
    del s
    if new.all():  # no ties: the ranks are the positions
        ranks_sorted = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (rows, n))
    else:
        flat = new.ravel()
        starts = np.flatnonzero(flat)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = flat.size  # every row starts a group, so no group spans two rows
        avg = (starts + ends + 1) / 2.0  # mean of the 1-based positions start+1 … end
        group = np.cumsum(flat) - 1
        ranks_sorted = avg[group].reshape(rows, n)
        ranks_sorted -= (np.arange(rows) * n)[:, None]
    out = np.empty((rows, n), dtype=np.float64)
    np.put_along_axis(out, order, ranks_sorted, axis=-1)
    return out.reshape(shape)


def _rank_1d(v: np.ndarray) -> np.ndarray:
    return _ranks_from_order(*_sort_1d(v))


def _sort_1d(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, new) of :func:`_argsort_packed` with values within round-off tied."""
    return _argsort_packed(v, float(_tie_tol(v)[0]))


def _ranks_from_order(order: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) from a sort ``order`` and its flags ``new`` (a value that starts a
    group of ties)."""
    n = order.size
    out = np.empty(n, dtype=np.float64)
    if new.all():
        out[order] = np.arange(1, n + 1, dtype=np.float64)
        return out
    starts = np.flatnonzero(new)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = n
    out[order] = ((starts + ends + 1) / 2.0)[np.cumsum(new) - 1]
    return out


def _rank_torch(v: Any) -> Any:
    import torch

    v = v.to(torch.float64)
    shape, n = v.shape, v.shape[-1]
    v2 = v.reshape(-1, n)
    rows = v2.shape[0]
    s, order = torch.sort(v2, dim=-1)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = (s[:, 1:] - s[:, :-1]) > _tie_tol(v2)
    flat = new.reshape(-1)
    starts = torch.nonzero(flat).squeeze(1)
    ends = torch.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = flat.numel()
    avg = (starts + ends + 1).to(torch.float64) / 2.0
    group = torch.cumsum(flat.to(torch.int64), 0) - 1
    offs = (torch.arange(rows, device=v.device, dtype=torch.float64) * n)[:, None]
    ranks_sorted = avg[group].reshape(rows, n) - offs
    out = torch.empty_like(v2)
    out.scatter_(-1, order, ranks_sorted)
    return out.reshape(shape)


def _cos_rows(a: Any, b: Any) -> Any:
    na = (a * a).sum(axis=-1) ** 0.5
    nb = (b * b).sum(axis=-1) ** 0.5
    if is_torch(a):
        return (a @ b.T) / (na[:, None] * nb[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a @ b.T) / np.outer(na, nb)


def _corr_rows(a: Any, b: Any) -> Any:
    return _cos_rows(a - a.mean(axis=-1, keepdims=True), b - b.mean(axis=-1, keepdims=True))


def _corr_ranks(ra: Any, rb: Any) -> Any:
    """Pearson r between rows of two rank arrays (k, N) that this module owns (overwritten).

    Ranks with ties averaged have the mean (N + 1)/2 exactly, so each array is centred in place
    and the norms are dot products: no temporaries of size N (at N = 12.5M pairs the copies of
    :func:`_corr_rows` cost more than the products).
    """
    if is_torch(ra) or is_torch(rb):
        return _corr_rows(ra, rb)
    mid = (ra.shape[-1] + 1) / 2.0
    ra -= mid
    if rb is not ra:
        rb -= mid
    na = np.sqrt(np.einsum("ij,ij->i", ra, ra))
    nb = np.sqrt(np.einsum("ij,ij->i", rb, rb))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra @ rb.T) / np.outer(na, nb)


def _tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a, O(n log n): (concordant − discordant) / (n(n−1)/2).

    scipy's tau-b is (C − D) / sqrt((n0 − t_x)(n0 − t_y)) with t the tied pairs of each vector,
    so C − D follows from it and the tie counts (ties count as neither, as in rsatoolbox).
    """
    from scipy.stats import kendalltau  # scipy.stats takes ~0.5 s to import: only when used

    n0 = x.size * (x.size - 1) // 2
    # τ depends on order only: ranks carry the ties within round-off (see rank_rows).
    x, y = rank_rows(x), rank_rows(y)

    def tied_pairs(v: np.ndarray) -> int:
        _, c = np.unique(v, return_counts=True)
        return int((c * (c - 1) // 2).sum())

    tx, ty = tied_pairs(x), tied_pairs(y)
    if tx == n0 or ty == n0:
        return 0.0  # a constant vector: every pair tied
    tau_b = kendalltau(x, y, variant="b").statistic
    return float(min(1.0, max(-1.0, tau_b * np.sqrt(float(n0 - tx) * float(n0 - ty)) / n0)))


def compare_rdms(a: Any, b: Any, method: Comparator = "spearman") -> Any:
    """Similarity of RDMs (higher = more similar), as rsatoolbox's ``compare``.

    Parameters
    ----------
    a, b
        An (n × n) RDM, a stack (k, n, n), or condensed upper-triangle vectors (k, n(n−1)/2)
        (a square 2-D array is always read as one RDM); numpy arrays or torch tensors (if
        either is a tensor, the work runs on its device; ``kendall_tau_a`` always on the CPU).
    method
        ``"spearman"`` (Pearson r of ranks, ties averaged; rsatoolbox ``spearman``),
        ``"pearson"`` (rsatoolbox ``corr``), ``"kendall_tau_a"`` (rsatoolbox ``tau-a``),
        ``"cosine"``.

    Returns
    -------
    float, numpy.ndarray or torch.Tensor
        A float when both are single RDMs, else the (k_a × k_b) matrix of similarities
        (a tensor on the input's device when an input was a tensor).

    Raises
    ------
    ConstantRDMError
        An RDM (or an entry of a stack, named by its index) whose dissimilarities are all equal
        within round-off (see :data:`ROUNDOFF_RTOL`), for every method.
    MetricInputError
        Unknown method, NaN/inf, an asymmetric RDM, RDMs of different sizes, fewer than 3 stimuli.
    """
    if _host_tensors(a, b):  # CPU tensors: numpy's path on views of their memory (see rdm)
        import torch

        out = _compare(_host(a), _host(b), method)
        return out if isinstance(out, float) else torch.from_numpy(np.ascontiguousarray(out))
    return _compare(a, b, method)


def _compare(a: Any, b: Any, method: str) -> Any:
    """:func:`compare_rdms` on numpy arrays or (on their device) torch tensors."""
    if method not in COMPARATORS:
        raise MetricInputError(f"compare_rdms: unknown method {method!r}; use one of {COMPARATORS}")
    torch_mode = is_torch(a) or is_torch(b)
    va, vb = _as_vectors(a, "compare_rdms(a)"), _as_vectors(b, "compare_rdms(b)")
    if va.shape[1] != vb.shape[1]:
        raise MetricInputError(f"compare_rdms: RDMs of different sizes ({va.shape[1]} vs "
                               f"{vb.shape[1]} pairs; n × n RDMs have n(n−1)/2 pairs)")
    if torch_mode:
        import torch

        device = a.device if is_torch(a) else b.device
        va, vb = (torch.as_tensor(v, dtype=torch.float64, device=device) for v in (va, vb))
    if method == "spearman":
        if not torch_mode and va.size >= 1_000_000 and vb.size >= 1_000_000:
            # Sorting releases the GIL: rank the two sides on two cores.
            with ThreadPoolExecutor(2) as pool:
                ra, rb = pool.map(rank_rows, (va, vb))
        else:
            ra, rb = rank_rows(va), rank_rows(vb)
        out = _corr_ranks(ra, rb)
    elif method == "pearson":
        out = _corr_rows(va, vb)
    elif method == "cosine":
        out = _cos_rows(va, vb)
    else:
        na, nb = to_numpy(va), to_numpy(vb)
        out = np.array([[_tau_a(x, y) for y in nb] for x in na])
        if torch_mode:
            out = torch.as_tensor(out, device=device)
    if _is_single(a) and _is_single(b):
        return float(out[0, 0])
    return out


# ----------------------------------------------------------------------------------------------
# Pooling and the noise ceiling
# ----------------------------------------------------------------------------------------------

def _pool_rows(v: np.ndarray, method: str) -> np.ndarray:
    """Per-RDM transform whose mean is rsatoolbox's pooled RDM for ``method``."""
    if method in ("spearman", "kendall_tau_a"):
        return rank_rows(v)
    if method == "pearson":
        return (v - v.mean(axis=-1, keepdims=True)) / v.std(axis=-1, keepdims=True)
    if method == "cosine":
        return v / np.sqrt(np.mean(v**2, axis=-1, keepdims=True))
    raise MetricInputError(f"unknown method {method!r}; use one of {COMPARATORS}")


def pool_rdms(rdms: Any, method: Comparator = "spearman") -> np.ndarray:
    """The group RDM that is best under ``method`` (rsatoolbox's ``pool_rdm``).

    Ranks are averaged for spearman and kendall_tau_a, z-scored vectors for pearson,
    RMS-normalised vectors for cosine. Returns a condensed vector.
    """
    v = to_numpy(_as_vectors(rdms, "pool_rdms", item="subject"))
    if method not in COMPARATORS:
        raise MetricInputError(f"pool_rdms: unknown method {method!r}; use one of {COMPARATORS}")
    pooled = _pool_rows(v, method).mean(axis=0)
    if method == "pearson":
        return pooled - pooled.min() + 0.01  # a valid (positive) dissimilarity; r is unchanged
    return pooled


def rsa_noise_ceiling(subject_rdms: Any, method: Comparator = "spearman") -> tuple[float, float]:
    """Noise ceiling of an RSA comparison (Nili et al. 2014), as rsatoolbox's ``boot_noise_ceiling``.

    Upper bound: mean over subjects of the similarity between the subject's RDM and the pooled
    RDM of all subjects (the subject included; overfits, so it bounds the true best from above).
    Lower bound: the same with the subject left out of the pool. Pooling follows
    :func:`pool_rdms` (mean of ranks for spearman and kendall_tau_a).

    Parameters
    ----------
    subject_rdms
        (subject, n, n) RDMs or (subject, pairs) condensed vectors; at least 2 subjects.
    method
        One of ``spearman``, ``pearson``, ``kendall_tau_a``, ``cosine``.

    Returns
    -------
    (lower, upper)

    Raises
    ------
    ConstantRDMError
        A subject whose RDM is constant within round-off (``index`` = that subject's position in
        the stack). It is not dropped silently: pass the other subjects explicitly to go on without
        it, and record why.
    """
    if method not in COMPARATORS:
        raise MetricInputError(f"rsa_noise_ceiling: unknown method {method!r}; use one of {COMPARATORS}")
    v = to_numpy(_as_vectors(subject_rdms, "rsa_noise_ceiling(subject_rdms)", item="subject"))
    k = v.shape[0]
    if k < 2 or _is_single(subject_rdms):
        raise MetricInputError(f"rsa_noise_ceiling: needs a stack of at least 2 subjects' RDMs, got "
                               f"shape {tuple(np.shape(subject_rdms))}")
    t = _pool_rows(v, method)
    total = t.sum(axis=0)
    # Row 0: pool of all subjects; row 1 + i: pool without subject i.
    pools = np.vstack([total / k, (total[None] - t) / (k - 1)])
    sims = np.asarray(compare_rdms(pools, v, method))
    return float(np.mean(np.diag(sims[1:]))), float(np.mean(sims[0]))


# ----------------------------------------------------------------------------------------------
# Bootstrap over stimuli
# ----------------------------------------------------------------------------------------------

def _weighted_ranks(v: np.ndarray, W: np.ndarray, at: np.ndarray | None = None,
                    W_at: np.ndarray | None = None) -> np.ndarray:
    """Average ranks of ``v``'s values in the multisets that hold value ``v[p]`` ``W[b, p]`` times.

    Rank of value x in sample b = (weight of values < x) + (weight of values == x + 1) / 2: one
    sort of ``v`` and a cumulative sum of the weights in that order, no per-sample sort.
    Entries with weight 0 get a value that no weighted sum sees. ``at`` (b, slots): return only
    the ranks of these positions of each sample (``W_at``: their weights, ``W`` gathered at
    ``at``). In ``W``'s dtype.
    """
    order = np.argsort(v, kind="stable")
    vs = v[order]
    new = np.empty(v.size, dtype=bool)
    new[0] = True
    np.not_equal(vs[1:], vs[:-1], out=new[1:])
    Wo = np.take(W, order, axis=1)  # C-ordered (W[:, order] is F-ordered: 4× slower sums along rows)
    cum = np.add.accumulate(Wo, axis=1)
    dense = np.empty(v.size, dtype=np.intp)
    dense[order] = np.cumsum(new) - 1
    if new.all() and at is not None and W_at is not None:
        # No ties: each value is its own group; only the asked positions are needed.
        rank = np.take_along_axis(cum, dense[at], 1)
        rank -= (W_at - 1.0) / 2.0
        return rank
    if not new.all():  # weight up to the end of each group of ties, and the group's weight
        ends = np.r_[np.flatnonzero(new)[1:], v.size] - 1
        cum = np.take(cum, ends, axis=1)
        Wo = np.diff(cum, axis=1, prepend=np.zeros((cum.shape[0], 1), cum.dtype))
    rank_of_group = cum
    Wo -= 1.0
    Wo /= 2.0
    rank_of_group -= Wo
    if at is None:
        return np.take(rank_of_group, dense, axis=1)
    return np.take_along_axis(rank_of_group, dense[at], 1)


def _pool_ranks(t: np.ndarray, W: np.ndarray, block: int = 128) -> np.ndarray:
    """Weighted average ranks, per sample, of the pooled rank vectors of a spearman ceiling.

    ``t`` (b, k, P) holds each subject's (half-integer) ranks in each sample. Row 0 of the result
    ranks the pool of all subjects, row 1 + i the pool without subject i; they are ranked on the
    integer keys 2 × sum of ranks (same order as the means). Each (sample, row) is one row sort of
    packed (key, position) int64s; slots absent from a sample (W = 0) sort last and get rank 0.
    Samples are done ``block`` at a time, so the working set stays ~10 arrays of
    block × (k + 1) × P values whatever the number of samples.
    """
    b, k, P = t.shape
    out = np.zeros((b, k + 1, P))
    for lo in range(0, b, block):
        out[lo:lo + block] = _pool_ranks_block(t[lo:lo + block], W[lo:lo + block])
    return out


def _pool_ranks_block(t: np.ndarray, W: np.ndarray) -> np.ndarray:
    P = t.shape[-1]
    present = (W > 0)[:, None, :]
    total = t.sum(axis=1, keepdims=True)
    keys = np.rint(2.0 * np.concatenate([total, total - t], axis=1)).astype(np.int64)  # (b, r, P)
    pb = max(1, int(P - 1).bit_length())
    absent = int(keys.max(initial=0)) + 1  # after every present key
    if absent.bit_length() + pb > 62:  # only for RDMs far larger than a bootstrap can handle
        raise MetricInputError(f"RSABootstrap: {P} pairs are too many for the packed rank sort")
    np.copyto(keys, absent, where=~present)
    packed = (keys << pb) | np.arange(P)
    packed.sort(axis=-1)
    B, R = keys.shape[:2]
    pos = (packed & ((1 << pb) - 1)).reshape(-1)  # position within its row, in sorted order
    gkey = (packed >> pb).reshape(-1)
    del packed
    row = np.repeat(np.arange(B * R), P)  # (sample, pool) row of each entry
    w = W.reshape(-1)[(row // R) * P + pos]
    cw = np.cumsum(w.reshape(-1, P), axis=-1).reshape(-1)
    # Groups of tied keys (each row starts one, so none spans rows): the weight before a group
    # and its own weight give its average rank in the weighted multiset, (before) + (own + 1) / 2.
    new = np.empty(gkey.size, dtype=bool)
    new[0] = True
    np.not_equal(gkey[1:], gkey[:-1], out=new[1:])
    new[::P] = True
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], gkey.size] - 1
    before = cw[starts] - w[starts]
    rank = (before + (cw[ends] - before + 1.0) / 2.0)[np.cumsum(new) - 1]
    rank[gkey == absent] = 0.0
    out = np.empty(keys.shape)
    out.reshape(-1)[row * P + pos] = rank
    return out


class RSABootstrap:
    """Bootstrap over stimuli of an RSA score and its noise ceiling.

    A bootstrap sample draws n stimuli with replacement; its RDM vector holds, for every pair of
    drawn copies, the original dissimilarity (pairs of a stimulus with its own copy are dropped,
    as in rsatoolbox's bootstrap). So the sample is the original pair vector with weights
    ``m_i · m_j`` (m = how often each stimulus was drawn), and every correlation is a weighted
    one over the original pairs: no per-sample gathers, and ranks follow from one sort of the
    original vector plus per-sample cumulative weights (see :func:`_weighted_ranks`). Only the
    pooled vectors of the spearman ceiling (means of ranks: new values per sample) are sorted.
    The results equal the per-sample computation (:meth:`check_against_direct`) to rounding.

    A sample in which the drawn pairs of an RDM are all equal (few stimuli: e.g. with 5 stimuli
    ~10 % of samples draw ≤ 2 distinct stimuli) has an undefined correlation: its entries of
    :meth:`score`, :attr:`ceiling_lower` and :attr:`ceiling_upper` are NaN and are *kept*, so
    ``np.isfinite(samples).sum()`` is the number of samples actually used (report that, not
    ``n_boot``). An input RDM that is constant raises :class:`ConstantRDMError` (naming the
    subject, or the model RDM in :meth:`score`), as in :func:`rsa_noise_ceiling`.

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
    ceilings
        ``(ceiling_lower, ceiling_upper)`` of these very RDMs, method, ``n_boot`` and ``seed``, as an
        earlier instance computed them (a benchmark's :mod:`~brainalign.benchmarks.ceiling_store`):
        their computation, most of this constructor's time, is skipped. Each (n_boot,) float64;
        ignored with fewer than 2 subjects (no ceiling).
    noise_ceiling
        False: no per-sample ceilings are computed (for a benchmark without a noise ceiling):
        :attr:`ceiling_lower` and :attr:`ceiling_upper` are None, as with one subject.
    """

    def __init__(self, subject_rdms: Any, method: Comparator = "spearman",
                 n_boot: int = 1000, seed: int = 0,
                 ceilings: tuple[np.ndarray, np.ndarray] | None = None, noise_ceiling: bool = True):
        subject_rdms = to_numpy(subject_rdms)
        if method not in ("spearman", "pearson", "cosine"):
            raise MetricInputError(f"RSABootstrap: method {method!r} not supported; use spearman, "
                                   f"pearson or cosine")
        if subject_rdms.ndim != 3 or subject_rdms.shape[1] != subject_rdms.shape[2]:
            raise MetricInputError(f"RSABootstrap(subject_rdms): expected (subject, n, n), got shape "
                                   f"{subject_rdms.shape}")
        check_finite(subject_rdms, "RSABootstrap(subject_rdms)", "[subject, row, column]")
        for i in range(subject_rdms.shape[0]):
            _check_symmetric(subject_rdms[i], f"RSABootstrap(subject_rdms)[{i}]")
        if n_boot < 1:
            raise MetricInputError(f"RSABootstrap: n_boot must be ≥ 1, got {n_boot}")
        self.method, self.n_boot, self.seed = method, n_boot, seed
        n = subject_rdms.shape[-1]
        self._n = n
        self._idx = resample_indices(n, n_boot, seed)  # the one resampler (metrics.stats)
        m = np.zeros((n_boot, n))
        np.add.at(m, (np.arange(n_boot)[:, None], self._idx), 1.0)
        iu, ju = np.triu_indices(n, k=1)
        self._W_all = np.take(m, iu, axis=1) * np.take(m, ju, axis=1)  # (b, P) copies of each pair
        # Only ~40 % of the pairs occur in a sample: keep those (slots padded with weight 0).
        present = self._W_all > 0
        width = int(present.sum(axis=1).max())
        self._sel = np.argsort(~present, axis=1, kind="stable")[:, :width].copy()  # (b, slots)
        self._W = np.take_along_axis(self._W_all, self._sel, 1)
        # Weights are integers (copy counts), so are their cumulative sums and twice every average
        # rank: exact in float32 while twice a sample's total weight stays below 2**24 (n below
        # ~4,000 stimuli), where the per-sample cumulative sums of the ranking run twice as fast.
        exact32 = 2.0 * float(self._W_all.sum(axis=1).max(initial=0.0)) < 2.0**24
        self._W_all = self._W_all.astype(np.float32) if exact32 else self._W_all
        self._W_at = self._W.astype(self._W_all.dtype)  # the slots' weights, in that dtype
        self._cnt = self._W.sum(axis=1, keepdims=True)
        # Norm of the centred weighted ranks of a vector without ties: the sum of squares of
        # midranks with tie groups of sizes W_p, √((N³ − N − Σ_p (W_p³ − W_p)) / 12), N = Σ_p W_p.
        if method == "spearman":
            N = self._cnt[:, 0]
            ties = np.concatenate([((w * w - 1.0) * w).sum(axis=1)
                                   for w in np.array_split(self._W, max(1, n_boot // 128))])
            self._rank_norm = np.sqrt((N**3 - N - ties) / 12.0)
        k = subject_rdms.shape[0]
        subj = upper(subject_rdms)  # (k, P)
        _check_not_constant(subj, "RSABootstrap(subject_rdms)", "subject", stacked=True)
        # Samples in which some subject's drawn pairs are all equal: undefined, NaN (class doc).
        self._degenerate = np.zeros(n_boot, dtype=bool)
        for i in range(k):
            self._degenerate |= self._constant_samples(subj[i])
        if ceilings is not None and k >= 2:
            ceilings = tuple(np.asarray(c) for c in ceilings)
            if len(ceilings) != 2 or any(c.shape != (n_boot,) or c.dtype != np.float64 for c in ceilings):
                raise MetricInputError(
                    f"RSABootstrap(ceilings): expected (lower, upper), each ({n_boot},) float64, got "
                    f"{[(c.shape, str(c.dtype)) for c in ceilings]}")
        if ceilings is not None and not noise_ceiling:
            raise MetricInputError("RSABootstrap: ceilings given with noise_ceiling=False")
        with np.errstate(invalid="ignore", divide="ignore"):
            self._init_ceiling(subj, k, method, ceilings=ceilings, noise_ceiling=noise_ceiling)

    def _init_ceiling(self, subj: np.ndarray, k: int, method: str, block: int = 128,
                      ceilings: tuple[np.ndarray, ...] | None = None, noise_ceiling: bool = True) -> None:
        """Each subject's prepared vectors and the noise ceiling of every sample (unless
        ``ceilings`` gives them, or ``noise_ceiling`` is False), ``block`` samples at a time (every
        sample is independent), so the transient arrays stay a few block × (k + 1) × slots values
        instead of n_boot × (k + 1) × slots."""
        b, width = self._W.shape
        self._subj_w = np.empty((b, k, width))
        has = k >= 2 and noise_ceiling
        self.ceiling_lower: np.ndarray | None = np.full(b, np.nan) if has else None
        self.ceiling_upper: np.ndarray | None = np.full(b, np.nan) if has else None
        given = ceilings is not None and has
        if given:
            self.ceiling_lower, self.ceiling_upper = (c.copy() for c in ceilings)
        subj_ranks = [_rank_1d(subj[i]) for i in range(k)] if method == "spearman" else None
        for lo in range(0, b, block):
            rows = slice(lo, min(lo + block, b))
            if subj_ranks is not None:
                t = np.stack([self._ranks(r, rows, ranked=True) for r in subj_ranks], 1)  # (block, k, slots)
            else:
                t = subj[:, self._sel[rows]].transpose(1, 0, 2)
            self._subj_w[rows] = self._unit(t, centre=method != "cosine", weighted=True, rows=rows)
            if not has or given:
                continue
            # The noise ceiling of every sample at once (see rsa_noise_ceiling).
            if method == "spearman":
                pools = _pool_ranks(t, self._W[rows])
            else:
                tt = self._pool_transform(t, rows)
                total = tt.sum(axis=1, keepdims=True)
                pools = np.concatenate([total / k, (total - tt) / (k - 1)], axis=1)  # (block, 1 + k, P)
            pools = self._unit(pools, centre=method != "cosine", rows=rows)
            sims = pools @ self._subj_w[rows].transpose(0, 2, 1)  # (block, 1 + k, k), batched BLAS
            self.ceiling_upper[rows] = sims[:, 0, :].mean(axis=1)
            self.ceiling_lower[rows] = np.diagonal(sims[:, 1:, :], axis1=1, axis2=2).mean(axis=1)
        if has:
            self.ceiling_upper[self._degenerate] = np.nan
            self.ceiling_lower[self._degenerate] = np.nan

    def _constant_samples(self, vec: np.ndarray) -> np.ndarray:
        """(b,) True where the pairs drawn in a sample all have one value (within round-off)."""
        v, present = vec[self._sel], self._W > 0
        hi = np.where(present, v, -np.inf).max(axis=1)
        lo = np.where(present, v, np.inf).min(axis=1)
        return hi - lo <= ROUNDOFF_RTOL * np.maximum(np.abs(hi), np.abs(lo))

    def _ranks(self, vec: np.ndarray, rows: slice = slice(None), ranked: bool = False) -> np.ndarray:
        """(samples, slots) weighted average ranks of an original pair vector in the samples
        ``rows`` (ranked via its ranks, so values within round-off tie as in :func:`rank_rows`;
        ``ranked``: ``vec`` already holds those ranks)."""
        r = vec if ranked else _rank_1d(vec)
        return _weighted_ranks(r, self._W_all[rows], self._sel[rows], self._W_at[rows]).astype(np.float64)

    def _pool_transform(self, v: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """Weighted version of :func:`_pool_rows` (z-scores for pearson, RMS-scaled for cosine)."""
        W, cnt = self._W[rows, None, :], self._cnt[rows, None, :]
        if self.method == "pearson":
            d = v - (v * W).sum(axis=-1, keepdims=True) / cnt
            return d / np.sqrt((W * d * d).sum(axis=-1, keepdims=True) / cnt)
        return v / np.sqrt((W * v * v).sum(axis=-1, keepdims=True) / cnt)

    def _unit(self, v: np.ndarray, centre: bool, weighted: bool = False,
              rows: slice = slice(None)) -> np.ndarray:
        """(samples, [rows,] P) → centred (weighted mean, if asked), weighted-unit-norm rows;
        times the weights when ``weighted``. ``rows``: which samples ``v`` holds."""
        squeeze = v.ndim == 2
        if squeeze:
            v = v[:, None, :]
        Wr, cnt = self._W[rows], self._cnt[rows]
        if centre:
            v = v - (v @ Wr[:, :, None]) / cnt[:, :, None]
        vw = v * Wr[:, None, :]
        norm = np.sqrt(np.einsum("brp,brp->br", vw, v))[..., None]
        if weighted:
            vw /= norm
            out = vw
        else:
            out = v / norm if not centre else np.divide(v, norm, out=v)  # v is ours when centred
        return out[:, 0] if squeeze else out

    def score(self, model_rdm: Any) -> np.ndarray:
        """Mean-over-subjects similarity of ``model_rdm`` (n × n) in every bootstrap sample.

        Returns
        -------
        (n_boot,) array; NaN for samples where a correlation is undefined (kept, so
        ``np.isfinite(samples).sum()`` is the number of samples used). Raises
        :class:`ConstantRDMError` when ``model_rdm`` itself is constant.
        """
        m = to_numpy(model_rdm)
        if m.shape != (self._n, self._n):
            raise MetricInputError(f"RSABootstrap.score(model_rdm): expected ({self._n}, {self._n}), "
                                   f"got shape {m.shape}")
        check_finite(m, "RSABootstrap.score(model_rdm)", "entry")
        _check_symmetric(m, "RSABootstrap.score(model_rdm)")
        vec = upper(m)
        _check_not_constant(vec[None], "RSABootstrap.score(model_rdm)", "RDM", stacked=False)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._score_vector(vec)
        if self.method == "spearman":
            # A sample whose drawn values are all equal within round-off has all-tied ranks
            # (ranking ties values closer than round-off), so zero-norm centred ranks and NaN:
            # no separate check of the values is needed.
            out[self._degenerate] = np.nan
        else:
            out[self._degenerate | self._constant_samples(vec)] = np.nan
        return out

    def _score_vector(self, vec: np.ndarray, block: int = 128) -> np.ndarray:
        """Every sample's score, ``block`` samples at a time (samples are independent): the
        transient arrays stay block × slots instead of n_boot × slots (~0.1 GB at hIT's size,
        held while the recording's largest layers are)."""
        out = np.empty(self.n_boot)
        if self.method == "spearman":
            order, new = _sort_1d(vec)  # the one sort: it also says whether the vector has ties
            if new.all():
                return self._score_distinct_ranks(order, block)
            ranks = _ranks_from_order(order, new)
        for lo in range(0, self.n_boot, block):
            rows = slice(lo, min(lo + block, self.n_boot))
            subj_w = self._subj_w[rows]
            if self.method == "spearman":  # ties in the model's RDM
                prepped = self._unit(self._ranks(ranks, rows, ranked=True), centre=True, rows=rows)
                out[rows] = np.einsum("bkp,bp->bk", subj_w, prepped).mean(axis=1)
                continue
            # Σ_p W S_k (v − μ_b) / σ_b = (Σ_p W S_k v) / σ_b, as Σ_p W S_k = 0 for centred S_k.
            W, cnt, v = self._W[rows], self._cnt[rows], vec[self._sel[rows]]
            mu = (W * v).sum(axis=1, keepdims=True) / cnt if self.method == "pearson" else 0.0
            sigma = np.sqrt((W * (v - mu) ** 2).sum(axis=1))
            out[rows] = np.einsum("bkp,bp->bk", subj_w, v).mean(axis=1) / sigma
        return out

    def _score_distinct_ranks(self, order: np.ndarray, block: int) -> np.ndarray:
        """Spearman scores of a model vector whose values are all distinct (``order`` sorts it).

        Each slot's centred rank is its cumulative weight in that order minus ``(W + N)/2``
        (N: the sample's total weight; integers and halves, exact in the weights' dtype), and
        every sample's norm of centred ranks is known in closed form (``_rank_norm``), so no
        centring or norm pass runs per layer: 88 → 48 ms per layer at hIT's size
        (``perf/bootstrap_speed.py``), equal to the general path to 1e-15. The float32 weights
        keep it exact: every value stays below 2**23 (see ``exact32``). Samples drawing one
        distinct pair get 0 / 0 = NaN, as in the general path.
        """
        P = order.size
        dense = np.empty(P, dtype=np.intp)
        dense[order] = np.arange(P)
        out = np.empty(self.n_boot)
        for lo in range(0, self.n_boot, block):
            rows = slice(lo, min(lo + block, self.n_boot))
            cum = np.add.accumulate(np.take(self._W_all[rows], order, axis=1), axis=1)
            at = dense[self._sel[rows]]
            at += (np.arange(at.shape[0]) * P)[:, None]
            r = np.take(cum, at)  # flat indices: faster than take_along_axis
            # rank − mean = cum − (W − 1)/2 − (N + 1)/2 = cum − (W + N)/2
            off = self._W_at[rows] + self._cnt[rows].astype(r.dtype)
            off *= 0.5
            r -= off
            sims = np.matmul(self._subj_w[rows], r.astype(np.float64)[..., None])[..., 0]
            out[rows] = sims.mean(axis=1) / self._rank_norm[rows]
        return out

    def sample_pairs(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Stimulus indices (rows, columns) of the pairs of sample ``b``, as a direct per-sample
        computation uses them (same-stimulus pairs dropped)."""
        iu, ju = np.triu_indices(self._n, k=1)
        a, c = self._idx[b, iu], self._idx[b, ju]
        keep = a != c
        return a[keep], c[keep]

    def check_against_direct(self, b: int, subject_rdms: Any) -> tuple[float, float]:
        """Ceiling of sample ``b`` computed directly (for tests of the vectorised path)."""
        a, c = self.sample_pairs(b)
        return rsa_noise_ceiling(to_numpy(subject_rdms)[:, a, c], self.method)
