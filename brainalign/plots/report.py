"""One self-contained static HTML report from a folder of results: leaderboard, figures, provenance.

Everything is inside the file: figures are base64 PNG (or SVG) data URIs, the table sorting is a
few lines of plain JavaScript, and there is no external URL, so it opens offline and can be
mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from brainalign.io import atomic_write_text
from brainalign.plots.curves import plot_score_vs
from brainalign.plots.heatmap import WITHIN_CI_NOTE, best_matrix, normalised_benchmarks, plot_heatmap
from brainalign.plots.layers import plot_layers
from brainalign.plots.style import (
    SAVE_BBOX,
    SUBSET_NOTE,
    best_rows,
    has_ceiling,
    numeric,
    pooled,
    primary_rows,
    save_figure,
    subset_label,
)
from brainalign.plots.tables import ResultsFolder, final_epoch, read_results
from brainalign.results.compare import COMPARE_FILE
from brainalign.results.provenance import FORWARD_STOPPED, benchmark_entries
from brainalign.results.table import DEV_SELECTION, benchmark_id
from brainalign.settings import PathLike

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;
 max-width:1400px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.sub{color:#666;font-size:.9em}.warn{background:#fff6e0;border-left:4px solid #e0a000;padding:6px 10px}
table{border-collapse:collapse;font-size:.85em}th,td{padding:3px 8px;border-bottom:1px solid #eee;
 text-align:right}th{background:#f4f4f4;position:sticky;top:0}td.t,th.t{text-align:left}
.leaderboard th{cursor:pointer;user-select:none}.leaderboard th[data-dir=asc]::after{content:" \\25B2"}
.leaderboard th[data-dir=desc]::after{content:" \\25BC"}details>summary{cursor:pointer;color:#336}
.layer{color:#888;font-size:.8em}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{color:#555;font-size:.85em}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.8em;white-space:pre-wrap}
tr.within-noise td{color:#888}
"""

# Sort on header click; numbers by data-value, missing values last in either direction.
_JS = """
(function(){
  function key(cell,num){
    if(!num){return cell.textContent.trim().toLowerCase();}
    var v=parseFloat(cell.getAttribute('data-value'));
    return isNaN(v)?null:v;
  }
  function sortable(table){
    var heads=table.tHead.rows[0].cells;
    function sortBy(i){
      var th=heads[i],num=th.getAttribute('data-type')==='number';
      var dir=th.getAttribute('data-dir')==='desc'?'asc':'desc';
      if(!th.getAttribute('data-dir')&&!num){dir='asc';}
      for(var j=0;j<heads.length;j++){heads[j].removeAttribute('data-dir');}
      th.setAttribute('data-dir',dir);
      var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=key(a.cells[i],num),y=key(b.cells[i],num);
        if(x===null&&y===null){return 0;} if(x===null){return 1;} if(y===null){return -1;}
        var c=x<y?-1:(x>y?1:0);
        return dir==='asc'?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    }
    for(var i=0;i<heads.length;i++){
      (function(i){heads[i].addEventListener('click',function(){sortBy(i);});})(i);
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.leaderboard'),sortable);
  document.body.setAttribute('data-report-ready','1');
})();
"""


# Embedded PNGs: about REPORT_PX pixels wide (at most REPORT_MAX_DPI) so they stay sharp on a
# high-density screen, shown CSS_PX_PER_IN CSS pixels per figure inch (max-width 100 %): 110 dpi
# gave 385 px for a single-column figure, blurry once a browser enlarged it. A ~1000 px PNG of
# these line plots is 50–150 kB, so a report of a few benchmarks stays under a few MB.
REPORT_PX = 1100
REPORT_MIN_DPI, REPORT_MAX_DPI = 150, 320
CSS_PX_PER_IN = 150


def report_dpi(fig: Figure) -> int:
    """The dpi a report embeds ``fig`` at: about :data:`REPORT_PX` pixels wide, clamped."""
    return int(np.clip(round(REPORT_PX / max(fig.get_figwidth(), 0.1)), REPORT_MIN_DPI, REPORT_MAX_DPI))


def figure_data_uri(fig: Figure, fmt: str = "png", dpi: int | None = None) -> str:
    """The figure as a ``data:`` URI (base64 PNG or SVG), cropped to what is drawn; a PNG at
    ``dpi`` (default :func:`report_dpi`). Returns the URI."""
    return _figure_image(fig, fmt, dpi)[0]


def _figure_image(fig: Figure, fmt: str, dpi: int | None = None) -> tuple[str, int]:
    """(data URI, width in CSS pixels to show it at): the cropped figure's inches × CSS_PX_PER_IN."""
    dpi = dpi or report_dpi(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None, **SAVE_BBOX)
    data = buf.getvalue()
    # A PNG's width is bytes 16–20 of its IHDR; an SVG is drawn at 72 units per inch.
    inches = (int.from_bytes(data[16:20], "big") / dpi if fmt == "png" and data[:8] == b"\x89PNG\r\n\x1a\n"
              else fig.get_figwidth())
    mime = "image/svg+xml" if fmt == "svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", round(inches * CSS_PX_PER_IN)


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _failed_layers(res: ResultsFolder) -> list[tuple[str, str, str, str]]:
    """(model, benchmark, layer, why) for every layer a run could not score, from the metas
    (activations holding NaN/inf, a metric that refused the layer, a forward pass that fails
    part-way, under :data:`FORWARD_STOPPED`): such a layer has no row, so the table alone cannot
    say it is missing."""
    found = []
    for meta in res.metas.values():
        for entry in benchmark_entries(meta)[0]:
            for model, failed in (entry.get("failed_layers") or {}).items():
                found += [(str(model), str(entry.get("benchmark")), str(layer), str(why))
                          for layer, why in (failed or {}).items()]
    return list(dict.fromkeys(found))


def _reduced_layers(t: pd.DataFrame) -> list[str]:
    """``"<model> × <benchmark>: <layers> (<how>)"`` for the layers scored on activations that a
    random projection or a reducer of the user's changed (their ``reduction``). A benchmark's
    own pooling is part of its method and not listed."""
    if "reduction" not in t:
        return []
    kinds = {"sparse_random_projection": "random projection", "custom": "custom reducer"}
    how = t["reduction"].astype(str).str.extract(r'"kind": "([^"]+)"')[0].map(kinds)
    hit = t.assign(_how=how)[how.notna()]
    return [f"{m} × {b}: {', '.join(dict.fromkeys(g['layer'].astype(str)))} "
            f"({', '.join(dict.fromkeys(g['_how']))})"
            for (m, b), g in hit.groupby(["model", "benchmark"], sort=False)]


def _fmt(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return _e(v)
    return "–" if not np.isfinite(f) else f"{f:.3f}"


def _figure_html(fig: Figure, caption: str, fmt: str, alt: str) -> str:
    # Shown at a readable size whatever the PNG's pixel count (which is for sharpness).
    uri, width = _figure_image(fig, fmt)
    return (f'<figure><img alt="{_e(alt)}" style="width:{width}px" src="{uri}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def is_simulated(benchmark: str) -> bool:
    """Whether a benchmark scores against simulated data (ids ``simulated.*``): ranked apart from
    real data, never averaged with it."""
    return str(benchmark).split(".")[0] == "simulated"


def mean_benchmarks(table: pd.DataFrame, benches: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The leaderboard's benchmarks by role: (in the mean: ceiling-normalised, raw-only: shown,
    on a stimulus subset while others are full: shown, not averaged with full-data scores, since a
    subset score is not a paper number). A table of subset runs only keeps its mean, flagged."""
    normed, raw_only = normalised_benchmarks(table[table["benchmark"].isin(benches)])
    subset = [b for b in normed if subset_label(table[table["benchmark"] == b])]
    if len(subset) == len(normed):
        subset = []
    return [b for b in normed if b not in subset], list(raw_only), subset


def mean_description(normed: Sequence[str], raw_only: Sequence[str], subset: Sequence[str] = ()) -> str:
    """What the leaderboard's mean is over, in words: "mean over N normalised benchmark(s);
    raw-only (not in the mean): …; on a stimulus subset (not in the mean): …"."""
    if not normed:
        return ("no mean: no benchmark has a noise ceiling" if len(raw_only) != 1
                else f"mean = the raw score of {raw_only[0]} (no noise ceiling)")
    text = f"mean over {len(normed)} normalised benchmark(s) (score / noise ceiling)"
    text += f"; raw-only, shown but not in the mean: {', '.join(raw_only)}" if raw_only else ""
    return text + (f"; on a stimulus subset, shown but not in the mean: {', '.join(subset)}" if subset else "")


# What each section's numbers are: the leaderboard and the compare section use different scores,
# and each says which (the field's terms, short).
LEADERBOARD_SCORE = ("Score: the held-out score, i.e. the chosen layer's score / noise ceiling (raw where "
                     "there is no ceiling) on stimuli not used to choose the layer; one seeded "
                     "development/held-out split, no CI.")
COMPARE_SCORE = ("Score: the all-stimuli score / noise ceiling (raw where a model has none; column "
                 "score of compare.csv) at each model's chosen layer; CI and p from a paired "
                 "bootstrap over stimuli. Not the leaderboard's held-out score, so the two can order "
                 "close models differently.")


def _true(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0")


def within_noise_pairs(compare: pd.DataFrame) -> dict[tuple[str, frozenset[str]], bool]:
    """(benchmark, {model_a, model_b}) → whether the compare section finds their difference
    within noise on that benchmark (every session row of the pair: ``within_noise``, or where a
    table lacks that column, the CI of the difference containing 0)."""
    out: dict[tuple[str, frozenset[str]], bool] = {}
    for r in compare.to_dict("records"):
        if "within_noise" in r and pd.notna(r["within_noise"]):
            tied = _true(r["within_noise"])
        else:
            lo, hi = pd.to_numeric(pd.Series([r.get("ci_low"), r.get("ci_high")]), errors="coerce")
            tied = bool(lo <= 0 <= hi)
        key = (str(r["benchmark"]), frozenset((str(r["model_a"]), str(r["model_b"]))))
        out[key] = out.get(key, True) and tied
    return out


def leaderboard_html(table: pd.DataFrame, benchmarks: Sequence[str] | None = None,
                     table_id: str = "leaderboard", compare: pd.DataFrame | None = None,
                     partial: dict[tuple[str, str], str] | None = None) -> str:
    """A sortable leaderboard: one row per model, the chosen layer's score per benchmark and the
    mean. The mean and the rank use only the ceiling-normalised benchmarks (one common scale, as
    in Brain-Score); raw-only benchmarks are shown, labelled "(raw)", and left out of the mean.
    Only models scored on every one of those (default: all in the table) get a mean and a rank,
    so every ranked mean is over the same set; the others are listed after them, unranked, with
    the reason in the cell's tooltip. With ``compare`` (compare.csv), a rank gets "≈" where the
    compare section finds this model's difference to the model ranked just above within noise on
    every benchmark of the mean it compared them on. A benchmark scored on a stimulus subset
    (``--max-stimuli``) says so in its header and cells. ``partial``: (model, benchmark) → why a
    pair was scored only in part (a forward pass that fails part-way); its cell says "in part"."""
    scores, layers = best_matrix(table)
    benches = [b for b in scores.columns if benchmarks is None or b in set(benchmarks)]
    scores, layers = scores[benches], layers[benches]
    normed, raw_only, subset_out = mean_benchmarks(table, benches)
    subsets = {b: subset_label(table[table["benchmark"] == b]) for b in benches}
    # Only ceiling-normalised scores share a scale (as in Brain-Score): the mean and the rank use
    # them alone; raw-only benchmarks are shown but never averaged. With no normalised benchmark,
    # a single raw benchmark still ranks its models; several raw ones give no mean.
    in_mean = normed or (raw_only if len(benches) == 1 else [])
    what = mean_description(normed, raw_only, subset_out)
    head = ['<th class="t" data-type="number">rank</th>', '<th class="t" data-type="text">model</th>',
            f'<th data-type="number" title="{_e(what)}; only for models scored on all of them">mean</th>']
    for b in benches:
        label = f"{b} (raw)" if b in raw_only else b
        tips = ["raw score (no noise ceiling): shown, not in the mean"] if b in raw_only and normed else []
        if subsets[b]:
            label += f" [{subsets[b]}]"
            tips.append(SUBSET_NOTE + ("; not in the mean" if b in subset_out else ""))
        tip = f' title="{_e("; ".join(tips))}"' if tips else ""
        head.append(f'<th data-type="number"{tip}>{_e(label)}</th>')
    weights = table.drop_duplicates("model").set_index("model")
    head.append('<th class="t" data-type="text">weights</th>')
    if in_mean:
        complete = scores[in_mean].notna().all(axis=1)
        mean = scores[in_mean].mean(axis=1).where(complete)
    else:
        complete = pd.Series(False, index=scores.index)
        mean = pd.Series(np.nan, index=scores.index)
    order = list(mean[complete].sort_values(ascending=False, kind="stable").index) + \
        list(scores.index[~complete])
    ties = within_noise_pairs(compare) if compare is not None and len(compare) else {}
    rows = []
    for rank, model in enumerate(order, start=1):
        above = order[rank - 2] if rank > 1 and complete[model] else None
        compared = [ties[k] for b in in_mean if (k := (b, frozenset((model, above)))) in ties] if above else []
        if complete[model]:
            if compared and all(compared):
                why = _e(f"≈ {above}: the compare section finds their difference within noise "
                         "(its corrected p ≥ alpha); the data do not order them")
                rank_cell = f'<td class="t" data-value="{rank}" data-tied="true" title="{why}">{rank} ≈</td>'
            else:
                rank_cell = f'<td class="t" data-value="{rank}">{rank}</td>'
            mean_cell = f'<td data-value="{mean[model]:.6g}">{_fmt(mean[model])}</td>'
        else:
            missing = ", ".join(b for b in in_mean if not np.isfinite(scores.loc[model, b]))
            why = _e(f"not scored on every benchmark of this table (missing: {missing}): not ranked"
                     if in_mean else "no benchmark with a noise ceiling: raw scores of different "
                     "benchmarks are not on one scale, so no mean and no rank")
            rank_cell = f'<td class="t" data-value="" title="{why}">–</td>'
            mean_cell = f'<td data-value="" title="{why}">–</td>'
        cells = [rank_cell, f'<td class="t">{_e(model)}</td>', mean_cell]
        for b in benches:
            v = scores.loc[model, b]
            layer = layers.loc[model, b]
            lay = f' <span class="layer">{_e(layer)}</span>' if isinstance(layer, str) else ""
            dv = f"{v:.6g}" if np.isfinite(v) else ""
            sub_tip = f' title="{_e(subsets[b])}: {_e(SUBSET_NOTE)}"' if subsets[b] else ""
            sub_mark = ' <span class="layer">subset</span>' if subsets[b] and np.isfinite(v) else ""
            why_part = (partial or {}).get((model, b))
            if why_part and np.isfinite(v):  # only the layers before the failing module were scored
                sub_mark += f' <span class="layer" title="{_e(why_part)}">in part</span>'
            cells.append(f'<td data-value="{dv}"{sub_tip}>{_fmt(v)}{lay}{sub_mark}</td>')
        w = weights.loc[model, "weights"] if "weights" in weights else ""
        wh = weights.loc[model, "weights_hash"] if "weights_hash" in weights else ""
        wh = str(wh)[:12] if isinstance(wh, str) else ""
        cells.append(f'<td class="t" title="{_e(wh)}">{_e(w if pd.notna(w) else "")}</td>')
        rows.append(f'<tr data-model="{_e(model)}">{"".join(cells)}</tr>')
    return (f'<table id="{_e(table_id)}" class="leaderboard"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def comparison_html(table: pd.DataFrame) -> str:
    """The "which model is better" section: one row per pair of models and benchmark, pairs whose
    difference is within noise (corrected p ≥ alpha: the data do not tell them apart) marked."""
    head = ("benchmark", "model_a", "model_b", "difference", "CI", "p (corrected)", "verdict")
    rows = []
    for _, r in table.iterrows():
        within = str(r.get("within_noise")).strip().lower() in ("true", "1", "1.0")
        sess = r.get("session")
        bench = r["benchmark"] if pd.isna(sess) or str(sess) == "all" else f"{r['benchmark']} ({sess})"
        verdict = "≈ within noise" if within else "differs"
        cells = [f'<td class="t">{_e(bench)}</td>',
                 f'<td class="t">{_e(r["model_a"])} <span class="layer">{_e(r.get("layer_a", ""))}</span></td>',
                 f'<td class="t">{_e(r["model_b"])} <span class="layer">{_e(r.get("layer_b", ""))}</span></td>',
                 f"<td>{_fmt(r['difference'])}</td>",
                 f"<td>[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]</td>",
                 f"<td>{_fmt(r.get('p_corrected'))}</td>",
                 f'<td class="t">{verdict}</td>']
        rows.append(f'<tr class="{"within-noise" if within else "differs"}" '
                    f'data-within-noise="{str(within).lower()}">{"".join(cells)}</tr>')
    method = "; ".join(dict.fromkeys(str(m) for m in table.get("method", pd.Series(dtype=str)).dropna()))
    return (f'<p class="sub" id="compare-score">{_e(COMPARE_SCORE)}</p>'
            '<p class="sub">Each pair of models at their chosen layers: difference of their scores '
            "(first minus second), paired bootstrap CI, p-value corrected for the number of pairs. "
            f"Pairs marked ≈ are within noise: the data do not tell them apart. Method: {_e(method)}.</p>"
            '<table id="comparisons"><thead><tr>'
            + "".join(f'<th class="t">{h}</th>' for h in head)
            + f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def failures_html(failures: pd.DataFrame) -> str:
    """The failed (model, benchmark) pairs of batch runs, with the error of each."""
    rows = "".join(
        f'<tr data-failed="{_e(r.get("model"))}"><td class="t">{_e(r.get("model"))}</td>'
        f'<td class="t">{_e(r.get("benchmark"))}</td><td class="t">{_e(r.get("error_type", ""))}</td>'
        f'<td class="t">{_e(r.get("error", ""))}</td><td class="t">{_e(r.get("source", ""))}</td></tr>'
        for r in failures.to_dict("records"))
    return ('<table id="failures"><thead><tr><th class="t">model</th><th class="t">benchmark</th>'
            '<th class="t">error</th><th class="t">message</th><th class="t">file</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _ceiling_text(sub: pd.DataFrame, short: bool = False) -> str:
    """``lower–upper`` of the first row of ``sub`` that has a ceiling (``short``: without the
    "upper bound only" note); ``none`` without one."""
    if not has_ceiling(sub):
        return "none"
    upper_col = "ceiling_upper" if "ceiling_upper" in sub else "ceiling"
    row = sub[numeric(sub, upper_col).notna()].iloc[0]
    upper, lower = row[upper_col], row.get("ceiling_lower", np.nan)
    if _fmt(lower) != "–":
        return f"{_fmt(lower)}–{_fmt(upper)}"
    return _fmt(upper) if short else f"{_fmt(upper)} (upper bound only)"


def benchmark_settings(t: pd.DataFrame) -> pd.DataFrame:
    """One row per benchmark (and version, and metric) of a results table, for the report's
    Provenance: version, metric, noise ceiling, stimulus count, bootstrap samples, seed.

    The ceiling and stimulus count are those of the pooled rows (``session`` ``all`` or empty)
    where the benchmark has them: its first row was one session's (antolik2016's region1: 40 of
    its 120 stimuli). Each session's own values are listed in ``per session``. A subset run
    (``--max-stimuli``, another ``benchmark_version``) is its own row. Returns a DataFrame with
    columns benchmark, version, metric, ceiling, stimuli, per session, bootstrap, seed.
    """
    keys = ["benchmark"] + [c for c in ("benchmark_version", "metric") if c in t]
    out = []
    for _, sub in t.groupby(keys, sort=False, dropna=False):
        together = sub[pooled(sub)]
        main = together if len(together) else sub  # one-session benchmarks: their only rows

        def first(col: str, rows: pd.DataFrame = main) -> Any:
            return rows[col].dropna().iloc[0] if col in rows and rows[col].notna().any() else "–"
        per_session = "–"
        if len(together) and len(together) < len(sub):  # several sessions besides the pooled row
            per = [f"{s}: ceiling {_ceiling_text(g, short=True)}, {first('n_stimuli', g)} stimuli"
                   for s, g in sub[~pooled(sub)].groupby("session", sort=True)]
            per_session = "; ".join(per)
        out.append({"benchmark": first("benchmark"), "version": first("benchmark_version"),
                    "metric": first("metric"), "ceiling": _ceiling_text(main), "stimuli": first("n_stimuli"),
                    "per session": per_session, "bootstrap": first("n_bootstrap"), "seed": first("seed")})
    return pd.DataFrame(out, columns=["benchmark", "version", "metric", "ceiling", "stimuli", "per session",
                                      "bootstrap", "seed"])


def _settings_json(obj: Any, indent: int = 0) -> str:
    """``obj`` as indented JSON, except that a list of plain values (stimulus ids, α grids) stays
    on one line: ``json.dumps(indent=2)`` gave hIT's 92 stimulus ids a line each."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {_settings_json(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list | tuple) and any(isinstance(v, dict | list | tuple) for v in obj):
        return "[\n" + ",\n".join(f"{inner}{_settings_json(v, indent + 2)}" for v in obj) + f"\n{pad}]"
    return json.dumps(obj, default=str)


def _meta_html(src: str, meta: dict[str, Any], res: ResultsFolder) -> str:
    """One metadata file: each benchmark it describes under its own heading, its own settings."""
    from brainalign.results.provenance import benchmark_entries

    folder = str(Path(src).parent)
    shown = res.root.name if folder == "." else folder  # the report's own folder: by its name
    if not meta:
        said = (f"(settings in the batch run’s provenance.json of {shown})" if folder in res.provenance
                else "(no metadata file)")
        return f"<h3>{_e(src)}</h3><p>{_e(said)}</p>"
    entries, extras = benchmark_entries(meta)
    parts = [f"<h3>{_e(src)}</h3>"]
    if extras:
        parts.append(f"<pre>{_e(_settings_json(extras))}</pre>")
    described = set()
    for e in entries:
        models = list(e["models"]) if isinstance(e.get("models"), dict) else []
        described |= {(m, str(e.get("benchmark"))) for m in models}
        said = f"version {e.get('benchmark_version', '–')}; models: {', '.join(models) or '–'}"
        parts.append(f'<h4 data-benchmark="{_e(e.get("benchmark"))}">{_e(e.get("benchmark"))} ({_e(said)})</h4>'
                     f"<pre>{_e(_settings_json(e))}</pre>")
    # Rows this file does not describe (a batch run's, or a table older than per-benchmark
    # entries): said, so its settings are not read as theirs.
    rows = res.table[res.table["source"] == src] if "source" in res.table else res.table.iloc[:0]
    pairs = sorted(set(zip(rows["model"], map(benchmark_id, rows["benchmark"].astype(str)), strict=True)))
    missing = [f"{m} × {b}" for m, b in pairs if (m, b) not in described]
    if missing and entries:
        where = (f"settings in the batch run’s provenance.json of {shown}" if folder in res.provenance
                 else "settings not recorded in this file")
        parts.append(f'<p class="warn">Not described above ({_e(where)}): {_e(", ".join(missing))}</p>')
    return "".join(parts)


def _provenance_html(res: ResultsFolder) -> str:
    from brainalign.results.provenance import versions

    t = res.table
    settings = benchmark_settings(t)
    parts = ['<h3>Benchmarks</h3><p class="sub">Ceiling and stimuli: all sessions pooled, as scored; '
             'each session’s own under “per session”.</p><table id="benchmark-settings"><thead><tr>'
             + "".join(f'<th class="t">{_e(c)}</th>' for c in settings.columns)
             + "</tr></thead><tbody>"]
    for row in settings.itertuples(index=False):
        parts.append("<tr>" + "".join(f'<td class="t">{_e(v)}</td>' for v in row) + "</tr>")
    parts.append("</tbody></table>")
    if "versions" in t:
        vs = sorted(set(t["versions"].dropna().astype(str)))
        parts.append("<h3>Software that computed the scores</h3>")
        if len(vs) > 1:
            parts.append(f'<p class="warn">The scores were computed with {len(vs)} different '
                         "software versions; compare them with care.</p>")
        parts.append("".join(f"<pre>{_e(v.replace(';', chr(10)))}</pre>" for v in vs))
    for folder, prov in res.provenance.items():
        runs = prov.get("runs", [])
        where = res.root.name if folder == "." else folder  # the report's own folder: by its name
        parts.append(f"<h3>Batch runs in {_e(where)} ({len(runs)})</h3>")
        parts.append(f"<pre>{_e(_settings_json(prov))}</pre>")
    for src, meta in res.metas.items():
        parts.append(_meta_html(src, meta, res))
    if res.other:
        parts.append("<h3>Other files (not score tables)</h3><ul>"
                     + "".join(f"<li>{_e(f)}: {_e(what)}</li>" for f, what in res.other) + "</ul>")
    gen = versions()
    parts.append("<h3>This report was made with</h3><pre>"
                 + _e("\n".join(f"{k}={v}" for k, v in gen.items())) + "</pre>")
    return "".join(parts)


def build_report(results: PathLike | ResultsFolder, out: PathLike | None = None, *,
                 title: str | None = None, max_models: int = 10, fmt: str = "png") -> Path:
    """Write one self-contained HTML report of the results in a folder.

    Parameters
    ----------
    results
        A folder of results tables (``scores.csv`` + ``scores.meta.json`` from
        ``ScoreResult.save``; every CSV under it is read), or a :class:`ResultsFolder`.
    out
        The HTML file to write (default ``<folder>/report.html``); folders are created.
    title
        Page title (default: the folder's name).
    max_models
        Layer plots show the best ``max_models`` models per benchmark (all are in the table).
    fmt
        ``"png"`` or ``"svg"`` for the embedded figures.

    Returns
    -------
    Path of the written file.
    """
    t0 = time.perf_counter()
    res = results if isinstance(results, ResultsFolder) else read_results(results)
    out = Path(out) if out is not None else res.root / "report.html"
    full = primary_rows(res.table)
    t = final_epoch(full)  # a model scored during training is ranked on its last epoch
    title = title or f"brainalign report: {res.root.resolve().name}"
    models, benches = list(dict.fromkeys(t["model"])), list(dict.fromkeys(t["benchmark"]))
    # CSVs brainalign writes that are not score tables (compare.csv, demo RF fits…) are in res.other,
    # listed under provenance, not warned of.
    warn = [f"skipped {f}: {r}" for f, r in res.skipped] + list(res.notes)
    failed = _failed_layers(res)
    warn += [f"not scored: {m} × {b}: {layer}: {why}" for m, b, layer, why in failed]
    partial = {(m, b): why for m, b, layer, why in failed if layer == FORWARD_STOPPED}
    reduced = _reduced_layers(t)
    if reduced:  # a memory budget, --max-features or reducers= changed what was measured: said at the top
        warn.append("scored on reduced activations (the reduction column says how; set by a memory budget, "
                    "--max-features or reducers=): " + "; ".join(reduced))
    with_ceiling, no_ceiling = normalised_benchmarks(t) if len(best_rows(t)) else ([], [])
    if no_ceiling and with_ceiling:
        warn.append("raw scores (no noise ceiling at the chosen, pooled row; left out of the mean): "
                    + ", ".join(no_ceiling))
    # The sections read one row per model, benchmark and layer (pooled sessions, last epoch); say
    # so where the table holds more (per-session rows), or "26 rows" misreads a 65-row scores.csv.
    rows_said = (f"{len(t)} rows" if len(t) == len(res.table) else
                 f"{len(t)} rows shown (one per model, benchmark and layer) of {len(res.table)} in the table")
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="sub">{len(models)} model(s) × {len(benches)} benchmark(s), {rows_said}, '
            f"from {_e(res.root)}; generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}</p>"]
    if warn:
        body.append('<div class="warn">' + "<br>".join(_e(w) for w in warn) + "</div>")
    real = [b for b in benches if not is_simulated(b)]
    simulated = [b for b in benches if is_simulated(b)]
    body += ["<h2>Leaderboard</h2>",
             '<p class="sub">Chosen layer per model and benchmark: score / noise ceiling where the '
             "benchmark has a ceiling, raw score where it has not. The mean and the rank use the "
             "normalised benchmarks only (raw scores are on no common scale) and are only given to "
             "models scored on every one of them, so every mean is over the same set"
             + ("; models scored during training at their last epoch" if "epoch" in full
                and full["epoch"].notna().any() else "") + ". Click a column to sort.</p>",
             f'<p class="sub" id="leaderboard-score">{_e(LEADERBOARD_SCORE)}</p>']
    compare_csv = res.root / COMPARE_FILE
    compare = pd.read_csv(compare_csv) if compare_csv.is_file() else None
    if compare is not None:
        body.append('<p class="sub" id="leaderboard-ties">≈ beside a rank: the "Which model is better" '
                    "section finds this model's difference to the model ranked just above within "
                    "noise on every benchmark of the mean it compared them on (corrected p ≥ alpha): the "
                    "data do not order the two.</p>")
    subsets = {b: s for b in benches if (s := subset_label(t[t["benchmark"] == b]))}
    if subsets:
        body.append('<p class="warn" id="subset-note">'
                    + _e("; ".join(f"{b} [{s}]" for b, s in subsets.items()) + f": {SUBSET_NOTE}.")
                    + "</p>")
    if real:
        body.append(f'<p class="sub" id="leaderboard-mean">'
                    f'{_e(mean_description(*mean_benchmarks(t, real)))}.</p>')
        body.append(leaderboard_html(t, real, "leaderboard", compare, partial))
    if simulated:
        body += ["<h3>Simulated data</h3>",
                 '<p class="sub">Benchmarks on simulated responses (known ground truth) are ranked '
                 "apart from real brain data and never averaged with it.</p>",
                 leaderboard_html(t, simulated, "leaderboard" if not real else "leaderboard-simulated",
                                  compare, partial)]
    if len(res.failures):
        n_models = res.failures["model"].nunique()
        body += [f"<h2>Failed models ({n_models})</h2>",
                 '<p class="sub">Pairs a batch run could not score (from failures.csv; tracebacks in '
                 "errors/ beside it). They are missing from the leaderboard.</p>",
                 failures_html(res.failures)]
    scored = best_rows(t)
    if (scored["selection"] == DEV_SELECTION).any():
        body.append('<p class="sub">Where a benchmark splits its stimuli, the best layer is chosen on '
                    "the development stimuli and the score shown is on the held-out stimuli.</p>")
    if len(scored):
        body.append("<h2>Model × benchmark</h2>")
        fig = plot_heatmap(t)
        body.append(_figure_html(fig, "Chosen-layer held-out scores (as in the leaderboard) / noise ceiling "
                                 "on a fixed 0–1 colour scale "
                                 "(▲: above the ceiling); hatched cells are raw scores of benchmarks "
                                 "without a ceiling, on no common scale and not coloured. Models and "
                                 "benchmarks sorted by mean over the normalised benchmarks; "
                                 f"{WITHIN_CI_NOTE}.", fmt,
                                 "heatmap of best-layer scores"))
    body.append("<h2>Layer by layer</h2>")
    for b in benches:
        sub = t[t["benchmark"] == b]
        n = sub["model"].nunique()
        fig = plot_layers(sub, max_models=max_models)
        cap = (f"{b}: score against relative layer depth; the legend says what each band and mark "
               "is (star: the layer chosen on development stimuli, at its held-out score)."
               + (f" The best {max_models} of {n} models are drawn." if n > max_models else ""))
        body.append(f'<section class="bench" data-benchmark="{_e(b)}">'
                    + _figure_html(fig, cap, fmt, f"layer-by-layer scores on {b}") + "</section>")
    if "epoch" in full and pd.to_numeric(full["epoch"], errors="coerce").notna().any():
        body.append("<h2>Over training</h2>")
        trained = full[pd.to_numeric(full["epoch"], errors="coerce").notna()]
        fig = plot_score_vs(trained, x="epoch")
        body.append(_figure_html(fig, "Score against training epoch, one line per layer "
                                 "(colour: relative depth).", fmt, "score against epoch"))
    if compare is not None:
        body += ["<h2>Which model is better</h2>", comparison_html(compare)]
    n_files = len(res.metas) + len(res.provenance)
    body += ["<h2>Provenance</h2>",
             '<details id="provenance"><summary>Benchmarks, software versions and the settings of '
             f"every run ({n_files} file(s)): click to show</summary>", _provenance_html(res), "</details>"]
    elapsed = time.perf_counter() - t0
    body.append(f'<p class="sub">built in {elapsed:.1f} s</p>')
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_CSS}</style></head><body>{''.join(body)}<script>{_JS}</script></body></html>")
    atomic_write_text(out, page)
    return out


def write_figures(results: PathLike | ResultsFolder, out_dir: PathLike | None = None, *,
                  formats: Sequence[str] = ("png", "svg"), max_models: int = 10) -> list[Path]:
    """Write the report's figures as files: ``layers_<benchmark>``, ``heatmap`` and, where the
    table has an ``epoch`` column, ``epochs`` (default folder ``<results>/figures``, created)."""
    res = results if isinstance(results, ResultsFolder) else read_results(results)
    out = Path(out_dir) if out_dir is not None else res.root / "figures"
    full = primary_rows(res.table)
    t = final_epoch(full)
    written: list[Path] = []
    for b in dict.fromkeys(t["benchmark"]):
        fig = plot_layers(t[t["benchmark"] == b], max_models=max_models)
        written += save_figure(fig, out / f"layers_{_slug(b)}", formats)
    if len(best_rows(t)):
        written += save_figure(plot_heatmap(t), out / "heatmap", formats)
    if "epoch" in full and pd.to_numeric(full["epoch"], errors="coerce").notna().any():
        written += save_figure(plot_score_vs(full[pd.to_numeric(full["epoch"], errors="coerce").notna()]),
                               out / "epochs", formats)
    return written


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
