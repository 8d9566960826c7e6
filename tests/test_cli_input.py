"""Bad command-line input gets a named error before any work; nothing already computed is lost
(issue 12): option values, output and cache folders, one failing model among several, two batch
runs into one folder, and a resumed batch whose settings changed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.errors import BatchLockedError, BatchSpecError
from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.batch import read_models
from brainalign.runner.progress import BatchProgress
from tests.batch_models import write_quick_benchmark
from tests.conftest import needs_data

HIT = "kriegeskorte2008.hIT-rsa"
TINY = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=("0", "6"))
        for s in (0, 1)]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brainalign.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


BAD_VALUES = [
    (["--batch-size", "0"], "'--batch-size': 0 is not in the range x>=1"),
    (["--batch-size", "-5"], "'--batch-size': -5 is not in the range x>=1"),
    (["--device", "gpu"], "'gpu' is not a device (did you mean 'cuda'?)"),
    (["--device", "cuda:x"], "'cuda:x' is not a device"),
    (["--memory-budget", "2XB"], "not a memory size: '2XB'"),
    (["--memory-budget", "0GB"], "must be more than 0 bytes"),
    (["--n-bootstrap", "0"], "'--n-bootstrap': 0 is not in the range x>=1"),
]


@pytest.mark.parametrize("command, args, message", [("score", *v) for v in BAD_VALUES]
                         + [("batch", *v) for v in BAD_VALUES if v[0][0] != "--n-bootstrap"])
def test_bad_option_values_are_named_before_any_work(command, args, message, tmp_path):
    models = tmp_path / "m.txt"
    models.write_text("zoo:lenet5\n")
    head = ["score", "--model", "zoo:lenet5"] if command == "score" else ["batch", str(models)]
    r = CliRunner().invoke(main, [*head, "--benchmark", HIT, "--out", str(tmp_path / "o"), *args])
    assert r.exit_code == 2 and message in r.output, r.output
    assert "reading the data" not in r.output and not (tmp_path / "o").exists()  # no work started


def test_cuda_without_a_gpu_is_refused_before_any_work(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--benchmark", HIT, "--device", "cuda"])
    assert r.exit_code == 2 and "'cuda' asked for a GPU: " in r.output and "--device cpu" in r.output
    assert "but torch was built with CUDA but" not in r.output  # one clause, not two "but"s


@pytest.mark.parametrize("argv, listing", [
    (["score", "--model", "zoo:lenet5", "--benchmark", "nope"], "brainalign list benchmarks"),
    (["fetch", "nope", "--no-download"], "brainalign list datasets"),
])
def test_unknown_names_point_to_the_listing(argv, listing):
    """A name with no close match ('nope') still tells the user where the names are."""
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 2, r.output
    assert "Unknown" in r.output and f"`{listing}`" in r.output


def test_unknown_model_ids_and_missing_checkpoints_are_refused_before_any_work(tmp_path):
    """Said before the data is read, every one at once, not after the models before them ran."""
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--model", "torchvision:no_such_net",
                                  "--model", "foo:bar", "--weights", str(tmp_path / "gone.pt"), "--benchmark", HIT,
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert "Unknown model 'torchvision:no_such_net'" in r.output and "Unknown model 'foo:bar'" in r.output
    assert r.output.count("gone.pt': no such checkpoint file") == 1  # one --weights for all: said once
    assert "reading the data" not in r.output and not (tmp_path / "o").exists()
    (tmp_path / "tinynet.py").write_text("def build():\n    pass\n")
    r = CliRunner().invoke(main, ["score", "--model", f"file:{tmp_path / 'tinynet.py'}:buil", "--benchmark", HIT])
    assert r.exit_code == 2 and "tinynet.py defines no 'buil'; it defines ['build']" in r.output, r.output
    # The same check and words as a batch model list (runner.batch.model_list_problems)
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--model", "zoo:lenet5", "--benchmark", HIT,
                                  "--out", str(tmp_path / "o")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "--model 'zoo:lenet5' is named 'zoo:lenet5', as --model 'zoo:lenet5'" in text, text
    assert "reading the data" not in text and not (tmp_path / "o").exists()
    (tmp_path / "m.txt").write_text("zoo:lenet5\nzoo:lenet5\n")
    with pytest.raises(BatchSpecError, match=r"models\[1\]\.id 'zoo:lenet5' is named 'zoo:lenet5', as models\["):
        read_models(tmp_path / "m.txt")


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--benchmark", HIT, "--out", str(out)])
        assert r.exit_code == 2 and "--out" in r.output and str(blocker) in r.output, r.output
        assert "reading the data" not in r.output


@needs_data
def test_one_failing_model_keeps_the_others_rows_and_is_listed(tmp_path, data_dir):
    out = tmp_path / "out"
    proc = _cli("score", "--model", "zoo:lenet5", "--model", "zoo:mlp", "--layers", "conv1", "--benchmark", HIT,
                "--n-bootstrap", "20", "--data-dir", str(data_dir), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    t = pd.read_csv(out / "scores.csv")
    assert set(t["model"]) == {"zoo:lenet5"} and list(t["layer"]) == ["conv1"]
    assert "1 of 2 model(s) failed; the others' rows are kept" in proc.stderr
    assert "zoo:mlp: Layer 'conv1' matches no layer of model 'zoo:mlp'" in proc.stderr
    # Progress names every stage, and the summary names the chosen layer with held-out score and CI.
    assert "reading the data of kriegeskorte2008.hIT-rsa" in proc.stderr
    assert "layer 1/1 conv1 recorded and scored" in proc.stderr
    summary = proc.stdout.splitlines()
    head = next(i for i, ln in enumerate(summary) if ln.split()[:2] == ["model", "benchmark"])
    assert all(c in summary[head] for c in ("held-out (1 split)", "all stimuli [95% CI]", "ceiling"))
    row = summary[head + 1].split()
    assert row[:4] == ["zoo:lenet5", HIT, "all", "conv1"]
    assert f"{t['raw'].iloc[0] / t['ceiling' if 'ceiling' in t else 'ceiling_upper'].iloc[0]:.3f}" in \
        summary[head + 1]
    assert "brainalign report" in proc.stdout  # the next step


@needs_data
def test_a_failing_labelled_model_is_named_by_its_label(tmp_path, data_dir):
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--label", "mine", "--model", "zoo:mlp",
                                  "--label", "theirs", "--layers", "conv1", "--benchmark", HIT, "--n-bootstrap",
                                  "10", "--data-dir", str(data_dir)])
    assert r.exit_code == 1 and "theirs (zoo:mlp) FAILED: Layer 'conv1' matches no layer" in r.output, r.output


@needs_data
def test_a_budget_that_projects_layers_says_so_in_the_run_s_messages(tmp_path, data_dir):
    """A --memory-budget under a layer's size switches on a random projection, which changes the
    scores: the run says so on stderr (it was said only in the table's reduction column)."""
    out = tmp_path / "out"
    proc = _cli("score", "--model", "zoo:lenet5", "--layers", "conv1", "--layers", "fc1", "--benchmark", HIT,
                "--memory-budget", "3MB", "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stderr.split())
    assert ("warning: zoo:lenet5: memory budget 3.0 MB: 1 of 2 layers do not fit it alone (layer 'conv1' needs "
            "8.7 MB to record and score) and are recorded through a random projection to 1024 features; their "
            "scores are of the projected activations (conv1;") in text
    t = pd.read_csv(out / "scores.csv").set_index("layer")
    assert '"kind": "sparse_random_projection", "n_components": 1024' in t.loc["conv1", "reduction"]
    assert t.loc["fc1", "reduction"] == '{"kind": "none"}'  # 120 features: passed through, said as full
    assert _cli("report", str(out)).returncode == 0
    html = (out / "report.html").read_text()
    assert "scored on reduced activations" in html and f"zoo:lenet5 × {HIT}: conv1 (random projection)<" in html


@needs_data
def test_an_unwritable_cache_folder_runs_on_without_the_cache(tmp_path, data_dir):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", HIT,
                                  "--n-bootstrap", "20", "--data-dir", str(data_dir),
                                  "--cache-dir", str(blocker / "sub")])
    assert r.exit_code == 0, r.output
    assert "warning: the activation cache" in r.output and "running without the cache" in r.output


def test_a_cache_that_fills_up_during_the_run_turns_itself_off(tmp_path, monkeypatch):
    from brainalign.activations.cache import ActivationCache
    from brainalign.commands.options import tolerant_cache

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    cache = tolerant_cache(str(tmp_path / "c"))
    monkeypatch.setattr(ActivationCache, "put", full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.put("ab12", np.zeros((2, 3), np.float32), ["a", "b"], {})
        cache.put("cd34", np.zeros((2, 3), np.float32), ["a", "b"], {})
    assert [str(w.message) for w in caught] == [
        f"the activation cache {tmp_path / 'c'} could not be written (No space left on device); "
        "going on without the cache"]  # one warning, then the cache is off
    assert cache.disabled and cache.get("ab12", ["a", "b"]) is None


# --- batch: one writer per output folder, resume says what changed ----------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "batch.lock").write_text(json.dumps(
            {"host": socket.gethostname(), "pid": holder.pid, "started": "2026-11-30 09:00:00 +0000"}))
        tmp = tmp_path / f".scores.csv.@{socket.gethostname()}-{holder.pid}@.abc.tmp"
        tmp.write_text("in flight")
        with pytest.raises(BatchLockedError, match=f"pid {holder.pid} on {socket.gethostname()}, "
                                                   "started 2026-11-30 09:00:00"):
            run_batch(["zoo:lenet5"], [HIT], tmp_path, progress=BatchProgress(open(os.devnull, "w")))
        assert tmp.exists() and not (tmp_path / "scores.csv").exists()  # nothing of the holder's touched
    finally:
        holder.kill()
        holder.wait()


@needs_data
def test_a_stale_lock_is_taken_over_with_a_warning_and_only_dead_runs_temp_files_go(tmp_path, data_dir):
    quick = write_quick_benchmark(tmp_path, n_boot=10)
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    (out / "batch.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "started": "x"}))
    host = socket.gethostname()
    dead_tmp = out / f".scores.csv.@{host}-{dead}@.abc.tmp"
    live_tmp = out / f".scores.csv.@{host}-{os.getppid()}@.def.tmp"  # a live process's file in flight
    for p in (dead_tmp, live_tmp):
        p.write_text("half")
    log = tmp_path / "progress.txt"
    with open(log, "w") as f:
        report = run_batch(TINY[:1], [str(quick)], out, data_dir=data_dir, progress=BatchProgress(f))
    assert report.ok and len(report.table) == 2
    text = log.read_text()
    assert f"taking over the stale lock of a run that is no longer alive (pid {dead} on {host}" in text
    assert not dead_tmp.exists() and live_tmp.exists()
    assert not (out / "batch.lock").exists()  # released at the end
    prov = json.loads((out / "provenance.json").read_text())
    run = prov["runs"][-1]
    assert run["models"]["tiny-0"]["factory"] == "tests.batch_models:tiny_cnn" and run["scored"] == 1
    assert run["settings"]["batch_size"] == 64 and "torch" in run["versions"] and run["failed"] == []


@needs_data
def test_resume_with_other_settings_says_what_changed_and_what_is_recomputed(tmp_path, data_dir):
    quick = write_quick_benchmark(tmp_path, n_boot=10)
    out = tmp_path / "out"
    run_batch(TINY, [str(quick)], out, data_dir=data_dir, memory_budget="1GB",
              progress=BatchProgress(open(os.devnull, "w")))
    log = tmp_path / "progress.txt"
    with open(log, "w") as f:
        again = run_batch(TINY, [str(quick)], out, data_dir=data_dir, resume=True, batch_size=32,
                          progress=BatchProgress(f))
    text = log.read_text()
    assert "setting memory_budget: 1000000000 → None (changes scores: this run's pairs are recomputed)" in text
    assert "setting batch_size: 64 → 32 (does not change scores: finished pairs are kept)" in text
    assert "2 pair(s) finished by an earlier run were scored with other settings or code and will be " \
           "recomputed: " \
           "tiny-0 × kriegeskorte2008.hIT-rsa-quick, tiny-1 × kriegeskorte2008.hIT-rsa-quick" in text
    assert len(again.scored) == 2 and again.skipped == []
    # Same settings again: nothing is said, nothing recomputed.
    with open(log, "w") as f:
        third = run_batch(TINY, [str(quick)], out, data_dir=data_dir, resume=True, batch_size=32,
                          progress=BatchProgress(f))
    assert "--resume:" not in log.read_text() and len(third.skipped) == 2
    assert len(json.loads((out / "provenance.json").read_text())["runs"]) == 3


def test_score_progress_has_a_line_per_stage_and_a_time_estimate_or_bars_on_a_terminal():
    import io

    from brainalign.runner.progress import ScoreProgress

    plain = io.StringIO()
    p = ScoreProgress(plain)
    p.stage("reading the data of b")
    p.pair_started("m", "b", ["l0", "l1", "l2", "l3"])
    for i, layer in enumerate(["l0", "l1", "l2", "l3"], start=1):
        p.layer_done(layer, i, 4)
    p.pair_done(True)
    text = plain.getvalue()
    assert "reading the data of b" in text and "m × b: recording and scoring 4 layer(s) (l0 … l3)" in text
    assert "layer 1/4 l0 recorded and scored\n" in text  # no rate measured yet: no estimate
    assert "layer 2/4 l1 recorded and scored, about" in text and "s left" in text
    assert "layer 4/4 l3 recorded and scored\n" in text and "m × b: done in" in text and "\r" not in text
    tty = io.StringIO()
    p = ScoreProgress(tty, bars=True)
    p.pair_started("m", "b", ["l0", "l1"])
    p.layer_done("l0", 1, 2)
    p.layer_done("l1", 2, 2)
    p.pair_done(True)
    assert "\r" in tty.getvalue() and "2/2" in tty.getvalue() and "scored l1" in tty.getvalue()


@needs_data
def test_a_second_benchmark_scored_into_the_same_folder_adds_to_it(tmp_path, data_dir):
    """Scoring benchmark after benchmark into one --out keeps every earlier pair (details too);
    a pair scored again replaces its rows instead of doubling them."""
    from brainalign.results import ScoreResult

    quick = write_quick_benchmark(tmp_path, n_boot=10)
    out = tmp_path / "out"
    args = ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--n-bootstrap", "10",
            "--data-dir", str(data_dir), "--out", str(out)]
    for bench in (HIT, str(quick), HIT):
        r = CliRunner().invoke(main, [*args, "--benchmark", bench])
        assert r.exit_code == 0, r.output
    assert "holds earlier results" in r.output
    res = ScoreResult.load(out)
    assert sorted(res.table["benchmark"]) == sorted([HIT, "kriegeskorte2008.hIT-rsa-quick"])
    assert {k[1] for k in res.details} == {HIT, "kriegeskorte2008.hIT-rsa-quick"}


@needs_data
def test_a_failure_line_names_the_model_once(tmp_path, data_dir):
    """Errors raised deep in the library start with the model id; the CLI's own failure lines
    name the model too: each line must say it once (score's progress and summary, batch's)."""
    net = tmp_path / "brokennet.py"
    net.write_text("import no_such_package_xyz\n\ndef build():\n    pass\n")
    mid = f"file:{net}:build"
    r = CliRunner().invoke(main, ["score", "--model", mid, "--benchmark", HIT, "--n-bootstrap", "5",
                                  "--data-dir", str(data_dir)])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if mid in ln]
    assert any("FAILED" in ln for ln in lines) and any(ln.startswith(f"  {mid}: ") for ln in lines)
    assert all(ln.count(mid) == 1 for ln in lines), lines
    models = tmp_path / "models.txt"
    models.write_text(mid + "\n")
    quick = write_quick_benchmark(tmp_path, n_boot=5)
    r = CliRunner().invoke(main, ["batch", str(models), "--benchmark", str(quick), "--data-dir", str(data_dir),
                                  "--out", str(tmp_path / "out")])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if mid in ln]
    assert any(ln.startswith("failed: ") for ln in lines) and any("FAILED" in ln for ln in lines)
    assert all(ln.count(mid) == 1 for ln in lines), lines


def test_without_names_strips_every_leading_name_and_nothing_else():
    from brainalign.errors import without_names

    assert without_names("m: b: m: boom: m: x", "m", "b") == "boom: m: x"
    assert without_names("model m failed", "m") == "model m failed"
    assert without_names("m:x", "m") == "m:x"  # only a "name: " prefix


def test_the_time_estimate_waits_for_a_measured_rate(monkeypatch):
    """The first layer arrives after the forward pass that records every layer of its group;
    the rest follow at the scoring rate. No estimate from the first layer alone; after it, the
    rate of the layers since the first (a fake clock: no timing in the test)."""
    import io

    from brainalign.runner import progress as progress_mod

    now = [0.0]
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    p = progress_mod.ScoreProgress(out)
    p.pair_started("m", "b", [f"l{i}" for i in range(4)])
    for i, t in enumerate([60.0, 62.0, 64.0, 66.0]):  # the recording pass, then 2 s per layer
        now[0] = t
        p.layer_done(f"l{i}", i + 1, 4)
    lines = [ln for ln in out.getvalue().splitlines() if "recorded and scored" in ln]
    assert lines[0].endswith("layer 1/4 l0 recorded and scored")  # 60 s would have said 3 min left
    assert lines[1].endswith("about 4s left") and lines[2].endswith("about 2s left")
    assert lines[3].endswith("recorded and scored")


def test_weights_given_for_a_checkpoint_are_refused_not_ignored(tmp_path):
    """`--model file:epoch_002.pt --weights random` loaded the checkpoint's weights without a word."""
    ckpt = tmp_path / "epoch_002.pt"
    ckpt.write_bytes(b"")
    r = CliRunner().invoke(main, ["score", "--model", f"file:{ckpt}", "--weights", "random", "--benchmark", HIT,
                                  "--out", str(tmp_path / "o")])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "--weights random is not used for a checkpoint" in text, r.output
    assert "reading the data" not in text and not (tmp_path / "o").exists()
