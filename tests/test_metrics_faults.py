"""Issue 12 (items 7, 10, 12) and issue 15 (imports): RSA on round-off, constant RDMs, bootstrap
bookkeeping, and the numpy-only import of the RSA module. Each case asserts the right value or
the named error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from brainalign.errors import ConstantRDMError, MetricInputError
from brainalign.metrics import compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper
from brainalign.metrics.rsa import ROUNDOFF_RTOL, RSABootstrap, rank_rows


def _collinear(n: int, rng: np.random.Generator, direction: np.ndarray) -> np.ndarray:
    """``n`` patterns a·direction + b with a > 0: all pairwise correlations are exactly 1."""
    return rng.uniform(0.5, 2.0, (n, 1)) * direction[None] + rng.standard_normal((n, 1))


def test_collinear_patterns_make_a_constant_rdm_an_error_for_every_method():
    rng = np.random.default_rng(0)
    X = _collinear(30, rng, rng.standard_normal(100))
    D = rdm(X, "correlation")
    assert np.all(D == 0.0)  # round-off (±4e-16 before) is exactly 0
    S = rdm(rng.standard_normal((30, 20)))
    for method in ("spearman", "kendall_tau_a", "pearson", "cosine"):
        with pytest.raises(ConstantRDMError, match="compare_rdms\\(a\\): the RDM is constant"):
            compare_rdms(D, S, method)
    with pytest.raises(ConstantRDMError):
        compare_rdms(rdm(torch.from_numpy(X)), S, "spearman")
    # cosine distance of positive multiples and euclidean distance of identical patterns, too
    Xp = rng.uniform(0.5, 2.0, (12, 1)) * rng.standard_normal(50)[None]
    assert np.all(rdm(Xp, "cosine") == 0.0)
    Xe = np.tile(rng.standard_normal(64) * 1e3 + 5e3, (10, 1))
    assert np.all(rdm(Xe, "euclidean") == 0.0)


def test_distances_equal_within_roundoff_tie_in_rank_comparisons():
    # Two clusters of collinear patterns: in exact arithmetic the RDM takes two values (0 within,
    # d between); floating point scatters the between-cluster values by ~1e-16.
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(200), rng.standard_normal(200)
    X = np.vstack([_collinear(15, rng, a), _collinear(15, rng, b)])
    lab = np.repeat([0, 1], 15)
    d = 1.0 - np.corrcoef(a, b)[0, 1]
    exact = np.where(lab[:, None] == lab[None, :], 0.0, d)
    np.fill_diagonal(exact, 0.0)
    S = rdm(rng.standard_normal((30, 20)))
    want_rho = spearmanr(upper(exact), upper(S)).statistic
    ue, us = upper(exact), upper(S)
    want_tau = np.mean(np.sign(ue[:, None] - ue[None]) * np.sign(us[:, None] - us[None])) * len(ue) / (len(ue) - 1)
    for D in (rdm(X), rdm(torch.from_numpy(X))):
        assert float(compare_rdms(D, S, "spearman")) == pytest.approx(want_rho, abs=1e-12)
        assert float(compare_rdms(D, S, "kendall_tau_a")) == pytest.approx(want_tau, abs=1e-12)
    # A user's vector with round-off scatter ranks as its exact values (tolerance relative to scale).
    v = np.repeat([1.0, 2.0, 3.0], 100) * 7.5
    noisy = v * (1 + rng.uniform(-1, 1, v.size) * 1e-15)
    np.testing.assert_array_equal(rank_rows(noisy), rank_rows(v))
    np.testing.assert_array_equal(rank_rows(torch.from_numpy(noisy)).numpy(), rank_rows(v))
    # …but differences of 100 × the tolerance are kept.
    w = v + np.arange(v.size) * 100 * ROUNDOFF_RTOL * v.max()
    assert np.unique(rank_rows(w)).size == v.size


def test_one_constant_subject_is_a_named_error_not_nan_everywhere():
    rng = np.random.default_rng(2)
    subj = np.stack([rdm(rng.standard_normal((12, 30))) for _ in range(4)])
    subj[2] = 0.7
    np.einsum("kii->ki", subj)[:] = 0.0  # constant off-diagonal: a (degenerate) valid RDM
    model = rdm(rng.standard_normal((12, 30)))
    for call in (lambda: rsa_noise_ceiling(subj, "spearman"),
                 lambda: rsa_noise_ceiling(subj, "pearson"),
                 lambda: pool_rdms(subj),
                 lambda: RSABootstrap(subj, "spearman", n_boot=10)):
        with pytest.raises(ConstantRDMError, match="subject 2 is constant") as e:
            call()
        assert e.value.index == 2
    with pytest.raises(ConstantRDMError, match="RDM 2 is constant"):
        compare_rdms(model, subj, "spearman")
    # Without the constant subject everything is finite.
    good = np.delete(subj, 2, axis=0)
    assert np.all(np.isfinite(rsa_noise_ceiling(good, "spearman")))
    assert np.all(np.isfinite(compare_rdms(model, good, "spearman")))
    with pytest.raises(ConstantRDMError, match="score\\(model_rdm\\)"):
        RSABootstrap(good, "spearman", n_boot=10).score(np.ones((12, 12)) - np.eye(12))


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine"])
def test_bootstrap_with_five_stimuli_keeps_nan_samples_and_they_are_the_degenerate_ones(method):
    rng = np.random.default_rng(3)
    subj = np.stack([rdm(rng.standard_normal((5, 8))) for _ in range(3)])
    model = rdm(rng.standard_normal((5, 8)))
    boot = RSABootstrap(subj, method, n_boot=400, seed=1)
    samples = boot.score(model)
    assert samples.shape == (400,)  # NaN kept: the used n is np.isfinite(samples).sum()
    assert not np.isinf(samples).any()
    n_used = int(np.isfinite(samples).sum())
    assert 0.75 * 400 < n_used < 400  # ~10 % of samples draw ≤ 2 distinct stimuli
    for b in range(400):
        r, c = boot.sample_pairs(b)
        try:
            direct = float(np.mean(compare_rdms(model[r, c], subj[:, r, c], method)))
        except MetricInputError:  # a constant sample, or < 2 distinct pairs
            direct = np.nan
        if np.isnan(direct):
            assert np.isnan(samples[b]), b
        else:
            assert samples[b] == pytest.approx(direct, abs=1e-10), b
    assert np.isnan(boot.ceiling_upper[~np.isfinite(samples)]).all()


def test_import_rsa_does_not_import_torch_sklearn_or_pandas():
    code = ("import sys, brainalign.metrics.rsa, brainalign.metrics.cka, brainalign.metrics.reliability\n"
            "from brainalign.metrics import rdm, compare_rdms, cka\n"
            "import numpy as np\n"
            "compare_rdms(rdm(np.random.rand(6, 4)), rdm(np.random.rand(6, 3)))\n"
            "cka(np.random.rand(6, 4), np.random.rand(6, 3))  # the function, not the submodule\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------
# Item 8: ridge in float32 with badly scaled features
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, p", [(120, 400), (400, 120)])  # kernel form and primal form
def test_float32_ridge_with_features_scaled_1e4_matches_float64(n, p):
    from brainalign.metrics import RidgeCV, encoding_score

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    X[:, : p // 2] *= 1e4
    Y = X[:, p // 2: p // 2 + 30] @ rng.standard_normal((30, 20)) * 0.3 + rng.standard_normal((n, 20))
    Xte = rng.standard_normal((50, p))
    Xte[:, : p // 2] *= 1e4
    alphas = np.logspace(-2, 12, 15)
    m64, m32 = RidgeCV(alphas).fit(X, Y), RidgeCV(alphas, dtype="float32").fit(X, Y)
    assert np.isfinite(m32.cv_errors_).all()  # were NaN for every α but one before
    assert np.mean(m32.alpha_ == m64.alpha_) >= 0.8
    P64 = m64.predict(Xte)
    assert np.abs(m32.predict(Xte) - P64).max() < 1e-4 * P64.std()  # measured 3e-6
    r64 = encoding_score(X, Y, alphas=alphas).r
    r32 = encoding_score(X, Y, alphas=alphas, dtype="float32").r
    np.testing.assert_allclose(r32, r64, atol=1e-5)  # measured 1e-7


def test_nan_errors_never_win_the_alpha_choice():
    from brainalign.metrics.ridge import select_alphas

    errors = torch.tensor([[float("nan"), 2.0], [1.0, float("inf")], [3.0, 1.0]])
    alphas = torch.tensor([0.1, 1.0, 10.0])
    assert select_alphas(errors, alphas).tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------
# Item 9: every option of encoding_score is honoured or refused
# ---------------------------------------------------------------------------------------------

def _enc_data(n: int = 48):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, 10))
    Y = X[:, :3] @ rng.standard_normal((3, 4)) + rng.standard_normal((n, 4))
    return X, Y


def test_explicit_splits_with_straddling_groups_are_refused():
    from brainalign.metrics import encoding_score

    X, Y = _enc_data()
    g = np.repeat(np.arange(16), 3)  # 16 groups of 3 (e.g. repeats of one image)
    splits = [(np.arange(0, 39), np.arange(39, 48)), (np.arange(9, 48), np.arange(0, 9))]
    with pytest.raises(MetricInputError, match="groups have stimuli in both train and test"):
        encoding_score(X, Y, cv=[(np.arange(0, 20), np.arange(20, 48))], groups=g)  # 20: group 6 split
    res = encoding_score(X, Y, cv=splits, groups=g)  # group-respecting explicit splits are fine
    assert np.isfinite(res.r).all()
    from sklearn.model_selection import KFold
    with pytest.raises(MetricInputError, match="straddle|both train and test"):
        encoding_score(X, Y, cv=KFold(5), groups=g)  # a splitter that ignores groups
    with pytest.raises(MetricInputError, match="both train and test"):
        encoding_score(X, Y, cv=[(np.arange(0, 30), np.arange(25, 48))])


def test_groups_are_honoured_in_the_inner_alpha_selection():
    from brainalign.metrics import encoding_score
    from brainalign.metrics.encoding import _inner_group_splits

    g = np.repeat(np.arange(10), 3)
    inner = _inner_group_splits("loo", g, 0)
    assert len(inner) == 10 and all(len(np.intersect1d(g[a], g[b])) == 0 for a, b in inner)
    assert _inner_group_splits("loo", np.arange(12), 0) == "loo"  # single-stimulus groups: plain LOO
    X, Y = _enc_data()
    gg = np.repeat(np.arange(16), 3)
    res = encoding_score(X, Y, cv=4, groups=gg, inner_cv=3)
    assert res.settings["inner_groups"] and np.isfinite(res.r).all()


def test_options_of_the_other_model_are_refused_not_ignored():
    from brainalign.metrics import encoding_score

    X, Y = _enc_data()
    for kw in ({"alphas": [1.0]}, {"inner_cv": 3}, {"n_targets_batch": 2}):
        with pytest.raises(MetricInputError, match="ridge only"):
            encoding_score(X, Y, model="pls", n_components=2, **kw)
    with pytest.raises(MetricInputError, match="n_components applies to model='pls'"):
        encoding_score(X, Y, n_components=5)
    with pytest.raises(MetricInputError, match="stratify"):
        encoding_score(X, Y, cv=[(np.arange(24), np.arange(24, 48))], stratify=np.arange(48) % 2)
    from sklearn.model_selection import KFold, StratifiedKFold
    with pytest.raises(MetricInputError, match="does not\\s+stratify|would be ignored"):
        encoding_score(X, Y, cv=KFold(4), stratify=np.arange(48) % 2)
    assert np.isfinite(encoding_score(X, Y, cv=StratifiedKFold(4), stratify=np.arange(48) % 2).r).all()
    # groups and stratify together: both honoured (StratifiedGroupKFold)
    g, lab = np.repeat(np.arange(16), 3), np.repeat(np.arange(16) % 2, 3)
    res = encoding_score(X, Y, cv=4, groups=g, stratify=lab)
    assert "StratifiedGroupKFold" in res.cv
    for tr, te in res.splits:
        assert not np.intersect1d(g[tr], g[te]).size


# ---------------------------------------------------------------------------------------------
# Issue 15: tensors stay tensors on their device; the device (torch) code path, run on the CPU
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("distance", ["correlation", "cosine", "euclidean"])
def test_device_path_of_rdm_and_compare_equals_numpy(distance):
    from brainalign.metrics.rsa import _compare, _rank_torch, _rdm

    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, 30))
    X[5] = X[4] * 2 + 1  # a collinear pair: a distance of 0 (correlation) and round-off ties
    target = rdm(rng.standard_normal((40, 8)))
    D_np = rdm(X, distance)
    D_t = _rdm(torch.from_numpy(X), distance, None, None, None)  # the code CUDA tensors run
    assert isinstance(D_t, torch.Tensor)
    np.testing.assert_allclose(D_t.numpy(), D_np, atol=1e-12)
    for method in ("spearman", "pearson", "kendall_tau_a", "cosine"):
        want = compare_rdms(D_np, target, method)
        got = _compare(D_t, torch.from_numpy(target), method)
        assert float(got) == pytest.approx(want, abs=1e-12)
    stack = np.stack([target, D_np])
    got = _compare(torch.from_numpy(stack), D_t, "spearman")
    assert isinstance(got, torch.Tensor) and got.shape == (2, 1)
    np.testing.assert_allclose(got.numpy(), compare_rdms(stack, D_np, "spearman"), atol=1e-12)
    v = np.round(rng.random((3, 400)) * 20) * (1 + rng.uniform(-1, 1, (3, 400)) * 1e-15)
    np.testing.assert_array_equal(_rank_torch(torch.from_numpy(v)).numpy(), rank_rows(v))


def test_cpu_tensors_come_back_as_tensors():
    rng = np.random.default_rng(6)
    Xt = torch.from_numpy(rng.standard_normal((20, 12)))
    D = rdm(Xt)
    assert isinstance(D, torch.Tensor) and D.device.type == "cpu" and D.dtype == torch.float64
    assert isinstance(compare_rdms(D, D), float)
    out = compare_rdms(torch.stack([D, D]), D)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1)
    np.testing.assert_allclose(out.numpy(), 1.0)
    assert isinstance(rank_rows(upper(D)), torch.Tensor)


def test_estimators_fit_and_predict_tensors_on_their_device():
    from brainalign.metrics import PLSRegression, RidgeCV

    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 15))
    Y = X[:, :4] @ rng.standard_normal((4, 3)) + rng.standard_normal((60, 3))
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    for make in (lambda: RidgeCV(), lambda: PLSRegression(3)):
        a, b = make().fit(X, Y), make().fit(Xt, Yt)
        assert b.n_features_in_ == 15
        np.testing.assert_allclose(b.predict(Xt), a.predict(X), atol=1e-10)
        assert isinstance(b.predict(Xt), np.ndarray)
        with pytest.raises(ValueError, match="NaN"):
            make().fit(torch.where(Xt > 2.5, float("nan"), Xt), Yt)
        with pytest.raises(ValueError, match="samples"):
            make().fit(Xt, Yt[:-1])


def test_rdm_of_float32_equals_float64_and_leaves_the_input_alone():
    """The correlation RDM of a float32 array centres its own float64 copy in place: same values
    as from the float64 array, and neither input is modified."""
    from brainalign.metrics import rdm

    x32 = np.random.default_rng(0).normal(size=(12, 50)).astype(np.float32) + 3
    x64 = x32.astype(np.float64)
    keep32, keep64 = x32.copy(), x64.copy()
    np.testing.assert_array_equal(rdm(x32), rdm(x64))
    np.testing.assert_array_equal(x32, keep32)
    np.testing.assert_array_equal(x64, keep64)
