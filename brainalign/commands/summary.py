"""The closing summary of ``brainalign score``: one line per model × benchmark (× session)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.results.table import SUBSET_NOTE, choose_best, subset_label, versions_apart


def column(table: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` the table has, as numbers (NaN where absent): the schema renamed
    ``ceiling`` → ``ceiling_upper`` and ``ci_low/ci_high`` → ``normalised_ci_low/high``."""
    for n in names:
        if n in table:
            return pd.to_numeric(table[n], errors="coerce")
    return pd.Series(np.nan, index=table.index)


def session_labels(table: pd.DataFrame) -> pd.Series:
    """Each row's session as text: ``"all"`` for pooled rows, ``"–"`` where the benchmark has none."""
    if "session" not in table:
        return pd.Series("–", index=table.index)
    return table["session"].map(lambda s: "–" if s is None or (isinstance(s, float) and np.isnan(s)) else str(s))


def chosen_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The row of the layer chosen per (model, benchmark), then, for a multi-session benchmark,
    the rows of each of its sessions at that same layer and metric (``_per_session`` True).

    The layer is chosen once, on the pooled rows (``session`` "all"), by the table's ``selected``
    column (set by :func:`brainalign.results.choose_best`) where it is there, else by that one
    best-layer rule itself; the per-session rows show each session's score and ceiling there
    (for example the one session of a benchmark that has a noise ceiling).
    """

    t = table.assign(_session=session_labels(table))
    # Missing marks (NaN in a float or object column) are not chosen; no fillna with a bool,
    # which pandas refuses for a float column.
    chosen = t["selected"].map(lambda v: bool(v) if pd.notna(v) else False) if "selected" in t else None
    if chosen is not None and chosen.any():
        sel = t[chosen.to_numpy(bool)].reset_index(drop=True)
    else:
        sel = choose_best(t).reset_index(drop=True)
        if "_session" not in sel:
            sel = sel.assign(_session=session_labels(sel))
    parts = []
    for _, row in sel.iterrows():
        parts.append(row.to_frame().T.assign(_per_session=False))
        if row["_session"] != "all":
            continue
        same = (t["model"] == row["model"]) & (t["benchmark"] == row["benchmark"]) & \
            (t["layer"].astype(str) == str(row["layer"])) & ~t["_session"].isin(["all", "–"])
        if "metric" in t and pd.notna(row.get("metric")):
            same &= t["metric"] == row["metric"]
        parts.append(t[same].assign(_per_session=True))
    if not parts:
        return t.iloc[0:0].assign(_per_session=False)
    return pd.concat(parts, ignore_index=True)


def _f(v: float, nd: int = 3) -> str:
    return "–" if not np.isfinite(v) else f"{v:.{nd}f}"


HELD = "held-out (1 split)"
ALL = "all stimuli [95% CI]"  # the CI belongs to this score, not to the held-out one


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per model × benchmark × session: the layer chosen (and how), its held-out score, its score
    on all stimuli with the bootstrap CI, and the noise ceiling; text columns ready to print."""
    table = versions_apart(table)
    best = chosen_layers(table)
    norm = column(best, "normalised")
    use_norm = norm.notna()
    score = norm.where(use_norm, column(best, "raw"))
    lo = column(best, "normalised_ci_low", "ci_low").where(use_norm, column(best, "raw_ci_low"))
    hi = column(best, "normalised_ci_high", "ci_high").where(use_norm, column(best, "raw_ci_high"))
    held = column(best, "heldout_score")
    upper = column(best, "ceiling_upper", "ceiling")
    lower = column(best, "ceiling_lower")
    selection = best["selection"] if "selection" in best else best.get(
        "selected_on", pd.Series("", index=best.index))
    subsets = {b: subset_label(table[table["benchmark"] == b]) for b in best["benchmark"].unique()}
    rows = []
    for i in best.index:
        ceiling = "none" if not np.isfinite(upper[i]) else (
            f"{_f(lower[i])}–{_f(upper[i])}" if np.isfinite(lower[i]) else f"≤{_f(upper[i])} (upper only)")
        per_session = bool(best.at[i, "_per_session"])
        rows.append({
            # A session's line sits under its pooled line, indented, at the same chosen layer.
            "model": "" if per_session else best.at[i, "model"],
            "benchmark": "" if per_session else best.at[i, "benchmark"] + (
                f" [{subsets[best.at[i, 'benchmark']]}]" if subsets.get(best.at[i, "benchmark"]) else ""),
            "session": f"  └ {best.at[i, '_session']}" if per_session else best.at[i, "_session"],
            "layer": best.at[i, "layer"],
            "chosen on": "same layer as 'all'" if per_session else (
                str(selection[i]) if pd.notna(selection[i]) else ""),
            # Each number says when it is raw r (no ceiling), so a raw session line is not read
            # as comparable with a normalised one beside it.
            HELD: _f(held[i]) + ("" if use_norm[i] or not np.isfinite(held[i]) else " raw"),
            ALL: f"{_f(score[i])} [{_f(lo[i])}, {_f(hi[i])}]" + ("" if use_norm[i] else " raw"),
            "ceiling": ceiling,
        })
    return pd.DataFrame(rows)


def format_summary(table: pd.DataFrame) -> str:
    """The summary as aligned text, with a line saying what the columns mean."""
    s = summary_table(table)
    if s.empty:
        return "no scores"
    # A selection that says why layers cannot be split ("all stimuli (in-sample): a property
    # distribution is …") keeps its head in the column and its reason under the table, where a
    # sentence does not stretch every line.
    parts = s["chosen on"].astype(str).str.partition(": ")
    s = s.assign(**{"chosen on": parts[0]})
    why = [f"{h}: {r}" for h, r in dict(zip(parts[0], parts[2], strict=True)).items() if r]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        body = s.to_string(index=False, justify="left",
                           formatters={c: f"{{:<{max(len(c), s[c].astype(str).str.len().max())}}}".format
                                       for c in s.columns})  # all left: a "-" sign shifts nothing
    # held-out units, as each kind computes them: RSA divides by the upper bound of the ceiling
    # recomputed on the held-out subset (benchmarks/rsa.py `_subset_score`); regression and the
    # simulated V1 by the ceiling of the held-out stimuli (regression.py `_row_stats`,
    # insilico/benchmark.py); rows without a ceiling (fMRI ROI rows, sessions without repeats) stay raw.
    return (body + "\nheld-out (1 split): the chosen layer's score on stimuli not used to choose it (raw "
            "score / upper bound of the noise ceiling of those held-out stimuli; 'raw' where there is no "
            "ceiling), from one seeded split into development and held-out stimuli, without a CI: on a "
            "small stimulus set it moves with the split, by more than the CI of the all-stimuli score; "
            "all stimuli: raw score / upper bound of the noise ceiling on every stimulus ('raw' where there "
            "is no ceiling) with its 95 % bootstrap CI; ceiling: lower–upper bound of the raw score"
            + ("; └ lines: each session of a multi-session benchmark (an fMRI benchmark's: each "
               "region of interest, roi:<name>) at the layer chosen on all sessions pooled"
               if s["session"].str.startswith("  └").any() else "")
            + (f"; [subset: …]: {SUBSET_NOTE}" if s["benchmark"].str.contains("[subset: ", regex=False).any()
               else "")
            + "".join(f"; chosen on {w}" for w in why))
