"""Ground truth: the simulated V1 population, its benchmark, the V1 property benchmarks and a
per-unit SF-tuning check on real recordings (Goris et al. 2015)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from brainalign.insilico.experiments import ExperimentSettings, measure_properties
from brainalign.insilico.gabor import fit_gabors
from brainalign.insilico.rf import map_receptive_fields
from brainalign.insilico.simulator import (
    NXNY_JOINT,
    ORIENTATION_HIST,
    PEAK_SF_HIST,
    SSI_HIST,
    orientation_sf_truth,
    simulated_v1_model,
)


@pytest.fixture(scope="module")
def sim():
    return simulated_v1_model(64, seed=5)


@pytest.fixture(scope="module")
def sim_properties(sim):
    return measure_properties(sim, "response", device="cpu")


def _angle_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 90) % 180 - 90)


def test_gratings_recover_true_orientation_and_sf(sim, sim_properties) -> None:
    ori, sf = orientation_sf_truth(sim.module.params)
    t = sim_properties.table
    assert t.responsive.mean() >= 0.95  # an unresponsive cell counts as a failure below
    ok_ori = _angle_diff(t.preferred_orientation, ori) < 10
    ok_sf = np.abs(np.log2(t.peak_sf / sf)) < 0.5
    assert ok_ori.mean() >= 0.9 and ok_sf.mean() >= 0.9
    kind = sim.module.params.table.kind.to_numpy()
    mr = t.modulation_ratio.to_numpy()
    assert (mr[kind == "simple"] > 1).mean() >= 0.9 and (mr[kind == "complex"] < 1).mean() >= 0.9
    assert (t.cell_class.to_numpy() == kind).mean() >= 0.9
    # surround suppression grows with the true surround weight (weakly: for large cells the
    # surround extends past the 4 deg field, so the largest grating does not engage it fully)
    rho = stats.spearmanr(sim.module.params.table.surround_weight, t.surround_suppression_index,
                          nan_policy="omit").statistic
    assert rho > 0.2


def test_sta_and_gabor_fit_recover_simple_cells(sim) -> None:
    params = sim.module.params.table
    simple = np.flatnonzero(params.kind.to_numpy() == "simple")
    rf = map_receptive_fields(sim, "response", n_frames=3000, block_px=2, device="cpu", seed=1)
    fits = fit_gabors(rf.maps[simple][:, 12:36, 12:36], rf.cell_deg, min_r2=0.3)  # central 2 deg
    ok = fits.ok.to_numpy()
    assert ok.mean() >= 0.9
    d_ori = _angle_diff(fits.orientation[ok], params.orientation.to_numpy()[simple][ok])
    d_sf = np.abs(np.log2(fits.sf[ok] / params.sf.to_numpy()[simple][ok]))
    assert (d_ori < 10).mean() >= 0.9 and (d_sf < 0.5).mean() >= 0.9
    # complex cells have no linear RF: their STA carries (almost) no Gabor
    cplx = np.flatnonzero(params.kind.to_numpy() == "complex")
    assert np.abs(rf.maps[cplx]).max(axis=(1, 2)).mean() < 0.3 * np.abs(rf.maps[simple]).max(axis=(1, 2)).mean()


def test_simulator_reaches_its_ceiling_and_a_random_cnn_does_not() -> None:
    from brainalign.insilico.benchmark import SimulatedV1Benchmark, make_simulated_v1_data
    from brainalign.insilico.demo_models import small_cnn
    from brainalign.models import wrap

    data = make_simulated_v1_data(48, 300, 6, seed=0)
    counts = data.trials
    assert counts.shape == (48, 300, 6) and np.array_equal(counts, np.round(counts))
    # Poisson: variance over repeats ≈ mean
    m, v = counts.mean(2).ravel(), counts.var(2, ddof=1).ravel()
    assert 0.85 < v.mean() / m.mean() < 1.15
    bench = SimulatedV1Benchmark(data, n_boot=200)
    sim = simulated_v1_model(params=data.params, input_size=96, visual_degrees=4.0)
    cnn = wrap(small_cnn(0), "random-cnn", 96, in_channels=1, mean=(0.5,), std=(0.5,), visual_degrees=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = bench(sim, ["response"], device="cpu").table.iloc[0]
        c = bench(cnn, ["7"], device="cpu").table.iloc[0]
    assert s.normalised >= 0.9
    assert c.normalised < 0.7 and c.normalised_ci_high < s.normalised_ci_low


def test_embedded_histograms_match_the_data_tables(data_dir: Path) -> None:
    base = data_dir / "v1_properties"
    for rel, (edges, counts) in {
        "marques2020_brainscore/devalois1982a_preferred_orientation.csv": ORIENTATION_HIST,
        "marques2020_brainscore/devalois1982b_peak_sf_all.csv": PEAK_SF_HIST,
        "marques2020_brainscore/cavanaugh2002a_surround_suppression_index.csv": SSI_HIST,
    }.items():
        t = pd.read_csv(base / rel)
        assert np.allclose(t.bin_low, edges[:-1]) and np.array_equal(t["count"], counts)
    joint = pd.read_csv(base / "vonenet_dapello2020/vonenet_ringach2002b_nx_ny_joint.csv")
    assert joint["count"].to_numpy().reshape(5, 5).tolist() == NXNY_JOINT.tolist()


def test_ringach_reader_reproduces_the_derived_histograms(data_dir: Path) -> None:
    import brainalign as ba

    bench = ba.load_benchmark("marques2020.V1-properties", data_dir=data_dir)
    dists = bench.distributions
    base = data_dir / "v1_properties/ringach2002_orientation_db"
    for prop, fname in {"circular_variance": "circular_variance", "orientation_bandwidth": "bandwidth",
                        "orthogonal_preferred_ratio": "orthogonal_preferred_ratio",
                        "modulation_ratio": "modulation_ratio"}.items():
        t = pd.read_csv(base / f"ringach2002_bs_hist_{fname}.csv")
        assert np.array_equal(dists[prop].counts, t["count"].to_numpy()), prop
        assert np.allclose(dists[prop].edges[:-1], t.bin_low)
    # per-cell values agree with the CSV extraction of the same database
    cells = pd.read_csv(base / "ringach2002_orientation_percell.csv")
    inc = cells[cells.brainscore_included == 1]
    assert np.allclose(dists["circular_variance"].values, inc.orivar)
    assert 0.9 < min(c["ceiling"] for c in bench.ceilings.values())
    assert max(c["ceiling"] for c in bench.ceilings.values()) < 1.0


def test_ks_distance_equals_scipy_two_sample_ks() -> None:
    from brainalign.benchmarks.v1_properties import ks_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=80), rng.normal(0.4, 1.2, size=120)
    edges = np.append(np.unique(np.concatenate([a, b])), np.inf)  # one bin per distinct value
    ha, hb = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
    assert ks_distance(ha / ha.sum(), hb / hb.sum()) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_v1_property_benchmark_scores_simulator_above_a_random_cnn(data_dir: Path) -> None:
    import brainalign as ba
    from brainalign.insilico.demo_models import small_cnn
    from brainalign.models import wrap

    bench = ba.load_benchmark("marques2020.V1-properties", data_dir=data_dir)
    settings = ExperimentSettings(orientations=tuple(np.arange(0, 180, 22.5)), phases=(0, 90, 180, 270))
    object.__setattr__(bench, "experiment_settings", settings)  # a faster grid for the test
    sim = simulated_v1_model(64, seed=5, untuned_max=0.6)  # broad tuning, as in Ringach 2002
    cnn = wrap(small_cnn(1), "random-cnn", 96, in_channels=1, mean=(0.5,), std=(0.5,), visual_degrees=4.0)
    s = bench(sim, ["response"], device="cpu")
    c = bench(cnn, ["1"], device="cpu")
    assert s.table.normalised.iloc[0] > 0.75
    assert c.table.normalised.iloc[0] < s.table.normalised.iloc[0] - 0.1
    per = s.details[(sim.name, bench.id, "response", "all")]["per_property"]
    assert set(per) == set(bench.distributions)
    assert all(p["n_model"] > 0 for p in per.values())
    # n_neuroids: the units with a measured property (a property no unit has must not make it 0)
    for res, layer, model in ((s, "response", sim), (c, "1", cnn)):
        per = res.details[(model.name, bench.id, layer, "all")]["per_property"]
        assert res.table["n_neuroids"].iloc[0] == max(p["n_model"] for p in per.values()) > 0


def test_sf_tuning_on_goris2015_units(data_dir: Path) -> None:
    """Per-unit check on real V1/V2 recordings: the SF analysis used for model units, applied to
    per-trial spike counts, against an independent log-Gaussian fit (scipy curve_fit)."""
    from brainalign.data.v1_readers import read_goris2015_sf
    from brainalign.insilico import tuning

    def log_gauss(lf, a, mu, s, b):
        return b + a * np.exp(-0.5 * ((lf - mu) / s) ** 2)

    files = sorted((data_dir / "goris2015_v1v2_sf_tuning").glob("m*_sf.mat"))
    assert len(files) == 6
    peaks = {}
    for f in files:
        rec = read_goris2015_sf(f)
        levels, rates = rec.rates_by_sf()
        means = np.array([r.mean() for r in rates])
        assert np.allclose(means, rec.stim_rate_mean, atol=1e-6)  # counts / duration = their means
        ours = tuning.sf_tuning(levels, np.clip(means - rec.spont_rate, 0, None))
        lf = np.log2(levels)
        p, _ = curve_fit(log_gauss, lf, means, p0=[means.max(), lf[means.argmax()], 1.0, 0.0], maxfev=20000)
        peaks[rec.unit] = (ours["peak_sf"][0], 2 ** p[1], means.max())
        # the peak is the tested SF with the highest mean rate
        assert ours["peak_sf"][0] == pytest.approx(levels[means.argmax()], rel=1e-4)
        if levels.min() <= 0.1:  # the full 0.1-10 c/deg range: the fitted peak lies inside it
            assert abs(np.log2(ours["peak_sf"][0]) - p[1]) < 0.5, rec.unit
    # peak mean rates as listed in the dataset's PROVENANCE
    assert {u: round(v[2], 1) for u, v in peaks.items()} == {
        "m620r12": 9.3, "m620r35": 122.3, "m624l54": 66.0, "m625r58": 26.8, "m625r62": 17.3, "m627r58": 70.1}


def test_plots_of_tuning_and_property_histograms(sim_properties, data_dir: Path, tmp_path: Path) -> None:
    import brainalign as ba
    from brainalign.plots.rf import plot_property_histograms, plot_rf_mosaic, plot_tuning_curves

    c = sim_properties.curves
    fig = plot_tuning_curves(c["orientations"], c["orientation"], units=range(8), path=tmp_path / "ori.png")
    assert len([a for a in fig.axes if a.lines]) == 8 and (tmp_path / "ori.png").stat().st_size > 0
    dists = ba.load_benchmark("marques2020.V1-properties", data_dir=data_dir).distributions
    t = sim_properties.table
    fig = plot_property_histograms({k: t[k].to_numpy() for k in dists}, dists)
    assert len([a for a in fig.axes if a.patches]) == len(dists)
    texts = [tx.get_text() for a in fig.axes for tx in a.texts]
    assert any("NaN left out" in s for s in texts) == bool(t[list(dists)].isna().any().any())
    maps = np.random.default_rng(0).normal(size=(5, 10, 10)) * np.arange(1, 6)[:, None, None]
    fig = plot_rf_mosaic(maps, columns=3, cell_deg=0.25, path=tmp_path / "rf.png")
    panels = [a for a in fig.axes if a.images]
    assert len(panels) == 5
    # Each map scaled to its own peak: the colour bar's −1…1 holds for every panel.
    for a, m in zip(panels, maps, strict=True):
        np.testing.assert_allclose(a.images[0].get_array(), m / np.abs(m).max())
    bar = [a for a in fig.axes if a.get_ylabel() == "RF weight / its peak"]
    assert len(bar) == 1 and bar[0].get_yticklabels()[0].get_text().startswith("−1")
    # Scale bar: 10 cells × 0.25° = 2.5° shown; a round length of at most a third of it (0.5°).
    assert [t.get_text() for t in panels[0].texts] == ["0.5°"]
    (x0, x1), _ = panels[0].lines[0].get_data()
    assert np.isclose((x1 - x0) * 0.25, 0.5)
