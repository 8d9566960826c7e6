"""Layer × layer similarity between models (brainalign.similarity.compare_models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import pdist
from torch import nn

import brainalign as ba
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import MemoryBudgetError, MetricInputError, ResultsTableError, StimulusError
from brainalign.insilico.demo_models import small_cnn
from brainalign.models import wrap
from brainalign.similarity import (
    CSV_CORNER,
    compare_models,
    diagonal_strength,
    read_similarity_csv,
    save_similarity,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N = 48


def _images(n: int = N, size: int = 48, seed: int = 0) -> np.ndarray:
    """Gratings and blobs: structured images, so that random nets' layers differ in what they keep."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        th, f, ph = rng.uniform(0, np.pi), rng.uniform(1, 8), rng.uniform(0, 2 * np.pi)
        g = np.sin(2 * np.pi * f * (x * np.cos(th) + y * np.sin(th)) + ph)
        cx, cy, s = [*rng.uniform(0.2, 0.8, 2).tolist(), rng.uniform(0.05, 0.3)]
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s**2))
        out.append((0.5 + 0.25 * rng.uniform(0, 1) * g * blob + 0.2 * blob * rng.choice([-1, 1])).clip(0, 1))
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def stimuli() -> StimulusSet:
    return StimulusSet.from_arrays("test", _images())


def _cnn(seed: int, name: str | None = None):
    return wrap(small_cnn(seed, (8, 16, 16)), name or f"cnn-{seed}", 48, in_channels=1, mean=(0.5,), std=(0.5,))


def _np_linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Kornblith et al. (2019): HSIC of centred linear Grams, in plain numpy float64."""
    n = len(X)
    H = np.eye(n) - 1.0 / n
    K = H @ (X.astype(np.float64) @ X.T.astype(np.float64)) @ H
    L = H @ (Y.astype(np.float64) @ Y.T.astype(np.float64)) @ H
    return float((K * L).sum() / np.sqrt((K * K).sum() * (L * L).sum()))


def test_model_against_itself_gives_one_on_the_diagonal_and_a_symmetric_matrix(stimuli) -> None:
    m = _cnn(0)
    sim = compare_models(m, m, stimuli, metric="cka", device="cpu")
    assert sim.dims == ("layer_a", "layer_b") and list(sim.layer_a.values) == m.layers
    v = sim.values
    assert np.allclose(np.diag(v), 1.0, atol=1e-10)
    assert np.array_equal(v, v.T)
    assert (v > 0).all() and (v <= 1).all() and (v < 0.999).sum() > 0  # not all ones
    within = compare_models(m, None, stimuli, metric="cka", device="cpu")
    assert np.allclose(within.values, v, atol=1e-12)
    assert within.attrs["within_model"] == 1 and within.attrs["weights_hash_a"] == m.weights_hash


def test_values_equal_a_direct_numpy_computation(stimuli) -> None:
    a, b = _cnn(0), _cnn(1)
    acts_a = ba.extract(a, stimuli, device="cpu")
    acts_b = ba.extract(b, stimuli, device="cpu")
    lin = compare_models(a, b, stimuli, metric="cka", device="cpu")
    rsa = compare_models(a, b, stimuli, metric="rsa", device="cpu")
    rbf = compare_models(a, b, stimuli, metric="cka_rbf", device="cpu")
    deb = compare_models(a, b, stimuli, metric="cka", debiased=True, device="cpu")
    # The RBF kernel's width is recorded for RBF CKA only (it has no meaning for the others).
    assert rbf.attrs["sigma"] == "median heuristic" and "sigma" not in lin.attrs and "sigma" not in rsa.attrs
    for la in a.layers:
        for lb in b.layers:
            X, Y = acts_a[la].values, acts_b[lb].values
            assert lin.sel(layer_a=la, layer_b=lb).item() == pytest.approx(_np_linear_cka(X, Y), abs=1e-9)
            rho = stats.spearmanr(pdist(X.astype(np.float64), "correlation"),
                                  pdist(Y.astype(np.float64), "correlation")).statistic
            assert rsa.sel(layer_a=la, layer_b=lb).item() == pytest.approx(rho, abs=1e-9)
            assert rbf.sel(layer_a=la, layer_b=lb).item() == pytest.approx(
                ba.metrics.cka(X, Y, kernel="rbf"), abs=1e-9)
            assert deb.sel(layer_a=la, layer_b=lb).item() == pytest.approx(
                ba.metrics.cka(X, Y, debiased=True), abs=1e-9)


class _Fixed(nn.Module):
    """y = x Wᵀ with a fixed matrix (no bias)."""

    def __init__(self, W: torch.Tensor):
        super().__init__()
        self.register_buffer("W", W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W.T


def test_float32_gram_products_agree_closely(stimuli) -> None:
    a, b = _cnn(0), _cnn(1)
    f64 = compare_models(a, b, stimuli, metric="cka", device="cpu")
    f32 = compare_models(a, b, stimuli, metric="cka", device="cpu", precision="float32")
    assert np.abs(f64.values - f32.values).max() < 1e-5 and f32.attrs["precision"] == "float32"
    with pytest.raises(MetricInputError, match="precision"):
        compare_models(a, b, stimuli, precision="float16")


def test_cka_invariances_orthogonal_and_isotropic_scale_but_not_anisotropic(stimuli) -> None:
    torch.manual_seed(0)
    d = 8 * 6 * 6
    Q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    aniso = torch.diag(torch.logspace(-2, 1, d, dtype=torch.float64))
    net = nn.Sequential(nn.Conv2d(1, 8, 5, stride=8), nn.ReLU(), nn.Flatten(), _Fixed(torch.eye(d)),
                        _Fixed((3.7 * Q).float()), _Fixed((Q.T / 3.7).float()), _Fixed(aniso.float()))
    m = wrap(net, "inv", 48, in_channels=1, mean=(0.5,), std=(0.5,))
    layers = ["3", "4", "5", "6"]  # x, 3.7 Q x, x again, anisotropically scaled x
    sim = compare_models(m, None, stimuli, metric="cka", layers_a=layers, device="cpu")
    # rotation × isotropic scale, and rotating back, leave linear CKA at 1
    assert sim.sel(layer_a="3", layer_b="4").item() == pytest.approx(1.0, abs=1e-6)
    assert sim.sel(layer_a="3", layer_b="5").item() == pytest.approx(1.0, abs=1e-6)
    # an anisotropic scaling is not an invariance: CKA drops
    assert sim.sel(layer_a="3", layer_b="6").item() < 0.99
    # RBF CKA with the median heuristic: σ scales along, so isotropic scale × rotation is invariant too
    rbf = compare_models(m, None, stimuli, metric="cka_rbf", layers_a=layers, device="cpu")
    assert rbf.sel(layer_a="3", layer_b="4").item() == pytest.approx(1.0, abs=1e-6)
    assert rbf.sel(layer_a="3", layer_b="6").item() < 0.99


class _ShuffleBatch(nn.Module):
    """Shows the network its batch in a fixed shuffled order: a shuffled-stimulus null."""

    def __init__(self, perm: np.ndarray):
        super().__init__()
        self.register_buffer("perm", torch.as_tensor(perm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.perm] if len(x) == len(self.perm) else x


def test_two_seeds_show_a_stronger_diagonal_than_shuffled_stimuli(stimuli) -> None:
    a, b = _cnn(0), _cnn(1)
    perm = np.random.default_rng(0).permutation(N)
    shuffled = wrap(nn.Sequential(_ShuffleBatch(perm), small_cnn(1, (8, 16, 16))), "cnn-1-shuffled", 48,
                    in_channels=1, mean=(0.5,), std=(0.5,))
    layers_s = [n for n in shuffled.layers if n.startswith("1.")]
    seeds = compare_models(a, b, stimuli, device="cpu", batch_size=N)
    null = compare_models(a, shuffled, stimuli, layers_b=layers_s, device="cpu", batch_size=N)
    d_seed, d_null = np.diag(seeds.values), np.diag(null.values)
    assert (d_seed > d_null + 0.1).all()
    assert diagonal_strength(seeds) > diagonal_strength(null)
    assert d_null.max() < 0.5 < d_seed.min()


def test_each_layer_is_recorded_once_even_when_split_by_the_budget(stimuli, monkeypatch) -> None:
    import brainalign.activations.stream as stream_mod

    calls: list[tuple[str, tuple[str, ...]]] = []
    real = stream_mod.iter_extract

    def counting(model, stim, layers, **kw):
        calls.append((model.name, tuple(layers)))
        return real(model, stim, layers, **kw)

    monkeypatch.setattr(stream_mod, "iter_extract", counting)
    a, b = _cnn(0), _cnn(1)
    n = len(stimuli)
    grams = (len(b.layers) + 2) * n * n * 8
    biggest = max(n * np.prod(a.layer_info[k].output_shape) * 4 for k in a.layers)
    sim = compare_models(a, b, stimuli, device="cpu", memory_budget=int(grams + 1.6 * biggest))
    assert sim.shape == (len(a.layers), len(b.layers))
    for model in (a, b):
        recorded = [k for name, ls in calls if name == model.name for k in ls]
        assert sorted(recorded) == sorted(model.layers)  # each layer once
        assert sum(1 for name, _ in calls if name == model.name) > 1  # the budget split the layers
    # the same numbers as one unconstrained pass
    free = compare_models(a, b, stimuli, device="cpu", memory_budget=None)
    assert np.allclose(sim.values, free.values, atol=1e-12)
    calls.clear()
    compare_models(a, None, stimuli, device="cpu", memory_budget=None)
    assert [k for _, ls in calls for k in ls] == a.layers  # within one model: one recording in all


def test_named_errors(stimuli) -> None:
    a = _cnn(0)
    with pytest.raises(MetricInputError, match="unknown metric"):
        compare_models(a, None, stimuli, metric="cca")
    with pytest.raises(StimulusError):
        compare_models(a, None, None)
    with pytest.raises(MemoryBudgetError, match="stimulus × stimulus"):
        compare_models(a, None, stimuli, memory_budget=1000)
    dead = wrap(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), _Fixed(torch.zeros(2, 4 * 46 * 46))),
                "dead", 48, in_channels=1, mean=(0.5,), std=(0.5,))
    # an undefined layer does not lose the rest of the matrix: NaN, a warning and a note naming it
    with pytest.warns(UserWarning, match="layer '3'"):
        sim = compare_models(dead, _cnn(1), stimuli, layers_a=["0", "3"], layers_b=["0", "1"], device="cpu")
    assert np.isnan(sim.sel(layer_a="3").values).all() and np.isfinite(sim.sel(layer_a="0").values).all()
    assert "layer '3'" in sim.attrs["notes"]
    with pytest.raises(StimulusError, match="stimuli must be"):
        compare_models(a, _cnn(1), 123)


def test_save_and_heatmap(stimuli, tmp_path: Path) -> None:
    import xarray as xr

    a, b = _cnn(0), _cnn(1)
    sim = compare_models(a, b, stimuli, device="cpu")
    paths = save_similarity(sim, tmp_path)
    back = xr.load_dataarray(paths["netcdf"])
    assert np.allclose(back.values, sim.values) and back.attrs["weights_hash_b"] == b.weights_hash

    csv = read_similarity_csv(paths["csv"])
    assert list(csv.index) == a.layers and list(csv.columns) == b.layers
    from brainalign.plots.similarity import plot_similarity

    fig = plot_similarity(sim)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == a.layers
    assert [t.get_text() for t in ax.get_xticklabels()] == b.layers
    assert fig.axes[1].get_ylabel() == "linear CKA"
    assert paths["png"].stat().st_size > 0


def test_similarity_csv_names_both_dimensions_and_reads_back(stimuli, tmp_path: Path) -> None:
    """The CSV alone says its rows are layer_a and its columns layer_b (its first header cell), and
    reads back with both dimensions named and the layer names kept as text."""
    import json

    import pandas as pd

    a, b = _cnn(0), _cnn(1)
    sim = compare_models(a, b, stimuli, device="cpu", layers_a=["1", "4"], layers_b=["1"])
    paths = save_similarity(sim, tmp_path, plot=False)
    header = paths["csv"].read_text().splitlines()[0].split(",")
    assert header == [CSV_CORNER, "1"] and "layer_a" in header[0] and "layer_b" in header[0]
    back = read_similarity_csv(paths["csv"])
    assert (back.index.name, back.columns.name) == ("layer_a", "layer_b")
    assert list(back.index) == ["1", "4"] and list(back.columns) == ["1"]
    np.testing.assert_allclose(back.to_numpy(), sim.values)
    assert json.loads(paths["json"].read_text())["csv_layout"] == {"rows": "layer_a", "columns": "layer_b"}
    plain = pd.read_csv(paths["csv"], index_col=0)  # a reader without brainalign sees both names too
    assert plain.index.name == CSV_CORNER
    # An older file (first cell "layer_a") still reads; a file of something else is refused by name.
    (tmp_path / "old.csv").write_text("layer_a,1\n1,0.5\n")
    assert read_similarity_csv(tmp_path / "old.csv").loc["1", "1"] == 0.5
    (tmp_path / "scores.csv").write_text("model,benchmark\nm,b\n")
    with pytest.raises(ResultsTableError, match="not a similarity matrix"):
        read_similarity_csv(tmp_path / "scores.csv")
    (tmp_path / "bad.csv").write_text(f"{CSV_CORNER},1\n1,high\n")
    with pytest.raises(ResultsTableError, match="not a number"):
        read_similarity_csv(tmp_path / "bad.csv")
    with pytest.raises(ResultsTableError, match="unreadable"):
        read_similarity_csv(tmp_path / "missing.csv")


def test_cli_similarity_on_a_folder(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from brainalign.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(_images(8, 64)):
        Image.fromarray((img * 255).astype(np.uint8)).convert("RGB").save(folder / f"im{i}.png")
    out = tmp_path / "out"
    args = ["similarity", "--model", "torchvision:resnet18", "--model", "torchvision:resnet18",
            "--seed", "0", "--seed", "1", "--stimuli", str(folder), "--layers-a", "layer4.0",
            "--layers-a", "layer4.1", "--layers-b", "layer4.?", "--layers-b", "fc", "--metric", "cka",
            "--device", "cpu", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output

    t = read_similarity_csv(out / "similarity.csv")
    assert (t.index.name, t.columns.name) == ("layer_a", "layer_b")
    assert list(t.index) == ["layer4.0", "layer4.1"] and list(t.columns) == ["layer4.0", "layer4.1", "fc"]
    assert (out / "similarity.nc").exists() and (out / "similarity.png").stat().st_size > 0
    bad = CliRunner().invoke(main, ["similarity", "--model", "torchvision:resnet18", "--stimuli",
                                    str(tmp_path / "nope"), "--out", str(out)])
    assert bad.exit_code != 0 and "error" in bad.output.lower()


def test_benchmark_id_gives_its_stimuli_placed_per_model(data_dir: Path) -> None:
    a = _cnn(0)
    b = wrap(small_cnn(1, (8, 16, 16)), "cnn-1-wide-field", 48, in_channels=1, mean=(0.5,), std=(0.5,),
             visual_degrees=12.0)
    sim = compare_models(a, b, "kriegeskorte2008.hIT-rsa", metric="rsa", layers_a=["1"], layers_b=["1", "4"],
                         data_dir=data_dir, device="cpu")
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir)
    assert sim.attrs["n_stimuli"] == len(bench.stimuli) == 92
    assert "benchmark kriegeskorte2008.hIT-rsa" in sim.attrs["stimuli_a"]
    # B saw the stimuli placed in its own (wider) field: the same as recording B on bench.place(b)
    placed_b, _ = bench.place(b)
    placed_a, _ = bench.place(a)
    Y = ba.extract(b, placed_b, ["4"], device="cpu")["4"].values
    X = ba.extract(a, placed_a, ["1"], device="cpu")["1"].values
    rho = stats.spearmanr(pdist(X.astype(np.float64), "correlation"), pdist(Y.astype(np.float64), "correlation"))
    assert sim.sel(layer_a="1", layer_b="4").item() == pytest.approx(rho.statistic, abs=1e-9)
    # The benchmark's StimulusSet (it knows its 2.9°) gives what the id gives: it was shown to
    # each model unplaced, filling the field of view (CKA up to 0.13 apart from the CLI's).
    given = compare_models(a, b, bench.stimuli, metric="rsa", layers_a=["1"], layers_b=["1", "4"], device="cpu")
    np.testing.assert_array_equal(given.values, sim.values)
    assert "placed in the model's field of view" in given.attrs["stimuli_a"]


def test_a_multi_session_benchmark_names_the_session_it_uses(data_dir):
    """antolik2016's three sessions show different images: the similarity uses the first one's
    and says so (a warning and the stimuli's description), never silently (the data_dir fixture
    skips without the datasets)."""
    m = ba.load_model("zoo:lenet5")
    with pytest.warns(UserWarning, match=r"3 sessions show different stimuli; the similarity uses session "
                                         r"'region1' \(\d+ stimuli\) only"):
        sim = compare_models(m, None, "antolik2016.V1-ridge", layers_a=m.layers[:2], data_dir=data_dir,
                             device="cpu")
    assert "session region1 of 3" in sim.attrs["stimuli_a"]
    first = ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir).sessions[0]
    assert sim.attrs["n_stimuli"] == len(first.stimuli)


def test_a_folder_of_images_is_read_as_as_stimulus_set_reads_it(tmp_path: Path) -> None:
    """`similarity` had its own folder reader: no GIFs (a folder of GIFs was 'no image files',
    one GIF among PNGs silently left out), ids with their extension (a.png and a.jpg both
    accepted). It is now the reader every other command uses."""
    from PIL import Image

    from brainalign.similarity import folder_stimuli

    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.gif"):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / name)
    got = folder_stimuli(tmp_path)
    assert list(got.ids) == list(ba.as_stimulus_set(tmp_path).ids) == ["a", "b", "c"]
    Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    with pytest.raises(StimulusError, match="share the id 'a'"):
        folder_stimuli(tmp_path)
