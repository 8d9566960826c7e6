"""RSA metrics against rsatoolbox and scipy on the real 92-image data (Kriegeskorte et al. 2008)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.io import loadmat
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from brainalign.errors import ConstantRDMError, MetricInputError
from brainalign.metrics import compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper
from brainalign.metrics.rsa import RSABootstrap, crossnobis_rdm, rank_rows
from tests.conftest import needs_data

rsatoolbox = pytest.importorskip("rsatoolbox")

OURS_TO_RSATOOLBOX = {"spearman": "spearman", "pearson": "corr", "kendall_tau_a": "tau-a",
                      "cosine": "cosine"}
FOLDER = "kriegeskorte2008_92img"


@pytest.fixture(scope="module")
def pixels(data_dir) -> np.ndarray:
    """(92, 3675) pixel features of the 92 stimulus images (every 5th pixel, RGB)."""
    mat = loadmat(data_dir / FOLDER / "Kriegeskorte_Neuron2008_supplementalData.mat")
    ims = [s["image"][::5, ::5].astype(np.float64) for s in mat["stimuli_92objs"].ravel()]
    return np.stack(ims).reshape(92, -1)


@pytest.fixture(scope="module")
def hit_sessions(data_dir) -> np.ndarray:
    """(8, 92, 92) human IT RDMs: 4 subjects × 2 sessions."""
    r = loadmat(data_dir / FOLDER / "92_brainRDMs.mat")["RDMs"]
    return np.stack([r[0, s, t]["RDM"].astype(np.float64) for s in range(4) for t in range(2)])


@pytest.fixture(scope="module")
def behaviour(data_dir) -> np.ndarray:
    r = loadmat(data_dir / FOLDER / "92_behavRDMs.mat")["rdms_behav_92"].ravel()
    return np.stack([x["RDM"].astype(np.float64) for x in r])


@pytest.fixture(scope="module")
def models(data_dir) -> np.ndarray:
    """(8, 92, 92) model RDMs: animacy (binary, massive ties), category, monkey IT, EVA, HMAX, …"""
    r = loadmat(data_dir / FOLDER / "92_modelRDMs.mat")["Models"].ravel()
    out = []
    for x in r:
        m = x["RDM"].astype(np.float64)
        m = (m + m.T) / 2  # some are stored as float32 with asymmetric rounding
        np.fill_diagonal(m, 0)
        out.append(m)
    return np.stack(out)


def _rsa_rdms(rdms: np.ndarray):
    return rsatoolbox.rdm.RDMs(upper(rdms))


# ---------------------------------------------------------------- RDMs


@needs_data
@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_rdm_of_image_pixels_equals_rsatoolbox(pixels, distance):
    ref = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(pixels), method=distance)
    ours = rdm(pixels, distance)
    np.testing.assert_allclose(upper(ours), ref.get_vectors()[0], rtol=0, atol=1e-6)
    assert np.array_equal(ours, ours.T) and np.all(np.diag(ours) == 0)


@needs_data
def test_cosine_rdm_equals_scipy(pixels):
    np.testing.assert_allclose(upper(rdm(pixels, "cosine")), pdist(pixels, "cosine"), atol=1e-12)


@needs_data
def test_torch_rdm_and_compare_equal_numpy(pixels, hit_sessions):
    t = torch.from_numpy(pixels).float()  # float32 input is promoted to float64
    for distance in ("correlation", "euclidean", "cosine"):
        dt = rdm(t, distance)
        assert isinstance(dt, torch.Tensor) and dt.dtype == torch.float64 and dt.device == t.device
        np.testing.assert_allclose(dt.numpy(), rdm(pixels.astype(np.float32), distance), atol=1e-9)
    d = rdm(pixels)
    for method in ("spearman", "pearson", "cosine", "kendall_tau_a"):
        got = compare_rdms(torch.from_numpy(d), torch.from_numpy(hit_sessions), method)
        assert isinstance(got, torch.Tensor)
        np.testing.assert_allclose(got.numpy(), compare_rdms(d, hit_sessions, method), atol=1e-12)
    assert isinstance(compare_rdms(torch.from_numpy(d), hit_sessions[0]), float)


def _simulated_runs(pixels: np.ndarray, n_runs: int = 3, n_chan: int = 40, seed: int = 0):
    """Measurements of real image patterns (pixel channels) in ``n_runs`` noisy runs, with rows
    shuffled so the function must group by condition labels."""
    rng = np.random.default_rng(seed)
    varied = np.argsort(pixels[:20].var(0))[-200:]  # channels off the grey background
    signal = pixels[:20, rng.choice(varied, n_chan, replace=False)] / 255.0
    rows, cond, part = [], [], []
    for r in range(n_runs):
        rows.append(signal + 0.3 * rng.standard_normal(signal.shape))
        cond += list(range(20))
        part += [r] * 20
    X = np.vstack(rows)
    p = rng.permutation(len(X))
    return X[p], np.array(cond)[p], np.array(part)[p], signal


@needs_data
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # inside rsatoolbox
def test_crossnobis_equals_rsatoolbox(pixels):
    X, cond, part, _ = _simulated_runs(pixels)
    ds = rsatoolbox.data.Dataset(X, obs_descriptors={"cond": cond, "run": part})
    # Noise precision from the residuals around the condition means of each run.
    resid = X - np.stack([X[(cond == c) & (part == r)].mean(0) for c, r in zip(cond, part, strict=True)])
    prec = np.linalg.inv(np.cov(resid.T) + 0.1 * np.eye(X.shape[1]))
    for noise in (None, prec):
        ref = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="cond", noise=noise,
                                      cv_descriptor="run").get_vectors()[0]
        ours = rdm(X, "crossnobis", conditions=cond, partitions=part, noise=noise)
        np.testing.assert_allclose(upper(ours), ref, atol=1e-10)
    # One precision matrix per run: every pair of runs is crossed (rsatoolbox's list branch).
    precs = [prec * (1 + 0.1 * i) for i in range(3)]
    ref = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="cond", noise=precs,
                                  cv_descriptor="run").get_vectors()[0]
    np.testing.assert_allclose(upper(crossnobis_rdm(X, cond, part, precs)), ref, atol=1e-10)
    # Torch gives the same.
    ours_t = rdm(torch.from_numpy(X), "crossnobis", conditions=cond, partitions=part,
                 noise=torch.from_numpy(prec))
    np.testing.assert_allclose(ours_t.numpy(), rdm(X, "crossnobis", conditions=cond,
                                                   partitions=part, noise=prec), atol=1e-10)


@needs_data
def test_crossnobis_is_unbiased_on_simulated_ground_truth(pixels):
    # Noise inflates the plain Euclidean RDM but not the cross-validated one.
    ests = []
    for seed in range(20):
        X, cond, part, signal = _simulated_runs(pixels, seed=seed)
        ests.append(upper(crossnobis_rdm(X, cond, part)))
        noisy = rdm(np.stack([X[cond == c].mean(0) for c in range(20)]), "euclidean")
    truth = upper(rdm(signal, "euclidean"))
    bias_cv = np.mean(ests) - truth.mean()
    bias_plain = upper(noisy).mean() - truth.mean()
    assert bias_plain > 0.05  # 2 × 0.3² / 3 runs ≈ 0.06 inflation per channel
    assert abs(bias_cv) < 0.01
    assert np.corrcoef(np.mean(ests, 0), truth)[0, 1] > 0.95


# ---------------------------------------------------------------- comparisons


@needs_data
@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a", "cosine"])
def test_compare_equals_rsatoolbox(method, models, hit_sessions, pixels):
    a = np.concatenate([models, rdm(pixels)[None]])  # animacy etc. have many tied values
    ref = rsatoolbox.rdm.compare(_rsa_rdms(a), _rsa_rdms(hit_sessions), OURS_TO_RSATOOLBOX[method])
    ours = compare_rdms(a, hit_sessions, method)
    assert ours.shape == (9, 8)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert compare_rdms(a[2], hit_sessions[0], method) == pytest.approx(ref[2, 0], abs=1e-12)


@needs_data
@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a", "cosine"])
def test_noise_ceilings_equal_rsatoolbox(method, hit_sessions, behaviour):
    for rdms in (hit_sessions, behaviour):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rsatoolbox warns that tau ceilings pool ranks
            ref = rsatoolbox.inference.boot_noise_ceiling(_rsa_rdms(rdms), method=OURS_TO_RSATOOLBOX[method])
        lower, up = rsa_noise_ceiling(rdms, method)
        assert lower == pytest.approx(ref[0], abs=1e-6)
        assert up == pytest.approx(ref[1], abs=1e-6)
        assert lower < up


def test_tau_a_equals_the_pair_counting_definition():
    rng = np.random.default_rng(0)
    for ties in (False, True):
        x, y = rng.random(300), rng.random(300)
        if ties:
            x, y = np.round(x * 5), np.round(y * 3)
        i, j = np.triu_indices(300, 1)
        direct = np.mean(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]))
        assert compare_rdms(x, y, "kendall_tau_a") == pytest.approx(direct, abs=1e-12)
    # A constant RDM has no rank order: a named error for every method (was 0.0 for tau-a).
    with pytest.raises(ConstantRDMError, match="constant"):
        compare_rdms(np.ones(10), rng.random(10), "kendall_tau_a")


def test_ranks_equal_scipy_rankdata_with_ties():
    rng = np.random.default_rng(1)
    v = np.round(rng.random((3, 5, 500)) * 40)
    np.testing.assert_array_equal(rank_rows(v), rankdata(v, axis=-1))
    np.testing.assert_array_equal(rank_rows(torch.from_numpy(v)).numpy(), rankdata(v, axis=-1))
    # 1-D rows take the packed-key sort: no ties, a few exact ties among distinct values
    # (collision runs), heavy ties (argsort fallback), signed zeros.
    w = rng.random(50_000)
    for x in (w, rng.permutation(np.r_[w, w[:2000], -w[:100], 0.0, -0.0]), np.round(w, 2)):
        np.testing.assert_array_equal(rank_rows(x), rankdata(x))
    # Correlation distances crowd into a narrow band around 1 (crossing a float exponent): values
    # just above the round-off tie tolerance apart, exact duplicates sharing a key bucket; a span
    # so wide its width overflows, tiny values.
    band = 1.0 + (rng.random(60_000) - 0.7) * 0.1
    close = 1.0 + np.arange(-3000, 3000) * 2.0**-38
    for x in (band, rng.permutation(np.r_[band, close, close[::7], band[:500]]),
              np.r_[rng.random(3000), -rng.random(3000)] * 1.7e308,
              rng.random(4000) * 1e-300):
        np.testing.assert_array_equal(rank_rows(x), rankdata(x))


def test_pooled_rdm_scores_at_the_upper_ceiling():
    rng = np.random.default_rng(2)
    base = rng.random(190)
    subj = np.stack([base + 0.5 * rng.random(190) for _ in range(6)])
    for method in ("spearman", "pearson", "cosine"):
        pooled = pool_rdms(subj, method)
        _, up = rsa_noise_ceiling(subj, method)
        assert np.mean(compare_rdms(pooled[None], subj, method)) == pytest.approx(up, abs=1e-12)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_scores_equal_direct_per_sample_computation():
    rng = np.random.default_rng(3)
    n = 30
    base = squareform(rng.random(n * (n - 1) // 2))
    subj = np.stack([base + squareform(0.3 * rng.random(n * (n - 1) // 2)) for _ in range(4)])
    subj = np.round(subj, 2)  # ties in the subjects' RDMs too
    model = base + squareform(np.round(rng.random(n * (n - 1) // 2), 1))  # ties in the model
    for method in ("spearman", "pearson", "cosine"):
        boot = RSABootstrap(subj, method, n_boot=50, seed=1)
        scores = boot.score(model)
        for b in (0, 13, 49):
            a, c = boot.sample_pairs(b)
            direct = np.mean(compare_rdms(model[a, c][None], subj[:, a, c], method))
            assert scores[b] == pytest.approx(direct, abs=1e-10)
            lo, up = boot.check_against_direct(b, subj)
            assert boot.ceiling_lower[b] == pytest.approx(lo, abs=1e-10)
            assert boot.ceiling_upper[b] == pytest.approx(up, abs=1e-10)


@needs_data
def test_bootstrap_of_a_model_rdm_without_ties_equals_the_direct_computation(hit_benchmark, monkeypatch):
    """A model RDM with distinct values takes the closed-form path (centred ranks from the
    cumulative weights, the norm from the tie-group sizes): on hIT's four subjects its scores equal
    scipy's Spearman of each sample's expanded vectors (rsatoolbox's bootstrap), the undefined
    samples of a 6-stimulus subset included; the general path, used with ties, agrees too."""
    from scipy.stats import spearmanr

    subj = hit_benchmark.subject_rdms.values
    rng = np.random.default_rng(7)
    calls = []
    real = RSABootstrap._score_distinct_ranks
    monkeypatch.setattr(RSABootstrap, "_score_distinct_ranks",
                        lambda self, *a: calls.append(1) or real(self, *a))
    for n, n_boot in ((92, 300), (6, 200)):
        sub = subj[:, :n, :n]
        model = rdm(rng.standard_normal((n, 30)), "correlation")
        boot = RSABootstrap(sub, "spearman", n_boot=n_boot, seed=2)
        scores = boot.score(model)
        assert calls, "the closed-form path was not taken"
        for b in range(0, n_boot, 7):
            a, c = boot.sample_pairs(b)
            if np.unique(model[a, c]).size < 2:
                assert np.isnan(scores[b])
                continue
            direct = np.mean([spearmanr(model[a, c], sub[k][a, c])[0] for k in range(len(sub))])
            assert scores[b] == pytest.approx(direct, abs=1e-12)
        tied = model.copy()
        tied[0, 1] = tied[1, 0] = tied[0, 2]  # one tie: the general path
        calls.clear()
        general = boot.score(tied)
        assert not calls
        b = int(np.flatnonzero(np.isfinite(general))[0])
        a, c = boot.sample_pairs(b)
        assert general[b] == pytest.approx(np.mean([spearmanr(tied[a, c], sub[k][a, c])[0]
                                                    for k in range(len(sub))]), abs=1e-12)
    assert np.isnan(scores).sum() > 0  # the 6-stimulus bootstrap has undefined samples


# ---------------------------------------------------------------- bad input


def test_bad_input_names_the_argument_and_entry():
    rng = np.random.default_rng(4)
    good = squareform(rng.random(45))
    asym = good.copy()
    asym[2, 7] += 0.5
    with pytest.raises(MetricInputError, match=r"compare_rdms\(b\).*not symmetric.*\[2, 7\]"):
        compare_rdms(good, asym)
    nan = good.copy()
    nan[3, 4] = nan[4, 3] = np.nan
    with pytest.raises(MetricInputError, match=r"compare_rdms\(a\).*NaN.*\[3, 4\]"):
        compare_rdms(nan, good)
    stack = np.stack([good, good])
    stack[1, 0, 5] = stack[1, 5, 0] = np.inf
    with pytest.raises(MetricInputError, match=r"rsa_noise_ceiling.*\[1, 0, 5\]"):
        rsa_noise_ceiling(stack)
    with pytest.raises(MetricInputError, match="different sizes"):
        compare_rdms(good, squareform(rng.random(36)))
    with pytest.raises(MetricInputError, match="square"):
        upper(np.zeros((3, 4)))
    with pytest.raises(MetricInputError, match=r"\(k, n, n\)"):
        compare_rdms(np.zeros((2, 3, 4)), good)
    with pytest.raises(MetricInputError, match="unknown method"):
        compare_rdms(good, good, "kendall")
    X = rng.random((10, 4))
    X[6, 2] = np.nan
    with pytest.raises(MetricInputError, match=r"rdm\(X\).*row 6, feature 2"):
        rdm(X)
    with pytest.raises(MetricInputError, match="row 0 has zero variance"):
        rdm(np.ones((5, 3)))
    with pytest.raises(MetricInputError, match="unknown distance"):
        rdm(rng.random((5, 3)), "manhattan")
    with pytest.raises(MetricInputError, match="partitions"):
        rdm(rng.random((6, 3)), "crossnobis", conditions=[0, 1, 2] * 2)
    with pytest.raises(MetricInputError, match="condition 2 has no observation in partition 1"):
        crossnobis_rdm(rng.random((6, 3)), [0, 1, 2, 0, 1, 1], [0, 0, 0, 1, 1, 1])
    with pytest.raises(MetricInputError, match="at least 2 subjects"):
        rsa_noise_ceiling(good)
    with pytest.raises(MetricInputError, match=r"expected \(10, 10\), got shape \(30, 30\)"):
        RSABootstrap(np.stack([good, good]), n_boot=5).score(np.zeros((30, 30)))
