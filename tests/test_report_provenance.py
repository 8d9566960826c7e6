"""A results folder filled by several ``brainalign score`` runs: its ``scores.meta.json``
describes every benchmark it holds (each with its own settings), and the report's Provenance shows
each benchmark's own settings and its pooled ceiling and stimulus count (not one session's)."""

from __future__ import annotations

import json
import re
from html import unescape

import pandas as pd
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.plots.report import benchmark_settings
from brainalign.results.provenance import benchmark_entries, merge_metas, without_pairs
from tests.conftest import needs_data

V1, V4 = "antolik2016.V1-ridge", "cowley2023.V4-ridge"


def _score(out, data_dir, bench: str, n: int) -> None:
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", bench,
                                  "--max-stimuli", str(n), "--n-bootstrap", "10", "--data-dir", str(data_dir),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output


def _entries(out) -> dict[str, dict]:
    entries, _ = benchmark_entries(json.loads((out / "scores.meta.json").read_text()))
    assert len({e["benchmark"] for e in entries}) == len(entries)  # one entry per benchmark here
    return {e["benchmark"]: e for e in entries}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir):
    """V1 on 40 stimuli/session, then V4 on 30, then V1 again on 20: three runs, one folder."""
    out = tmp_path_factory.mktemp("shared") / "R"
    _score(out, data_dir, V1, 40)
    _score(out, data_dir, V4, 30)
    after_two = _entries(out)
    _score(out, data_dir, V1, 20)  # the pair scored again: its rows and its meta are replaced
    r = CliRunner().invoke(main, ["report", str(out)])
    assert r.exit_code == 0, r.output
    return out, after_two


@needs_data
def test_meta_describes_every_benchmark_of_the_folder_with_its_own_settings(folder):
    out, after_two = folder
    # After the second run: both benchmarks, each its own max_stimuli and data files (the first
    # run's meta used to stand for both).
    assert set(after_two) == {V1, V4}
    assert after_two[V1]["max_stimuli"] == 40 and after_two[V4]["max_stimuli"] == 30
    assert not set(after_two[V1]["data_files"]) & set(after_two[V4]["data_files"])
    # After V1 was scored again on 20: its entry is the new run's, V4's is kept.
    now = _entries(out)
    assert set(now) == {V1, V4}
    assert now[V1]["max_stimuli"] == 20 and now[V1]["benchmark_version"].endswith("+max_stimuli=20")
    assert now[V4]["max_stimuli"] == 30 and list(now[V4]["models"]) == ["zoo:lenet5"]
    # The meta agrees with the rows it describes.
    t = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str, "session": str})
    for b, e in now.items():
        assert set(t.loc[t["benchmark"] == b, "benchmark_version"]) == {e["benchmark_version"]}


@needs_data
def test_report_provenance_shows_each_benchmark_and_its_pooled_ceiling(folder):
    out, _ = folder
    page = (out / "report.html").read_text()
    heads = [unescape(re.sub("<[^>]+>", "", h)) for h in re.findall(r"<h4 data-benchmark=.*?</h4>", page)]
    assert len(heads) == 2
    assert any(V1 in h and "+max_stimuli=20" in h for h in heads)
    assert any(V4 in h and "+max_stimuli=30" in h for h in heads)
    # The Benchmarks table: the pooled row's ceiling and stimulus count, read from the CSV itself.
    t = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str, "session": str})
    v1 = t[t["benchmark"] == V1]
    pooled, sessions = v1[v1["session"] == "all"].iloc[0], v1[v1["session"] != "all"]
    assert sessions["ceiling_upper"].nunique() > 1  # one session's value would differ from the pooled one
    table = page[page.index('id="benchmark-settings"'):]
    row = unescape(re.sub("<[^>]+>", "|", table[table.index(V1):table.index("</tr>", table.index(V1))]))
    cells = [c for c in row.split("|") if c]
    assert f"{pooled['ceiling_upper']:.3f}" in cells[3] and cells[4] == str(pooled["n_stimuli"])
    assert int(pooled["n_stimuli"]) == sessions["n_stimuli"].sum()
    for s, r in sessions.set_index("session").iterrows():  # each session beside it
        assert f"{s}: ceiling {r['ceiling_upper']:.3f}, {r['n_stimuli']} stimuli" in cells[5]


def test_benchmark_settings_uses_pooled_rows_whatever_the_row_order():
    rows = [{"benchmark": "b", "benchmark_version": "1", "metric": "m", "session": s, "layer": "l",
             "ceiling_upper": c, "n_stimuli": n, "n_bootstrap": 10, "seed": 0}
            for s, c, n in (("s1", 0.9, 10), ("all", 0.5, 30), ("s2", 0.1, 20))]
    got = benchmark_settings(pd.DataFrame(rows)).iloc[0]
    assert got["ceiling"].startswith("0.500") and got["stimuli"] == 30
    assert got["per session"] == "s1: ceiling 0.900, 10 stimuli; s2: ceiling 0.100, 20 stimuli"
    one = benchmark_settings(pd.DataFrame(rows[:1])).iloc[0]  # one session, no pooled row: its own
    assert one["ceiling"].startswith("0.900") and one["per session"] == "–"


def _meta(bench: str, version: str, *models: str) -> dict:
    return {"benchmark": bench, "benchmark_version": version, "max_stimuli": None,
            "models": {m: {"model": m} for m in models}, "failed_layers": {m: {} for m in models},
            "ceiling_method": f"of {bench}"}


def test_merge_metas_keeps_models_of_one_benchmark_together_and_benchmarks_apart():
    one = merge_metas([_meta("A", "1", "m1"), _meta("A", "1", "m2")])
    assert one["benchmark"] == "A" and set(one["models"]) == {"m1", "m2"}  # the flat one-benchmark form
    two = merge_metas([one, _meta("B", "2", "m1"), _meta("A", "1+max_stimuli=5", "m3")])
    entries, _ = benchmark_entries(two)
    assert [(e["benchmark"], e["benchmark_version"]) for e in entries] == [
        ("A", "1"), ("B", "2"), ("A", "1+max_stimuli=5")]
    assert entries[1]["ceiling_method"] == "of B"  # B keeps its own settings
    assert merge_metas([two]) == two  # read back and merged again: unchanged


def test_without_pairs_drops_a_rescored_model_and_empty_entries():
    both = merge_metas([_meta("A", "1", "m1", "m2"), _meta("B", "1", "m1")])
    left = without_pairs(both, {("m1", "A"), ("m1", "B")})
    assert left["benchmark"] == "A" and set(left["models"]) == {"m2"} and set(left["failed_layers"]) == {"m2"}
    assert without_pairs(_meta("A", "1", "m1"), {("m1", "A")}) == {}
    assert without_pairs({"trainer": "sgd"}, {("m1", "A")}) == {"trainer": "sgd"}  # no entry: kept


@needs_data
def test_a_score_run_into_a_batch_folder_describes_each_benchmark_by_its_own_pairs(tmp_path, data_dir):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0, layers: ['0']}\n")
    out = tmp_path / "B"
    r = CliRunner().invoke(main, ["batch", str(models), "--benchmark", V4, "--max-stimuli", "25",
                                  "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    # A batch folder keeps a meta as a score folder does (each pair's, merged)
    assert (out / "provenance.json").is_file() and set(_entries(out)) == {V4}
    _score(out, data_dir, V1, 20)
    entries = _entries(out)
    # Each benchmark described by its own pairs: the batch's pair under V4, the score run's under V1
    assert set(entries) == {V1, V4}
    assert list(entries[V1]["models"]) == ["zoo:lenet5"] and list(entries[V4]["models"]) == ["tiny-0"]
    t = pd.read_csv(out / "scores.csv")
    assert set(zip(t["model"], t["benchmark"], strict=True)) == {("tiny-0", V4), ("zoo:lenet5", V1)}
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    page = unescape((out / "report.html").read_text())
    assert "tiny-0" in page and "zoo:lenet5" in page


def test_provenance_settings_keep_lists_of_values_on_one_line(data_dir):
    """hIT's layer selection lists 92 stimulus ids: one line, not 92 (the report's Provenance
    read as a wall of ids); the text is still the same JSON."""
    import json

    import brainalign as ba
    from brainalign.plots.report import _settings_json

    meta = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir).run_meta()
    text = _settings_json(meta)
    assert json.loads(text) == json.loads(json.dumps(meta, default=str))
    assert len(text.splitlines()) < 40 < len(json.dumps(meta, indent=2, default=str).splitlines())
