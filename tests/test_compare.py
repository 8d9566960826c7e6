"""Model-vs-model statistics (brainalign.results.compare): size and power on simulated ground truth,
the multiple-comparison correction against its definition, and the path through ScoreResult."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainalign.errors import MissingBootstrapError, ResultsTableError, UnpairedSamplesError
from brainalign.metrics.rsa import RSABootstrap, compare_rdms, rdm
from brainalign.metrics.stats import resample_indices
from brainalign.results import ScoreResult
from brainalign.results.compare import (
    COMPARE_COLUMNS,
    adjust_p,
    bootstrap_p_value,
    chosen_rows,
    holm,
    neuroid_index_sets,
    neuroid_stimulus_samples,
    pair_noise_correction,
    paired_difference,
)
from tests.conftest import needs_data

ALPHA = 0.05
N_NULL = 200


def _fpr_bounds(n: int, alpha: float = ALPHA, tail: float = 0.001) -> tuple[float, float]:
    """Two-sided binomial acceptance interval for the rejection rate of a test of size alpha."""
    lo, hi = stats.binom.ppf([tail / 2, 1 - tail / 2], n, alpha)
    return lo / n, hi / n


# ----- correction for the number of comparisons -----------------------------------------------
def _holm_rejects(p: np.ndarray, alpha: float) -> np.ndarray:
    """Holm's step-down procedure as defined (reject while p_(k) ≤ alpha / (m − k + 1))."""
    order = np.argsort(p, kind="stable")
    rej = np.zeros(len(p), bool)
    for k, i in enumerate(order):
        if p[i] > alpha / (len(p) - k):
            break
        rej[i] = True
    return rej


def test_holm_adjusted_p_rejects_exactly_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 12):
        for _ in range(30):
            p = rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 2)
            adj = holm(p)
            # Levels just above and below every adjusted p, where the rejections change.
            for alpha in np.concatenate([adj * (1 + 1e-9), adj * (1 - 1e-9), [0.01, 0.05]]):
                if alpha >= 1:  # adjusted p are capped at 1; levels ≥ 1 are no test
                    continue
                np.testing.assert_array_equal(adj <= alpha, _holm_rejects(p, alpha))
    assert np.all(adj >= p) and np.all(adj <= 1)


def test_correction_ignores_missing_p_values_and_bh_is_never_stricter_than_holm():
    p = np.array([0.01, np.nan, 0.04, 0.03])
    np.testing.assert_allclose(holm(p), [0.03, np.nan, 0.06, 0.06])  # m = 3, not 4
    bh = adjust_p(p, "bh")
    assert np.isnan(bh[1]) and np.all(bh[[0, 2, 3]] <= holm(p)[[0, 2, 3]])
    np.testing.assert_array_equal(adjust_p(p, "none"), p)
    with pytest.raises(ValueError, match="correction"):
        adjust_p(p, "bonferoni")  # type: ignore[arg-type]


def test_bootstrap_p_value_is_the_null_shifted_bootstrap_and_agrees_with_the_ci():
    assert bootstrap_p_value(np.zeros(100), 0.0) == 1.0  # a model against itself
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(999)
    for diff in np.linspace(-4, 4, 33):
        d = noise + diff + 0.7  # a bootstrap distribution whose centre is off the estimate
        p = bootstrap_p_value(d, diff)
        assert p == pytest.approx((1 + np.sum(np.abs(noise - noise.mean()) >= abs(diff))) / 1000)
        res = paired_difference(diff, 0.0, d, np.zeros_like(d))
        assert res.ci_low <= diff <= res.ci_high  # re-centred on the estimate
        if abs(p - 0.05) > 0.01:  # away from the boundary, where one sample can tip it
            assert (p < 0.05) == (not res.ci_low <= 0 <= res.ci_high)
    res = paired_difference(0.5, 0.4, np.array([0.5, 0.6, np.nan]), np.array([0.4, 0.4, 0.3]))
    assert res.n_bootstrap == 2 and res.difference == pytest.approx(0.1)
    with pytest.raises(UnpairedSamplesError, match="lengths"):
        paired_difference(0, 0, np.zeros(3), np.zeros(4))


# ----- size and power: RSA, the bootstrap the benchmarks use ------------------------------------
def _rsa_sim(rng: np.random.Generator, noise_b: float, n: int = 20, dims: int = 20, subjects: int = 4,
             n_boot: int = 300) -> tuple[float, float]:
    """A true representation; subjects and model A = truth + noise; model B = truth + noise_b noise.
    The paired samples are drawn by RSABootstrap, as the RSA benchmark draws them. Returns the
    comparison's p-value with the pair-noise correction (index sets from the one resampler) and
    without it."""
    truth = rng.standard_normal((n, dims))
    subj = np.stack([rdm(truth + rng.standard_normal((n, dims))) for _ in range(subjects)])
    a = rdm(truth + rng.standard_normal((n, dims)))
    b = rdm(truth + noise_b * rng.standard_normal((n, dims)))
    seed = int(rng.integers(2**31))
    boot = RSABootstrap(subj, "spearman", n_boot=n_boot, seed=seed)
    est = [float(np.mean(compare_rdms(m, subj, "spearman"))) for m in (a, b)]
    sa, sb = boot.score(a), boot.score(b)
    index = resample_indices(n, n_boot, seed)
    return (paired_difference(est[0], est[1], sa, sb, pair_index=index).p,
            paired_difference(est[0], est[1], sa, sb).p)


def test_rsa_bootstrap_draws_the_one_resamplers_index_sets():
    """The pair-noise correction redraws the RSA benchmark's index sets with resample_indices."""
    rng = np.random.default_rng(0)
    subj = np.stack([rdm(rng.standard_normal((15, 5))) for _ in range(2)])
    boot = RSABootstrap(subj, "spearman", n_boot=20, seed=42)
    index = resample_indices(15, 20, 42)
    iu, ju = np.triu_indices(15, k=1)
    for b in (0, 7, 19):
        rows, cols = index[b, iu], index[b, ju]
        keep = rows != cols
        got = boot.sample_pairs(b)
        np.testing.assert_array_equal(got[0], rows[keep])
        np.testing.assert_array_equal(got[1], cols[keep])


def test_pair_noise_correction_needs_the_right_index_sets():
    rng = np.random.default_rng(4)
    n, n_boot = 20, 300
    truth = rng.standard_normal((n, 20))
    subj = np.stack([rdm(truth + rng.standard_normal((n, 20))) for _ in range(4)])
    a, b = (rdm(truth + s * rng.standard_normal((n, 20))) for s in (1.0, 1.5))
    boot = RSABootstrap(subj, "spearman", n_boot=n_boot, seed=9)
    d = boot.score(a) - boot.score(b)
    factor = pair_noise_correction(d, resample_indices(n, n_boot, 9))
    assert factor is not None and 0.2 < factor < 0.95  # the bootstrap's excess variance removed
    assert pair_noise_correction(d, resample_indices(n, n_boot, 10)) is None  # not these samples' sets
    assert pair_noise_correction(d[:30], resample_indices(n, 30, 9)) is None  # too few samples
    res = paired_difference(0.3, 0.2, boot.score(a), boot.score(b), pair_index=resample_indices(n, n_boot, 9))
    plain = paired_difference(0.3, 0.2, boot.score(a), boot.score(b))
    assert res.variance_factor == pytest.approx(factor)
    assert res.ci_high - res.ci_low == pytest.approx((plain.ci_high - plain.ci_low) * np.sqrt(factor), rel=0.05)


@pytest.mark.slow
def test_rsa_comparison_has_the_right_size_on_null_simulations_and_power():
    rng = np.random.default_rng(2024)
    null = np.array([_rsa_sim(rng, noise_b=1.0) for _ in range(N_NULL)])
    lo, hi = _fpr_bounds(N_NULL)
    fpr, fpr_plain = np.mean(null < ALPHA, axis=0)
    # With the pair-noise correction the rate is within binomial noise of alpha (measured 0.015
    # here; 0.035 and 0.025 in other designs, n = 20 and 40 stimuli). Without it the bootstrap over
    # stimuli counts the RDM's pair-level noise three times (Schütt et al. 2023 report such
    # uncorrected bootstraps as conservative): valid but far below alpha (measured 0.005).
    assert lo <= fpr <= hi, fpr
    assert fpr_plain <= fpr and fpr_plain <= hi, fpr_plain
    assert np.all((null > 0) & (null <= 1))
    # Power: a model with three times the noise is told apart from the truth-plus-noise model.
    worse = np.array([_rsa_sim(rng, noise_b=3.0, n=30) for _ in range(30)])
    assert np.mean(worse[:, 0] < ALPHA) >= 0.7, np.mean(worse < ALPHA, axis=0)  # measured 0.80 (0.73 plain)


# ----- size and power: regression, over stimuli and over neuroids and stimuli -------------------
def _per_neuroid_r(p: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(bootstrap, neuroid) Pearson r of p and y on the stimuli idx[b] of each sample."""
    pb, yb = p[idx], y[idx]  # (B, n, N)
    pb = pb - pb.mean(1, keepdims=True)
    yb = yb - yb.mean(1, keepdims=True)
    return (pb * yb).sum(1) / np.sqrt((pb * pb).sum(1) * (yb * yb).sum(1))


def _regression_sim(rng: np.random.Generator, noise_b: float, n: int = 120, neuroids: int = 30,
                    n_boot: int = 300) -> tuple[float, float]:
    """Held-out predictions of two models of a population: A = signal + noise, B = signal +
    noise_b noise. Returns p over stimuli only, and over neuroids and stimuli."""
    latent = rng.standard_normal((n, 4))
    signal = latent @ rng.standard_normal((4, neuroids))
    y = signal + 1.5 * rng.standard_normal((n, neuroids))
    pa = signal + rng.standard_normal((n, neuroids))
    pb = signal + noise_b * rng.standard_normal((n, neuroids))
    idx = rng.integers(0, n, size=(n_boot, n))  # one stimulus index set per sample, both models
    ra, rb = _per_neuroid_r(pa, y, idx), _per_neuroid_r(pb, y, idx)
    full = np.arange(n)[None]
    est = [float(np.median(_per_neuroid_r(m, y, full))) for m in (pa, pb)]
    p_stim = paired_difference(est[0], est[1], np.median(ra, 1), np.median(rb, 1)).p
    j = neuroid_index_sets(n_boot, neuroids, seed=int(rng.integers(2**31)))
    p_both = paired_difference(est[0], est[1], neuroid_stimulus_samples(ra, j),
                               neuroid_stimulus_samples(rb, j)).p
    return p_stim, p_both


@pytest.mark.slow
def test_regression_comparison_has_the_right_size_and_power():
    rng = np.random.default_rng(7)
    null = np.array([_regression_sim(rng, 1.0) for _ in range(N_NULL)])
    lo, hi = _fpr_bounds(N_NULL)
    fpr_stim, fpr_both = np.mean(null < ALPHA, axis=0)
    assert lo <= fpr_stim <= hi, fpr_stim  # over stimuli: the rate is alpha (measured 0.025)
    assert fpr_both <= hi, fpr_both  # + neuroids: the uncorrected 2-factor bootstrap is conservative (0.0)
    alt = np.array([_regression_sim(rng, 1.6) for _ in range(40)])
    power = np.mean(alt < ALPHA, axis=0)
    assert power[0] >= 0.8 and power[1] >= 0.6, power  # measured 0.975 and 0.85


def test_neuroid_resampling_normalises_by_the_ceiling_of_the_same_neuroids():
    rng = np.random.default_rng(3)
    r = rng.uniform(0.1, 0.5, (50, 8))
    r[:, 2] = np.nan  # an excluded neuroid
    c = rng.uniform(0.6, 0.9, (50, 8))
    j = neuroid_index_sets(50, 8, seed=0)
    np.testing.assert_array_equal(j, neuroid_index_sets(50, 8, seed=0))  # the same for every model
    got = neuroid_stimulus_samples(r, j, c, aggregate="mean")
    for b in (0, 17, 49):
        keep = np.isfinite(r[b, j[b]])
        assert got[b] == pytest.approx(r[b, j[b]][keep].mean() / c[b, j[b]][keep].mean())


# ----- through ScoreResult -----------------------------------------------------------------------
def _scored(n_models: int = 3, n: int = 24, seed_of: dict[str, int] | None = None,
            drop_details: str | None = None) -> ScoreResult:
    """Models "truth", "truth_copy" (the same representation) and "worse" (noisier), two layers
    each, scored like the RSA benchmark: table rows with dev_score, details with paired samples."""
    rng = np.random.default_rng(11)
    truth = rng.standard_normal((n, 30))
    subj = np.stack([rdm(truth + rng.standard_normal((n, 30))) for _ in range(4)])
    upper = np.mean(compare_rdms(subj.mean(0), subj, "spearman"))
    reps = {"truth": truth + 0.5 * rng.standard_normal((n, 30))}
    reps["truth_copy"] = reps["truth"].copy()
    reps["worse"] = truth + 6.0 * rng.standard_normal((n, 30))
    rows, details = [], {}
    for model in list(reps)[:n_models]:
        seed = (seed_of or {}).get(model, 0)
        boot = RSABootstrap(subj, "spearman", n_boot=400, seed=seed)
        for li, layer in enumerate(("early", "late")):
            x = reps[model] if layer == "late" else rng.standard_normal((n, 30))  # late is the good one
            m = rdm(x)
            raw = float(np.mean(compare_rdms(m, subj, "spearman")))
            samples = boot.score(m)
            rows.append({"model": model, "benchmark": "sim.IT-rsa", "benchmark_version": "1",
                         "session": "all", "layer": layer, "layer_index": li, "metric": "rsa:correlation/spearman",
                         "raw": raw, "ceiling_upper": upper, "normalised": raw / upper,
                         "dev_score": raw / upper + 0.001 * li, "n_stimuli": n, "n_bootstrap": 400,
                         "seed": seed})
            if drop_details != model:
                details[(model, "sim.IT-rsa", layer, "all")] = {
                    "bootstrap_raw": samples, "bootstrap_normalised": samples / boot.ceiling_upper}
    return ScoreResult(pd.DataFrame(rows), details)


def test_score_result_compare_gives_tidy_pairs_at_the_chosen_layers():
    res = _scored()
    out = res.compare()
    assert list(out.columns) == COMPARE_COLUMNS
    assert len(out) == 3  # 3 models: 3 pairs
    assert set(out["layer_a"]) | set(out["layer_b"]) == {"late"}  # the chosen layer of each model
    t = chosen_rows(res.table).set_index("model")
    for _, row in out.iterrows():
        want = t.loc[row.model_a, "normalised"] - t.loc[row.model_b, "normalised"]
        assert row["difference"] == pytest.approx(want)
        assert row["ci_low"] <= row["difference"] <= row["ci_high"] or row["within_noise"]
        assert row["p_corrected"] >= row["p"] and row["n_bootstrap"] == 400
        assert row["score"] == "normalised" and "resamples of the stimuli" in row["method"]
        assert "Holm correction for the 3 model pair(s)" in row["method"]
    assert (out["difference"] >= 0).all()  # best model first in every pair
    twins = out[out.model_a.isin(["truth", "truth_copy"]) & out.model_b.isin(["truth", "truth_copy"])].iloc[0]
    assert twins["difference"] == 0 and twins["p"] == 1 and twins["within_noise"]
    vs_worse = out[out["model_b"] == "worse"]
    assert len(vs_worse) == 2 and not vs_worse["within_noise"].any() and (vs_worse["ci_low"] > 0).all()
    raw = res.compare(score="raw", correction="none")
    np.testing.assert_array_equal(raw["p"], raw["p_corrected"])
    assert (raw["score"] == "raw").all()


def test_a_bootstrap_too_small_for_any_pair_to_differ_is_said():
    """With B samples the bootstrap p is at least 1/(B + 1) and Holm multiplies the smallest by the
    number of pairs: at B = 20 and 3 pairs no pair can differ (p ≥ 0.14), which was not said."""
    res = _scored()
    assert res.compare().attrs["too_few_samples"] == []
    for d in res.details.values():
        for k in ("bootstrap_raw", "bootstrap_normalised"):
            d[k] = d[k][:20]
    out = res.compare()
    assert out["within_noise"].all()  # even "worse", far behind
    (said,) = out.attrs["too_few_samples"]
    assert said == ("sim.IT-rsa: with 20 bootstrap samples and 3 pair(s) the smallest corrected p is 0.143, not "
                    "below α = 0.05: no pair can be told apart; score with at least 60 bootstrap samples "
                    "(--n-bootstrap) to test the differences")
    assert res.compare(correction="none").attrs["too_few_samples"] == []  # 1/21 < 0.05


def test_compare_names_what_is_missing_or_unpaired():
    with pytest.raises(MissingBootstrapError, match="worse.*late"):
        _scored(drop_details="worse").compare()
    # Another seed leaves out the pairs of that model, each with its reason; the others are compared.
    mixed = _scored(seed_of={"worse": 5}).compare()
    assert len(mixed) == 1 and {mixed["model_a"].iloc[0], mixed["model_b"].iloc[0]} == {"truth", "truth_copy"}
    assert len(mixed.attrs["not_paired"]) == 2
    assert all("'worse'" in line and "differ in seed (0 vs 5)" in line and "same benchmark settings" in line
               for line in mixed.attrs["not_paired"])
    assert "Holm correction for the 1 model pair(s)" in mixed["method"].iloc[0]  # corrected among those compared
    with pytest.raises(UnpairedSamplesError, match="(?s)no pair of models could be compared.*seed"):
        _scored(seed_of={"worse": 5}).compare(models=["truth", "worse"])
    with pytest.raises(ResultsTableError, match="two or more models"):
        _scored(n_models=1).compare()
    # A NaN sample (and so a smaller n_bootstrap, which counts finite samples) still pairs.
    res = _scored()
    for kind in ("bootstrap_raw", "bootstrap_normalised"):
        res.details[("worse", "sim.IT-rsa", "late", "all")][kind][3] = np.nan
    res.table.loc[res.table["model"] == "worse", "n_bootstrap"] = 399
    out = res.compare().set_index(["model_a", "model_b"])
    assert out.loc[("truth", "worse"), "n_bootstrap"] == 399
    assert out.loc[("truth", "truth_copy"), "n_bootstrap"] == 400
    # Restricting to two models leaves one pair; Holm over one pair changes nothing.
    two = _scored().compare(models=["truth", "worse"])
    assert len(two) == 1 and two["p"].iloc[0] == two["p_corrected"].iloc[0]


def test_regression_details_with_per_neuroid_samples_resample_neuroids():
    rng = np.random.default_rng(5)
    n, neuroids, n_boot = 80, 20, 200
    signal = rng.standard_normal((n, 3)) @ rng.standard_normal((3, neuroids))
    y = signal + rng.standard_normal((n, neuroids))
    idx = rng.integers(0, n, size=(n_boot, n))
    rows, details = [], {}
    for model, noise in (("good", 0.5), ("bad", 3.0)):
        p = signal + noise * rng.standard_normal((n, neuroids))
        r_boot = _per_neuroid_r(p, y, idx)
        r = _per_neuroid_r(p, y, np.arange(n)[None])[0]
        rows.append({"model": model, "benchmark": "sim.V4-ridge", "session": "s1", "layer": "l",
                     "metric": "ridge:pearson/median", "raw": float(np.median(r)), "normalised": np.nan,
                     "selected": True, "n_bootstrap": n_boot, "seed": 3})
        details[(model, "sim.V4-ridge", "l", "s1")] = {
            "bootstrap_raw": np.median(r_boot, 1), "bootstrap_raw_neuroid": r_boot, "bootstrap_index": idx}
    res = ScoreResult(pd.DataFrame(rows), details)
    both = res.compare()
    stim = res.compare(neuroids=False)
    assert "resamples of the stimuli and of the neuroids" in both["method"].iloc[0]
    assert "resamples of the stimuli;" in stim["method"].iloc[0]
    assert "neuroids were not resampled (neuroids=False" in stim["method"].iloc[0]
    assert both["score"].iloc[0] == "raw" and both["session"].iloc[0] == "s1"
    assert both["difference"].iloc[0] == stim["difference"].iloc[0] > 0
    # Resampling neuroids as well widens the interval.
    assert both["ci_high"].iloc[0] - both["ci_low"].iloc[0] > stim["ci_high"].iloc[0] - stim["ci_low"].iloc[0]
    details[("bad", "sim.V4-ridge", "l", "s1")]["bootstrap_index"] = idx[::-1]
    with pytest.raises(UnpairedSamplesError, match="index sets"):
        res.compare()


def test_every_pair_is_listed_once_per_benchmark():
    res = _scored()
    other = _scored()
    other.table["benchmark"] = "sim.V1-rsa"
    other.details = {(m, "sim.V1-rsa", layer, s): v for (m, _, layer, s), v in other.details.items()}
    out = ScoreResult.concat([res, other]).compare()
    assert len(out) == 6
    for _, fam in out.groupby("benchmark"):
        pairs = {frozenset(p) for p in zip(fam.model_a, fam.model_b, strict=True)}
        assert pairs == {frozenset(p) for p in itertools.combinations(["truth", "truth_copy", "worse"], 2)}


def _with_generated_benchmark(px: dict[str, int]) -> ScoreResult:
    """:func:`_scored` beside a copy of it as a benchmark that generates its stimuli per model (as
    the V1 property benchmarks do): each model's ``placement`` and ``n_stimuli`` follow its input
    size ``px[model]``."""
    from brainalign.results.provenance import GENERATED_PER_MODEL

    res, gen = _scored(), _scored()
    gen.table["benchmark"] = "sim.V1-properties"
    gen.table["placement"] = [f"{GENERATED_PER_MODEL} (8 deg, {px[m]} px), no resize or crop"
                              for m in gen.table["model"]]
    gen.table["n_stimuli"] = [px[m] * 100 for m in gen.table["model"]]
    gen.details = {(m, "sim.V1-properties", layer, s): v for (m, _, layer, s), v in gen.details.items()}
    return ScoreResult.concat([res, gen])


def test_stimuli_generated_per_model_leave_out_only_the_pairs_that_saw_different_ones():
    """A V1-properties benchmark draws gratings in each model's field of view: models of other
    input sizes share no stimuli. Those pairs are left out, saying so; the pairs of models of one
    size and every other benchmark are compared, as before."""
    res = _with_generated_benchmark({"truth": 32, "truth_copy": 32, "worse": 48})
    out = res.compare()
    rsa = out[out["benchmark"] == "sim.IT-rsa"].reset_index(drop=True)
    pd.testing.assert_frame_equal(rsa, _scored().compare())
    gen = out[out["benchmark"] == "sim.V1-properties"]
    assert len(gen) == 1 and {gen["model_a"].iloc[0], gen["model_b"].iloc[0]} == {"truth", "truth_copy"}
    lines = out.attrs["not_paired"]
    assert len(lines) == 2 and all(line.startswith("sim.V1-properties (all): ") for line in lines)
    assert all("generates its stimuli per model" in line and "'worse': 4800 stimuli" in line
               and "(8 deg, 48 px)" in line for line in lines)
    assert not any("settings" in line for line in lines)  # not something the user could change
    # One input size for all: every pair is compared.
    same = _with_generated_benchmark({"truth": 32, "truth_copy": 32, "worse": 32}).compare()
    assert len(same) == 6 and same.attrs["not_paired"] == []
    # Only such a benchmark, and no two models of one size: nothing to compare, and why.
    with pytest.raises(UnpairedSamplesError, match="(?s)no pair of models could be compared.*stimuli per model"):
        _with_generated_benchmark({"truth": 32, "truth_copy": 40, "worse": 48}).compare(
            benchmarks=["sim.V1-properties"])


# ----- the command and the report ----------------------------------------------------------------
def _saved_for_the_command(res: ScoreResult, root, monkeypatch):
    """``res`` saved in ``root``, and handed to the command as the folder's result: the folder
    reader is the results package's; here the scored result (with its details) is handed over
    directly so the test does not depend on how details are stored on disk."""
    from brainalign.results import compare as compare_module

    res.save(root)
    monkeypatch.setattr(compare_module, "load_results", lambda _dir: res)
    return root


def test_cli_compare_prints_pairs_writes_csv_and_the_report_marks_pairs_within_noise(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from brainalign.cli import main
    from brainalign.plots.report import build_report

    res = _scored()
    root = _saved_for_the_command(res, tmp_path / "results", monkeypatch)
    got = CliRunner().invoke(main, ["compare", str(root)])
    assert got.exit_code == 0, got.output
    assert "sim.IT-rsa: normalised score; tested whether the two models' normalised score" in got.output
    assert "within noise" in got.output and "differs" in got.output
    table = pd.read_csv(root / "compare.csv")
    assert list(table.columns) == COMPARE_COLUMNS and len(table) == 3
    pd.testing.assert_frame_equal(table, res.compare(), check_dtype=False)

    html = build_report(root).read_text()
    assert "Which model is better" in html
    assert html.count('data-within-noise="true"') == int(table["within_noise"].sum()) == 1
    assert html.count('data-within-noise="false"') == 2
    assert "not a results table" not in html  # compare.csv is not read as a score table

    got = CliRunner().invoke(main, ["compare", str(root), "--model", "truth"])
    assert got.exit_code == 2 and "two or more models" in got.output


def test_cli_compare_writes_what_it_could_compare_and_says_what_it_skipped(tmp_path, monkeypatch):
    """A benchmark whose stimuli follow each model's input size no longer stops the command: the
    other comparisons are written, the skipped pairs are said with their reason, and the exit
    status is 1 (partial results, as for `score` and `batch`)."""
    from click.testing import CliRunner

    from brainalign.cli import main

    res = _with_generated_benchmark({"truth": 32, "truth_copy": 32, "worse": 48})
    root = _saved_for_the_command(res, tmp_path / "results", monkeypatch)
    got = CliRunner().invoke(main, ["compare", str(root)])
    assert got.exit_code == 1, got.output
    assert "skipped: sim.V1-properties (all): 'truth' and 'worse' not compared" in got.output
    assert "2 comparison(s) skipped" in got.output and "wrote" in got.output
    table = pd.read_csv(root / "compare.csv")
    assert len(table) == 4 and set(table["benchmark"]) == {"sim.IT-rsa", "sim.V1-properties"}
    got = CliRunner().invoke(main, ["compare", str(root), "--benchmark", "sim.IT-rsa"])
    assert got.exit_code == 0 and "skipped" not in got.output
    got = CliRunner().invoke(main, ["compare", str(root), "--model", "truth", "--model", "worse",
                                    "--benchmark", "sim.V1-properties"])
    assert got.exit_code == 2 and "no pair of models could be compared" in got.output


def test_cli_compare_reads_a_saved_folder_with_its_details(tmp_path):
    from click.testing import CliRunner

    from brainalign.cli import main

    if getattr(ScoreResult, "load", None) is None:
        pytest.skip("ScoreResult.save keeps no details yet (the results package's netCDF details)")
    res = _scored()
    res.save(tmp_path / "r")
    got = CliRunner().invoke(main, ["compare", str(tmp_path / "r")])
    assert got.exit_code == 0, got.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r" / "compare.csv"), res.compare(), check_dtype=False)


def test_cli_compare_without_saved_details_names_the_problem(tmp_path):
    from click.testing import CliRunner

    from brainalign.cli import main

    root = tmp_path / "r"
    ScoreResult(_scored().table).save(root)  # a table without details
    got = CliRunner().invoke(main, ["compare", str(root)])
    assert got.exit_code == 2
    assert "no details for model" in got.output and "bootstrap samples" in got.output


# ----- real data: two networks on the 92-image human IT benchmark --------------------------------
@pytest.mark.slow
def test_compare_real_benchmark_end_to_end(data_dir, tmp_path, one_torch_thread):
    """Two small random CNNs and an exact copy of one, scored on kriegeskorte2008.hIT-rsa, saved,
    compared from the folder by the CLI: the copy is within noise of its original (difference 0,
    p = 1), the differences are those of the chosen layers' normalised scores."""
    import torch
    from click.testing import CliRunner
    from torch import nn

    import brainalign as ba
    from brainalign.cli import main

    def cnn(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())

    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=200)
    results = [ba.score(ba.wrap(cnn(seed), name=name, input_size=64), bench)
               for name, seed in (("cnn0", 0), ("cnn0_copy", 0), ("cnn1", 1))]
    result = ScoreResult.concat(results)
    out = result.compare()
    assert len(out) == 3 and (out["n_bootstrap"] == 200).all()
    twins = out[out["model_a"].str.startswith("cnn0") & out["model_b"].str.startswith("cnn0")].iloc[0]
    assert twins["difference"] == 0 and twins["p"] == 1 and twins["within_noise"]
    chosen = result.best.set_index("model")
    col = "normalised" if (out["score"] == "normalised").all() else "raw"
    for _, row in out.iterrows():
        assert row["layer_a"] == chosen.loc[row.model_a, "layer"]
        assert row["difference"] == pytest.approx(chosen.loc[row.model_a, col] - chosen.loc[row.model_b, col])

    if getattr(ScoreResult, "load", None) is None:
        pytest.skip("ScoreResult.save keeps no details yet (the results package's netCDF details): "
                    "the comparison from a saved folder is not tested")
    root = tmp_path / "results"
    result.save(root)
    got = CliRunner().invoke(main, ["compare", str(root)])
    assert got.exit_code == 0, got.output
    text = {c: str for c in ("benchmark", "session", "model_a", "layer_a", "model_b", "layer_b")}
    pd.testing.assert_frame_equal(pd.read_csv(root / "compare.csv", dtype=text), out, check_dtype=False)


@needs_data
def test_compare_a_v1_properties_benchmark_of_models_with_other_input_sizes(data_dir, tmp_path, one_torch_thread):
    """The reported failure: a folder holding a V1-properties benchmark scored by models of other
    input sizes (32 and 48 px) made `compare` stop with exit 2 ('differ in n_stimuli ... score both
    with the same benchmark settings') and lost every other benchmark's comparison."""
    import torch
    from click.testing import CliRunner
    from torch import nn

    import brainalign as ba
    from brainalign.cli import main
    from tests.batch_models import tiny_cnn

    torch.manual_seed(1)
    wide = ba.wrap(nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU()),
                   name="small48", input_size=48)
    benches = [ba.load_benchmark(b, data_dir=data_dir, n_bootstrap=50)
               for b in ("marques2020.V1-orientation_selective", "kriegeskorte2008.hIT-rsa")]
    result = ScoreResult.concat([b(m, device="cpu") for m in (tiny_cnn(seed=0), wide) for b in benches])
    root = tmp_path / "results"
    result.save(root)
    got = CliRunner().invoke(main, ["compare", str(root)])
    assert got.exit_code == 1, got.output
    assert "marques2020.V1-orientation_selective (all): 'tiny-0' and 'small48' not compared" in got.output
    assert "generates its stimuli per model" in got.output and "differ in n_stimuli" not in got.output
    table = pd.read_csv(root / "compare.csv")
    assert list(table["benchmark"]) == ["kriegeskorte2008.hIT-rsa"]


@needs_data
def test_a_v1_properties_comparison_says_it_resamples_each_models_units(data_dir, tmp_path, one_torch_thread):
    """Its method said 'both models re-scored on the same resamples of the stimuli': V1-property
    benchmarks resample no stimulus, but each model's own units."""
    import brainalign as ba
    from tests.batch_models import tiny_cnn

    bench = ba.load_benchmark("marques2020.V1-orientation_selective", data_dir=data_dir, n_bootstrap=50)
    result = ScoreResult.concat([bench(tiny_cnn(seed=s), device="cpu") for s in (0, 1)])
    table = result.compare()
    assert len(table) == 1
    method = table["method"].iloc[0]
    assert "resamples of each model's own units" in method and "paired bootstrap" not in method
