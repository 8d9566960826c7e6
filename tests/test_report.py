"""The HTML report: read a results folder, write one self-contained page, open it in chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainalign.errors import ResultsTableError
from brainalign.plots.report import build_report, write_figures
from brainalign.plots.synthetic import synthetic_table
from brainalign.plots.tables import read_results
from brainalign.results import ScoreResult

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def results_dir(tmp_path):
    """Two result files (one in a sub-folder, one with an epoch column), a CSV that is not a
    results table, and a benchmark without a ceiling."""
    root = tmp_path / "results"
    t = synthetic_table(4, 2, 6, ceiling=[True, False])
    ScoreResult(t, meta={"benchmark": "synthetic", "citation": ["A (2020)"]}).save(root)
    trained = synthetic_table(1, 1, 4, epochs=3, seed=2).assign(model="trained-net")
    ScoreResult(trained, meta={"trainer": "sgd"}).save(root / "trained", "scores")
    pd.DataFrame({"a": [1]}).to_csv(root / "notes.csv", index=False)
    return root


def test_read_results_reads_every_csv_and_says_what_it_skipped(results_dir):
    res = read_results(results_dir)
    assert set(res.table["model"]) == {"model-00", "model-01", "model-02", "model-03", "trained-net"}
    assert set(res.metas) == {"scores.csv", "trained/scores.csv"}
    assert res.metas["trained/scores.csv"] == {"trainer": "sgd"}
    assert res.skipped == [("notes.csv", "not a results table: lacks column(s) ['model', 'benchmark', "
                                         "'layer', 'raw']")]


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no \\*.csv"),
])
def test_bad_folders_are_named(tmp_path, setup, message):
    with pytest.raises(ResultsTableError, match=message):
        read_results(setup(tmp_path))


def test_duplicated_rows_are_kept_once_and_noted(tmp_path):
    t = synthetic_table(2, 1, 3)
    ScoreResult(t).save(tmp_path, "a")
    ScoreResult(t).save(tmp_path, "b")
    res = read_results(tmp_path)
    assert len(res.table) == len(t) and any("more than one file" in n for n in res.notes)


def test_report_is_self_contained_with_every_model(results_dir):
    page = build_report(results_dir).read_text()
    assert page.startswith("<!DOCTYPE html>")
    # No external resource: every src/href is a data URI or an in-page anchor.
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert refs and all(r.startswith("data:image/") or r.startswith("#") for r in refs)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
    rows = re.findall(r'<tr data-model="([^"]+)"', page)
    assert sorted(rows) == ["model-00", "model-01", "model-02", "model-03", "trained-net"]
    assert page.count('<section class="bench"') == 2
    assert "Over training" in page and "skipped notes.csv" in page
    assert "raw scores (no noise ceiling at the chosen, pooled row" in page
    assert "trainer" in page and "A (2020)" in page


def test_svg_figures_and_the_figure_files(results_dir, tmp_path):
    one = tmp_path / "one"
    ScoreResult(synthetic_table(1, 1, 3)).save(one)
    page = build_report(one, tmp_path / "r.html", fmt="svg").read_text()
    assert "data:image/svg+xml;base64," in page and "data:image/png" not in page
    out = tmp_path / "no" / "such" / "figures"
    written = write_figures(results_dir, out, formats=("png",))
    assert {p.name for p in written} == {"layers_synthetic0.region-rsa.png", "layers_synthetic1.region-rsa.png",
                                         "heatmap.png", "epochs.png"}
    assert all(p.stat().st_size > 1000 for p in written)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brainalign.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_report_and_plot(tmp_path):
    small = tmp_path / "small"
    ScoreResult(synthetic_table(2, 1, 4)).save(small)
    proc = _cli("report", str(small), "--out", str(tmp_path / "x" / "report.html"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x" / "report.html").stat().st_size > 10_000
    proc = _cli("plot", str(small), "--format", "svg")
    assert proc.returncode == 0, proc.stderr
    assert (small / "figures" / "heatmap.svg").exists()
    proc = _cli("report", str(tmp_path / "nowhere"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = _cli("plot", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "no *.csv" in proc.stderr


# --- a real browser -------------------------------------------------------------------------------

def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; .ci/run does this)")
    return exe


# Injected before the report's own code: records console errors and uncaught exceptions in the
# DOM, then (after the report's script ran) clicks the "model" header twice and records the order.
_PROBE_HEAD = """<script>
window.__errs=[];
var _ce=console.error;
console.error=function(){window.__errs.push([].join.call(arguments,' '));_ce.apply(console,arguments);};
window.addEventListener('error',function(e){window.__errs.push('uncaught: '+e.message);});
</script>"""
_PROBE_TAIL = """<script>
window.addEventListener('load',function(){
  var th=document.querySelectorAll('#leaderboard th')[1]; th.click(); th.click();
  var first=document.querySelector('#leaderboard tbody tr').getAttribute('data-model');
  var m=document.createElement('div'); m.id='probe';
  m.setAttribute('data-errors', JSON.stringify(window.__errs)); m.setAttribute('data-first', first);
  m.setAttribute('data-images', String(document.querySelectorAll('img').length));
  var broken=Array.prototype.filter.call(document.images,function(i){return !(i.complete&&i.naturalWidth>0);});
  m.setAttribute('data-broken', String(broken.length));
  document.body.appendChild(m);
});
</script>"""


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(profile)})


def test_report_in_headless_chromium(results_dir, tmp_path):
    exe = _chromium()
    page = build_report(results_dir)
    probe = tmp_path / "probe.html"
    text = page.read_text()
    probe.write_text(text.replace("<head>", "<head>" + _PROBE_HEAD, 1).replace("</body>", _PROBE_TAIL + "</body>"))
    proc = _run_chromium(exe, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom",
                         probe.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert not [ln for ln in console if "Uncaught" in ln or "rror" in ln], console
    assert 'data-report-ready="1"' in dom  # the report's script ran to its end
    m = re.search(r'<div id="probe"[^>]*>', dom)
    assert m, "the probe did not run"
    probe_tag = m.group(0)
    assert 'data-errors="[]"' in probe_tag
    assert 'data-broken="0"' in probe_tag and 'data-images="4"' in probe_tag
    # Clicking "model" twice sorts descending by name.
    assert 'data-first="trained-net"' in probe_tag
    board = dom[dom.index('id="leaderboard"'):]
    board = board[:board.index("</table>")]
    rows = re.findall(r'<tr data-model="([^"]+)"', board)
    assert rows == sorted(rows, reverse=True) and len(rows) == 5
    # The page itself (not the probe): a screenshot as a test artefact.
    shot = tmp_path / "report.png"
    proc = _run_chromium(exe, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,1600",
                         "--virtual-time-budget=3000", page.as_uri())
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", proc.stderr[-2000:]
    assert not [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln and "Uncaught" in ln]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")


def test_empty_and_partial_tables(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    synthetic_table(1, 1, 2).iloc[0:0].to_csv(empty / "scores.csv", index=False)
    with pytest.raises(ResultsTableError, match="no usable results table.*no rows"):
        read_results(empty)
    similarity = tmp_path / "similarity"  # only another command's output: named, with what it is
    similarity.mkdir()
    (similarity / "similarity.csv").write_text("layer_a \\ layer_b,fc\nfc,1.0\n")
    with pytest.raises(ResultsTableError, match=r"among 1 CSV file\(s\): similarity.csv: layer-by-layer "
                                                r"model similarity \(brainalign similarity\), not scores$"):
        read_results(similarity)
    partial = tmp_path / "partial"
    t = synthetic_table(3, 2, 4)
    t.loc[t["model"] == "model-02", ["raw", "normalised"]] = float("nan")  # failed everywhere
    t.loc[t.index[:2], ["raw", "normalised"]] = float("nan")
    ScoreResult(t).save(partial)
    page = build_report(partial).read_text()
    assert "have no score and are not plotted" in page
    rows = re.findall(r'<tr data-model="([^"]+)"', page)
    assert sorted(rows) == ["model-00", "model-01", "model-02"] and rows[-1] == "model-02"  # listed, last


# --- what a reader sees: ranking on one set of benchmarks, failed models, collapsed provenance -----

@pytest.fixture
def batch_folder(tmp_path):
    """A batch output folder as run_batch leaves it: scores, failures.csv, provenance.json; one
    model missing a benchmark, a simulated benchmark, a benchmark with an upper ceiling only."""
    root = tmp_path / "batch"
    t = synthetic_table(3, 2, 4)
    t = t[~((t["model"] == "model-00") & (t["benchmark"] == "synthetic1.region-rsa"))]  # missing pair
    sim = synthetic_table(2, 1, 3, seed=4).assign(benchmark="simulated.V1-ridge", ceiling_lower=np.nan)
    ScoreResult(pd.concat([t, sim], ignore_index=True)).save(root)
    pd.DataFrame([{"model": "broken-net", "benchmark": "synthetic0.region-rsa", "error_type": "ForwardError",
                   "error": "forward pass failed in layer '0'", "key": "k"}]).to_csv(root / "failures.csv",
                                                                                      index=False)
    (root / "provenance.json").write_text(json.dumps({"runs": [{"settings": {"memory_budget": 2500000000},
                                                                "argv": ["brainalign", "batch"]}]}))
    return root


def test_the_mean_and_rank_are_over_one_set_of_benchmarks_and_simulated_data_apart(batch_folder):
    page = build_report(batch_folder).read_text()
    board = page[page.index('id="leaderboard"'):]
    board = board[:board.index("</table>")]
    rows = re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', board)
    # model-00 lacks a benchmark: listed last, without a rank or a mean, and says why.
    assert [m for m, _ in rows][-1] == "model-00"
    cells = dict(rows)
    assert "not scored on every benchmark of this table (missing: synthetic1.region-rsa): not ranked" in \
        cells["model-00"]
    assert re.search(r'data-value="1">1</td>', cells["model-01"])  # ranked first among the complete ones
    assert "simulated.V1-ridge" not in board  # simulated data are not averaged with real data
    sim = page[page.index('id="leaderboard-simulated"'):]
    assert "simulated.V1-ridge" in sim[:sim.index("</table>")] and "Simulated data" in page
    # A missing lower ceiling is not drawn as "––0.6".
    assert "––" not in page and "(upper bound only)" in page


def test_failed_models_are_listed_and_provenance_is_collapsed(batch_folder):
    page = build_report(batch_folder).read_text()
    assert "Failed models (1)" in page
    fails = page[page.index('<table id="failures"'):]
    fails = fails[:fails.index("</table>")]
    assert 'data-failed="broken-net"' in fails and "ForwardError" in fails and "layer &#x27;0&#x27;" in fails
    assert "skipped failures.csv" not in page  # read as failures, not as a broken results table
    # Provenance (raw JSON included) sits inside one closed <details>.
    prov = page[page.index('<details id="provenance">'):]
    assert "<pre>" not in page[:page.index('<details id="provenance">')]
    assert "memory_budget" in prov[:prov.index("</details>")] and " open" not in prov[:30]


_PROBE_LAYOUT = """<script>
window.addEventListener('load',function(){
  var d=document.getElementById('provenance'), m=document.createElement('div'); m.id='probe';
  m.setAttribute('data-open', String(d.open));
  m.setAttribute('data-prov-height', String(d.getBoundingClientRect().height));
  m.setAttribute('data-page-height', String(document.documentElement.scrollHeight));
  m.setAttribute('data-failed', Array.prototype.map.call(document.querySelectorAll('#failures tr[data-failed]'),
    function(r){return r.getAttribute('data-failed')+':'+(r.getBoundingClientRect().height>0);}).join(','));
  d.open=true; m.setAttribute('data-prov-open-height', String(d.getBoundingClientRect().height));
  document.body.appendChild(m);
});
</script>"""


def test_collapsed_provenance_and_failed_models_in_headless_chromium(batch_folder, tmp_path):
    exe = _chromium()
    page = build_report(batch_folder)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", _PROBE_LAYOUT + "</body>"))
    proc = _run_chromium(exe, tmp_path / "profile", "--virtual-time-budget=5000", "--window-size=1200,1600",
                         "--dump-dom", probe.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    tag = re.search(r'<div id="probe"[^>]*>', proc.stdout).group(0)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag))
    assert attrs["open"] == "false"
    assert attrs["failed"] == "broken-net:true"  # the failed model is on the page, visible
    closed, opened = float(attrs["prov-height"]), float(attrs["prov-open-height"])
    assert closed < 40 < opened  # one summary line until the reader asks for it
    assert closed < 0.05 * float(attrs["page-height"])


def test_raw_only_benchmarks_are_shown_but_not_in_the_mean_or_the_rank(tmp_path):
    """A benchmark whose pooled session has no ceiling (raw, larger numbers) must not enter the
    mean of ceiling-normalised scores, nor the rank; the page says what the mean is over."""
    t = synthetic_table(2, 3, 4, seed=3)
    raw_b = "synthetic2.region-rsa"
    pooled = t["benchmark"] == raw_b
    t.loc[pooled, ["normalised", "normalised_ci_low", "normalised_ci_high", "ceiling_lower",
                   "ceiling_upper"]] = np.nan
    # On the raw benchmark model-01 is far ahead; on the normalised ones model-00 is best.
    t.loc[pooled & (t["model"] == "model-01"), "raw"] += 5.0
    ScoreResult(t).save(tmp_path / "mixed")
    page = build_report(tmp_path / "mixed").read_text()
    board = page[page.index('id="leaderboard"'):]
    board = board[:board.index("</table>")]
    rows = dict(re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', board))
    best = t[~pooled].groupby(["model", "benchmark"])["normalised"].max().groupby("model").mean()
    for model, cells in rows.items():
        mean = float(re.findall(r'<td data-value="([^"]*)">', cells)[0])
        assert mean == pytest.approx(best[model], rel=1e-5)
    assert re.search(r'data-value="1">1</td>', rows["model-00"])
    assert f"{raw_b} (raw)" in board
    assert f"mean over 2 normalised benchmark(s) (score / noise ceiling); raw-only, shown but not in " \
        f"the mean: {raw_b}" in page


# --- what each section's score is, ties from compare.csv, subsets, warnings that read right --------

def _board(page: str) -> dict[str, str]:
    board = page[page.index('id="leaderboard"'):]
    return dict(re.findall(r'<tr data-model="([^"]+)">(.*?)</tr>', board[:board.index("</table>")]))


def test_each_section_names_its_score_and_the_leaderboard_marks_ties_found_by_compare(tmp_path):
    """The leaderboard ranks by held-out score, the compare section by the all-stimuli score with a
    paired bootstrap: each says which, and a rank the compare section cannot support gets "≈"."""
    t = synthetic_table(3, 1, 4, seed=5)
    ScoreResult(t).save(tmp_path / "r")
    order = list(t.groupby("model")["normalised"].max().sort_values(ascending=False).index)
    bench = t["benchmark"].iloc[0]

    def row(a: str, b: str, lo: float, hi: float, within: bool) -> dict:
        return {"benchmark": bench, "session": "all", "model_a": a, "layer_a": "l", "model_b": b,
                "layer_b": "l", "difference": (lo + hi) / 2, "ci_low": lo, "ci_high": hi, "p": 0.5,
                "p_corrected": 0.5 if within else 0.001, "within_noise": within, "n_bootstrap": 10,
                "method": "paired bootstrap over stimuli", "score": "normalised"}
    # 2nd vs 1st: CI contains 0 (tied); 3rd vs 2nd: told apart.
    pd.DataFrame([row(order[0], order[1], -0.05, 0.14, True), row(order[1], order[2], 0.1, 0.3, False),
                  row(order[0], order[2], 0.2, 0.4, False)]).to_csv(tmp_path / "r" / "compare.csv", index=False)
    page = build_report(tmp_path / "r").read_text()
    rows = _board(page)
    assert 'data-tied="true"' in rows[order[1]] and ">2 ≈</td>" in rows[order[1]]
    assert "≈" not in rows[order[0]] and "≈" not in rows[order[2]]
    assert order[0] in re.search(r'data-tied="true" title="([^"]*)"', rows[order[1]]).group(1)
    lead = re.search(r'id="leaderboard-score">(.*?)</p>', page).group(1)
    assert "held-out score" in lead and "no CI" in lead and "development/held-out split" in lead
    comp = re.search(r'id="compare-score">(.*?)</p>', page).group(1)
    assert "all-stimuli score / noise ceiling" in comp and "paired bootstrap over stimuli" in comp
    assert "within noise" in re.search(r'id="leaderboard-ties">(.*?)</p>', page).group(1)
    # Without compare.csv, no tie marks and no tie caption; every other cell as with it (a tied
    # rank keeps its own mean, not the mean of the model above it).
    (tmp_path / "r" / "compare.csv").unlink()
    page = build_report(tmp_path / "r").read_text()
    assert "data-tied" not in page and "leaderboard-ties" not in page
    untied = _board(page)
    for m in order:
        assert re.findall(r"<td[^>]*>.*?</td>", rows[m])[1:] == re.findall(r"<td[^>]*>.*?</td>", untied[m])[1:]


def test_a_stimulus_subset_is_flagged_in_the_leaderboard_heatmap_and_layer_plot(tmp_path, data_dir):
    """A real `brainalign score --max-stimuli 25` run: every table and figure says it is a subset."""
    from brainalign.plots.heatmap import plot_heatmap
    from brainalign.plots.layers import plot_layers

    out = tmp_path / "sub"
    run = _cli("score", "--model", "zoo:lenet5", "--benchmark", "cowley2023.V4-ridge", "--max-stimuli", "25",
               "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out))
    assert run.returncode == 0, run.stderr
    page = build_report(out).read_text()
    head = page[page.index('id="leaderboard"'):]
    head = head[:head.index("</thead>")]
    assert "cowley2023.V4-ridge (raw) [subset: 25 stimuli/session]" in head
    assert "subset" in _board(page)["zoo:lenet5"]
    assert "not a paper number" in re.search(r'id="subset-note">(.*?)</p>', page).group(1)
    t = read_results(out).table
    titles = [ax.get_title() for ax in plot_layers(t).axes]
    assert any("subset: 25 stimuli/session" in s and "not a paper number" in s for s in titles), titles
    fig = plot_heatmap(t)
    ticks = [x.get_text() for x in fig.axes[0].get_xticklabels()]
    assert any("subset: 25 stimuli/session" in s for s in ticks), ticks
    assert "not a paper number" in fig.get_supxlabel()


def test_the_raw_score_warning_names_the_raw_benchmarks_after_the_words_for_them(tmp_path):
    t = synthetic_table(2, 2, 4, seed=3)
    raw_b = "synthetic1.region-rsa"
    t.loc[t["benchmark"] == raw_b, ["normalised", "normalised_ci_low", "normalised_ci_high",
                                    "ceiling_lower", "ceiling_upper"]] = np.nan
    ScoreResult(t).save(tmp_path / "mixed")
    page = build_report(tmp_path / "mixed").read_text()
    warn = re.search(r'<div class="warn">(.*?)</div>', page).group(1)
    assert f"raw scores (no noise ceiling at the chosen, pooled row; left out of the mean): {raw_b}" in warn
    assert "the others score / ceiling" not in page


def test_folders_brainalign_wrote_raise_no_spurious_warnings(batch_folder, tmp_path):
    """A batch folder's settings are in provenance.json; a demo folder's rf_gabor_fits.csv is a
    known non-score table: neither is warned of (the fits are listed under provenance)."""
    (batch_folder / "scores.meta.json").unlink()  # run_batch writes scores.csv + provenance.json only
    page = build_report(batch_folder).read_text()
    assert "no scores.meta.json beside it" not in page
    assert "settings in the batch run’s provenance.json" in page
    demo = tmp_path / "demo"
    run = _cli("demo", "--out", str(demo), "--cells", "8", "--stimuli", "40", "--repeats", "2",
               "--noise-frames", "300")
    assert run.returncode == 0, run.stderr
    assert (demo / "rf_gabor_fits.csv").is_file()
    res = read_results(demo)
    assert not res.skipped and ("rf_gabor_fits.csv", res.other[0][1]) in res.other
    page = build_report(demo).read_text()
    assert '<div class="warn">' not in page or "rf_gabor_fits.csv: not a results table" not in page
    assert "Other files (not score tables)" in page and "rf_gabor_fits.csv" in page
    # A CSV that is no brainalign file is still warned of.
    pd.DataFrame({"a": [1]}).to_csv(demo / "mine.csv", index=False)
    assert "skipped mine.csv: not a results table" in build_report(demo).read_text()


def test_the_dashed_outline_is_described_once_as_computed(tmp_path):
    """within_ci_of_best marks a model whose CI contains the best score, even when the best
    model's CI does not contain this model's score; figure note and report caption say exactly that."""
    from brainalign.plots.heatmap import WITHIN_CI_NOTE, plot_heatmap, within_ci_of_best

    t = synthetic_table(2, 1, 3, seed=1)
    best = t.groupby("model")["normalised"].max()
    top, other = best.idxmax(), best.idxmin()
    o = (t["model"] == other)
    # other's CI is wide enough to hold the best score; the best's CI is too narrow to hold other's.
    t.loc[o, "normalised_ci_high"] = best[top] + 0.01
    t.loc[t["model"] == top, ["normalised_ci_low", "normalised_ci_high"]] = [best[top] - 1e-3, best[top] + 1e-3]
    assert within_ci_of_best(t).loc[other].all()
    assert "best score on all stimuli lies inside this model's bootstrap CI" in WITHIN_CI_NOTE
    assert WITHIN_CI_NOTE in plot_heatmap(t).get_supxlabel()
    ScoreResult(t).save(tmp_path / "r")
    page = build_report(tmp_path / "r").read_text()
    assert WITHIN_CI_NOTE.replace("'", "&#x27;") in page
    assert "within CI of the best model" not in page


def test_a_subset_benchmark_is_shown_but_never_averaged_with_full_data_scores():
    """The leaderboard's mean took a `--max-stimuli` subset score and a full-data score together
    (the fresh user's hIT + antolik subset folder): a subset benchmark is now shown, flagged and
    left out of the mean while a full benchmark is there; a table of subset runs only keeps its
    mean, flagged in the headers."""
    from brainalign.plots.report import leaderboard_html, mean_benchmarks, mean_description

    t = synthetic_table(3, 2, 4, seed=7)
    full, sub = sorted(t["benchmark"].unique())
    t.loc[t["benchmark"] == sub, "benchmark_version"] = "1+max_stimuli=40"
    roles = mean_benchmarks(t, [full, sub])
    assert roles == ([full], [], [sub])
    assert f"on a stimulus subset, shown but not in the mean: {sub}" in mean_description(*roles)
    rows = _board(leaderboard_html(t, [full, sub]))
    for cells in rows.values():
        values = re.findall(r'<td[^>]*data-value="([^"]*)"', cells)
        mean, full_score, sub_score = (float(v) for v in values[1:4])
        assert mean == pytest.approx(full_score) and mean != pytest.approx((full_score + sub_score) / 2)
    t.loc[t["benchmark"] == full, "benchmark_version"] = "1+max_stimuli=40"
    assert mean_benchmarks(t, [full, sub]) == ([full, sub], [], [])


def test_the_header_says_how_many_rows_it_shows_of_a_per_session_table(tmp_path):
    """A table with per-session rows: the header's count is of the rows the sections read (one
    per model, benchmark and layer), said as such, with the table's own count beside it."""
    t = synthetic_table(2, 1, 3, seed=3).assign(session="all")
    both = pd.concat([t, t.assign(session="s1", selected=False)], ignore_index=True)
    ScoreResult(both).save(tmp_path / "r")
    page = build_report(tmp_path / "r").read_text()
    assert f"{len(t)} rows shown (one per model, benchmark and layer) of {len(both)} in the table" in page
    ScoreResult(t).save(tmp_path / "one")
    assert f"benchmark(s), {len(t)} rows, from" in build_report(tmp_path / "one").read_text()


def test_the_report_says_which_layers_were_scored_on_reduced_activations(tmp_path, hit_benchmark):
    """A projection or a reducer of the user's changes what is measured: the report says which
    layers, and how, at the top (a benchmark's own pooling is its method, not listed)."""
    import torch
    from torch import nn

    import brainalign as ba
    from brainalign.activations import RandomProjection

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, stride=2), nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2), nn.Flatten())
    model = ba.wrap(net, name="tiny", input_size=32)
    res = ba.score(model, hit_benchmark, reducers={"0": RandomProjection(64), "2": lambda t: t.mean((2, 3))})
    res.save(tmp_path)
    html = build_report(tmp_path).read_text()
    assert "scored on reduced activations" in html
    assert "tiny × kriegeskorte2008.hIT-rsa: 0, 2 (random projection, custom reducer)" in html
    plain = tmp_path / "plain"
    ba.score(model, hit_benchmark).save(plain)
    assert "scored on reduced activations" not in build_report(plain).read_text()
