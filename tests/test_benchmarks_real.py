"""Every real benchmark, scored with a random-weight torchvision network and a pixel "model":
shuffled-stimulus controls, ceilings, provenance on every row, an honest best layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
import xarray as xr
from torch import nn

import brainalign as ba
from brainalign.benchmarks.regression import RegressionBenchmark
from brainalign.benchmarks.selection import dev_split
from brainalign.metrics.reliability import split_half_reliability
from brainalign.metrics.rsa import rdm
from tests.conftest import needs_data

pytestmark = [needs_data, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:encoding_score.*end of the grid:UserWarning")]


REAL = ["kriegeskorte2008.hIT-rsa", "kriegeskorte2008.mIT-rsa", "kriegeskorte2008.behavior-rsa",
        "cowley2023.V4-ridge", "antolik2016.V1-ridge"]


def _options(bid: str) -> dict:
    """Small settings, so the whole file stays fast: at most 100 stimuli per session for the
    regression benchmarks (the only kind that can limit its stimuli; the others refuse it)."""
    return {"n_bootstrap": 40, **({"max_stimuli": 100} if bid.endswith("-ridge") else {})}


def _alexnet():
    torch.manual_seed(0)
    return ba.wrap(torchvision.models.alexnet(weights=None), name="alexnet-random", input_size=96,
                   weights="random")


def _pixels():
    return ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d(12)), name="pixels", input_size=48, weights="none")


@pytest.fixture(scope="module")
def scored(data_dir):
    """(benchmark, result) per real benchmark, for alexnet (2 layers) and the pixel model."""
    out = {}
    alex, pix = _alexnet(), _pixels()
    for bid in REAL:
        bench = ba.load_benchmark(bid, data_dir=data_dir, **_options(bid))
        res = ba.ScoreResult.concat([bench(alex, ["features.2", "features.5"]), bench(pix, ["0"])])
        out[bid] = (bench, res)
    return out


@pytest.mark.parametrize("bid", REAL)
def test_rows_carry_provenance_and_respect_the_ceiling(scored, bid):
    bench, res = scored[bid]
    t = res.table
    assert set(t["model"]) == {"alexnet-random", "pixels"}
    for col in ("model", "benchmark", "benchmark_version", "layer", "metric", "weights", "weights_hash",
                "versions", "seed", "n_stimuli", "placement", "data_sha256", "session"):
        assert t[col].notna().all() and (t[col].astype(str).str.len() > 0).all(), col
    assert (t["data_sha256"] == bench.data_hash()).all()
    assert all(len(v) == 64 for v in res.meta["data_files"].values())  # every file sha256-verified
    assert res.meta["placement"][res.table["model"].iloc[0]]["model_degrees"] == 8.0
    normed = t[t["normalised"].notna()]
    # A score may pass its ceiling only by sampling error: by no more than its CI half-width.
    assert (normed["normalised"] <= 1 + (normed["normalised_ci_high"] - normed["normalised"]).clip(lower=0)).all()
    assert (t["raw_ci_low"] <= t["raw_ci_high"]).all()
    without = t[t["normalised"].isna()]
    assert (without["ceiling_note"].str.len() > 10).all()  # every unnormalised row says why


def _shuffled(da: xr.DataArray, seed: int) -> xr.DataArray:
    perm = np.random.default_rng(seed).permutation(da.sizes["stimulus"])
    return da.copy(data=da.values[perm])


@pytest.mark.parametrize("bid", REAL)
def test_shuffled_stimulus_control_scores_near_zero(scored, bid):
    bench, _ = scored[bid]
    pix = _pixels()
    if isinstance(bench, RegressionBenchmark):
        feats = {s.name: ba.extract(pix, bench.place(pix, s.stimuli)[0], ["0"])["0"] for s in bench.sessions}
        real = bench.score_features(feats)
        fake = bench.score_features({k: _shuffled(v, 1) for k, v in feats.items()})
        assert abs(fake["all" if "all" in fake else bench.sessions[0].name]["raw"]) < 0.08
        assert real[next(iter(real))]["raw"] > 0.1
    else:
        x = ba.extract(pix, bench.place(pix)[0], ["0"])["0"]
        shuffled = [bench.score_rdm(rdm(_shuffled(x, s).values))["raw"] for s in range(5)]
        assert abs(np.mean(shuffled)) < 0.03 and np.max(np.abs(shuffled)) < 0.08
        assert bench.score_rdm(rdm(x.values))["raw"] > 0.05


def test_cowley_sessions_ceiling_where_repeats_exist_and_aggregate(scored):
    bench, res = scored["cowley2023.V4-ridge"]
    s = {x.name: x for x in bench.sessions}
    assert [x.trials is not None for x in bench.sessions] == [False, False, True]
    # The repeat average the benchmark uses equals the mean of the raw repeats (NaN-padded).
    np.testing.assert_allclose(np.nanmean(s["210325"].trials, 2), s["210325"].responses.values.T)
    t = res.table[res.table["model"] == "pixels"].set_index("session")
    assert list(t.index) == ["190923", "201025", "210325", "all"]
    assert t.loc[["190923", "201025", "all"], "normalised"].isna().all()
    assert "no repeat trials" in t.loc["190923", "ceiling_note"]
    assert "190923, 201025" in t.loc["all", "ceiling_note"]
    assert t.loc["210325", "ceiling_upper"] > 0.5 and np.isfinite(t.loc["210325", "normalised"])
    assert t.loc["all", "n_neuroids"] == 33 + 89 + 50
    # The ceiling: median over neurons of sqrt(Spearman-Brown split-half reliability).
    rel = split_half_reliability(s["210325"].trials, n_splits=10, seed=0)
    assert t.loc["210325", "ceiling_upper"] == pytest.approx(np.median(np.sqrt(np.clip(rel, 0, None))), abs=1e-9)


def test_antolik_pixels_are_rescaled_and_ceiling_from_repeats(scored, data_dir):
    bench, res = scored["antolik2016.V1-ridge"]
    img = bench.sessions[0].stimuli.image(0)
    raw = np.load(data_dir / "antolik2016_mouse_v1" / "region1" / "validation_inputs.npy")[0].reshape(31, 31)
    np.testing.assert_allclose(img, raw * 1e6 / 255, rtol=1e-5)
    assert 0.5 < max(bench.sessions[0].stimuli.image(i).max() for i in range(50)) <= 1.0
    t = res.table[(res.table["model"] == "pixels")].set_index("session")
    assert (t.loc[["region1", "region2", "region3", "all"], "ceiling_upper"] > 0.5).all()


def test_honest_best_layer_removes_the_inflation_of_choosing_in_sample(data_dir):
    """Choosing the best of 19 random-weight layers on the stimuli that score it is biased upwards;
    choosing on development stimuli and scoring on held-out ones is not."""
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=10)
    model = _alexnet()
    acts = ba.extract(model, bench.place(model)[0])
    rdms = {k: rdm(v.values) for k, v in acts.items()}
    in_sample, honest = [], []
    for seed in range(8):
        split = dev_split(92, seed=seed)
        held = {k: bench._subset_score(r, split.heldout) for k, r in rdms.items()}
        dev = {k: bench._subset_score(r, split.dev) for k, r in rdms.items()}
        in_sample.append(max(held.values()))  # chosen and scored on the same (held-out) stimuli
        honest.append(held[max(dev, key=dev.get)])  # chosen on dev, scored on held-out
    inflation = np.mean(in_sample) - np.mean(honest)
    assert inflation > 0.01
    res = bench(model)
    best = res.best.iloc[0]
    assert best["selection"] == "development stimuli"
    assert best["best_score"] == res.table.set_index("layer").loc[best["layer"], "heldout_score"]
    assert best["layer"] == res.table.loc[res.table["dev_score"].idxmax(), "layer"]
    assert res.meta["layer_selection"]["seed"] == 0 and len(res.meta["layer_selection"]["dev_ids"]) == 46
    assert len(res.table) == 19  # the full per-layer table stays available
