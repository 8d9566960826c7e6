"""``--max-stimuli N`` on ``brainalign score`` and ``brainalign batch``: a quick look on at most N
stimuli per session, recorded in every row (``n_stimuli``, ``benchmark_version``) so it is never
mistaken for, or paired with, a full run; kinds that cannot honour it refuse it by name."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import brainalign as ba
from brainalign.cli import main
from tests.conftest import needs_data

V4 = "cowley2023.V4-ridge"


@needs_data
def test_score_max_stimuli_limits_each_session_and_is_recorded(tmp_path, data_dir):
    full = {s.name: len(s.stimuli) for s in ba.load_benchmark(V4, data_dir=data_dir).sessions}
    assert min(full.values()) > 30
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", V4,
                                  "--max-stimuli", "30", "--n-bootstrap", "10", "--data-dir", str(data_dir),
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str, "session": str})
    per_session = t[t["session"] != "all"]
    assert set(per_session["session"]) == set(full) and (per_session["n_stimuli"] == 30).all()
    assert t["benchmark_version"].str.endswith("+max_stimuli=30").all()
    # The printed summary flags the subset where the number is read, not only in the CSV.
    assert f"{V4} [subset: 30 stimuli/session]" in r.output and "not a paper number" in r.output


@needs_data
def test_batch_max_stimuli_reaches_every_pair_through_benchmark_options(tmp_path, data_dir):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0, layers: ['0']}\n")
    r = CliRunner().invoke(main, ["batch", str(models), "--benchmark", V4, "--max-stimuli", "25",
                                  "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out",
                                  str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "b" / "scores.csv", dtype={"benchmark_version": str, "session": str})
    assert (t.loc[t["session"] != "all", "n_stimuli"] == 25).all() and len(t)
    assert t["benchmark_version"].str.endswith("+max_stimuli=25").all()
    # The scores are printed as `score` prints them (it printed nothing), with the next step.
    assert f"{V4} [subset: 25 stimuli/session]" in r.output and "tiny-0" in r.output
    assert f"brainalign report {tmp_path / 'b'}" in r.output


@needs_data
def test_a_kind_that_cannot_limit_stimuli_is_refused_on_the_command_line(tmp_path, data_dir):
    hit = "kriegeskorte2008.hIT-rsa"
    assert not ba.load_benchmark(hit, data_dir=data_dir).supports_max_stimuli
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--benchmark", hit,
                                  "--max-stimuli", "20", "--data-dir", str(data_dir)])
    assert r.exit_code == 2
    assert "max_stimuli=20 (--max-stimuli) is only honoured by regression benchmarks" in r.output
    assert "this one is an RSA benchmark" in r.output and "RSABenchmark" not in r.output
    assert "in a separate run without --max-stimuli" in r.output
    assert "loading zoo:lenet5" not in r.output  # refused before any model work
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0, layers: ['0']}\n")
    r = CliRunner().invoke(main, ["batch", str(models), "--benchmark", hit, "--max-stimuli", "20",
                                  "--data-dir", str(data_dir), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "only honoured by regression benchmarks" in r.output
    assert not (tmp_path / "b" / "scores.csv").exists()


@needs_data
def test_too_few_stimuli_for_the_cross_validation_are_refused_at_load_with_the_minimum(data_dir):
    """cowley's 5-fold cross-validation needs ≥ 2 test stimuli per fold: fewer than 10 stimuli
    would fail only after data and model had loaded; refused when the benchmark is loaded."""
    from brainalign.errors import BenchmarkDefinitionError

    cv = ba.load_benchmark(V4, data_dir=data_dir).cv
    with pytest.raises(BenchmarkDefinitionError, match=rf"max_stimuli=5 .*--max-stimuli {2 * cv} or more"):
        ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=5)
    with pytest.raises(BenchmarkDefinitionError, match="at least 1"):
        ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=0)
    bench = ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=2 * cv)  # the minimum is accepted
    assert bench.max_stimuli == 2 * cv


@needs_data
def test_the_command_line_refuses_too_few_stimuli_before_loading_a_model(data_dir):
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--benchmark", V4,
                                  "--max-stimuli", "5", "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "--max-stimuli 10 or more" in r.output
    assert "loading zoo:lenet5" not in r.output


@needs_data
def test_a_limit_that_cuts_no_session_is_the_full_benchmark(tmp_path, data_dir):
    """--max-stimuli at or above every session's size leaves the full data: recorded, flagged and
    paired as a full run (it was labelled a subset, 'not a paper number'), with a warning."""
    full = {s.name: len(s.stimuli) for s in ba.load_benchmark(V4, data_dir=data_dir).sessions}
    big = max(full.values())
    b = ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=big)
    with pytest.warns(UserWarning, match=f"max_stimuli={big} .* at or above every session's number of stimuli"):
        assert b.version_label == str(b.spec.version)
    assert b.provenance()["max_stimuli"] is None
    # One fewer than the largest session cuts it: a subset again.
    cut = ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=big - 1)
    assert cut.version_label.endswith(f"+max_stimuli={big - 1}")
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", V4,
                                  "--max-stimuli", str(big + 1000), "--n-bootstrap", "10", "--data-dir",
                                  str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str, "session": str})
    assert (t["benchmark_version"] == str(b.spec.version)).all()
    per_session = t[t["session"] != "all"].set_index("session")["n_stimuli"].to_dict()
    assert per_session == full
    assert "subset" not in r.output and "at or above every session" in r.output


@needs_data
def test_replacing_rows_of_another_benchmark_version_is_said(tmp_path, data_dir):
    """Scoring a pair again into a folder replaces its rows; when the earlier rows were of another
    version (a subset of another size, or the full data), the run says so."""
    out = tmp_path / "o"

    def run(n: int) -> str:
        r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", V4,
                                      "--max-stimuli", str(n), "--n-bootstrap", "10", "--data-dir",
                                      str(data_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
        return r.output

    run(30)
    said = run(25)
    assert (f"note: zoo:lenet5 × {V4}: the folder's earlier rows (benchmark version 1+max_stimuli=30) are "
            "replaced by this run's (version 1+max_stimuli=25)") in " ".join(said.split())
    assert "are replaced by this run" not in run(25)  # the same version again: nothing to say
    t = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str})
    assert set(t["benchmark_version"]) == {"1+max_stimuli=25"}


@needs_data
def test_a_folder_with_two_versions_of_a_benchmark_keeps_them_apart(tmp_path, data_dir):
    """A batch folder holding a benchmark at two versions (here two --max-stimuli sizes; a full run
    beside a subset is the same case): the summary, the folder's table, the heatmap and the
    comparison treat them as two benchmarks, each labelled with its own version and subset. The
    pooled label put one version's subset on the other's scores, and `compare` paired a model's
    rows of one version with another's and stopped ("differ in n_stimuli")."""
    from brainalign.plots.heatmap import best_matrix
    from brainalign.results.compare import compare_scores, load_results
    from brainalign.results.folder import read_results

    out = tmp_path / "b"

    def batch(models: str, n: int, *extra: str) -> str:
        path = tmp_path / f"models-{n}.yaml"
        path.write_text("models:\n" + "".join(
            f"  - {{factory: 'tests.batch_models:tiny_cnn', label: {m}, layers: ['0', '2'], "
            f"seed: {m[-1]}}}\n" for m in models.split()))
        r = CliRunner().invoke(main, ["batch", str(path), "--benchmark", V4, "--max-stimuli", str(n),
                                      "--n-bootstrap", "20", "--data-dir", str(data_dir), "--out", str(out),
                                      *extra])
        assert r.exit_code == 0, r.output
        return " ".join(r.output.split())

    batch("tiny-0 tiny-1", 30)
    said = batch("tiny-2", 25, "--resume")
    v30, v25 = f"{V4} (version 1+max_stimuli=30)", f"{V4} (version 1+max_stimuli=25)"
    assert f"{v30} [subset: 30 stimuli/session]" in said and f"{v25} [subset: 25 stimuli/session]" in said
    assert "subset: 25/30" not in said
    folder = read_results(out)
    assert set(folder.table["benchmark"]) == {v30, v25}
    assert not any("more than one file" in n for n in folder.notes)
    assert set(best_matrix(folder.table)[0].columns) == {v30, v25}
    # Compared within a version only: at 30 stimuli the two models; at 25 one model, nothing.
    assert set(folder.table.loc[folder.table["benchmark"] == v25, "model"]) == {"tiny-2"}
    cmp = compare_scores(load_results(out))
    assert set(cmp["benchmark"]) == {v30}
    assert set(cmp[["model_a", "model_b"]].iloc[0]) == {"tiny-0", "tiny-1"}
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    assert f"not compared (one model): {v25}: only tiny-2" in r.output
    from brainalign.plots.report import build_report

    html = build_report(out).read_text()
    assert v30 in html and v25 in html
    assert "Not described above" not in html  # every pair's settings found under its benchmark's id
    assert "Batch runs in b (" in html and "provenance.json of .)" not in html  # the folder by its name


@needs_data
def test_replacing_rows_of_other_weights_under_the_same_name_is_said(tmp_path, data_dir):
    """`score --out` into a folder that holds the same model name with other weights (a trained
    checkpoint, then random weights) replaces those rows: the run names the weights replaced and
    how to keep both (it said nothing, and the checkpoint's scores were gone)."""
    import torch

    ckpt = tmp_path / "lenet5.pt"
    torch.manual_seed(1)
    torch.save(ba.load_model("zoo:lenet5", weights="random", seed=1).module.state_dict(), ckpt)
    out = tmp_path / "o"

    def run(weights: str) -> str:
        r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--weights", weights, "--layers", "conv1",
                                      "--benchmark", V4, "--max-stimuli", "25", "--n-bootstrap", "10",
                                      "--data-dir", str(data_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
        return " ".join(r.output.split())

    run(str(ckpt))
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    said = run("random")
    # the report written before now shows older scores: the next step says so
    assert "(report.html there shows the scores before this run: run it again)" in said
    assert f"note: zoo:lenet5 × {V4}: the folder's earlier rows (weights {ckpt}) are replaced by this run's " \
           "(weights random): another model under the same name; to keep both" in said
    assert "replaced by this run" not in run("random")  # the same weights again: nothing to say
    t = pd.read_csv(out / "scores.csv")
    assert set(t["weights"]) == {"random"}


V1 = "antolik2016.V1-ridge"


@needs_data
@pytest.mark.parametrize("command", ["score", "batch"])
def test_a_subset_never_replaces_the_full_data_scores_of_a_folder(tmp_path, data_dir, command):
    """A --max-stimuli resume deleted the full-data pair it should have left alone (a quick look
    replacing what may be a paper number). It is refused before any work, the folder as it was; a
    limit that cuts no session is the full benchmark, and is scored."""
    out = tmp_path / "o"
    if command == "score":
        base = ["score", "--model", "zoo:lenet5", "--layers", "conv1"]
    else:
        (tmp_path / "m.txt").write_text("zoo:lenet5\n")
        base = ["batch", str(tmp_path / "m.txt"), "--layers", "conv1", "--resume"]
    base += ["--benchmark", V1, "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out)]
    r = CliRunner().invoke(main, base)
    assert r.exit_code == 0, r.output
    before = pd.read_csv(out / "scores.csv")
    r = CliRunner().invoke(main, [*base, "--max-stimuli", "30"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert f"holds full-data scores of zoo:lenet5 × {V1}; --max-stimuli 30" in text
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), before)
    r = CliRunner().invoke(main, [*base, "--max-stimuli", "100000"])  # cuts nothing: the full data
    assert r.exit_code == 0, r.output
    assert not pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str})["benchmark_version"] \
        .str.contains("max_stimuli").any()
