"""Uncertainty of encoding scores: bootstrap CIs, a permutation test against zero, paired comparisons.

All stimulus-level procedures work on the held-out predictions an :class:`EncodingScore` keeps
(no refitting): a resample or permutation acts on the test stimuli of each fold, the per-neuroid r
is recomputed in every fold and averaged over folds (exactly as :attr:`EncodingScore.r`), and the
``statistic`` (median or mean over the non-excluded neuroids) is taken. Stimulus resamples are
drawn as multinomial counts, so a bootstrap sample is a weighted Pearson r computed with matrix
products for all samples at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from brainalign.errors import MetricInputError

if TYPE_CHECKING:  # encoding imports torch and scikit-learn; the resampler and CI here need neither
    from brainalign.metrics.encoding import EncodingScore

Statistic = Literal["median", "mean"]
Pairs = Sequence[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BootstrapCI:
    """A percentile bootstrap confidence interval.

    Attributes
    ----------
    estimate
        The statistic on the original data.
    low, high
        Percentile interval bounds at level ``ci``.
    samples
        (n_boot,) bootstrap replicates.
    ci, over, n, seed
        Level, what was resampled (``"stimuli"``, ``"neuroids"``), how many units, seed.
    """

    estimate: float
    low: float
    high: float
    samples: np.ndarray
    ci: float
    over: str
    n: int
    seed: int | None


@dataclass(frozen=True)
class PermutationTest:
    """Result of a permutation test: observed statistic, null replicates and p-value.

    ``p_value = (1 + #{null ≥ observed}) / (1 + n_perm)`` (one-sided ``"greater"``; with absolute
    values for ``"two-sided"``), which is exact-level under exchangeability.
    """

    observed: float
    null: np.ndarray
    p_value: float
    alternative: str
    n_perm: int
    seed: int | None


@dataclass(frozen=True)
class PairedComparison:
    """Difference ``statistic(a) − statistic(b)`` of two models on the same stimuli and splits."""

    difference: float
    ci: BootstrapCI
    test: PermutationTest


def resample_indices(n: int, n_boot: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """(n_boot, n) seeded bootstrap index sets: each row draws ``n`` positions of ``0..n-1`` with
    replacement. The one resampler of brainalign's benchmarks: the same (n, n_boot, seed) gives
    the same sets for every model, so two models' bootstrap samples are paired. ``seed`` may be
    a ``numpy.random.Generator`` to continue one stream (e.g. over cross-validation folds)."""
    if n_boot < 1:
        raise MetricInputError(f"bootstrap: n_boot must be ≥ 1, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def aggregate(values: np.ndarray, how: str = "median", axis: int = -1) -> np.ndarray:
    """Median or mean over ``axis`` ignoring NaN (all-NaN slices give NaN, silently): the one
    summary over neuroids (cells, voxels) of per-neuroid scores.

    Raises
    ------
    MetricInputError
        ``how`` is neither ``"median"`` nor ``"mean"``.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "median":
            return np.nanmedian(values, axis=axis)
        if how == "mean":
            return np.nanmean(values, axis=axis)
    raise MetricInputError(f"unknown statistic {how!r}; use 'median' or 'mean'")


def _agg(values: np.ndarray, statistic: Statistic) -> np.ndarray:
    """Statistic over the last axis, ignoring NaN."""
    return aggregate(values, statistic, axis=-1)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval (Efron) of bootstrap samples at confidence ``level``; NaN / inf samples
    are dropped (count the finite ones for the ``n_bootstrap`` actually used); (NaN, NaN) when
    none is left.

    Raises
    ------
    MetricInputError
        ``level`` outside (0, 1).
    """
    if not 0 < level < 1:
        raise MetricInputError(f"ci={level}: must lie in (0, 1)")
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(s, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def pearson_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (broadcast over the others); NaN where either side is
    (numerically) constant. The same definition as :func:`weighted_pearson` (all weights 1):
    both sides centred first, then :func:`_r_from_moments` and its constancy rule."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return _r_from_moments(float(a.shape[-1]), a.sum(-1), b.sum(-1), (a * a).sum(-1), (b * b).sum(-1),
                           (a * b).sum(-1))


def masked_pearson(a: np.ndarray, b: np.ndarray, min_count: int = 3) -> np.ndarray:
    """Pearson r along the last axis over the positions where both ``a`` and ``b`` are finite
    (NaN-padded repeats, missing trials); NaN where fewer than ``min_count`` positions remain or
    either side is constant there."""
    ok = np.isfinite(a) & np.isfinite(b)
    cnt = ok.sum(-1)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    with np.errstate(all="ignore"):
        da = np.where(ok, a0 - (a0.sum(-1) / cnt)[..., None], 0.0)
        db = np.where(ok, b0 - (b0.sum(-1) / cnt)[..., None], 0.0)
        r = (da * db).sum(-1) / np.sqrt((da * da).sum(-1) * (db * db).sum(-1))
    r = np.where(cnt < min_count, np.nan, r)
    return np.where(np.isfinite(r), r, np.nan)


def fold_pairs(score: EncodingScore | Pairs, Y: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(prediction, response) pairs of the non-excluded neuroids, one per fold.

    ``score`` is an :class:`EncodingScore` (then ``Y`` is the (stimulus × neuroid) response array
    it was computed from; its predictions are taken without the fold's intercept,
    :attr:`EncodingScore.centred_predictions`, as its r was) or already a list of
    (test prediction, test response) arrays.
    """
    from brainalign.metrics.encoding import EncodingScore

    if isinstance(score, EncodingScore):
        if Y is None:
            raise MetricInputError("fold_pairs: pass the responses Y the EncodingScore was computed from")
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[1] != score.r.shape[0]:
            raise MetricInputError(f"Y has {Y.shape[1]} neuroids but the score has {score.r.shape[0]}")
        keep = ~score.excluded
        return [(p[:, keep], Y[te][:, keep])
                for p, (_, te) in zip(score.centred_predictions, score.splits, strict=True)]
    out = []
    for i, (p, y) in enumerate(score):
        p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
        p, y = (p[:, None] if p.ndim == 1 else p), (y[:, None] if y.ndim == 1 else y)
        if p.shape != y.shape:
            raise MetricInputError(f"fold {i}: predictions {p.shape} and responses {y.shape} differ in shape")
        out.append((p, y))
    return out


_CONSTANT_RTOL = 1e-10
"""A side is constant in a (re)sample when the product of the two sides' variances is at most
``_CONSTANT_RTOL²`` times the product of their second moments about the fold's means: what is
left is the rounding of the sums (~1e-16 relative), not variation. Relative, so it does not
depend on the scale of the predictions or the responses."""


def _r_from_moments(tot: np.ndarray | float, sp: np.ndarray, sy: np.ndarray, spp: np.ndarray,
                    syy: np.ndarray, spy: np.ndarray) -> np.ndarray:
    """Pearson r from (weighted) sums of ``p``, ``y``, ``p²``, ``y²``, ``p·y`` over samples of total
    weight ``tot``; NaN where either side is (numerically) constant (see :data:`_CONSTANT_RTOL`).

    The one definition of a neuroid's r in brainalign's encoding scores: the point estimate, every
    bootstrap sample, the permutation nulls and the dev / held-out scores all come through here,
    so a prediction or response that is constant in a sample is undefined (NaN, left out of the
    fold mean) in every one of them alike. Pass values centred on the fold's means (as
    :func:`weighted_pearson` and :func:`pearson_last` do): the moment formula cancels otherwise.
    """
    mp, my = sp / tot, sy / tot
    vp, vy = spp / tot - mp**2, syy / tot - my**2
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.sqrt(vp * vy)
        r = (spy / tot - mp * my) / den
        const = ~(den > _CONSTANT_RTOL * np.sqrt(spp / tot * syy / tot))
    return np.where(const, np.nan, r)


def weighted_pearson(w: np.ndarray, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r per column of ``p`` / ``y`` (m × t) for every weight row of ``w`` (B × m) → (B × t).

    With ``w`` the multinomial counts of bootstrap index sets, row b is the r of the b-th
    resample (the one-matrix-product form of a bootstrap); a row of ones is the r of the data
    itself (the point estimate). Both sides are centred on their (unweighted) column means first:
    r is shift-invariant, and the moment formula would cancel for values far from zero. NaN where
    either side is numerically constant (:func:`_r_from_moments`).
    """
    p = p - p.mean(0)
    y = y - y.mean(0)
    return _r_from_moments(w.sum(1, keepdims=True), w @ p, w @ y, w @ (p * p), w @ (y * y), w @ (p * y))


_weighted_r = weighted_pearson


def _fold_mean(rs: list[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(rs), axis=0)


def _observed(pairs: list[tuple[np.ndarray, np.ndarray]], statistic: Statistic) -> float:
    rs = [_weighted_r(np.ones((1, len(p))), p, y)[0] for p, y in pairs]
    return float(_agg(_fold_mean(rs), statistic))


def bootstrap_stimuli(score: EncodingScore | Pairs, Y: np.ndarray | None = None, *,
                      statistic: Statistic = "median", n_boot: int = 1000, ci: float = 0.95,
                      seed: int | None = 0) -> BootstrapCI:
    """Percentile bootstrap CI of the score over stimuli (test stimuli resampled within each fold).

    Parameters
    ----------
    score
        An :class:`EncodingScore` (with ``Y``) or a list of (prediction, response) test arrays.
    Y
        (stimulus × neuroid) responses the score was computed from.
    statistic
        Summary over neuroids of the per-neuroid r (mean over folds).
    n_boot, ci, seed
        Replicates, level, seed.
    """
    pairs = fold_pairs(score, Y)
    rng = np.random.default_rng(seed)
    per_fold = []
    for p, y in pairs:
        m = len(p)
        w = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float64)
        per_fold.append(_weighted_r(w, p, y))  # (B × t)
    samples = _agg(_fold_mean(per_fold), statistic)
    lo, hi = percentile_ci(samples, ci)
    n = sum(len(p) for p, _ in pairs)
    return BootstrapCI(_observed(pairs, statistic), lo, hi, samples, ci, "stimuli", n, seed)


def bootstrap_neuroids(values: np.ndarray, *, statistic: Statistic = "median", n_boot: int = 1000,
                       ci: float = 0.95, seed: int | None = 0, over: str = "neuroids") -> BootstrapCI:
    """Percentile bootstrap CI of a summary over neuroids (or subjects) of per-unit scores.

    NaN entries (excluded neuroids) are dropped first; their number is ``len(values) − result.n``.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 2:
        raise MetricInputError(f"bootstrap over {over}: need at least 2 finite values, got {v.size}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    samples = _agg(v[idx], statistic)
    lo, hi = percentile_ci(samples, ci)
    return BootstrapCI(float(_agg(v, statistic)), lo, hi, samples, ci, over, int(v.size), seed)


def _p_value(observed: float, null: np.ndarray, alternative: str) -> float:
    null = null[np.isfinite(null)]
    if alternative == "greater":
        k = np.sum(null >= observed)
    elif alternative == "two-sided":
        k = np.sum(np.abs(null) >= abs(observed))
    else:
        raise MetricInputError(f"alternative {alternative!r}: use 'greater' or 'two-sided'")
    return float((1 + k) / (1 + null.size))


def permutation_test(score: EncodingScore | Pairs, Y: np.ndarray | None = None, *,
                     statistic: Statistic = "median", n_perm: int = 1000, seed: int | None = 0,
                     alternative: Literal["greater", "two-sided"] = "greater",
                     batch: int = 100) -> PermutationTest:
    """Test the score against zero by permuting the test stimuli's responses against the predictions.

    Held-out predictions do not depend on the test responses, so under the null hypothesis of no
    relation (any pairing of predictions and responses equally likely) the permuted statistics
    form its exact null distribution; the same permutation is applied to all neuroids, keeping
    their correlations.
    """
    pairs = fold_pairs(score, Y)
    rng = np.random.default_rng(seed)
    observed = _observed(pairs, statistic)
    null = np.empty(n_perm)
    zs = []
    for p, y in pairs:
        zp = (p - p.mean(0)) / np.where(p.std(0) > 0, p.std(0), np.nan)
        zy = (y - y.mean(0)) / np.where(y.std(0) > 0, y.std(0), np.nan)
        zs.append((zp, zy))
    for start in range(0, n_perm, batch):
        b = min(batch, n_perm - start)
        rs = []
        for zp, zy in zs:
            perm = np.argsort(rng.random((b, len(zp))), axis=1)
            rs.append(np.einsum("mt,bmt->bt", zp, zy[perm]) / len(zp))
        null[start:start + b] = _agg(_fold_mean(rs), statistic)
    return PermutationTest(observed, null, _p_value(observed, null, alternative), alternative, n_perm, seed)


def paired_comparison(score_a: EncodingScore | Pairs, score_b: EncodingScore | Pairs,
                      Y: np.ndarray | None = None, *, statistic: Statistic = "median",
                      n_boot: int = 1000, n_perm: int = 1000, ci: float = 0.95,
                      seed: int | None = 0) -> PairedComparison:
    """Compare two models on one benchmark: ``statistic(a) − statistic(b)``, paired over stimuli.

    The CI is a paired bootstrap (the same resampled test stimuli for both models). The two-sided
    p-value is a paired permutation test: for each test stimulus the two models' predictions are
    swapped with probability ½ (all neuroids together), which under the null hypothesis of
    exchangeable models leaves the distribution unchanged.

    Both scores must come from the same splits (same ``cv`` and ``seed``) and the same ``Y``.
    """
    from brainalign.metrics.encoding import EncodingScore

    if isinstance(score_a, EncodingScore) and isinstance(score_b, EncodingScore):
        for i, ((_, ta), (_, tb)) in enumerate(zip(score_a.splits, score_b.splits, strict=False)):
            if len(score_a.splits) != len(score_b.splits) or not np.array_equal(ta, tb):
                raise MetricInputError(f"paired_comparison: the two scores have different splits (fold {i}); "
                                       "compute both with the same cv and seed")
        if not np.array_equal(score_a.excluded, score_b.excluded):
            raise MetricInputError("paired_comparison: the two scores exclude different neuroids")
    pa, pb = fold_pairs(score_a, Y), fold_pairs(score_b, Y)
    if len(pa) != len(pb) or any(a[1].shape != b[1].shape or not np.array_equal(a[1], b[1])
                                 for a, b in zip(pa, pb, strict=False)):
        raise MetricInputError("paired_comparison: the two scores' test responses differ")
    rng = np.random.default_rng(seed)
    diff = _observed(pa, statistic) - _observed(pb, statistic)

    ra, rb = [], []
    for (p1, y), (p2, _) in zip(pa, pb, strict=True):
        m = len(y)
        w = rng.multinomial(m, np.full(m, 1.0 / m), size=n_boot).astype(np.float64)
        ra.append(_weighted_r(w, p1, y))
        rb.append(_weighted_r(w, p2, y))
    boots = _agg(_fold_mean(ra), statistic) - _agg(_fold_mean(rb), statistic)
    lo, hi = percentile_ci(boots, ci)
    n = sum(len(y) for _, y in pa)
    boot = BootstrapCI(diff, lo, hi, boots, ci, "stimuli", n, seed)

    # Swapping with a 0/1 mask S: q₁ = p₁ + S(p₂ − p₁), so every sum q₁ needs is a matrix product.
    null = np.empty(n_perm)
    for start in range(0, n_perm, 100):
        b = min(100, n_perm - start)
        sa, sb = [], []
        for (p1, y), (p2, _) in zip(pa, pb, strict=True):
            # Centred for the moment formula: y on its mean, both models on ONE constant (p1's
            # mean), so that a swap still exchanges the predictions themselves.
            c = p1.mean(0)
            p1, p2, y = p1 - c, p2 - c, y - y.mean(0)
            S = (rng.random((b, len(y))) < 0.5).astype(np.float64)
            d, d2, dy = p2 - p1, p2 * p2 - p1 * p1, (p2 - p1) * y
            tot = float(len(y))
            sy, syy = y.sum(0), (y * y).sum(0)
            for sign, base in ((1.0, p1), (-1.0, p2)):  # q₂ = p₂ − S(p₂ − p₁)
                r = _r_from_moments(tot, base.sum(0) + sign * (S @ d), sy, (base * base).sum(0) + sign * (S @ d2),
                                    syy, (base * y).sum(0) + sign * (S @ dy))
                (sa if sign > 0 else sb).append(r)
        null[start:start + b] = _agg(_fold_mean(sa), statistic) - _agg(_fold_mean(sb), statistic)
    test = PermutationTest(diff, null, _p_value(diff, null, "two-sided"), "two-sided", n_perm, seed)
    return PairedComparison(diff, boot, test)
