"""The simulated V1 benchmark's bootstrap: one seeded index set over every cell, the same for
every model, so two models' samples are paired even when they keep different cells."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.insilico import benchmark as simbench
from brainalign.insilico.benchmark import SimulatedV1Benchmark, make_simulated_v1_data
from brainalign.metrics.stats import resample_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench():
    return SimulatedV1Benchmark(make_simulated_v1_data(12, 60, 4, input_size=32, seed=0), n_boot=40)


def _features(seed: int, n: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 20))


def test_two_models_draw_the_same_index_sets_over_all_cells(bench, monkeypatch) -> None:
    calls: list[tuple] = []
    real = simbench.resample_indices

    def spy(n, n_boot, seed):
        calls.append((n, n_boot, seed))
        return real(n, n_boot, seed)

    monkeypatch.setattr(simbench, "resample_indices", spy)
    bench.__dict__.pop("bootstrap_indices", None)
    a = bench.score_features(_features(1))

    # model B loses two cells' scores (as a model whose predictions are constant for a cell)
    real_score = simbench.encoding_score

    def losing_cells(X, Y, **kw):
        es = real_score(X, Y, **kw)
        es.r[[0, 3]] = np.nan
        es.excluded[[0, 3]] = True
        return es

    monkeypatch.setattr(simbench, "encoding_score", losing_cells)
    b = bench.score_features(_features(2))
    n_cells = bench.data.trials.shape[0]
    assert a["n_cells"] != b["n_cells"]  # different cells kept ...
    assert calls == [(n_cells, 40, 0)]  # ... yet one index set, over every cell, drawn once
    idx = real(n_cells, 40, 0)
    assert np.array_equal(bench.bootstrap_indices, idx)
    for s in (a, b):  # each sample k of each model is the NaN-aware median over the cells of row k
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = np.isfinite(s["r"]) & np.isfinite(bench.ceiling)
            norm = np.where(ok, s["r"] / bench.ceiling, np.nan)
        want = [np.nanmedian(norm[row]) if np.isfinite(norm[row]).any() else np.nan for row in idx]
        np.testing.assert_allclose(s["boot"], want, rtol=0, atol=0)
        np.testing.assert_allclose(s["boot_raw"], [np.nanmedian(np.where(ok, s["r"], np.nan)[row])
                                                   for row in idx], rtol=0, atol=0)


def test_with_every_cell_kept_the_samples_are_the_former_per_model_bootstrap() -> None:
    # enough stimuli and repeats that every cell has a ceiling (the former draw was over the
    # kept cells: with all kept, the index sets and samples are the same as before)
    bench = SimulatedV1Benchmark(make_simulated_v1_data(12, 120, 6, input_size=32, seed=0), n_boot=40)
    s = bench.score_features(_features(3, 120))
    ok = np.isfinite(s["r"]) & np.isfinite(bench.ceiling)
    assert ok.all()
    # the former draw: index sets over the kept cells (here: all of them), plain median
    idx = resample_indices(int(ok.sum()), bench.n_boot, bench.seed)
    assert np.array_equal(s["boot"], np.median((s["r"][ok] / bench.ceiling[ok])[idx], axis=1))
    assert np.array_equal(s["boot_raw"], np.median(s["r"][ok][idx], axis=1))
