"""The one table schema, its row builder and the one best-layer rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.results import COLUMNS, LayerScore, RowContext, ScoreResult, choose_best, make_row, make_table


def _ctx(layer: str, i: int, model: str = "m", bench: str = "b") -> RowContext:
    return RowContext(model=model, benchmark=bench, benchmark_version="1", layer=layer, layer_index=i,
                      depth=i / 3, seed=0, weights="random", weights_hash="h", preprocessing="p",
                      mode="eval", versions="v")


def test_make_row_has_exactly_the_schema_and_flags_above_ceiling():
    boot = np.array([0.1, np.nan, 0.2, np.inf, 0.3])
    row = make_row(LayerScore(raw=0.5, metric="x", ceiling_upper=0.4, normalised=1.25,
                              details={"bootstrap_raw": boot}), _ctx("a", 0))
    assert list(row) == COLUMNS
    assert row["above_ceiling"] is True and row["selected"] is False
    assert row["n_bootstrap"] == 3  # finite samples actually used, not the 5 requested
    below = make_row(LayerScore(raw=0.5, metric="x", normalised=0.9), _ctx("a", 0))
    nan = make_row(LayerScore(raw=0.5, metric="x"), _ctx("a", 0))
    assert below["above_ceiling"] is False and nan["above_ceiling"] is False


def _table(rows) -> pd.DataFrame:
    return make_table([make_row(LayerScore(**kw), _ctx(layer, i, **ctx))
                       for i, (layer, kw, ctx) in enumerate(rows)])


def test_best_is_chosen_on_development_scores_and_reported_held_out():
    t = _table([("a", dict(raw=0.9, metric="x", dev_score=0.1, heldout_score=0.5), {}),
                ("b", dict(raw=0.1, metric="x", dev_score=0.3, heldout_score=0.2), {})])
    best = choose_best(t)
    assert isinstance(best, pd.DataFrame) and len(best) == 1
    assert best.loc[0, "layer"] == "b" and best.loc[0, "best_score"] == 0.2
    assert best.loc[0, "selection"] == "development stimuli"
    assert t["selected"].tolist() == [False, True]


def test_one_session_benchmark_has_a_best_layer_and_sessions_do_not_compete_with_the_aggregate():
    one = _table([("a", dict(raw=0.2, metric="x", session="s1"), {}),
                  ("b", dict(raw=0.4, metric="x", session="s1"), {})])
    assert ScoreResult(one).best["layer"].tolist() == ["b"]
    multi = _table([("a", dict(raw=0.9, metric="x", session="s1"), {}),
                    ("a", dict(raw=0.2, metric="x", session="all"), {}),
                    ("b", dict(raw=0.1, metric="x", session="s1"), {}),
                    ("b", dict(raw=0.3, metric="x", session="all"), {}),
                    ("b", dict(raw=5.0, metric="rsa", session="roi:V1"), {})])
    best = choose_best(multi)
    assert best["layer"].tolist() == ["b"] and best["session"].tolist() == ["all"]
    assert multi["selected"].sum() == 1 and multi.loc[multi["selected"], "session"].item() == "all"


def test_in_sample_choice_says_why_and_uses_normalised_before_raw():
    why = "all stimuli (in-sample): distributions cannot be split"
    t = _table([("a", dict(raw=0.9, metric="x", normalised=0.5, selection=why), {}),
                ("b", dict(raw=0.1, metric="x", normalised=0.7, selection=why), {}),
                ("a", dict(raw=0.3, metric="x"), {"model": "m2"})])
    best = choose_best(t).set_index("model")
    assert best.loc["m", "layer"] == "b" and best.loc["m", "best_score"] == pytest.approx(0.7)
    assert best.loc["m", "selection"] == why
    assert best.loc["m2", "selection"].startswith("all stimuli (in-sample)")


def test_empty_or_scoreless_tables_give_an_empty_frame():
    assert choose_best(pd.DataFrame(columns=COLUMNS)).empty
    t = _table([("a", dict(raw=float("nan"), metric="x"), {})])
    assert choose_best(t).empty and not t["selected"].any()
