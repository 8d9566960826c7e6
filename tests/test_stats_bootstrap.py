"""The one resampler / CI / masked Pearson, and the vectorised regression bootstrap equals the loop."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from brainalign.benchmarks.regression import bootstrap_fold_r
from brainalign.errors import MetricInputError
from brainalign.metrics.stats import aggregate, masked_pearson, pearson_last, percentile_ci, resample_indices


def _loop(p: np.ndarray, y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The bootstrap as it was computed before: one Pearson r per index set, in a Python loop."""
    return np.stack([pearson_last(p[:, kk], y[:, kk]) for kk in k])


def test_vectorised_bootstrap_equals_the_per_sample_loop():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(17, 40))
    p = 0.5 * y + rng.normal(size=y.shape)
    p[4] = 1.0  # a constant prediction: NaN in both
    k = resample_indices(40, 300, np.random.default_rng(0))
    want = _loop(p, y, k)
    got = bootstrap_fold_r(p, y, k)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # responses with a large offset (spike counts): no cancellation
    big = bootstrap_fold_r(p + 1e4, y + 5e3, k)
    np.testing.assert_allclose(big, want, rtol=0, atol=1e-10)
    assert np.isnan(got[:, 4]).all()
    # and each sample is a Pearson r (scipy as the reference)
    assert got[7, 2] == pytest.approx(scipy.stats.pearsonr(p[2, k[7]], y[2, k[7]])[0], abs=1e-12)


def test_resampler_is_seeded_and_continues_a_generator():
    a = resample_indices(10, 5, 1)
    assert a.shape == (5, 10) and a.min() >= 0 and a.max() < 10
    np.testing.assert_array_equal(a, resample_indices(10, 5, 1))
    g = np.random.default_rng(2)
    first, second = resample_indices(10, 5, g), resample_indices(10, 5, g)
    g2 = np.random.default_rng(2)
    np.testing.assert_array_equal(np.concatenate([first, second], 1),
                                  np.concatenate([g2.integers(0, 10, (5, 10)), g2.integers(0, 10, (5, 10))], 1))
    with pytest.raises(MetricInputError):
        resample_indices(10, 0)


def test_percentile_ci_drops_non_finite_samples_and_matches_numpy():
    s = np.array([np.nan, 1.0, 2.0, np.inf, 3.0, 4.0])
    assert percentile_ci(s, 0.5) == tuple(np.percentile([1, 2, 3, 4], [25, 75]))
    assert all(np.isnan(percentile_ci(np.array([np.nan]), 0.9)))
    with pytest.raises(MetricInputError):
        percentile_ci(s, 1.5)


def test_masked_pearson_uses_pairs_where_both_are_finite():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    a[[1, 5]] = np.nan
    b[9] = np.nan
    ok = np.isfinite(a) & np.isfinite(b)
    assert masked_pearson(a, b) == pytest.approx(scipy.stats.pearsonr(a[ok], b[ok])[0], abs=1e-12)
    assert np.isnan(masked_pearson(a[:3], b[:3]))  # fewer than 3 finite pairs


def test_aggregate_ignores_nan_and_names_bad_statistic():
    v = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(aggregate(v, "median"), [2.0, np.nan])
    np.testing.assert_array_equal(aggregate(v, "mean"), [2.0, np.nan])
    with pytest.raises(MetricInputError, match="unknown statistic"):
        aggregate(v, "mode")
