"""Ridge/PLS encoding, split-half reliability and score statistics.

References: scikit-learn (Ridge, RidgeCV, PLSRegression), himalaya (RidgeCV, KernelRidgeCV) on the
real Cowley et al. 2023 V4 data (images → spike counts); simulations with known ground truth for
reliability, ceilings and the statistics.
"""

from __future__ import annotations

import io
import warnings
import zipfile

import numpy as np
import pytest
import torch
from sklearn.cross_decomposition import PLSRegression as SkPLS
from sklearn.linear_model import Ridge
from sklearn.linear_model import RidgeCV as SkRidgeCV
from sklearn.model_selection import KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from brainalign.errors import MetricInputError
from brainalign.metrics import (
    PLSRegression,
    RidgeCV,
    bootstrap_neuroids,
    bootstrap_stimuli,
    encoding_ceiling,
    encoding_score,
    normalise,
    paired_comparison,
    permutation_test,
    spearman_brown,
    split_half_reliability,
)
from brainalign.metrics.registry import metric_spec
from tests.conftest import DATA

COWLEY = "cowley2023_v4"
EDGE = pytest.mark.filterwarnings("ignore:encoding_score.*end of the grid:UserWarning")


def _cowley_available() -> bool:
    return DATA is not None and (DATA / COWLEY / "responses_raw" / "responses_210325.npy").is_file()


needs_cowley = pytest.mark.skipif(not _cowley_available(), reason="Cowley 2023 V4 data not found")


@pytest.fixture(scope="module")
def v4(data_dir):
    """Real data: 320 Cowley V4 images (session 210325) as 8×8-pooled grey pixels (196 features)
    and as their 40 leading principal components, with the 50 neurons' repeat-averaged responses."""
    from PIL import Image

    root = data_dir / COWLEY
    Y = np.load(root / "responses_repeat_averaged" / "responses_210325.npy", allow_pickle=False).T
    n = 320
    with zipfile.ZipFile(root / "images" / "images_210325.zip") as zf:
        names = sorted(m for m in zf.namelist() if m.endswith(".jpg"))[:n]
        imgs = np.stack([np.asarray(Image.open(io.BytesIO(zf.read(m))).convert("L"), dtype=np.float64)
                         for m in names])
    pix = imgs.reshape(n, 14, 8, 14, 8).mean((2, 4)).reshape(n, -1) / 255.0
    pix = np.hstack([pix, pix**2])  # 392 features > 320 samples: the kernel form
    c = pix - pix.mean(0)
    pcs = c @ np.linalg.svd(c, full_matrices=False)[2][:40].T  # 40 features < samples: the primal form
    return {"kernel": pix, "primal": pcs, "Y": Y[:n]}


# ----------------------------------------------------------------------------- estimators

@parametrize_with_checks([RidgeCV(), RidgeCV(cv=3, alpha_per_target=False), PLSRegression(n_components=1)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


@pytest.mark.parametrize("n,p", [(60, 150), (150, 40)])  # kernel and primal forms
def test_ridge_predictions_equal_sklearn_ridge_at_the_chosen_alpha(n, p):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, p)) + 2.0
    Y = X @ rng.normal(size=(p, 6)) + rng.normal(size=(n, 6)) * np.array([0.1, 1, 3, 10, 30, 100]) + 3.0
    Xte = rng.normal(size=(30, p)) + 2.0
    est = RidgeCV(alphas=np.logspace(-2, 5, 8)).fit(X, Y)
    ref = np.column_stack([Ridge(alpha=a).fit(X, Y[:, j]).predict(Xte) for j, a in enumerate(est.alpha_)])
    np.testing.assert_allclose(est.predict(Xte), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    assert len(set(est.alpha_)) > 1  # really per target
    # Exact leave-one-out picks the same α as sklearn's RidgeCV (efficient LOO) per target.
    sk = SkRidgeCV(alphas=np.logspace(-2, 5, 8), alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(est.alpha_, sk.alpha_)
    # Batching targets and float32 change nothing material; torch input works.
    b = RidgeCV(alphas=np.logspace(-2, 5, 8), n_targets_batch=4).fit(torch.tensor(X), torch.tensor(Y))
    np.testing.assert_allclose(b.predict(Xte), est.predict(Xte), rtol=1e-10, atol=1e-10)
    f = RidgeCV(alphas=np.logspace(-2, 5, 8), dtype="float32").fit(X, Y)
    np.testing.assert_allclose(f.predict(Xte), est.predict(Xte), rtol=1e-3, atol=1e-3 * np.abs(ref).max())


@needs_cowley
@pytest.mark.parametrize("form", ["kernel", "primal"])
def test_one_alpha_for_all_targets_is_sklearns_choice_on_v4(v4, form):
    """alpha_per_target=False: the α with the smallest leave-one-out error averaged over the
    50 neurons, as scikit-learn's RidgeCV (efficient LOO) chooses it, and its predictions."""
    X, Y = v4[form], v4["Y"]
    tr, te = np.arange(256), np.arange(256, 320)
    alphas = np.logspace(-3, 5, 17)
    ours = RidgeCV(alphas=alphas, alpha_per_target=False).fit(X[tr], Y[tr])
    sk = SkRidgeCV(alphas=alphas, alpha_per_target=False).fit(X[tr], Y[tr])
    assert isinstance(ours.alpha_, float) and ours.alpha_ == sk.alpha_
    np.testing.assert_allclose(ours.predict(X[te]), sk.predict(X[te]), rtol=1e-8, atol=1e-8 * np.abs(Y).max())
    # The mean of the per-target errors decides, ties to the larger α: a grid that repeats every
    # α chooses the same value.
    rep = RidgeCV(alphas=np.repeat(alphas, 2), alpha_per_target=False).fit(X[tr], Y[tr])
    assert rep.alpha_ == ours.alpha_


@needs_cowley
@pytest.mark.parametrize("form", ["kernel", "primal"])
def test_alphas_and_held_out_scores_match_himalaya_on_v4(v4, form):
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HimRidgeCV

    X, Y = v4[form], v4["Y"]
    tr, te = np.arange(256), np.arange(256, 320)
    alphas = np.logspace(-3, 5, 9)
    ours = RidgeCV(alphas=alphas, cv=5).fit(X[tr], Y[tr])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if form == "kernel":
            him = KernelRidgeCV(kernel="linear", alphas=alphas, cv=KFold(5), fit_intercept=True)
        else:
            him = HimRidgeCV(alphas=alphas, cv=KFold(5), fit_intercept=True)
        him.fit(X[tr], Y[tr])
    him_alpha = np.asarray(him.best_alphas_)
    him_pred = np.asarray(him.predict(X[te]))
    np.testing.assert_allclose(ours.alpha_, him_alpha, rtol=1e-10)
    pred = ours.predict(X[te])
    np.testing.assert_allclose(pred, him_pred, rtol=1e-6, atol=1e-8)

    def r(a, b):
        a, b = a - a.mean(0), b - b.mean(0)
        return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))

    np.testing.assert_allclose(r(pred, Y[te]), r(him_pred, Y[te]), atol=1e-8)


@needs_cowley
def test_pls_matches_sklearn_on_v4(v4):
    X, Y = v4["kernel"], v4["Y"]
    ours = PLSRegression(25).fit(X[:256], Y[:256])
    # Our weights are the exact dominant singular vectors; sklearn's NIPALS converges to them.
    ref = SkPLS(25, tol=1e-14, max_iter=20000).fit(X[:256], Y[:256])
    np.testing.assert_allclose(ours.predict(X[256:]), ref.predict(X[256:]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-4 * np.abs(ref.coef_).max())


# ----------------------------------------------------------------------------- encoding_score

def _r_cols(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


@needs_cowley
@EDGE
def test_encoding_score_equals_sklearn_pipeline_on_v4(v4):
    X, Y = v4["primal"], v4["Y"]
    alphas = np.logspace(-2, 6, 9)
    res = encoding_score(X, Y, alphas=alphas, cv=5, seed=3)
    assert res.r.shape == (50,) and res.r_folds.shape == (5, 50) and res.alphas.shape == (5, 50)
    assert res.seed == 3 and "KFold" in res.cv and res.n_excluded == 0
    for i, (tr, te) in enumerate(res.splits):
        sk = SkRidgeCV(alphas=alphas, alpha_per_target=True).fit(X[tr], Y[tr])
        np.testing.assert_allclose(res.r_folds[i], _r_cols(sk.predict(X[te]), Y[te]), atol=1e-8)
        np.testing.assert_array_equal(res.alphas[i], sk.alpha_)
    np.testing.assert_allclose(res.r, res.r_folds.mean(0))
    assert res.median == pytest.approx(np.median(res.r))
    # Same splits again with the same seed; different with another.
    again = encoding_score(X, Y, alphas=alphas, cv=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(res.splits, again.splits, strict=True))
    other = encoding_score(X, Y, alphas=alphas, cv=5, seed=4)
    assert not np.array_equal(res.splits[0][1], other.splits[0][1])
    # PLS: per fold the same r as sklearn's PLSRegression(25).
    pls = encoding_score(X, Y, model="pls", cv=5, seed=3)
    tr, te = pls.splits[0]
    ref = SkPLS(25, tol=1e-14, max_iter=20000).fit(X[tr], Y[tr]).predict(X[te])
    np.testing.assert_allclose(pls.r_folds[0], _r_cols(ref, Y[te]), atol=1e-5)


def test_encoding_score_recovers_known_structure_and_splits_by_metadata():
    rng = np.random.default_rng(0)
    n, p, t = 400, 30, 12
    X = rng.normal(size=(n, p))
    signal = X @ rng.normal(size=(p, t))
    signal /= signal.std(0)
    Y = signal + rng.normal(size=(n, t))  # true r between prediction and data: 1/√2
    res = encoding_score(X, Y, cv=5, seed=0)
    assert res.mean == pytest.approx(1 / np.sqrt(2), abs=0.04)
    pls = encoding_score(X, Y, model="pls", n_components=25, cv=5)
    assert pls.mean == pytest.approx(1 / np.sqrt(2), abs=0.05)
    kf = encoding_score(X, Y, cv=5, inner_cv=4)
    assert kf.mean == pytest.approx(res.mean, abs=0.01)

    groups = np.repeat(np.arange(40), 10)
    g = encoding_score(X, Y, cv=5, groups=groups, seed=1)
    for tr, te in g.splits:
        assert not set(groups[tr]) & set(groups[te])
    labels = np.tile(np.arange(4), 100)
    s = encoding_score(X, Y, cv=5, stratify=labels)
    for _, te in s.splits:
        np.testing.assert_array_equal(np.bincount(labels[te]), [20, 20, 20, 20])


def test_encoding_score_bad_input_says_what_and_where():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    with pytest.raises(MetricInputError, match="X has 40 stimuli .* Y has 39"):
        encoding_score(X, Y[:39])
    Yn = Y.copy()
    Yn[7, 2] = np.nan
    with pytest.raises(MetricInputError, match=r"Y: 1 NaN/inf .*row 7, neuroid 2"):
        encoding_score(X, Yn)
    Xi = X.copy()
    Xi[3, 4] = np.inf
    with pytest.raises(MetricInputError, match=r"X: 1 NaN/inf .*row 3, feature 4"):
        encoding_score(Xi, Y)
    with pytest.raises(MetricInputError, match="fewer stimuli than folds"):
        encoding_score(X[:4], Y[:4], cv=5)
    import xarray as xr

    xa = xr.DataArray(X, dims=("stimulus", "unit"),
                      coords={"stimulus_id": ("stimulus", [f"s{i}" for i in range(40)])})
    ya = xr.DataArray(Y, dims=("stimulus", "neuroid"),
                      coords={"stimulus_id": ("stimulus", [f"s{i}" for i in [1, 0, *range(2, 40)]])})
    with pytest.raises(MetricInputError, match="position 0 is 's0' in X but 's1' in Y"):
        encoding_score(xa, ya)
    assert encoding_score(xa, ya.isel(stimulus=[1, 0, *range(2, 40)]), alphas=[1.0, 10.0]).r.shape == (3,)
    with pytest.raises(MetricInputError, match="unknown model"):
        encoding_score(X, Y, model="lasso")
    # A zero-variance neuroid is excluded, counted and reported, not averaged as NaN.
    Yz = np.hstack([Y, np.full((40, 1), 3.0)])
    with pytest.warns(UserWarning, match="end of the grid"):  # pure noise: α runs to the top
        res = encoding_score(X, Yz, cv=4, alphas=np.logspace(-2, 2, 5))
    assert res.excluded.tolist() == [False, False, False, True] and res.n_excluded == 1
    assert res.exclusion_reason[3] == "zero variance" and np.isnan(res.r[3])
    assert np.isfinite(res.median) and "1 excluded" in res.summary()
    assert res.median == pytest.approx(np.median(res.r[:3]))


def test_metric_declarations():
    for name in ("ridge", "pls"):
        spec = metric_spec(name)
        assert spec.higher_is_better and spec.range == (-1.0, 1.0) and spec.normalisation == "divide"


# ----------------------------------------------------------------------------- reliability

@needs_cowley
def test_split_half_reliability_on_cowley_raw(data_dir):
    raw = np.load(data_dir / COWLEY / "responses_raw" / "responses_210325.npy", allow_pickle=False)
    assert raw.shape == (50, 640, 10)
    # PROVENANCE: the median even/odd split-half r over neurons is 0.63 (uncorrected).
    eo = split_half_reliability(raw, method="even_odd", corrected=False)
    assert np.median(eo) == pytest.approx(0.63, abs=0.005)
    rel = split_half_reliability(raw, n_splits=10, seed=0)
    # Spearman–Brown lifts it to the reliability of the full average: 2·0.63/1.63 ≈ 0.77.
    assert np.median(rel) == pytest.approx(spearman_brown(0.63), abs=0.03)
    assert np.all(rel > split_half_reliability(raw, n_splits=10, seed=0, corrected=False))
    np.testing.assert_array_equal(rel, split_half_reliability(raw, n_splits=10, seed=0))
    with pytest.raises(MetricInputError, match="neuroid, stimulus, repetition"):
        split_half_reliability(raw[:, :, 0])


def test_split_half_reliability_and_ceiling_on_simulation_with_known_reliability():
    rng = np.random.default_rng(0)
    n_neur, n_stim, max_rep = 200, 300, 10
    sig_sd = rng.uniform(0.5, 2.0, n_neur)
    signal = rng.normal(size=(n_neur, n_stim)) * sig_sd[:, None]
    trials = signal[..., None] + rng.normal(size=(n_neur, n_stim, max_rep)) * 2.0
    reps = rng.integers(6, 11, n_stim)  # 6–10 repeats, NaN padding, as the Cowley data
    trials[:, np.arange(max_rep)[None, :] >= reps[:, None]] = np.nan
    # True reliability of the average: var(signal) / (var(signal) + noise² · mean(1/reps)).
    true = sig_sd**2 / (sig_sd**2 + 4.0 * np.mean(1.0 / reps))
    rel = split_half_reliability(trials, n_splits=10, seed=1)
    assert np.median(np.abs(rel - true)) < 0.03
    assert abs(np.mean(rel - true)) < 0.01
    # A perfect model (the noise-free signal) reaches r = √reliability: normalised ≈ 1.
    Y = np.nanmean(trials, 2)
    r_perfect = _r_cols(signal.T, Y.T)
    norm = normalise(r_perfect, encoding_ceiling(rel))
    assert np.median(norm) == pytest.approx(1.0, abs=0.03)
    assert encoding_ceiling(0.64, "brainscore") == pytest.approx(0.64)
    assert encoding_ceiling(0.64) == pytest.approx(0.8)
    assert np.isnan(encoding_ceiling(-0.1))


# ----------------------------------------------------------------------------- statistics

def test_permutation_test_null_is_uniform_and_detects_signal():
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(300):
        folds = [(rng.normal(size=(20, 3)), rng.normal(size=(20, 3))) for _ in range(2)]
        ps.append(permutation_test(folds, n_perm=99, seed=int(rng.integers(1 << 30))).p_value)
    ps = np.array(ps)
    assert 0.02 <= np.mean(ps <= 0.05) <= 0.09  # nominal 0.05; binomial sd 0.013
    assert 0.4 <= np.mean(ps) <= 0.6
    y = rng.normal(size=(60, 4))
    strong = permutation_test([(y + rng.normal(size=y.shape), y)], n_perm=199)
    assert strong.p_value == pytest.approx(1 / 200)


def test_bootstrap_coverage_over_stimuli_and_neuroids_is_near_nominal():
    rng = np.random.default_rng(1)
    rho, hits = 0.5, 0
    for _ in range(200):
        z = rng.normal(size=(150, 2))
        p = z[:, :1]
        y = rho * z[:, :1] + np.sqrt(1 - rho**2) * z[:, 1:]
        ci = bootstrap_stimuli([(p[:75], y[:75]), (p[75:], y[75:])], statistic="mean", n_boot=400,
                               seed=int(rng.integers(1 << 30)))
        hits += ci.low <= rho <= ci.high
    assert 0.89 <= hits / 200 <= 0.99
    hits = 0
    for _ in range(300):
        v = rng.normal(0.3, 0.1, size=40)
        ci = bootstrap_neuroids(v, statistic="mean", n_boot=500, seed=int(rng.integers(1 << 30)))
        hits += ci.low <= 0.3 <= ci.high
    assert 0.90 <= hits / 300 <= 0.98


def test_paired_comparison_null_rate_and_power():
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(100):
        y = rng.normal(size=(80, 3))
        a = [(y[:40] + rng.normal(size=(40, 3)), y[:40]), (y[40:] + rng.normal(size=(40, 3)), y[40:])]
        b = [(y[:40] + rng.normal(size=(40, 3)), y[:40]), (y[40:] + rng.normal(size=(40, 3)), y[40:])]
        res = paired_comparison(a, b, n_boot=200, n_perm=199, seed=int(rng.integers(1 << 30)))
        rejections += res.test.p_value <= 0.05
    assert rejections <= 12  # nominal 5 of 100
    y = rng.normal(size=(100, 5))
    good = [(y + 0.5 * rng.normal(size=y.shape), y)]
    bad = [(y + 2.0 * rng.normal(size=y.shape), y)]
    res = paired_comparison(good, bad, n_boot=300, n_perm=299, statistic="mean")
    assert res.difference > 0 and res.test.p_value < 0.01 and res.ci.low > 0


@EDGE
def test_stats_on_encoding_scores():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 20))
    Y = X[:, :3] @ rng.normal(size=(3, 6)) + 2 * rng.normal(size=(200, 6))
    Y = np.hstack([Y, np.zeros((200, 1))])  # an excluded neuroid is left out of the statistics
    good = encoding_score(X, Y, cv=5, alphas=np.logspace(-2, 4, 7))
    worse = encoding_score(X[:, 3:], Y, cv=5, alphas=np.logspace(-2, 4, 7))
    ci = bootstrap_stimuli(good, Y, n_boot=300)
    assert ci.low < good.median < ci.high and ci.estimate == pytest.approx(good.median)
    assert permutation_test(good, Y, n_perm=99).p_value == pytest.approx(0.01)
    cmp = paired_comparison(good, worse, Y, n_boot=200, n_perm=199)
    assert cmp.difference == pytest.approx(good.median - worse.median)
    assert cmp.test.p_value < 0.05 and cmp.ci.low > 0
    other = encoding_score(X, Y, cv=5, seed=9, alphas=np.logspace(-2, 4, 7))
    with pytest.raises(MetricInputError, match="different splits"):
        paired_comparison(good, other, Y)
    nci = bootstrap_neuroids(good.r, n_boot=200)
    assert nci.n == 6 and nci.low <= good.median <= nci.high


def test_float32_matches_float64_with_a_decaying_spectrum():
    # A strong low-rank part over a weak noise floor: float32 must keep the weak (predictive)
    # eigen-directions instead of truncating them as rounding noise.
    rng = np.random.default_rng(5)
    n, p, t = 400, 150, 10
    weak = 0.5 * rng.normal(size=(n, p))
    X = (rng.normal(size=(n, 10)) * 30) @ rng.normal(size=(10, p)) + weak
    Y = weak @ rng.normal(size=(p, t)) / 3 + rng.normal(size=(n, t))  # the signal is in the weak part
    a64 = encoding_score(X, Y, cv=4, alphas=np.logspace(-2, 6, 9))
    a32 = encoding_score(X, Y, cv=4, alphas=np.logspace(-2, 6, 9), dtype="float32")
    assert a64.median > 0.5
    np.testing.assert_allclose(a32.r, a64.r, atol=2e-3)


@pytest.mark.parametrize("shape", [(40, 7), (300, 257), (700, 1100), (2100, 600)])
@pytest.mark.parametrize("rows", [False, True])
def test_block_gram_is_the_exact_symmetric_gram(shape, rows):
    """Ridge's Gram / covariance (one block, uneven blocks, ≥ 4 blocks) equals numpy's product
    to rounding and is exactly symmetric: the eigendecomposition reads one triangle of it."""
    from brainalign.metrics.ridge import _gram

    A = np.random.default_rng(sum(shape)).standard_normal(shape)
    G = _gram(torch.from_numpy(A), rows=rows).numpy()
    ref = A @ A.T if rows else A.T @ A
    assert G.shape == ref.shape
    np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    assert np.array_equal(G, G.T)
