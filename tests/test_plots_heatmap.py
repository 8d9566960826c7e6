"""Model × benchmark heatmap: best-layer values, sorting, annotations, missing pairs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ResultsTableError
from brainalign.plots import plot_heatmap
from brainalign.plots.heatmap import best_matrix
from brainalign.plots.synthetic import synthetic_table


def test_best_matrix_is_the_best_layer_normalised_or_raw_and_sorted():
    t = synthetic_table(5, 3, 6, seed=1, ceiling=[True, False, True])
    t = t.sample(frac=1.0, random_state=0)  # order of rows must not matter
    scores, layers = best_matrix(t)
    for b, sub in t.groupby("benchmark"):
        col = "normalised" if sub["ceiling_upper"].notna().any() else "raw"
        want = sub.groupby("model")[col].max()
        np.testing.assert_allclose(scores[b].loc[want.index], want)
        lay = sub.loc[sub.groupby("model")[col].idxmax()].set_index("model")["layer"]
        assert (layers[b].loc[lay.index] == lay).all()
    # Rows by the mean over the normalised benchmarks only; normalised columns first.
    normed = [b for b in scores.columns if t[t["benchmark"] == b]["ceiling_upper"].notna().any()]
    assert list(scores.columns[:2]) == normed
    assert (np.diff(scores[normed].mean(axis=1).to_numpy()) <= 0).all()
    assert (np.diff(scores[normed].mean(axis=0).to_numpy()) <= 0).all()


def test_cells_are_annotated_with_values_and_missing_pairs_marked():
    t = synthetic_table(3, 2, 5)
    b1 = t["benchmark"].iloc[-1]
    t = t[~((t["model"] == "model-02") & (t["benchmark"] == b1))]
    fig = plot_heatmap(t)
    ax = fig.axes[0]
    texts = [x.get_text() for x in ax.texts]
    scores, _ = best_matrix(t)
    want = [f"{v:.2f}" if np.isfinite(v) else "–" for v in scores.to_numpy().ravel()]
    assert texts == want and "–" in texts
    assert [x.get_text() for x in ax.get_yticklabels()] == list(scores.index)


def test_benchmark_without_ceiling_is_labelled_raw():
    t = synthetic_table(2, 2, 4, ceiling=[True, False])
    labels = [x.get_text() for x in plot_heatmap(t).axes[0].get_xticklabels()]
    assert sum(lbl.endswith("(raw)") for lbl in labels) == 1


def test_empty_table_is_an_error():
    with pytest.raises(ResultsTableError, match="empty"):
        plot_heatmap(synthetic_table(1, 1, 2).iloc[0:0])


def test_session_rows_metrics_and_held_out_choice():
    """Tables from multi-session / fMRI benchmarks: aggregate rows only, one panel per metric, and
    the best layer chosen on development stimuli with its held-out score shown."""
    from brainalign.plots.style import best_rows, primary_rows

    t = synthetic_table(2, 1, 4, ceiling=False)
    t["session"] = "all"
    per_session = t.assign(session="s1", raw=t["raw"] + 5)  # must never win
    rsa = t.assign(metric="rsa:correlation/spearman", raw=t["raw"] / 2)
    t["dev_score"] = -t["layer_index"].astype(float)  # development data prefer layer0
    t["heldout_score"] = 0.1 * t["layer_index"]
    table = pd.concat([t, per_session, rsa], ignore_index=True)
    prim = primary_rows(table)
    assert (prim["session"] == "all").all() and len(prim) == 2 * len(t)
    assert prim["benchmark"].nunique() == 2 and prim["benchmark"].str.contains(r"\[rsa").any()
    best = best_rows(prim)
    enc = best[best["metric"] == "rsa:synthetic"]
    assert (enc["layer"] == "layer0").all() and (enc["best_score"] == 0.0).all()
    assert (enc["selection"] == "development stimuli").all()
    scores, _ = best_matrix(table)
    assert scores.shape == (2, 2)


def test_fixed_scale_spans_zero_to_one_and_bad_scale_is_named():
    t = synthetic_table(3, 2, 5)
    im = plot_heatmap(t).axes[0].images[0]  # the default: normalised scores on a fixed 0-1 scale
    assert im.get_clim() == (0.0, 1.0)
    data = plot_heatmap(t, scale="data").axes[0].images[0].get_clim()
    scores, _ = best_matrix(t)
    assert data == pytest.approx((np.nanmin(scores.to_numpy()), np.nanmax(scores.to_numpy())))
    with pytest.raises(ResultsTableError, match="scale must be"):
        plot_heatmap(t, scale="log")


def test_cells_within_ci_of_the_best_are_outlined():
    from matplotlib.patches import Rectangle

    from brainalign.plots.heatmap import within_ci_of_best

    t = synthetic_table(3, 1, 4, ceiling=False)
    best = t.groupby("model")["raw"].transform("max")
    # model-01's CI reaches up to model-00's best score; model-02's does not.
    t.loc[t["model"] == "model-01", "raw_ci_high"] = best.max() + 0.01
    t.loc[t["model"] == "model-02", "raw_ci_high"] = t["raw"] + 0.001
    tied = within_ci_of_best(t)
    assert tied.iloc[:, 0].to_dict() == {"model-00": True, "model-01": True, "model-02": False}
    fig = plot_heatmap(t)
    boxes = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_linestyle() == "--"]
    rows = sorted(round(b.get_y() + b.get_height() / 2) for b in boxes)
    assert rows == [0, 1]  # the first two rows (sorted best first)
    assert "best score on all stimuli lies inside this model's bootstrap CI" in fig._supxlabel.get_text()


def test_the_outline_compares_scores_on_all_stimuli_with_cis_on_all_stimuli():
    """The cells show held-out scores, which have no CI; the outline compares the best all-stimuli
    score with each model's all-stimuli CI. It compared the best held-out score with them: a
    held-out score above every all-stimuli CI left every other model unmarked."""
    from brainalign.plots.heatmap import within_ci_of_best

    t = synthetic_table(2, 1, 3, seed=1)
    t["dev_score"], t["heldout_score"] = t["normalised"], t["normalised"]
    best = t.groupby("model")["normalised"].max()
    top, other = best.idxmax(), best.idxmin()
    t.loc[t["model"] == other, "normalised_ci_high"] = best[top] + 0.01  # holds the best all-stimuli score
    t.loc[t["model"] == top, "heldout_score"] = best[top] + 0.5  # far above every CI
    assert within_ci_of_best(t).loc[other].all() and within_ci_of_best(t).loc[top].all()
    t.loc[t["model"] == other, "normalised_ci_high"] = best[top] - 0.01  # now short of it
    assert not within_ci_of_best(t).loc[other].any()


def _mixed_table():
    """Two normalised benchmarks and one whose pooled session has no ceiling (as cowley2023.V4:
    only one session has a ceiling) and whose raw scores are larger than the normalised ones."""
    t = synthetic_table(2, 3, 4, seed=3)
    t["session"] = "all"
    pooled = t["benchmark"] == "synthetic2.region-rsa"
    cols = ["normalised", "normalised_ci_low", "normalised_ci_high", "ceiling_lower", "ceiling_upper"]
    t.loc[pooled, cols] = np.nan
    t.loc[pooled, "raw"] += 0.35
    one = t[pooled].assign(session="s1", ceiling_upper=0.6, normalised=t.loc[pooled, "raw"] / 0.6)
    return pd.concat([t, one], ignore_index=True)


def test_raw_cells_are_hatched_not_coloured_and_normalised_on_a_fixed_scale():
    from brainalign.plots.heatmap import normalised_benchmarks

    t = _mixed_table()
    assert normalised_benchmarks(t) == (["synthetic0.region-rsa", "synthetic1.region-rsa"],
                                        ["synthetic2.region-rsa"])
    fig = plot_heatmap(t)
    ax = fig.axes[0]
    im = ax.images[0]
    scores, _ = best_matrix(t)
    assert list(scores.columns)[-1] == "synthetic2.region-rsa"  # raw column last
    arr = im.get_array()
    assert arr.mask[:, -1].all() and not arr.mask[:, :-1].any()  # raw: not on the colour scale
    assert im.get_clim() == (0.0, 1.0)
    assert sum(1 for p in ax.patches if p.get_hatch()) == 2
    texts = [x.get_text() for x in ax.texts]
    assert sum(x.endswith(" raw") for x in texts) == 2
    assert "hatched: raw score" in fig._supxlabel.get_text()


def test_normalised_scores_above_one_are_flagged():
    t = synthetic_table(2, 1, 3)
    t.loc[t["model"] == "model-00", "normalised"] = 1.2
    fig = plot_heatmap(t)
    texts = [x.get_text() for x in fig.axes[0].texts]
    assert "1.20▲" in texts and "above the noise ceiling" in fig._supxlabel.get_text()


def test_long_column_labels_leave_the_cells_their_height(tmp_path):
    """Two versions of a benchmark (two --max-stimuli sizes): their labels, id + version + subset,
    were one long sloped line each and squeezed the cells to a strip a few pixels high."""
    a = synthetic_table(2, 1, 4, seed=1)
    b = synthetic_table(2, 1, 4, seed=2).assign(model=lambda d: d["model"] + "-b")
    a["benchmark_version"], b["benchmark_version"] = "1+max_stimuli=40", "1+max_stimuli=60"
    fig = plot_heatmap(pd.concat([a, b], ignore_index=True), path=tmp_path / "h.png")
    fig.draw_without_rendering()  # the constrained layout, on the figure's own size
    renderer = fig._get_renderer()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert all("(version 1+max_stimuli=" in x and "[subset: " in x for x in labels)
    assert max(len(line) for x in labels for line in x.split("\n")) <= 40  # one short line per part
    cells_in = ax.get_window_extent(renderer).height / fig.dpi
    assert cells_in >= 0.16 * 4, cells_in  # at least the 0.16 in per model of a plain heatmap
    for t in ax.get_xticklabels():  # the labels fit the figure, below the cells
        box = t.get_window_extent(renderer)
        assert box.y0 >= 0 and box.y1 <= ax.get_window_extent(renderer).y0 + 1
