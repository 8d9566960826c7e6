"""``brainalign batch`` on the real hIT benchmark: every pair, failures recorded, resume, CLI, Dask."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.errors import BatchOutputError, BatchSpecError
from brainalign.runner import ModelEntry, read_models, run_batch
from brainalign.runner.progress import BatchProgress
from tests.batch_models import tiny_cnn, write_quick_benchmark
from tests.conftest import needs_data

LAYERS = ("0", "2", "6")
GOOD = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=LAYERS)
        for s in (0, 1)]
BAD = [ModelEntry(factory="tests.batch_models:broken_cnn", label="broken", layers=LAYERS),
       ModelEntry(factory="tests.batch_models:unloadable_cnn", label="unloadable")]


def _sorted(t: pd.DataFrame) -> pd.DataFrame:
    return t.sort_values(["model", "benchmark", "layer"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    return write_quick_benchmark(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def local_run(quick, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    log = (out.parent / "progress.txt").open("w+")
    report = run_batch([*GOOD, *BAD], [str(quick)], out, data_dir=data_dir, progress=BatchProgress(log))
    log.seek(0)
    return report, out, log.read()


@needs_data
def test_every_pair_is_scored_and_failures_are_recorded_while_the_rest_go_on(local_run, quick, data_dir):
    report, out, progress = local_run
    assert not report.ok and len(report.scored) == 2
    t = report.table
    assert sorted(set(t["model"])) == ["tiny-0", "tiny-1"] and len(t) == 6
    # Each row equals scoring the model directly with the benchmark, outside the batch runner.
    from brainalign.benchmarks import load_benchmark

    bench = load_benchmark(quick, data_dir=data_dir)
    for seed in (0, 1):
        direct = bench(tiny_cnn(seed=seed), list(LAYERS)).table
        ours = t[t["model"] == f"tiny-{seed}"].reset_index(drop=True)
        pd.testing.assert_series_equal(ours["raw"], direct["raw"], check_exact=True)
        pd.testing.assert_series_equal(ours["normalised_ci_low"], direct["normalised_ci_low"], check_exact=True)
        assert list(ours["layer"]) == list(LAYERS)
    f = report.failures.set_index("model")
    assert f.loc["broken", "error_type"] == "ForwardError" and "'0'" in f.loc["broken", "error"]
    assert f.loc["unloadable", "error_type"] == "FileNotFoundError"
    # On disk: Parquet and CSV agree with the report; errors carry their traceback.
    pd.testing.assert_frame_equal(pd.read_parquet(out / "scores.parquet"), t)
    csv = pd.read_csv(out / "scores.csv", dtype={"benchmark_version": str, "layer": str})
    for col in t.columns:  # CSV cannot tell an empty string from a missing value
        if not pd.api.types.is_numeric_dtype(t[col]) and t[col].notna().all():
            csv[col] = csv[col].fillna("")
    pd.testing.assert_frame_equal(csv, t, check_dtype=False)
    assert len(pd.read_csv(out / "failures.csv")) == 2
    errs = [json.loads(p.read_text()) for p in (out / "errors").glob("*.json")]
    assert {e["model"] for e in errs} == {"broken", "unloadable"}
    assert all("Traceback" in e["traceback"] for e in errs)
    # Not a terminal: plain lines, per layer and per pair, and a summary.
    assert "tiny-0 × kriegeskorte2008.hIT-rsa-quick: layer 3/3 6 scored" in progress
    assert "FAILED broken" in progress and "\r" not in progress
    assert "summary: 4 pairs: 2 scored, 0 skipped (already finished), 2 failed" in progress


@needs_data
def test_resume_skips_finished_pairs_and_retries_failed_ones(local_run, quick, data_dir, tmp_path):
    report, out, _ = local_run
    with pytest.raises(BatchOutputError, match="--resume"):
        run_batch(GOOD, [str(quick)], out, data_dir=data_dir, progress=BatchProgress(open(tmp_path / "p", "w")))
    again = run_batch([*GOOD, *BAD], [str(quick)], out, resume=True, data_dir=data_dir,
                      progress=BatchProgress(open(tmp_path / "p", "w")))
    assert sorted(again.skipped) == sorted(report.scored) and again.scored == []
    assert len(again.failures) == 2  # retried, failed again
    pd.testing.assert_frame_equal(again.table, report.table)
    events = [json.loads(line) for line in (out / "batch.log.jsonl").read_text().splitlines()]
    done = [e["key"] for e in events if e["event"] == "done"]
    assert sorted(done) == sorted(report.scored)  # each finished pair computed exactly once


@needs_data
def test_cli_exit_status_says_whether_anything_failed(quick, data_dir, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "models:\n"
        "  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0, layers: ['0', '6']}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text() + "  - {factory: 'tests.batch_models:broken_cnn', label: broken}\n")
    runner = CliRunner()
    args = ["--benchmark", str(quick), "--data-dir", str(data_dir), "--out"]
    r = runner.invoke(main, ["batch", str(bad), *args, str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    assert "failed: broken" in r.output
    r = runner.invoke(main, ["batch", str(good), *args, str(tmp_path / "o"), "--resume"])
    assert r.exit_code == 0, r.output
    assert "1 skipped" in r.output
    r = runner.invoke(main, ["batch", str(good), *args, str(tmp_path / "o")])
    assert r.exit_code == 2 and "--resume" in r.output


def test_model_lists_yaml_and_plain_text(tmp_path):
    y = tmp_path / "m.yaml"
    y.write_text("models:\n  - torchvision:alexnet\n"
                 "  - {source: torchvision, name: resnet18, weights: pretrained, layers: 'layer*'}\n"
                 "  - {id: torchvision:resnet18, seed: 3, label: r18-s3}\n")
    es = read_models(y)
    assert [e.name for e in es] == ["torchvision:alexnet", "torchvision:resnet18", "r18-s3"]
    assert es[1].weights == "pretrained" and es[1].layers == ("layer*",) and es[2].seed == 3
    txt = tmp_path / "m.txt"
    txt.write_text("# my models\ntorchvision:alexnet\n\ntorchvision:vgg11  # shallow\n")
    assert [e.id for e in read_models(txt)] == ["torchvision:alexnet", "torchvision:vgg11"]
    y.write_text("models:\n  - {id: torchvision:alexnet, wieghts: random}\n")
    with pytest.raises(BatchSpecError, match="wieghts"):
        read_models(y)
    y.write_text("models:\n  - torchvision:alexnet\n  - {id: torchvision:alexnet, seed: 2}\n")
    with pytest.raises(BatchSpecError, match="label"):
        read_models(y)


@needs_data
def test_a_dask_run_equals_the_local_run(local_run, quick, data_dir, tmp_path):
    distributed = pytest.importorskip("distributed")
    report, _, _ = local_run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask = run_batch(GOOD, [str(quick)], tmp_path / "dask", scheduler=client, data_dir=data_dir,
                         progress=BatchProgress(open(tmp_path / "p", "w")))
    assert dask.ok
    pd.testing.assert_frame_equal(_sorted(dask.table), _sorted(report.table))


@needs_data
def test_a_process_pool_run_equals_the_local_run(local_run, quick, data_dir, tmp_path):
    report, _, _ = local_run
    pool = run_batch(GOOD, [str(quick)], tmp_path / "pool", workers=2, data_dir=data_dir,
                     progress=BatchProgress(open(tmp_path / "p", "w")))
    assert pool.ok and len(pool.scored) == 2
    pd.testing.assert_frame_equal(_sorted(pool.table), _sorted(report.table))


def test_progress_draws_bars_on_a_terminal_and_lines_elsewhere():
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, bars in ((Terminal(), True), (io.StringIO(), False)):
        p = BatchProgress(stream)
        assert p.bars is bars
        p.start(2, 1)
        p.pair_started("m × b", 2)
        p.layer_done("m × b", "conv1", 1, 2)
        p.layer_done("m × b", "fc", 2, 2)
        p.pair_done("m × b", False, 1.0, "ForwardError: boom")
        summary = p.close()
        text = stream.getvalue()
        assert summary.startswith("summary: 2 pairs: 0 scored, 1 skipped (already finished), 1 failed")
        assert "ForwardError: boom" in text and summary in text
        if bars:
            assert "\r" in text and "2/2" in text  # tqdm redraws in place
        else:
            assert "\r" not in text and "layer 2/2 fc scored" in text


@needs_data
def test_a_batch_folder_keeps_details_so_models_can_be_compared(local_run, data_dir):
    """`brainalign compare` on a batch folder: each pair's per-layer details (the paired bootstrap
    samples) are saved beside its table, and they equal scoring the model directly."""
    from brainalign.results.compare import compare_scores, load_results

    _, out, _ = local_run
    res = load_results(out)
    assert {k[0] for k in res.details} == {"tiny-0", "tiny-1"}
    cmp = compare_scores(res)
    assert len(cmp) == 1 and {cmp.loc[0, "model_a"], cmp.loc[0, "model_b"]} == {"tiny-0", "tiny-1"}
    assert cmp.loc[0, "n_bootstrap"] > 0 and pd.notna(cmp.loc[0, "p_corrected"])
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "compare.csv").is_file()


def _second_quick_benchmark(folder: Path) -> Path:
    """The quick benchmark under another id (a second benchmark for the same data)."""
    import yaml

    path = write_quick_benchmark(folder, n_boot=10)
    doc = yaml.safe_load(path.read_text())
    doc["id"] = "kriegeskorte2008.hIT-rsa-quick2"
    other = folder / f"{doc['id']}.yaml"
    other.write_text(yaml.safe_dump(doc, sort_keys=False))
    return other


@needs_data
def test_resuming_with_fewer_benchmarks_or_models_keeps_every_earlier_pair(data_dir, tmp_path):
    """A resumed run that lists fewer pairs than the earlier one keeps the other pairs' rows in
    scores.csv / scores.parquet (the union of the finished pairs), and says what it reused,
    scored and kept."""
    a = write_quick_benchmark(tmp_path, n_boot=10)
    b = _second_quick_benchmark(tmp_path)
    models = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=("0", "6"))
              for s in (0, 1)]
    out = tmp_path / "out"
    quiet = BatchProgress(open(tmp_path / "p0", "w"))
    first = run_batch(models, [str(a), str(b)], out, data_dir=data_dir, progress=quiet)
    assert len(first.scored) == 4
    pairs = {(m, bid) for m in ("tiny-0", "tiny-1") for bid in
             ("kriegeskorte2008.hIT-rsa-quick", "kriegeskorte2008.hIT-rsa-quick2")}
    # Fewer benchmarks, then fewer models: nothing of the earlier run disappears.
    for n, (ms, bs) in enumerate([(models, [str(a)]), (models[:1], [str(b)])]):
        log = tmp_path / f"p{n + 1}"
        with open(log, "w") as f:
            again = run_batch(ms, bs, out, resume=True, data_dir=data_dir, progress=BatchProgress(f))
        assert again.scored == [] and len(again.kept) == 4 - len(ms) * len(bs)
        for t in (again.table, pd.read_parquet(out / "scores.parquet"), pd.read_csv(out / "scores.csv")):
            assert set(zip(t["model"], t["benchmark"], strict=True)) == pairs and len(t) == 8
        pd.testing.assert_frame_equal(_sorted(again.table), _sorted(first.table))
        text = log.read_text()
        assert "reused (finished by an earlier run, not scored again): tiny-0 × " in text
        assert "kept from earlier runs (not part of this run): " in text
        assert f"{len(again.kept)} earlier pair(s) not in this run kept" in text


@needs_data
def test_resuming_with_other_models_keeps_the_earlier_failures_listed(local_run, quick, data_dir, tmp_path):
    """failures.csv, like scores.csv, covers the folder: a resumed run that does not list a
    failed pair keeps it there (it is still failed); the run's own report lists its own only."""
    _, first, _ = local_run
    out = tmp_path / "copy"
    import shutil

    shutil.copytree(first, out)
    again = run_batch(GOOD[:1], [str(quick)], out, resume=True, data_dir=data_dir,
                      progress=BatchProgress(open(tmp_path / "p", "w")))
    assert again.ok and again.kept == ["tiny-1 × kriegeskorte2008.hIT-rsa-quick"]
    assert set(pd.read_csv(out / "failures.csv")["model"]) == {"broken", "unloadable"}


@needs_data
def test_a_batch_folder_keeps_rows_that_score_wrote_into_it(data_dir, tmp_path):
    """`brainalign score --out D` into a batch folder adds its pair; a later `batch --resume`
    into D keeps that pair's rows (it has no pair file, only rows in scores.csv)."""
    a = write_quick_benchmark(tmp_path, n_boot=10)
    b = _second_quick_benchmark(tmp_path)
    out = tmp_path / "out"
    models = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=0, label="tiny-0", layers=("0",))]
    run_batch(models, [str(a)], out, data_dir=data_dir, progress=BatchProgress(open(tmp_path / "p", "w")))
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", str(b),
                                  "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(out / "scores.csv")["model"]) == {"tiny-0", "zoo:lenet5"}
    assert set(pd.read_parquet(out / "scores.parquet")["model"]) == {"tiny-0", "zoo:lenet5"}  # they agree
    again = run_batch(models, [str(a)], out, resume=True, data_dir=data_dir,
                      progress=BatchProgress(open(tmp_path / "p", "w")))
    assert again.kept == ["zoo:lenet5 × kriegeskorte2008.hIT-rsa-quick2"]
    t = pd.read_parquet(out / "scores.parquet")
    assert set(zip(t["model"], t["benchmark"], strict=True)) == set(
        zip(again.table["model"], again.table["benchmark"], strict=True))
    t = pd.read_csv(out / "scores.csv")
    assert set(zip(t["model"], t["benchmark"], strict=True)) == {
        ("tiny-0", "kriegeskorte2008.hIT-rsa-quick"), ("zoo:lenet5", "kriegeskorte2008.hIT-rsa-quick2")}


@needs_data
def test_an_interrupted_batch_keeps_what_finished_and_says_to_resume(quick, data_dir, tmp_path):
    """Ctrl-C (a KeyboardInterrupt while the second model is built): not a bare "Aborted!", but
    what is kept, in the tables too, and the --resume hint; the resumed run reuses the pair."""
    good = "  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0, layers: ['0', '6']}\n"
    stopped = tmp_path / "stopped.yaml"
    stopped.write_text("models:\n" + good + "  - {factory: 'tests.batch_models:interrupting_cnn', label: stop}\n")
    args = ["--benchmark", str(quick), "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(main, ["batch", str(stopped), *args])
    assert r.exit_code == 130, r.output
    assert "Aborted!" not in r.output
    assert "interrupted: 1 pair(s) scored by this run and 0 reused are kept in" in r.output
    assert "Run it again with --resume (Python: resume=True) to continue" in r.output
    assert "run the same command with --resume to continue it" in r.output
    t = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert set(t["model"]) == {"tiny-0"}
    only_good = tmp_path / "good.yaml"
    only_good.write_text("models:\n" + good)
    r = CliRunner().invoke(main, ["batch", str(only_good), *args, "--resume"])
    assert r.exit_code == 0 and "1 skipped" in r.output, r.output


def test_a_ctrl_c_while_a_pair_is_written_is_raised_once_its_files_are_whole():
    """Held, not lost: the block finishes, then KeyboardInterrupt; nested blocks hold it for the
    outer one; the handler before is back."""
    import os
    import signal

    from brainalign.io import interrupt_after

    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt_after():
            with interrupt_after():
                os.kill(os.getpid(), signal.SIGINT)
                done.append("inner")
            done.append("outer")  # the inner block did not raise: the outer one holds it
    assert done == ["inner", "outer"] and signal.getsignal(signal.SIGINT) is before
    with interrupt_after():
        done.append("quiet")  # nothing held: nothing raised
    assert done[-1] == "quiet"


@needs_data
def test_a_batch_interrupted_while_writing_a_pair_keeps_it_whole_and_resumes(quick, data_dir, tmp_path,
                                                                                monkeypatch):
    """Ctrl-C landing while the parent wrote a pair's details (netCDF) left xarray's lock held and
    the run hung for good; now the pair is written whole, then the run stops and --resume reuses it."""
    import os
    import signal

    import brainalign.runner.batch as batch_module

    real = batch_module.save_details

    def interrupted_mid_write(details, folder):
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, while this pair is being written
        real(details, folder)

    monkeypatch.setattr(batch_module, "save_details", interrupted_mid_write)
    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt):
        run_batch(GOOD, [str(quick)], out, data_dir=data_dir, progress=BatchProgress(open(tmp_path / "p", "w")))
    monkeypatch.setattr(batch_module, "save_details", real)
    assert len(list((out / "pairs").glob("*.parquet"))) == 1 and len(pd.read_csv(out / "scores.csv")) == 3
    again = run_batch(GOOD, [str(quick)], out, resume=True, data_dir=data_dir,
                      progress=BatchProgress(open(tmp_path / "q", "w")))
    assert again.ok and len(again.skipped) == 1 and len(again.scored) == 1


def test_a_factory_that_does_not_say_its_weights_gets_what_it_was_given(tmp_path):
    """Its rows read weights 'custom' and no model_seed: the checkpoint and the seed were lost."""
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"")
    built = ModelEntry(factory="tests.batch_models:unsaid_cnn", seed=3).load().provenance()
    assert built["weights"] == "custom" and built["model_seed"] == 3
    built = ModelEntry(factory="tests.batch_models:unsaid_cnn", weights=str(ckpt), seed=3).load().provenance()
    assert built["weights"] == str(ckpt) and built["model_seed"] is None
