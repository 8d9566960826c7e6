"""A regression score and its bootstrap CI use one Pearson r, also for features of tiny scale.

Found by a user: on layers whose features have SDs of ~1e-7 (mobilenet_v3_small's SE
``scale_activation`` × antolik2016), ridge shrinks the predictions until their variation lies
below the rounding of the intercept (the training mean of the responses). The point estimate
took r of those numerically constant predictions as ~1e-17 while the bootstrap called them
constant (NaN) and dropped them, so the raw score (1e-18) fell outside its own CI ([0.098, 0.323])
and ``n_neuroids`` drifted between layers. r is now taken from the predictions without the
intercept, by the one function the bootstrap uses.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
import xarray as xr
from sklearn.linear_model import Ridge

from brainalign.benchmarks.regression import bootstrap_fold_r, bootstrap_within_folds
from brainalign.metrics.encoding import encoding_score
from brainalign.metrics.stats import aggregate, bootstrap_stimuli, percentile_ci


def _data(n: int = 50, p: int = 30, t: int = 40, scale: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, p))
    # Responses with a large mean (as ΔF/F or rates): the intercept the variation hides below.
    Y = Z[:, :5] @ rng.normal(size=(5, t)) + 2 * rng.normal(size=(n, t)) + 3.0
    return scale * Z + 0.5, Y


def _encode(X: np.ndarray, Y: np.ndarray, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # α at the end of the grid: expected for tiny features
        return encoding_score(X, Y, cv=5, seed=0, **kw)


def _sklearn_r_folds(X: np.ndarray, Y: np.ndarray, enc) -> np.ndarray:
    """(fold, neuroid) r from scikit-learn's Ridge at the chosen α on the same splits, its
    prediction taken without the intercept (r is shift-invariant), scipy's Pearson r."""
    out = np.full(enc.r_folds.shape, np.nan)
    for i, (tr, te) in enumerate(enc.splits):
        for a in np.unique(enc.alphas[i][np.isfinite(enc.alphas[i])]):
            cols = np.flatnonzero(enc.alphas[i] == a)
            coef = np.atleast_2d(Ridge(alpha=a).fit(X[tr], Y[tr][:, cols]).coef_)  # (targets × features)
            pred = (X[te] - X[tr].mean(0)) @ coef.T
            for k, j in enumerate(cols):
                out[i, j] = scipy.stats.pearsonr(pred[:, k], Y[te, j])[0]
    return out


def _benchmark_ci(enc, Y: np.ndarray, n_boot: int = 200) -> tuple[float, float]:
    """The regression benchmark's bootstrap (score_session / _row_stats) on one encoding."""
    ks, _ = bootstrap_within_folds(enc.splits, n_boot, 0)
    boot = [bootstrap_fold_r(p.T, Y[te].T, k) for (_, te), p, k in zip(enc.splits, enc.centred_predictions, ks,
                                                                           strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = aggregate(np.where(enc.excluded, np.nan, np.nanmean(np.stack(boot), 0)))
    return percentile_ci(samples, 0.95)


@pytest.mark.parametrize("scale", [1.0, 1e-7])
def test_estimate_inside_its_ci_and_equal_to_sklearn_for_tiny_features(scale):
    X, Y = _data(scale=scale)
    enc = _encode(X, Y)
    # Every neuroid varies, every fold's r is defined: nothing dropped for its features' scale.
    assert enc.n_neuroids == Y.shape[1] and not np.isnan(enc.r_folds).any()
    np.testing.assert_allclose(enc.r_folds, _sklearn_r_folds(X, Y, enc), rtol=0, atol=1e-8)
    lo, hi = _benchmark_ci(enc, Y)
    assert lo <= enc.median <= hi, (enc.median, lo, hi)
    # stats.bootstrap_stimuli reads the same predictions the same way.
    b = bootstrap_stimuli(enc, Y, n_boot=200)
    assert b.estimate == pytest.approx(enc.median, abs=1e-12) and b.low <= b.estimate <= b.high
    if scale < 1:  # before the fix: median r ≈ 1e-17, CI ≈ [0.57, 0.90], 48 of 40+ neuroids
        assert enc.median > 0.3


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-5])
def test_r_equals_sklearn_to_rounding_at_any_feature_scale(scale):
    """Features without an offset, so the reference is exact to float64: r equal to scikit-learn's
    to ~1e-14 (before the fix: 1.7e-10 at scale 1, 4.6e-5 at 1e-3, 0.84 at 1e-5, the variation of
    the predictions lost in the rounding of the intercept)."""
    X, Y = _data(scale=scale)
    X = X - 0.5
    enc = _encode(X, Y)
    np.testing.assert_allclose(enc.r_folds, _sklearn_r_folds(X, Y, enc), rtol=0, atol=1e-12)


def test_predictions_are_the_centred_ones_plus_the_intercept():
    X, Y = _data()
    enc = _encode(X, Y)
    for (tr, te), p, c, o in zip(enc.splits, enc.predictions, enc.centred_predictions, enc.intercepts,
                                 strict=True):
        np.testing.assert_allclose(o, Y[tr].mean(0), rtol=1e-12)
        np.testing.assert_allclose(p, c + o, rtol=0, atol=0)
        ref = Ridge(alpha=1.0).fit(X[tr], Y[tr]).predict(X[te])
        assert p.shape == ref.shape


def test_scale_of_the_features_with_the_alpha_grid_changes_nothing():
    """The α grid is absolute (DEFAULT_ALPHAS, 10⁻²…10⁸): features × c with α × c² is the same
    ridge, so the same r to rounding. Features × c alone is a different fit (every α is
    relatively c⁻² larger), legitimately a different score."""
    X, Y = _data()
    alphas = np.logspace(-2, 8, 11)
    a = _encode(X, Y, alphas=alphas)
    for c in (1e-7, 1e5):
        b = _encode(0.5 + c * (X - 0.5), Y, alphas=alphas * c**2)
        np.testing.assert_array_equal(np.log10(b.alphas / c**2).round(), np.log10(a.alphas).round())
        np.testing.assert_allclose(b.r_folds, a.r_folds, rtol=0, atol=1e-9)


def test_tiny_features_reach_the_infinite_shrinkage_limit_whatever_their_scale():
    """With features far below the α grid every α shrinks ~fully; r is then that of the limit
    direction X_te,c X_tr,cᵀ y_tr,c (kernel regression), the same for scale 1e-8 and 1e-11 (before
    the fix: ~1e-17 or NaN, as rounding left it)."""
    X, Y = _data()
    for c in (1e-8, 1e-11):
        Xc = 0.5 + c * (X - 0.5)  # rounded at 0.5's ulp: the reference uses these very features
        enc = _encode(Xc, Y)
        ref = np.full(enc.r_folds.shape, np.nan)
        for i, (tr, te) in enumerate(enc.splits):
            Zc = Xc - Xc[tr].mean(0)
            pred = Zc[te] @ (Zc[tr].T @ (Y[tr] - Y[tr].mean(0)))
            ref[i] = [scipy.stats.pearsonr(pred[:, j], Y[te, j])[0] for j in range(Y.shape[1])]
        np.testing.assert_allclose(enc.r_folds, ref, rtol=0, atol=1e-8)
        if c == 1e-8:
            limit = enc.median
    # The limit itself does not depend on the scale (up to the rounding of the features, ~1e-5
    # relative at 1e-11 beside 0.5).
    assert enc.median == pytest.approx(limit, abs=1e-4)


def test_constant_features_give_undefined_r_everywhere_alike():
    """Features that do not vary: every prediction is exactly the intercept, r undefined (NaN)
    in the estimate and in every bootstrap sample; the neuroids are excluded as 'no defined fold'."""
    X, Y = _data()
    enc = _encode(np.ones_like(X), Y)
    assert enc.n_neuroids == 0 and set(enc.exclusion_reason) == {"no defined fold"}
    lo, hi = _benchmark_ci(enc, Y, 20)
    assert np.isnan(enc.median) and np.isnan(lo) and np.isnan(hi)


@pytest.mark.parametrize("scale", [1.0, 1e-7])
def test_antolik_scores_inside_their_ci_with_all_neuroids(data_dir, scale):
    """The user's case on the real antolik2016 data, with random features of SD ``scale`` (the
    mobilenet layer had SDs ~1e-7): every row's raw inside its CI, every session's neuroids all
    counted, and each session's raw score equal to scikit-learn's on the same splits and α."""
    import brainalign as ba

    bench = ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir, n_bootstrap=100)
    rng = np.random.default_rng(0)
    feats, Xs = {}, {}
    for s in bench.sessions:
        X = 0.5 + scale * rng.normal(size=(len(s.stimuli), 40))
        Xs[s.name] = X
        feats[s.name] = xr.DataArray(X, dims=("stimulus", "unit"),
                                     coords={"stimulus_id": ("stimulus", list(s.stimuli.ids))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = bench.score_features(feats)
    total = 0
    for s in bench.sessions:
        row = rows[s.name]
        assert row["raw_ci_low"] <= row["raw"] <= row["raw_ci_high"], (s.name, row["raw"], row["raw_ci_low"])
        Y = s.responses.transpose("stimulus", "neuroid").values
        varies = Y.var(0) > 0
        assert row["n_neuroids"] == int(varies.sum())
        total += row["n_neuroids"]
        enc = row["detail"]["encodings"][0]
        want = np.nanmean(_sklearn_r_folds(Xs[s.name], Y, enc), 0)
        assert row["raw"] == pytest.approx(float(np.median(want[varies])), abs=1e-8)
    assert rows["all"]["n_neuroids"] == total
    assert rows["all"]["raw_ci_low"] <= rows["all"]["raw"] <= rows["all"]["raw_ci_high"]
