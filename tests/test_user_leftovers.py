"""What a fresh user saw: counts printed as floats, empty folders left by refused runs, a long
PropertyTable repr, jargon in ``compare``'s method text, figures without titles or with legends
over the data."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.plots.synthetic import synthetic_table
from brainalign.results import ScoreResult

COUNTS = ("layer_index", "n_stimuli", "n_neuroids", "n_bootstrap", "seed")


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _mixed_table() -> pd.DataFrame:
    """An RSA benchmark's rows (no neuroids: NaN) beside a regression benchmark's (33 neuroids),
    as one folder holds them after two `brainalign score --out` runs."""
    rsa = synthetic_table(n_models=1, n_benchmarks=1, n_layers=3)
    reg = synthetic_table(n_models=1, n_benchmarks=1, n_layers=3, seed=1).assign(
        benchmark="synthetic.V1-ridge", metric="ridge:pearson/median", n_neuroids=33)
    return pd.concat([rsa.assign(n_neuroids=np.nan), reg], ignore_index=True)


# ----- 1. counts are whole numbers wherever a user reads them ---------------------------------
def test_counts_are_written_as_whole_numbers_and_missing_neuroids_stay_empty(tmp_path):
    t = _mixed_table()
    assert t["n_neuroids"].dtype == float  # what pandas makes of a count beside NaN
    ScoreResult(t).save(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "scores.csv")))
    reg = [r for r in rows if r["benchmark"] == "synthetic.V1-ridge"]
    rsa = [r for r in rows if r["benchmark"] != "synthetic.V1-ridge"]
    assert {r["n_neuroids"] for r in reg} == {"33"}
    assert {r["n_neuroids"] for r in rsa} == {""}  # no neuroids: still missing, not 0
    for r in rows:
        for c in COUNTS:
            assert r[c] == "" or r[c].isdigit(), (c, r[c])
    # read back and concatenated with another result: still whole numbers, NaN kept as missing
    back = ScoreResult.load(tmp_path)
    both = ScoreResult.concat([back, ScoreResult(t)])
    assert str(both.table["n_neuroids"].dtype) == "Int64"
    assert both.table["n_neuroids"].isna().sum() == 2 * len(rsa)
    assert "33.0" not in both.table.to_string() and " 33" in both.table.to_string()


def test_an_older_float_csv_shows_whole_counts_in_the_report_and_is_rewritten_whole(tmp_path):
    t = _mixed_table()
    t.loc[0, "n_stimuli"] = np.nan  # a row without a count makes the whole column float
    t.to_csv(tmp_path / "scores.csv", index=False)  # as the old code wrote it: 92.0, 33.0
    assert "92.0" in (tmp_path / "scores.csv").read_text()
    res = _cli("report", str(tmp_path))
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text()
    bench = html[html.index("<h3>Benchmarks</h3>"):]
    bench = bench[: bench.index("</table>")]
    assert "<td class=\"t\">92</td>" in bench and "92.0" not in bench and "100.0" not in bench
    # `score --out` into this folder reads it and writes it again: whole numbers
    ScoreResult.concat([ScoreResult.load(tmp_path)]).save(tmp_path)
    assert "92.0" not in (tmp_path / "scores.csv").read_text()
    assert ",33," in (tmp_path / "scores.csv").read_text()


def test_demo_then_rsa_score_into_one_folder_writes_integer_counts(tmp_path, data_dir):
    out = tmp_path / "run"
    res = _cli("demo", "--cells", "12", "--stimuli", "60", "--repeats", "3", "--noise-frames", "100",
               "--out", str(out))
    assert res.exit_code == 0, res.output
    res = _cli("score", "--model", "zoo:lenet5", "--benchmark", "kriegeskorte2008.hIT-rsa", "--layers", "fc3",
               "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out))
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out / "scores.csv")))
    kinds = {r["benchmark"]: r["n_neuroids"] for r in rows}
    assert kinds["kriegeskorte2008.hIT-rsa"] == "" and kinds["simulated.V1-ridge"].isdigit()
    assert all(r[c] == "" or r[c].isdigit() for r in rows for c in COUNTS)
    assert not math.isnan(float(kinds["simulated.V1-ridge"]))


# ----- 2. a refused run leaves no empty output folder ------------------------------------------
@pytest.mark.parametrize("args", [
    ("score", "--model", "zoo:lenet5", "--benchmark", "no.such-benchmark", "--out", "{out}"),
    ("score", "--model", "zoo:lenet5", "--benchmark", "kriegeskorte2008.hIT-rsa", "--max-stimuli", "10",
     "--out", "{out}"),
    ("batch", "{models}", "--benchmark", "kriegeskorte2008.hIT-rsa", "--max-stimuli", "10", "--out", "{out}"),
    ("batch", "{bad_models}", "--benchmark", "kriegeskorte2008.hIT-rsa", "--out", "{out}"),
    ("train", "--score", "no.such-benchmark", "--out", "{out}"),
    ("train", "--arch", "no_such_arch", "--epochs", "1", "--out", "{out}"),
    ("similarity", "--model", "zoo:no_such_net", "--stimuli", "kriegeskorte2008.hIT-rsa", "--out", "{out}"),
    ("demo", "--cells", "0", "--out", "{out}"),
    ("report", "{empty}", "--out", "{out}/report.html"),
    ("plot", "{empty}", "--out", "{out}"),
    ("compare", "{empty}", "--out", "{out}/compare.csv"),
], ids=["score-unknown-benchmark", "score-max-stimuli-on-rsa", "batch-max-stimuli-on-rsa",
        "batch-bad-model-list", "train-unknown-benchmark", "train-unknown-arch", "similarity-unknown-model",
        "demo-bad-option", "report-no-results", "plot-no-results", "compare-no-results"])
def test_a_refused_run_leaves_no_output_folder(tmp_path, data_dir, monkeypatch, args):
    monkeypatch.setenv("BRAINALIGN_DATA", str(data_dir))
    (tmp_path / "models.txt").write_text("zoo:lenet5\n")
    (tmp_path / "bad.yaml").write_text("models: [{id: zoo:lenet5, no_such_key: 1}]\n")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "new" / "out"
    fill = {"out": str(out), "models": str(tmp_path / "models.txt"), "bad_models": str(tmp_path / "bad.yaml"),
            "empty": str(tmp_path / "empty")}
    res = CliRunner().invoke(main, [a.format(**fill) for a in args])
    assert res.exit_code != 0, res.output
    assert not out.exists() and not out.parent.exists(), sorted(tmp_path.rglob("*"))


def test_an_unwritable_out_is_still_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "file" / "sub")])
    assert res.exit_code == 2 and "--out" in res.output and "simulated V1" not in res.output


def test_train_still_creates_its_run_folder(tmp_path):
    out = tmp_path / "new" / "run"
    res = _cli("train", "--arch", "mlp", "--epochs", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert {"epoch_000.pt", "epoch_001.pt", "history.csv", "run.json"} <= {p.name for p in out.iterdir()}


# ----- 4. PropertyTable prints a one-line summary; the data stay whole -------------------------
def test_property_table_repr_is_a_short_summary_with_the_counts():
    from brainalign.insilico.demo_models import small_cnn
    from brainalign.insilico.experiments import PROPERTIES, ExperimentSettings, measure_properties
    from brainalign.models import wrap

    model = wrap(small_cnn(0), "random-cnn", input_size=96, in_channels=1, mean=(0.5,), std=(0.5,),
                 visual_degrees=4.0)
    settings = ExperimentSettings(orientations=tuple(np.arange(0, 180, 30.0)), phases=(0.0, 90.0, 180.0, 270.0),
                                  size_phases=(0.0, 180.0))
    props = measure_properties(model, "1", settings, device="cpu")
    t = props.table
    flagged = int((t["flag"] != "").sum())
    assert 0 < flagged < len(t)  # a random CNN: some units flagged, some not
    text = repr(props)
    assert "\n" not in text and len(text) < 300, text
    assert f"{len(t)} units" in text and f"{int(t['responsive'].sum())} responsive" in text
    assert f"{flagged} flagged" in text and f"{len(PROPERTIES)} properties" in text
    assert "layer='1'" in text and str(props) == text
    # the full data are still there
    assert len(t) == len(t["unit"].unique()) and set(PROPERTIES) <= set(t.columns)
    assert props.curves["orientation"].shape[0] == len(t) and props.settings["n_stimuli"] > 0


# ----- 5. compare says in plain words what it tested -------------------------------------------
JARGON = ("null-shifted", "per-neuroid", "bootstrap_raw_neuroid", "bootstrap_ceiling_neuroid", " kept)",
          "pair-by-pair", "variance ×", "holm over")


def test_compare_method_text_is_plain_words(tmp_path, monkeypatch):
    from brainalign.results import compare as compare_module
    from tests.test_compare import _scored

    res = _scored()
    res.save(tmp_path)
    monkeypatch.setattr(compare_module, "load_results", lambda _dir: res)
    got = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert got.exit_code == 0, got.output
    for word in JARGON:
        assert word not in got.output, word
    assert "tested whether the two models' normalised score (score / noise ceiling) at their chosen " \
           "layers differ" in got.output
    assert "same 400 resamples of the stimuli" in got.output
    assert "Holm correction for the 3 model pair(s) of this benchmark" in got.output
    methods = pd.read_csv(tmp_path / "compare.csv")["method"]
    assert methods.str.contains("two-sided p-value").all()

    # regression scores without each neuroid's resampled scores: says what was not resampled, and why
    rng = np.random.default_rng(0)
    rows, details = [], {}
    for model, shift in (("a", 0.2), ("b", 0.0)):
        boot = shift + rng.normal(0.3, 0.02, 200)
        rows.append({"model": model, "benchmark": "sim.V4-ridge", "session": "all", "layer": "l",
                     "metric": "ridge:pearson/median", "raw": float(boot.mean()), "normalised": np.nan,
                     "selected": True, "n_bootstrap": 200, "seed": 0})
        details[(model, "sim.V4-ridge", "l", "all")] = {"bootstrap_raw": boot}
    reg = ScoreResult(pd.DataFrame(rows), details).compare(correction="bh")
    text = reg["method"].iloc[0]
    assert not any(word in text for word in JARGON), text
    assert "raw score" in text and "neuroids were not resampled: these results do not keep" in text
    assert "Benjamini–Hochberg correction for the 1 model pair(s)" in text


# ----- 6. figures: legend off the data, a titled similarity map, thinned ticks said ------------
def _extents(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def test_training_plot_legend_sits_outside_every_panel_and_its_ceiling_band():
    from brainalign.plots.training import plot_training

    t = synthetic_table(n_models=1, n_benchmarks=2, n_layers=5, epochs=4)
    history = pd.DataFrame({"epoch": range(4), "val_acc": [0.1, 0.5, 0.7, 0.8]})
    fig = plot_training(t, history=history)
    renderer = _extents(fig)
    assert all(a.get_legend() is None for a in fig.axes)  # no legend drawn inside a panel
    (legend,) = fig.legends
    labels = [x.get_text() for x in legend.get_texts()]
    assert "noise ceiling" in labels and "val. accuracy" in labels and "layer0" in labels
    assert len(labels) == len(set(labels))  # each entry once, not once per panel
    box = legend.get_window_extent(renderer)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
        bands = [p for p in ax.patches if p.get_label() == "noise ceiling"]
        for band in bands:  # the band's drawn area, in pixels
            assert not box.overlaps(band.get_window_extent(renderer))


def test_training_plot_of_a_benchmark_with_sessions_draws_one_line_per_layer_on_whole_epochs():
    """antolik2016's three regions beside their pooled row were one series per layer, zig-zagging
    between regions at every epoch; the plot draws the pooled rows, on whole-epoch ticks."""
    from brainalign.plots.training import plot_training

    pooled = synthetic_table(n_models=1, n_benchmarks=1, n_layers=3, epochs=4).assign(session="all")
    regions = [pooled.assign(session=f"region{k}", raw=pooled["raw"] * (0.5 + 0.2 * k)) for k in range(3)]
    t = pd.concat([pooled, *regions], ignore_index=True)
    fig = plot_training(t)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("layer")]
    assert len(lines) == 3 and all(len(ln.get_xdata()) == 4 for ln in lines)
    for ln in lines:  # the pooled rows' scores
        want = pooled[pooled["layer"] == ln.get_label()].sort_values("epoch")["raw"].to_numpy()
        np.testing.assert_allclose(ln.get_ydata(), want)
    fig.draw_without_rendering()
    assert all(float(x).is_integer() for x in ax.get_xticks())
    # the ScoreResult itself, as score_checkpoints returns it; a band where the first row has none
    from brainalign.results import ScoreResult

    t.loc[t.index[0], ["ceiling_lower", "ceiling_upper"]] = np.nan
    ax = plot_training(ScoreResult(t)).axes[0]
    band = [p for p in ax.patches if p.get_label() == "noise ceiling"]
    assert len(band) == 1 and np.isfinite(band[0].get_extents().bounds).all()


def test_similarity_figure_is_titled_with_the_models_stimuli_and_metric(tmp_path, data_dir):
    import xarray as xr

    from brainalign.plots.similarity import plot_similarity

    out = tmp_path / "sim"
    res = _cli("similarity", "--model", "zoo:lenet5", "--model", "zoo:mlp",
               "--stimuli", "kriegeskorte2008.hIT-rsa",
               "--data-dir", str(data_dir), "--batch-size", "32", "--out", str(out))
    assert res.exit_code == 0, res.output
    sim = xr.open_dataarray(out / "similarity.nc")
    fig = plot_similarity(sim)
    title = " ".join(fig.axes[0].get_title().split())
    # random weights (the default) said, or a reader assumes trained ones
    assert "layers of zoo:lenet5 (random) vs zoo:mlp (random), 92 stimuli" in title
    flags = json.loads((out / "similarity.json").read_text())
    assert flags["debiased"] is False and flags["within_model"] is False  # not 0/1
    assert "sigma" not in flags and "sigma_scale" not in flags  # the RBF width: not of linear CKA
    box = fig.axes[0].title.get_window_extent(_extents(fig))
    assert fig.bbox.contains(*box.min) and fig.bbox.contains(*box.max)  # wrapped to fit
    assert str(sim.attrs["metric_label"]) in title
    # the same model twice (other weights): the title tells the two apart by their weights
    same = sim.copy()
    same.attrs.update(model_b="zoo:lenet5", weights_a="random", weights_b="epoch_3.pt")
    title = " ".join(plot_similarity(same).axes[0].get_title().split())
    assert "zoo:lenet5 (random) vs zoo:lenet5 (epoch_3.pt)" in title
    ax = plot_similarity(same).axes[0]  # and so do the axes (both said "zoo:lenet5 layer")
    assert ax.get_ylabel() == "zoo:lenet5 (random) layer" and ax.get_xlabel() == "zoo:lenet5 (epoch_3.pt) layer"
    labelled = _cli("similarity", "--model", "zoo:lenet5", "--model", "zoo:lenet5", "--seed", "0", "--seed", "1",
                    "--label", "seed0", "--label", "seed1", "--stimuli", "kriegeskorte2008.hIT-rsa",
                    "--layers-a", "conv1", "--layers-b", "conv1", "--data-dir", str(data_dir),
                    "--out", str(tmp_path / "lab"))
    assert labelled.exit_code == 0, labelled.output
    lab = plot_similarity(xr.open_dataarray(tmp_path / "lab" / "similarity.nc")).axes[0]
    assert (lab.get_ylabel(), lab.get_xlabel()) == ("seed0 layer", "seed1 layer")
    same_label = CliRunner().invoke(main, ["similarity", "--model", "zoo:lenet5", "--model", "zoo:lenet5",
                                           "--label", "x", "--label", "x", "--stimuli", "kriegeskorte2008.hIT-rsa",
                                           "--out", str(tmp_path / "dup")])
    assert same_label.exit_code == 2 and "the labels must differ" in same_label.output
    within = sim.copy()
    within.attrs.update(within_model=1, model_b=sim.attrs["model_a"])
    assert "layers of zoo:lenet5 (random)" in " ".join(plot_similarity(within).axes[0].get_title().split())
    assert plot_similarity(sim, title="mine").axes[0].get_title() == "mine"


def test_thinned_layer_names_are_said_on_the_axis():
    from brainalign.plots import plot_layers

    many = plot_layers(synthetic_table(n_models=1, n_benchmarks=1, n_layers=40))
    ax = many.axes[0]
    named = [x.get_text() for x in ax.get_xticklabels() if x.get_text()]
    assert 2 <= len(named) < 40
    assert f"{len(named)} of 40 named" in ax.get_xlabel()
    renderer = _extents(many)  # and the longer label still fits in the figure
    assert many.bbox.contains(*ax.xaxis.label.get_window_extent(renderer).min)
    assert many.bbox.contains(*ax.xaxis.label.get_window_extent(renderer).max)
    few = plot_layers(synthetic_table(n_models=1, n_benchmarks=1, n_layers=4)).axes[0]
    assert len([x for x in few.get_xticklabels() if x.get_text()]) == 4
    assert "named" not in few.get_xlabel()


def test_property_histograms_say_which_bin_edges_are_labelled():
    from brainalign.data.v1_readers import PropertyDistribution
    from brainalign.plots.rf import plot_property_histograms

    edges = np.linspace(0, 1, 13)  # 12 bins
    dists = {"circular_variance": PropertyDistribution("circular_variance", edges, np.arange(1, 13)),
             "max_dc": PropertyDistribution("max_dc", np.array([0.0, 10, 20, 30]), np.array([3, 2, 1]))}
    values = {k: np.random.default_rng(0).uniform(d.edges[0], d.edges[-1], 50) for k, d in dists.items()}
    fig = plot_property_histograms(values, dists)
    thin, whole = fig.axes[0], fig.axes[1]
    labels = [x.get_text() for x in thin.get_xticklabels()]
    assert len(labels) < len(edges) and "every 2nd edge labelled" in thin.get_xlabel()
    assert labels[0] == "0" and thin.get_xticks()[0] == -0.5  # the first edge, at the left of bar 0
    assert [x.get_text() for x in whole.get_xticklabels()] == ["0", "10", "20", "30"]
    assert whole.get_xlabel() == "bin edges"


def test_score_over_training_legend_is_beside_its_panel_not_on_the_data():
    from brainalign.plots.curves import plot_score_vs

    fig = plot_score_vs(synthetic_table(n_models=2, n_benchmarks=1, n_layers=4, epochs=5))
    renderer = _extents(fig)
    panels = [a for a in fig.axes if a.lines]
    assert len(panels) == 2
    for ax in panels:
        legend = ax.get_legend()
        assert legend is not None and len(legend.get_texts()) == 4
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(ax.get_window_extent(renderer))
        assert fig.bbox.contains(*box.max)  # and not cut off at the figure's edge
    first = panels[0].get_legend().get_window_extent(renderer)
    assert not first.overlaps(panels[1].get_window_extent(renderer))  # nor on the next panel


# ----- 3. the README's V1 snippet times every slow step ----------------------------------------
def test_readme_v1_snippet_says_how_long_fit_gabors_takes():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text[text.index("## V1: in-silico physiology"):]
    block = block[block.index("```python"): block.index("```", block.index("```python") + 3)]
    lines = block.splitlines()
    at = next(i for i, line in enumerate(lines) if "insilico.fit_gabors(" in line)
    comment = " ".join(line for line in lines[max(0, at - 2):at] if line.lstrip().startswith("#"))
    assert "Gabor" in comment and "two minutes" in comment and "2 CPU cores" in comment, comment


def test_the_details_folder_is_readable_by_the_lab_like_the_other_outputs(tmp_path):
    """``scores.details/`` was created 0700 (``mkdtemp``) beside 0644 files in a 0755 folder."""
    import numpy as np

    from brainalign.results.details import save_details

    folder = save_details({("m", "b", "layer", "all"): {"bootstrap_raw": np.arange(3.0)}},
                          tmp_path / "scores.details")
    assert folder is not None and folder.stat().st_mode & 0o777 == 0o755
