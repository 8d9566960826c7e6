"""The kriegeskorte2008.hIT-rsa benchmark on the real 92-image data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.io import loadmat
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr
from torch import nn

import brainalign as ba
from brainalign.errors import StimulusError, UnknownBenchmarkError
from brainalign.metrics import compare_rdms, pool_rdms, rdm, rsa_noise_ceiling, upper
from tests.conftest import needs_data

pytestmark = needs_data


def _fig1(data_dir):
    mat = loadmat(data_dir / "kriegeskorte2008_92img" / "Kriegeskorte_Neuron2008_supplementalData.mat")
    rdms = mat["RDMs_mIT_hIT_fig1"].ravel()
    return rdms[0]["RDM"].ravel(), rdms[1]["RDM"].ravel()  # monkey IT, human IT (condensed)


def test_human_vs_monkey_it_equals_scipy_spearman(data_dir):
    mit, hit = _fig1(data_dir)
    ours = compare_rdms(squareform(mit), squareform(hit), "spearman")
    ref = spearmanr(mit, hit).statistic
    assert ours == pytest.approx(ref, abs=1e-12)
    assert 0.2 < ours < 0.6  # the man-monkey IT match reported by Kriegeskorte et al. 2008


def test_subject_rdms_are_the_session_average(hit_benchmark, data_dir):
    mat = loadmat(data_dir / "kriegeskorte2008_92img" / "92_brainRDMs.mat")["RDMs"]
    s = hit_benchmark.subject_rdms
    assert s.shape == (4, 92, 92)
    assert list(s["subject"].values) == ["BE", "KO", "SN", "TI"]
    expected = (mat[0, 2, 0]["RDM"].astype(float) + mat[0, 2, 1]["RDM"].astype(float)) / 2
    np.testing.assert_allclose(s.sel(subject="SN").values, expected)


def test_noise_ceiling_equals_rsatoolbox(hit_benchmark):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = rsatoolbox.rdm.RDMs(upper(hit_benchmark.subject_rdms.values))
    ref = rsatoolbox.inference.boot_noise_ceiling(rdms, method="spearman")
    lower, up = hit_benchmark.ceiling
    assert lower == pytest.approx(ref[0], abs=1e-6)
    assert up == pytest.approx(ref[1], abs=1e-6)
    assert 0 < lower < up < 1


def test_pooled_subject_rdm_as_a_model_scores_at_the_upper_bound(hit_benchmark):
    pooled = squareform(pool_rdms(hit_benchmark.subject_rdms.values, "spearman"))
    s = hit_benchmark.score_rdm(pooled)
    assert s["raw"] == pytest.approx(hit_benchmark.ceiling[1], abs=1e-12)
    assert s["normalised"] == pytest.approx(1.0, abs=1e-12)
    # The plain mean RDM pools differently (values, not ranks): close to, not above, the bound.
    mean = hit_benchmark.score_rdm(hit_benchmark.subject_rdms.values.mean(0))
    assert mean["raw"] == pytest.approx(hit_benchmark.ceiling[1], abs=0.02)


def test_shuffled_stimulus_order_scores_near_zero(hit_benchmark):
    mit, _ = _fig1(hit_benchmark.path_of("Kriegeskorte_Neuron2008_supplementalData.mat").parents[1])
    mit = squareform(mit)
    real = hit_benchmark.score_rdm(mit)["raw"]
    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(20):
        p = rng.permutation(92)
        shuffled.append(hit_benchmark.score_rdm(mit[np.ix_(p, p)])["raw"])
    assert real > 0.15  # monkey IT predicts human IT
    assert abs(np.mean(shuffled)) < 0.01 and np.max(np.abs(shuffled)) < 0.06


def test_bootstrap_ceiling_matches_the_direct_computation(hit_benchmark):
    boot = hit_benchmark._bootstrap
    for b in (0, 17, 500):
        lo, up = boot.check_against_direct(b, hit_benchmark.subject_rdms.values)
        assert boot.ceiling_lower[b] == pytest.approx(lo, abs=1e-10)
        assert boot.ceiling_upper[b] == pytest.approx(up, abs=1e-10)


def _small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(512, 64))


def test_score_end_to_end_table_best_and_plot(hit_benchmark, tmp_path):
    model = ba.wrap(_small_cnn(), name="smallcnn", input_size=64)
    result = ba.score(model, hit_benchmark)
    t = result.table
    assert list(t["layer"]) == model.layers == ["0", "1", "2", "3", "4", "5", "7"]
    for col in ("model", "benchmark", "layer", "raw", "ceiling_upper", "normalised", "normalised_ci_low",
                "normalised_ci_high",
                "weights_hash", "seed", "versions"):
        assert col in t and t[col].notna().all(), col
    assert (t["normalised_ci_low"] <= t["normalised"]).all() and (t["normalised"] <= t["normalised_ci_high"]).all()
    np.testing.assert_allclose(t["normalised"], t["raw"] / t["ceiling_upper"])
    # Raw scores equal a direct recomputation from the activations.
    acts = ba.extract(model, hit_benchmark.place(model)[0], layers=["3"])  # as placed in the field
    direct = np.mean(compare_rdms(rdm(acts["3"].values), hit_benchmark.subject_rdms.values))
    assert t.set_index("layer").loc["3", "raw"] == pytest.approx(direct, abs=1e-10)
    # held-out score (as the score summary's legend says): raw on the held-out stimuli / the upper
    # bound of those stimuli's own noise ceiling (rsatoolbox, on the subset's RDMs).
    rsatoolbox = pytest.importorskip("rsatoolbox")
    ix = np.ix_(hit_benchmark.dev_split.heldout, hit_benchmark.dev_split.heldout)
    subj = hit_benchmark.subject_rdms.values[:, ix[0], ix[1]]
    held_raw = np.mean(compare_rdms(rdm(acts["3"].values)[ix], subj))
    held_ceiling = rsatoolbox.inference.boot_noise_ceiling(rsatoolbox.rdm.RDMs(upper(subj)), method="spearman")[1]
    assert t.set_index("layer").loc["3", "heldout_score"] == pytest.approx(held_raw / held_ceiling, abs=1e-6)
    assert "torch=" in t["versions"].iloc[0]
    best = result.best.iloc[0]  # chosen on development stimuli, scored on held-out ones
    assert best["layer"] == t.loc[t["dev_score"].idxmax(), "layer"]
    assert best["best_score"] == t.loc[t["dev_score"].idxmax(), "heldout_score"]
    assert "pad" in t["placement"].iloc[0]  # a 2.9° stimulus in the 8° field
    from brainalign.plots import plot_layers

    fig = plot_layers(result, path=tmp_path / "layers.png")
    assert (tmp_path / "layers.png").stat().st_size > 5000
    assert len(fig.axes) == 1
    csv = result.save(tmp_path)
    assert csv.read_text().count("\n") == len(t) + 1


def test_each_model_s_placement_is_kept_in_the_meta(hit_benchmark, tmp_path):
    """Two models with other fields of view on one benchmark: the meta kept only the first one's
    placement for both (the rows were right); it is now one per model, as the rows say."""
    from brainalign.results.provenance import merge_metas

    a = ba.wrap(_small_cnn(), name="narrow", input_size=64, visual_degrees=4.0)
    b = ba.wrap(_small_cnn(), name="wide", input_size=64, visual_degrees=12.0)
    res = ba.score([a, b], hit_benchmark, layers="3")
    place = res.meta["placement"]
    assert place["narrow"]["model_degrees"] == 4.0 and place["wide"]["model_degrees"] == 12.0
    rows = res.table.set_index("model")["placement"]
    assert "in a 4° field" in rows["narrow"] and "in a 12° field" in rows["wide"]
    res.save(tmp_path)
    assert ba.ScoreResult.load(tmp_path).meta["placement"] == place
    # a meta written before (one placement: the first model's) reads as the first model's only
    old = {**res.meta, "placement": place["narrow"]}
    assert merge_metas([old])["placement"] == {"narrow": place["narrow"]}


def test_rows_record_the_model_s_seed_apart_from_the_bootstrap_s(hit_benchmark, tmp_path):
    """``seed`` is the benchmark's bootstrap seed; ``model_seed`` the seed of random initial
    weights (a model run with seed 3 read seed=0 and nothing else), empty for other weights."""
    three = ba.load_model("zoo:lenet5", weights="random", seed=3)
    t = ba.score(three, hit_benchmark, layers="conv1").table
    assert t["model_seed"].tolist() == [3] and t["seed"].tolist() == [0]
    ckpt = tmp_path / "w.pt"
    torch.save(three.module.state_dict(), ckpt)
    loaded = ba.load_model("zoo:lenet5", weights=str(ckpt), seed=3)
    t2 = ba.score(loaded, hit_benchmark, layers="conv1").table
    assert t2["model_seed"].isna().all() and (t2["raw"] == t["raw"]).all()  # the same weights
    res = ba.score(three, hit_benchmark, layers="conv1")
    res.save(tmp_path / "o")
    assert ba.ScoreResult.load(tmp_path / "o").table["model_seed"].tolist() == [3]


def test_activation_ids_must_match_the_stimuli(hit_benchmark):
    with pytest.raises(StimulusError, match="position 0"):
        hit_benchmark.check_ids(["x"] * 92, "a test")


def test_unknown_benchmark_suggests_close_names():
    with pytest.raises(UnknownBenchmarkError, match="kriegeskorte2008.hIT-rsa"):
        ba.load_benchmark("kriegeskorte2008.hit-rsa")


def test_noise_ceiling_function_on_toy_data_matches_leave_one_out_definition():
    rng = np.random.default_rng(1)
    base = rng.random(45)
    subj = np.stack([base + 0.3 * rng.random(45) for _ in range(5)])
    lower, up = rsa_noise_ceiling(subj, "pearson")
    loo = [np.corrcoef(np.delete(subj, i, 0).mean(0), subj[i])[0, 1] for i in range(5)]
    z = (subj - subj.mean(1, keepdims=True)) / subj.std(1, keepdims=True)
    full = [np.corrcoef(z.mean(0), subj[i])[0, 1] for i in range(5)]
    assert up == pytest.approx(np.mean(full), abs=1e-12)
    zl = [np.corrcoef(np.delete(z, i, 0).mean(0), subj[i])[0, 1] for i in range(5)]
    assert lower == pytest.approx(np.mean(zl), abs=1e-12)
    assert lower == pytest.approx(np.mean(loo), abs=0.05)


def test_a_constant_subject_rdm_is_a_named_error_not_nan_scores(data_dir, monkeypatch):
    from brainalign.errors import MetricInputError

    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=10)
    read = bench.read

    def one_constant(section, **kw):
        rdms = read(section, **kw)
        if not hasattr(rdms, "dims"):  # the stimuli
            return rdms
        v = rdms.values.copy()
        v[2] = 0.5 * (1 - np.eye(v.shape[-1]))  # subject SN (both sessions): every pair 0.5
        return rdms.copy(data=v)

    monkeypatch.setattr(bench, "read", one_constant)
    with pytest.raises(MetricInputError, match="subject 'SN'.*constant"):
        _ = bench.subject_rdms


@pytest.mark.parametrize("dead", ["constant", "constant_per_stimulus"])
def test_a_layer_the_metric_refuses_is_named_and_the_other_layers_are_kept(data_dir, dead):
    """A dead layer (the same output for every stimulus: a constant RDM; or a flat pattern per
    stimulus: correlation distance undefined) is recorded in meta['failed_layers'] by name, and
    the other layers keep their scores."""

    class Dead(nn.Module):
        def forward(self, x):
            if dead == "constant":
                return x * 0.0 + 1.0
            return x * 0.0 + x.mean(dim=(1, 2, 3), keepdim=True)

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 7, stride=4), nn.ReLU(), Dead(), nn.Flatten())
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model = ba.wrap(net, "deadlayer", input_size=64)
    res = ba.score(model, "kriegeskorte2008.hIT-rsa", layers=["0", "2"], data_dir=data_dir,
                   n_bootstrap=20, device="cpu")
    assert list(res.table["layer"]) == ["0"] and np.isfinite(res.table["raw"]).all()
    failed = res.meta["failed_layers"]["deadlayer"]
    assert set(failed) == {"2"} and "layer '2' cannot be scored" in failed["2"]
    assert "zero variance" in failed["2"]  # correlation distance needs variance in every pattern
