"""The closing summary of ``brainalign score``: one line per model × benchmark, and for a
multi-session benchmark one more line per session at the layer chosen on the pooled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.commands.summary import format_summary, summary_table
from brainalign.plots.synthetic import synthetic_table
from brainalign.results.table import choose_best


def _multi_session() -> pd.DataFrame:
    """Benchmark 0: one session (none); benchmark 1: pooled rows without a ceiling and two
    sessions, only s2 with a ceiling (as cowley2023.V4: only 210325 has one)."""
    t = synthetic_table(2, 2, 4, seed=2)
    single = t[t["benchmark"] == "synthetic0.region-rsa"]
    multi = t[t["benchmark"] == "synthetic1.region-rsa"].assign(session="all")
    multi[["normalised", "ceiling_lower", "ceiling_upper"]] = np.nan
    s1 = multi.assign(session="s1", raw=multi["raw"] - 0.1)
    s2 = multi.assign(session="s2", raw=multi["raw"] + 0.1, ceiling_upper=0.8,
                      normalised=(multi["raw"] + 0.1) / 0.8)
    table = pd.concat([single, multi, s1, s2], ignore_index=True)
    chosen = choose_best(table)
    key = set(zip(chosen["model"], chosen["benchmark"], chosen["layer"], chosen["session"].fillna("–"),
                  strict=True))
    table["selected"] = [(m, b, lay, s if isinstance(s, str) else "–") in key for m, b, lay, s in
                         zip(table["model"], table["benchmark"], table["layer"], table["session"], strict=True)]
    return table


def test_multi_session_benchmarks_list_each_session_at_the_chosen_layer():
    table = _multi_session()
    s = summary_table(table)
    # 2 models × (1 single-session line + 1 pooled line + 2 session lines).
    assert len(s) == 8
    pooled = s[s["session"] == "all"]
    assert len(pooled) == 2
    for i in pooled.index:
        subs = s.loc[i + 1:i + 2]
        assert list(subs["session"]) == ["  └ s1", "  └ s2"]
        assert (subs["layer"] == pooled.at[i, "layer"]).all()  # the same chosen layer
        model = pooled.at[i, "model"]
        want = table[(table["model"] == model) & (table["session"] == "s2") &
                     (table["layer"] == pooled.at[i, "layer"])]
        assert subs.iloc[1]["score [95% CI]"].startswith(f"{want['normalised'].iloc[0]:.3f}")
        assert subs.iloc[1]["ceiling"].startswith("≤0.800") and subs.iloc[0]["ceiling"] == "none"
    single = s[s["benchmark"] == "synthetic0.region-rsa"]
    assert len(single) == 2 and (single["session"] == "–").all()  # single-session output unchanged
    text = format_summary(table)
    assert "  └ s2" in text and "└ lines" in text


def test_without_a_selected_column_the_layer_is_still_chosen_once_on_the_pooled_rows():
    table = _multi_session().drop(columns="selected")
    s = summary_table(table)
    assert len(s) == 8 and (s["session"].str.startswith("  └")).sum() == 4
