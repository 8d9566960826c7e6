"""Layer-by-layer curves: panels, colours, ceiling band, CI ribbons, best layer, files, bad input."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from brainalign.errors import ResultsTableError
from brainalign.plots import plot_layers
from brainalign.plots.style import MIN_FONT_PT, SINGLE_COLUMN_IN
from brainalign.plots.synthetic import synthetic_table


def _panels(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


def _model_lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def _band(ax):
    """(y0, y1) of the ceiling band drawn with axhspan (a Rectangle in axes-x/data-y coordinates)."""
    spans = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(spans) == 1
    y0, y1 = spans[0].get_y(), spans[0].get_y() + spans[0].get_height()
    return min(y0, y1), max(y0, y1)


def test_one_panel_per_benchmark_and_colours_kept_across_panels():
    t = synthetic_table(4, 3, 7)
    fig = plot_layers(t)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == list(dict.fromkeys(t["benchmark"]))
    colours = [{m: ln.get_color() for m, ln in _model_lines(ax).items()} for ax in panels]
    assert set(colours[0]) == set(t["model"])
    assert colours[0] == colours[1] == colours[2]
    assert len(set(map(str, colours[0].values()))) == 4  # distinct per model


def test_points_ribbons_band_and_best_layer_match_the_table():
    t = synthetic_table(3, 1, 9, seed=3)
    fig = plot_layers(t, normalised=False)
    ax = _panels(fig)[0]
    lines = _model_lines(ax)
    for m, d in t.groupby("model"):
        d = d.sort_values("depth")
        x, y = lines[m].get_data()
        np.testing.assert_allclose(x, d["depth"])
        np.testing.assert_allclose(y, d["raw"])
    # One CI ribbon per model, spanning raw_ci_low..raw_ci_high.
    ribbons = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(ribbons) == 3
    lo = min(r.get_paths()[0].vertices[:, 1].min() for r in ribbons)
    assert lo == pytest.approx(t["raw_ci_low"].min())
    # Ceiling band from lower to upper bound.
    assert _band(ax) == pytest.approx((t["ceiling_lower"].iloc[0], t["ceiling_upper"].iloc[0]))
    # Stars at each model's best layer.
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(stars) == 3
    got = sorted((float(s.get_xdata()[0]), float(s.get_ydata()[0])) for s in stars)
    want = sorted((float(r.depth), float(r.raw)) for r in t.loc[t.groupby("model")["raw"].idxmax()].itertuples())
    np.testing.assert_allclose(got, want)


def test_normalised_band_spans_lower_over_upper_to_one():
    t = synthetic_table(2, 1, 5)
    ax = _panels(plot_layers(t, normalised=True))[0]
    lower, upper = t["ceiling_lower"].iloc[0], t["ceiling_upper"].iloc[0]
    assert _band(ax) == pytest.approx((lower / upper, 1.0))
    assert ax.get_ylabel() == "RSA, synthetic\n/ noise ceiling (upper bound)"


def test_mixed_ceilings_band_only_where_there_is_one_and_raw_elsewhere():
    t = synthetic_table(2, 2, 5, ceiling=[True, False])
    panels = _panels(plot_layers(t, normalised=True))
    assert len([p for p in panels[0].patches if isinstance(p, Rectangle)]) == 1
    assert not [p for p in panels[1].patches if isinstance(p, Rectangle)]
    assert "raw" in panels[1].get_ylabel()
    y = _model_lines(panels[1])["model-00"].get_ydata()
    np.testing.assert_allclose(y, t[(t.benchmark == t.benchmark.iloc[-1]) & (t.model == "model-00")]["raw"])


def test_partial_table_plots_what_is_there():
    t = synthetic_table(3, 2, 6)
    bench0 = t["benchmark"].iloc[0]
    t = t[~((t["model"] == "model-01") & (t["benchmark"] == bench0))].copy()  # a missing pair
    t.loc[t.index[:2], ["raw", "normalised"]] = np.nan  # rows without a score
    t["depth"] = np.nan  # no depth column values: fall back to layer_index
    panels = _panels(plot_layers(t))
    assert set(_model_lines(panels[0])) == {"model-00", "model-02"}
    x, _ = _model_lines(panels[0])["model-00"].get_data()
    assert len(x) == 4 and x.max() == pytest.approx(1.0)


def test_max_models_keeps_the_best():
    t = synthetic_table(12, 1, 5)
    fig = plot_layers(t, max_models=3)
    assert set(_model_lines(_panels(fig)[0])) == {"model-00", "model-01", "model-02"}
    assert "best 3 of 12" in fig.get_suptitle()


@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame(columns=["model", "benchmark", "layer", "raw"]), "empty"),
    (pd.DataFrame({"model": ["a"], "layer": ["l"]}), "benchmark"),
    ([1, 2], "DataFrame"),
])
def test_bad_tables_name_the_problem(bad, message):
    with pytest.raises(ResultsTableError, match=message):
        plot_layers(bad)


def test_unknown_model_is_named():
    with pytest.raises(ResultsTableError, match="nope"):
        plot_layers(synthetic_table(2, 1, 3), models=["nope"])


def test_writes_png_and_svg_into_a_missing_folder(tmp_path):
    stem = tmp_path / "not" / "yet" / "layers"
    plot_layers(synthetic_table(2, 2, 4), path=stem)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.parse(svg).getroot().tag.endswith("svg")
    one = tmp_path / "one.pdf"
    plot_layers(synthetic_table(1, 1, 3), path=one)
    assert one.read_bytes()[:4] == b"%PDF" and not one.with_suffix(".png").exists()


def test_readable_at_single_column_width():
    fig = plot_layers(synthetic_table(3, 1, 6))
    assert fig.get_figwidth() == pytest.approx(SINGLE_COLUMN_IN)
    fig.canvas.draw()  # materialise tick labels
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
    assert sizes and min(sizes) >= MIN_FONT_PT


def test_plotting_never_imports_pyplot(tmp_path):
    # pyplot is what opens windows; the figures, the heatmap and the report never import it.
    code = ("import sys\nfrom brainalign.plots.synthetic import synthetic_table\n"
            "from brainalign.plots import plot_layers, plot_heatmap, plot_score_vs\n"
            "t = synthetic_table(2, 2, 4, epochs=2)\nplot_layers(t).savefig(sys.argv[1])\n"
            "plot_heatmap(t).savefig(sys.argv[1])\nplot_score_vs(t).savefig(sys.argv[1])\n"
            "from brainalign.plots.report import build_report\n"
            "print('PYPLOT' if 'matplotlib.pyplot' in sys.modules else 'CLEAN')")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.png")], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "CLEAN"


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_axis_says_which_score_and_the_legend_explains_everything_drawn():
    """A reader needs no code: the y-axis names the metric and the normalisation, the legend names
    each model with its weights and has one entry per band or mark that the figure draws."""
    t = synthetic_table(2, 1, 6).assign(metric="rsa:correlation/spearman")
    t.loc[t["model"] == "model-01", "weights"] = "pretrained"
    fig = plot_layers(t)
    ax = _panels(fig)[0]
    assert ax.get_ylabel() == "RSA, Spearman ρ\n/ noise ceiling (upper bound)"
    assert _legend_texts(fig) == ["model-00 (random weights)", "model-01 (pretrained)",
                                  "95% bootstrap CI (band in the model's colour)",
                                  "noise ceiling (lower–upper bound)", "best layer (in-sample)"]
    raw = plot_layers(t.assign(metric="ridge:pearson/median", ceiling_upper=np.nan, ceiling_lower=np.nan,
                               normalised=np.nan, normalised_ci_low=np.nan, normalised_ci_high=np.nan))
    assert _panels(raw)[0].get_ylabel() == "ridge encoding, Pearson r (median)\n(raw)"
    assert not any("ceiling" in x for x in _legend_texts(raw))  # nothing drawn, nothing listed
    only_upper = plot_layers(t.assign(ceiling_lower=np.nan))
    assert "noise ceiling (upper bound)" in _legend_texts(only_upper)
    assert not [p for p in _panels(only_upper)[0].patches if isinstance(p, Rectangle)]


def test_the_star_sits_at_the_held_out_score_of_the_layer_chosen_on_development_stimuli():
    t = synthetic_table(1, 1, 6)
    t["dev_score"] = -t["layer_index"].astype(float)  # development stimuli choose layer0 …
    t["heldout_score"] = 0.05 + 0.01 * t["layer_index"]  # … whose held-out score is 0.05
    fig = plot_layers(t)
    stars = [ln for ln in _panels(fig)[0].get_lines() if ln.get_marker() == "*"]
    assert len(stars) == 1
    assert (float(stars[0].get_xdata()[0]), float(stars[0].get_ydata()[0])) == pytest.approx((0.0, 0.05))
    assert "chosen layer: held-out score (chosen on dev. stimuli)" in _legend_texts(fig)
    # Raw scores: the held-out score (on the normalised scale) cannot be drawn; the star marks the
    # chosen layer at its plotted value and the legend says so.
    raw = plot_layers(t, normalised=False)
    star = next(ln for ln in _panels(raw)[0].get_lines() if ln.get_marker() == "*")
    assert float(star.get_ydata()[0]) == pytest.approx(t["raw"].iloc[0])
    assert "chosen layer (on dev. stimuli)" in _legend_texts(raw)


def test_a_few_separate_layers_are_points_with_error_bars_not_a_band():
    """The simulator's two stages (filters, response) are not a depth continuum."""
    sim = synthetic_table(1, 1, 2).assign(model="simulator")
    cnn = synthetic_table(1, 1, 5).assign(model="cnn")
    fig = plot_layers(pd.concat([sim, cnn], ignore_index=True))
    ax = _panels(fig)[0]
    assert [c.get_label() for c in ax.containers] == ["simulator"]  # points with error bars
    assert ax.containers[0].lines[0].get_linestyle() == "None"  # not joined
    assert set(_model_lines(ax)) == {"cnn"} and _model_lines(ax)["cnn"].get_linestyle() == "-"
    ribbons = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(ribbons) == 1  # the CNN's only
    assert "95% bootstrap CI (bars: separate layers)" in _legend_texts(fig)


def _named(n: int, names: list[str], model: str = "net") -> pd.DataFrame:
    t = synthetic_table(1, 1, n, seed=4).assign(model=model)
    t["layer"] = [names[i] for i in t["layer_index"]]
    return t


def _star_names(ax) -> list[str]:
    return [a.get_text() for a in ax.texts]


def test_the_x_axis_names_the_layers_and_the_star_says_which_layer_it_is():
    names = ["features.0", "features.3", "features.6", "features.8", "avgpool", "classifier.1", "fc"]
    t = _named(7, names)
    fig = plot_layers(t)
    ax = _panels(fig)[0]
    fig.canvas.draw()
    assert [x.get_text() for x in ax.get_xticklabels()] == names
    assert list(ax.get_xticks()) == pytest.approx(sorted(t["depth"]))
    assert all(x.get_rotation() == 45 for x in ax.get_xticklabels())
    best = t.loc[t["normalised"].idxmax(), "layer"]  # the in-sample best (no dev/held-out split here)
    assert _star_names(ax) == [best]
    assert "layer" in ax.get_xlabel()


def test_many_layers_are_thinned_evenly_and_long_names_shortened():
    names = [f"encoder.blocks.{i}.attention.output" for i in range(60)]
    t = _named(60, names)
    ax = _panels(plot_layers(t))[0]
    labels = [x.get_text() for x in ax.get_xticklabels()]
    assert 2 < len(labels) <= 20  # as many as fit in a 3.5-inch panel
    assert labels[0] == "encoder…n.output" and all(len(s) <= 16 for s in labels)
    ticks = np.asarray(ax.get_xticks())
    assert ticks[0] == pytest.approx(0) and ticks[-1] == pytest.approx(1)
    assert np.ptp(np.diff(ticks)) < 1.5 * np.diff(ticks).min()  # evenly spread
    assert len(_star_names(ax)) == 1


def test_models_with_different_layers_keep_relative_depth_and_each_star_is_named():
    a = _named(4, ["c1", "c2", "c3", "fc"], model="small")
    b = _named(6, [f"block{i}" for i in range(6)], model="big")
    ax = _panels(plot_layers(pd.concat([a, b], ignore_index=True)))[0]
    assert ax.get_xlabel().startswith("relative layer depth")
    assert not {x.get_text() for x in ax.get_xticklabels()} & {"c1", "block0"}
    want = [t.loc[t["normalised"].idxmax(), "layer"] for t in (a, b)]
    assert sorted(_star_names(ax)) == sorted(want)


def test_the_legend_states_the_ci_level():
    t = synthetic_table(1, 1, 5)
    assert "95% bootstrap CI (band in the model's colour)" in _legend_texts(plot_layers(t))
    assert "90% bootstrap CI (band in the model's colour)" in _legend_texts(plot_layers(t.assign(ci_level=0.9)))


@pytest.mark.parametrize("where", [2, 0, 6])  # the chosen layer in the middle, first, last
def test_the_star_name_stays_inside_its_panel_clear_of_the_title(tmp_path, where):
    """The chosen layer is the highest point (the star at the top of the panel): its name is
    still inside the axes, not over the panel title, and not past the panel's sides."""
    names = ["features.0", "features.3", "features.6", "features.8", "avgpool", "classifier.1", "fc"]
    t = _named(7, names)
    t["normalised"] = 0.3 + 0.02 * np.arange(7)
    t.loc[t["layer_index"] == where, "normalised"] = 1.4  # above the ceiling band: the top of the y range
    t[["normalised_ci_low", "normalised_ci_high"]] = np.nan
    t["raw"] = t["normalised"] * t["ceiling_upper"]
    fig = plot_layers(t, path=tmp_path / f"layers{where}.png")
    ax = _panels(fig)[0]
    fig.canvas.draw()
    assert _star_names(ax) == [names[where]]
    name = ax.texts[0].get_window_extent()
    box = ax.get_window_extent()
    assert box.x0 - 0.5 <= name.x0 and name.x1 <= box.x1 + 0.5, (name, box)
    assert box.y0 - 0.5 <= name.y0 and name.y1 <= box.y1 + 0.5, (name, box)
    assert not name.overlaps(ax.title.get_window_extent())


def test_the_star_name_does_not_cross_the_noise_ceiling_line(tmp_path):
    """A chosen layer just under the ceiling (the demo's simulator at 0.92 of it): its name went
    above the star, across the ceiling's line; it goes below the star instead."""
    names = ["c1", "c2", "c3", "c4", "response"]
    t = _named(5, names)
    t["normalised"] = [0.3, 0.35, 0.4, 0.45, 0.95]
    t[["normalised_ci_low", "normalised_ci_high", "ceiling_lower"]] = np.nan  # the upper bound only: a line
    t["raw"] = t["normalised"] * t["ceiling_upper"]
    fig = plot_layers(t, path=tmp_path / "layers.png")
    ax = _panels(fig)[0]
    fig.canvas.draw()
    assert _star_names(ax) == ["response"]
    name = ax.texts[0].get_window_extent()
    ceiling_y = ax.transData.transform((0.0, 1.0))[1]
    assert not name.y0 <= ceiling_y <= name.y1, (name, ceiling_y)
    assert ax.texts[0].xyann[1] < 0  # below its star


def test_two_models_that_chose_one_layer_at_one_score_both_have_a_readable_name(tmp_path):
    """Two stars at the same layer and about the same score: their names (one text in two colours)
    lay on each other and read as one model's; they are stacked apart, both inside the panel."""
    names = ["c1", "c2", "relu2", "fc"]
    a = _named(4, names, model="lenet")
    b = _named(4, names, model="s3")
    for t, top in ((a, 0.60), (b, 0.61)):
        t["normalised"] = [0.2, 0.3, top, 0.25]
        t[["normalised_ci_low", "normalised_ci_high"]] = np.nan
        t["raw"] = t["normalised"] * t["ceiling_upper"]
    fig = plot_layers(pd.concat([a, b], ignore_index=True), path=tmp_path / "two.png")
    ax = _panels(fig)[0]
    fig.canvas.draw()
    assert _star_names(ax) == ["relu2", "relu2"]
    first, second = (x.get_window_extent() for x in ax.texts)
    assert not first.overlaps(second), (first, second)
    box = ax.get_window_extent()
    assert all(box.y0 - 0.5 <= e.y0 and e.y1 <= box.y1 + 0.5 for e in (first, second))
