"""CKA against the formulas written out directly, its invariances, and real activations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from scipy.io import loadmat
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

import brainalign as ba
from brainalign.errors import MetricInputError
from brainalign.metrics import cka
from tests.conftest import needs_data

# ---------------------------------------------------------------- reference formulas


def _hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    return np.trace(K @ H @ L @ H) / (n - 1) ** 2


def _hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    # Song et al. 2012, eq. 5: K̃, L̃ with zeroed diagonals.
    n = len(K)
    Kt, Lt = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
    one = np.ones(n)
    return (np.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ Kt @ Lt @ one) / (n * (n - 3))


def _rbf(X: np.ndarray, sigma: float | None = None) -> np.ndarray:
    d2 = cdist(X, X, "sqeuclidean")
    s2 = np.median(d2) if sigma is None else sigma**2
    return np.exp(-d2 / (2 * s2))


def _cka_direct(X, Y, kernel="linear", debiased=False, sigma=None) -> float:
    K, L = (A @ A.T for A in (X, Y)) if kernel == "linear" else (_rbf(X, sigma), _rbf(Y, sigma))
    h = _hsic_unbiased if debiased else _hsic_biased
    return h(K, L) / np.sqrt(h(K, K) * h(L, L))


def _pair(n=40, dx=30, dy=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dx))
    Y = X[:, :dy] @ rng.standard_normal((dy, dy)) * 0.5 + rng.standard_normal((n, dy))
    return X, Y


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cka_equals_the_direct_formulas(kernel, debiased):
    for shape in ((40, 30, 25), (60, 4, 3)):  # Gram path and feature-space path for linear
        X, Y = _pair(*shape)
        ref = _cka_direct(X, Y, kernel, debiased)
        assert cka(X, Y, kernel, debiased) == pytest.approx(ref, abs=1e-10)
    if kernel == "rbf":
        ref = _cka_direct(X, Y, "rbf", debiased, sigma=2.0)
        assert cka(X, Y, "rbf", debiased, sigma=2.0) == pytest.approx(ref, abs=1e-10)
        assert cka(X, Y, "rbf", debiased, sigma=2.0) != pytest.approx(cka(X, Y, "rbf", debiased), abs=1e-3)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_self_similarity_is_one_and_torch_matches(kernel, debiased):
    X, Y = _pair()
    assert cka(X, X, kernel, debiased) == pytest.approx(1.0, abs=1e-12)
    got = cka(torch.from_numpy(X).float(), torch.from_numpy(Y), kernel, debiased)
    assert got == pytest.approx(cka(X.astype(np.float32), Y, kernel, debiased), abs=1e-9)


def test_linear_cka_invariances():
    X, Y = _pair(n=50, dx=20, dy=20, seed=1)
    base = cka(X, Y)
    Q = ortho_group.rvs(20, random_state=0)
    assert cka(X @ Q, Y) == pytest.approx(base, abs=1e-12)  # orthogonal transform
    assert cka(3.7 * X, 0.01 * Y) == pytest.approx(base, abs=1e-12)  # isotropic scaling
    assert cka(X + 5.0, Y) == pytest.approx(base, abs=1e-12)  # translation
    assert cka(X @ Q, Y, debiased=True) == pytest.approx(cka(X, Y, debiased=True), abs=1e-12)
    # Not invariant to anisotropic scaling (that is what separates CKA from CCA).
    S = np.diag(np.linspace(0.1, 10, 20))
    assert abs(cka(X @ S, Y) - base) > 1e-3
    # RBF with the median bandwidth is also invariant to rotation and isotropic scale.
    assert cka(2 * X @ Q, Y, "rbf") == pytest.approx(cka(X, Y, "rbf"), abs=1e-12)


def test_debiasing_removes_the_small_sample_bias_on_simulated_data():
    # Independent representations: biased CKA is far from 0 with few stimuli and many features;
    # debiased CKA is centred on 0 (Kornblith et al. 2019, Nguyen et al. 2021).
    rng = np.random.default_rng(2)
    biased, unbiased = [], []
    for _ in range(30):
        X, Y = rng.standard_normal((20, 200)), rng.standard_normal((20, 200))
        biased.append(cka(X, Y))
        unbiased.append(cka(X, Y, debiased=True))
    assert np.mean(biased) > 0.5
    assert abs(np.mean(unbiased)) < 0.02


def test_bad_input_is_named():
    X, Y = _pair()
    with pytest.raises(MetricInputError, match="X has 40 stimuli.*Y has 39"):
        cka(X, Y[:-1])
    Xn = X.copy()
    Xn[7, 3] = np.inf
    with pytest.raises(MetricInputError, match=r"cka\(X\).*row 7, feature 3"):
        cka(Xn, Y)
    with pytest.raises(MetricInputError, match=r"cka\(Y\).*does not vary"):
        cka(X, np.ones((40, 5)))
    with pytest.raises(MetricInputError, match="at least 4 stimuli"):
        cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(MetricInputError, match="unknown kernel"):
        cka(X, Y, "poly")
    with pytest.raises(MetricInputError, match="sigma must be > 0"):
        cka(X, Y, "rbf", sigma=0.0)


# ---------------------------------------------------------------- real activations


@pytest.fixture(scope="module")
def layer_activations(data_dir) -> dict[str, np.ndarray]:
    """Random-weight torchvision ResNet-18 on the 92 Kriegeskorte images (64 px, to stay fast)."""
    mat = loadmat(data_dir / "kriegeskorte2008_92img" / "Kriegeskorte_Neuron2008_supplementalData.mat")
    ims = np.stack([s["image"] for s in mat["stimuli_92objs"].ravel()]).astype(np.float32) / 255
    x = torch.nn.functional.interpolate(torch.from_numpy(ims).permute(0, 3, 1, 2), size=64,
                                        mode="bilinear", antialias=True)
    x = (x - 0.45) / 0.225
    torch.manual_seed(0)
    model = ba.wrap(torchvision.models.resnet18(weights=None).eval(), name="resnet18-random",
                    input_size=64)
    acts = ba.extract(model, x, layers=["layer1.1", "layer2.1", "layer4.1"], device="cpu")
    return {k: v.values.astype(np.float64) for k, v in acts.items()}


@needs_data
def test_cka_of_real_layer_activations(layer_activations):
    a1, a2, a4 = (layer_activations[k] for k in ("layer1.1", "layer2.1", "layer4.1"))
    assert a1.shape == (92, 64 * 16 * 16)
    for kernel in ("linear", "rbf"):
        for debiased in (False, True):
            ours = cka(a1, a2, kernel, debiased)
            assert ours == pytest.approx(_cka_direct(a1, a2, kernel, debiased), abs=1e-9)
            assert cka(a2, a2, kernel, debiased) == pytest.approx(1.0, abs=1e-12)
    # Adjacent layers share more structure than distant ones; all are far from independent.
    assert cka(a1, a2) > cka(a1, a4) > 0.1
    # The linear feature-space path (few features) agrees with the Gram path on real data.
    proj = np.random.default_rng(0).standard_normal((a4.shape[1], 8))
    small = a4 @ proj
    assert cka(small, a2[:, :6] @ np.eye(6)) == pytest.approx(_cka_direct(small, a2[:, :6]), abs=1e-10)
