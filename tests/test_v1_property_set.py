"""The full Marques et al. (2021) V1 property set: every property with neural data here has a
benchmark, its ceiling equals the one Brain-Score asserts in its own tests, the neural values are
read as Brain-Score packages them, and the in-silico definitions recover known tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# (our benchmark, Brain-Score benchmark, ceiling asserted in brain-score/vision
#  brainscore_vision/benchmarks/marques2020/test.py::test_ceilings, abs=.005)
BRAINSCORE_CEILINGS = [
    ("marques2020.V1-preferred_orientation", "Marques2020_DeValois1982-pref_or", 0.962),
    ("marques2020.V1-peak_sf", "Marques2020_DeValois1982-peak_sf", 0.967),
    ("marques2020.V1-circular_variance", "Marques2020_Ringach2002-circular_variance", 0.959),
    ("marques2020.V1-orientation_bandwidth", "Marques2020_Ringach2002-or_bandwidth", 0.964),
    ("marques2020.V1-orthogonal_preferred_ratio", "Marques2020_Ringach2002-orth_pref_ratio", 0.962),
    ("marques2020.V1-orientation_selective", "Marques2020_Ringach2002-or_selective", 0.994),
    ("marques2020.V1-cv_bandwidth_ratio", "Marques2020_Ringach2002-cv_bandwidth_ratio", 0.968),
    ("marques2020.V1-opr_cv_difference", "Marques2020_Ringach2002-opr_cv_diff", 0.967),
    ("marques2020.V1-modulation_ratio", "Marques2020_Ringach2002-modulation_ratio", 0.959),
    ("marques2020.V1-max_dc", "Marques2020_Ringach2002-max_dc", 0.968),
    ("marques2020.V1-sf_selective", "Marques2020_Schiller1976-sf_selective", 0.963),
    ("marques2020.V1-sf_bandwidth", "Marques2020_Schiller1976-sf_bandwidth", 0.933),
    ("marques2020.V1-surround_suppression_index", "Marques2020_Cavanaugh2002-surround_suppression_index", 0.958),
    ("marques2020.V1-grating_summation_field", "Marques2020_Cavanaugh2002-grating_summation_field", 0.956),
    ("marques2020.V1-surround_diameter", "Marques2020_Cavanaugh2002-surround_diameter", 0.955),
]

# Properties with neural data here that Brain-Score stores but does not score: own benchmarks,
# not in the aggregate.
UNSCORED = ["marques2020.V1-baseline_rate", "marques2020.V1-min_dc", "marques2020.V1-max_ac",
            "marques2020.V1-orthogonal_preferred_ratio_bandwidth_ratio",
            "marques2020.V1-strongly_suppressed", "marques2020.V1-surround_gsf_ratio"]


@pytest.mark.parametrize(("ours", "theirs", "expected"), BRAINSCORE_CEILINGS,
                         ids=[t[0] for t in BRAINSCORE_CEILINGS])
def test_ceiling_equals_brainscore_asserted_value(ours: str, theirs: str, expected: float,
                                                  data_dir: Path) -> None:
    import brainalign as ba

    bench = ba.load_benchmark(ours, data_dir=data_dir)
    (c,) = bench.ceilings.values()
    assert c["ceiling"] == pytest.approx(expected, abs=0.005), theirs
    # and it is a ceiling of this property's data, not a constant: other seeds agree closely
    assert c["samples"].std() > 0


def test_aggregate_holds_every_scored_property_and_the_unscored_ones_stand_alone(data_dir: Path) -> None:
    import brainalign as ba

    agg = ba.load_benchmark("marques2020.V1-properties", data_dir=data_dir)
    singles = {}
    for bid, _, _ in BRAINSCORE_CEILINGS:
        (prop,) = ba.load_benchmark(bid, data_dir=data_dir).distributions
        singles[bid] = prop
    assert set(agg.distributions) == set(singles.values()) and len(agg.distributions) == 15
    for bid in UNSCORED:
        (prop,) = ba.load_benchmark(bid, data_dir=data_dir).distributions
        assert prop not in agg.distributions
        (c,) = ba.load_benchmark(bid, data_dir=data_dir).ceilings.values()
        assert 0.9 < c["ceiling"] < 1.0
    assert set(ba.list_benchmarks()) >= {b for b, _, _ in BRAINSCORE_CEILINGS} | set(UNSCORED)


RINGACH_FILES = {
    "circular_variance": "circular_variance", "orientation_bandwidth": "bandwidth",
    "orthogonal_preferred_ratio": "orthogonal_preferred_ratio", "modulation_ratio": "modulation_ratio",
    "orientation_selective": "orientation_selective",
    "circular_variance_bandwidth_ratio": "circular_variance_bandwidth_ratio",
    "orthogonal_preferred_ratio_circular_variance_difference":
        "orthogonal_preferred_ratio_circular_variance_difference",
    "orthogonal_preferred_ratio_bandwidth_ratio": "orthogonal_preferred_ratio_bandwidth_ratio",
    "max_dc": "max_dc", "min_dc": "min_dc", "max_ac": "max_ac", "baseline_rate": "baseline",
}


def test_ringach_reader_reproduces_every_derived_histogram(data_dir: Path) -> None:
    """The .mat database read by our reader gives the histograms derived in the dataset folder
    (Brain-Score's filter and bins), for every Ringach property, and per-cell values that agree
    with the CSV extraction computed independently here."""
    from brainalign.data.v1_readers import read_ringach2002

    base = data_dir / "v1_properties" / "ringach2002_orientation_db"
    cells = pd.read_csv(base / "ringach2002_orientation_percell.csv")
    inc = cells[cells.brainscore_included == 1]
    bw = inc.bw.where(inc.bw <= 90)
    expected_values = {
        "orientation_selective": bw.notna().astype(float), "circular_variance_bandwidth_ratio": inc.orivar / bw,
        "orthogonal_preferred_ratio_circular_variance_difference": inc.po - inc.orivar,
        "orthogonal_preferred_ratio_bandwidth_ratio": inc.po / bw, "max_dc": inc.maxdc,
        "min_dc": inc.mindc, "max_ac": inc.maxfirst, "baseline_rate": inc.spont,
    }
    index = pd.read_csv(data_dir / "v1_properties" / "INDEX.csv").set_index("file")
    for prop, fname in RINGACH_FILES.items():
        rel = f"ringach2002_orientation_db/ringach2002_bs_hist_{fname}.csv"
        t = pd.read_csv(base / f"ringach2002_bs_hist_{fname}.csv")
        scale = index.loc[rel, "bin_scale"]
        bins = {"low": float(t.bin_low.iloc[0]), "high": float(t.bin_high.iloc[-1]), "n": len(t), "scale": scale}
        d = read_ringach2002(lambda f: data_dir / "v1_properties" / f,
                             file="ringach2002_orientation_db/ringach_2002_db.mat", property=prop, bins=bins)
        assert np.array_equal(d.counts, t["count"].to_numpy()), prop
        assert np.allclose(d.edges[:-1], t.bin_low), prop
        if prop in expected_values:
            assert np.allclose(d.values, expected_values[prop].to_numpy(), equal_nan=True), prop


def test_size_tuning_surround_diameter_on_a_known_curve() -> None:
    from brainalign.insilico import tuning

    d = np.array([0.25, 0.5, 1, 2, 4, 8])
    rise_fall = np.array([[0.2, 0.6, 1.0, 0.7, 0.5, 0.5],   # peak at 1, plateau 0.5 reached at 4
                          [0.2, 0.6, 1.0, 1.0, 1.0, 0.97],  # suppressed by only 3%
                          [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])  # no response
    out = tuning.size_tuning(d, rise_fall)
    assert out["surround_suppression_index"][:2] == pytest.approx([0.5, 0.03])
    assert np.isnan(out["surround_suppression_index"][2])
    # GSF: 95% of the peak between 0.5 (0.6) and 1 (1.0): 0.5 + 0.5 * 0.35 / 0.4
    assert out["grating_summation_field"][0] == pytest.approx(0.5 + 0.5 * 0.35 / 0.4)
    # surround: plateau 0.5, threshold 0.525, crossed between 2 (0.7) and 4 (0.5)
    assert out["surround_diameter"][0] == pytest.approx(2 + 2 * (0.7 - 0.525) / 0.2)
    gsf, surround = out["grating_summation_field"][0], out["surround_diameter"][0]
    assert out["surround_gsf_ratio"][0] == pytest.approx(surround / gsf)
    assert out["strongly_suppressed"][:2].tolist() == [1.0, 0.0]
    # weakly suppressed or silent units have no GSF/surround (Cavanaugh's histograms exclude them)
    assert np.isnan(out["grating_summation_field"][1:]).all() and np.isnan(out["surround_diameter"][1:]).all()


def test_firing_rate_affine_maps_the_medians() -> None:
    from brainalign.insilico import tuning

    rng = np.random.default_rng(0)
    blank = rng.uniform(0, 0.2, 101)
    peak = blank + rng.uniform(0.5, 3, 101)
    responsive = np.ones(101, bool)
    responsive[:10] = False
    slope, offset = tuning.firing_rate_affine(blank, peak, responsive)
    assert np.median(slope * blank[responsive] + offset) == pytest.approx(0.82)
    assert np.median(slope * peak[responsive] + offset) == pytest.approx(33.8)
    assert np.isnan(tuning.firing_rate_affine(blank, peak, np.zeros(101, bool))[0])


def test_new_properties_on_the_simulated_population() -> None:
    """The new per-unit properties follow their definitions from the measured tuning and are
    consistent with the simulator's ground truth (untuned cells are not orientation selective)."""
    from brainalign.insilico.experiments import (
        PROPERTIES,
        RINGACH_MIN_DRIVE,
        ExperimentSettings,
        measure_properties,
    )
    from brainalign.insilico.simulator import simulated_v1_model

    sim = simulated_v1_model(48, seed=3, untuned_max=0.6)
    settings = ExperimentSettings(orientations=tuple(np.arange(0, 180, 22.5)), phases=(0, 90, 180, 270))
    pt = measure_properties(sim, "response", settings, device="cpu")
    t = pt.table
    assert set(PROPERTIES) <= set(t.columns)
    ok = t.max_dc.notna()
    assert ok.sum() >= 0.8 * len(t)
    # the Ringach inclusion filter holds for every unit with a value
    assert (t.max_dc[ok] > t.baseline_rate[ok] + RINGACH_MIN_DRIVE).all()
    assert np.allclose(t.orientation_selective[ok], np.isfinite(t.orientation_bandwidth[ok]))
    sel = ok & t.orientation_bandwidth.notna()
    assert np.allclose(t.circular_variance_bandwidth_ratio[sel],
                       t.circular_variance[sel] / t.orientation_bandwidth[sel])
    assert np.allclose(t.orthogonal_preferred_ratio_circular_variance_difference[ok],
                       t.orthogonal_preferred_ratio[ok] - t.circular_variance[ok])
    assert (t.min_dc[ok] <= t.max_dc[ok]).all() and (t.max_ac[ok] >= 0).all()
    # the affine map puts the median largest F0 of responsive units at 33.8 spk/s
    aff = pt.settings["firing_rate_affine"]
    assert aff["slope"] > 0
    # units flagged not orientation selective carry more untuned drive in the ground truth
    untuned = sim.module.params.table.untuned.to_numpy()
    sel_mask = (t.orientation_selective == 1).to_numpy()
    non = ok.to_numpy() & ~sel_mask
    assert non.any() and sel_mask.any()
    assert untuned[non].mean() > untuned[ok.to_numpy() & sel_mask].mean()
