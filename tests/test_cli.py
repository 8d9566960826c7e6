"""The command line, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd

from tests.conftest import needs_data


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "brainalign.cli", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **kw.pop("env", {})}, **kw)


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys, time; t = time.perf_counter(); from brainalign.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "score" in out.stdout and "NOTORCH" in out.stdout
    start = time.perf_counter()
    proc = _run("--help")
    assert proc.returncode == 0
    assert time.perf_counter() - start < 1.5


def test_list_benchmarks_and_datasets():
    assert "kriegeskorte2008.hIT-rsa" in _run("list", "benchmarks").stdout.split()
    assert "kriegeskorte2008" in _run("list", "datasets").stdout.split()


def test_list_benchmarks_says_each_kind_region_and_whether_its_data_is_here(data_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from brainalign.cli import main

    monkeypatch.setenv("BRAINALIGN_DATA", str(data_dir))
    lines = {ln.split()[0]: ln.split(None, 3)[1:] for ln in CliRunner().invoke(main, ["list", "benchmarks"])
             .output.splitlines()}
    assert lines["kriegeskorte2008.hIT-rsa"] == ["rsa", "hIT", "kriegeskorte2008: local copy"]
    assert lines["cowley2023.V4-ridge"][:2] == ["regression", "V4"]
    assert lines["simulated.V1-ridge"][2] == "simulated: generated, no files"
    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path))  # an empty data directory
    out = CliRunner().invoke(main, ["list", "benchmarks"]).output
    assert "kriegeskorte2008: not here (fetched on first use, or BRAINALIGN_DATA)" in out


def test_layers_of_resnet18():
    out = _run("layers", "torchvision:resnet18").stdout.splitlines()
    assert out[0].startswith("conv1\tConv2d\t64x112x112")
    assert out[-1].startswith("fc\tLinear\t1000")


def test_unknown_model_exits_with_a_message():
    proc = _run("layers", "torchvision:resnet181")
    assert proc.returncode == 2 and "Did you mean" in proc.stderr


@needs_data
def test_score_two_models_into_one_table_and_plot(tmp_path, data_dir):
    out = tmp_path / "out"
    proc = _run("score", "--model", "torchvision:alexnet", "--model", "torchvision:resnet18",
                "--weights", "random", "--benchmark", "kriegeskorte2008.hIT-rsa",
                "--layers", "features.1[02]", "--layers", "layer4.*", "--layers", "fc",
                "--data-dir", str(data_dir), "--out", str(out))
    # alexnet has no layer4.* — a glob that matches nothing is an error for that model.
    assert proc.returncode == 2 and "layer4.*" in proc.stderr
    proc = _run("score", "--model", "torchvision:alexnet", "--model", "torchvision:resnet18",
                "--weights", "random", "--benchmark", "kriegeskorte2008.hIT-rsa",
                "--layers", "*.1", "--n-bootstrap", "100", "--data-dir", str(data_dir), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "scores.csv")
    assert set(table["model"]) == {"torchvision:alexnet", "torchvision:resnet18"}
    # Globs match every recordable module, block internals included.
    assert set(table.loc[table["model"] == "torchvision:resnet18", "layer"]) == {
        "layer1.1", "layer2.1", "layer3.1", "layer4.1", "layer2.0.downsample.1",
        "layer3.0.downsample.1", "layer4.0.downsample.1"}
    assert set(table.loc[table["model"] == "torchvision:alexnet", "layer"]) == {
        "features.1", "classifier.1"}
    assert (out / "layers.png").stat().st_size > 5000
    # stdout: the summary (chosen layer per model, held-out score, CI, ceiling); the table is in the file.
    assert "held-out (1 split)" in proc.stdout and "all stimuli [95% CI]" in proc.stdout
    assert proc.stdout.count("kriegeskorte2008.hIT-rsa") >= 2 and "brainalign report" in proc.stdout


@needs_data
def test_score_with_a_missing_data_dir_fails_cleanly(tmp_path):
    # A --data-dir that does not exist is refused while the command line is read, naming it.
    proc = _run("score", "--model", "torchvision:alexnet", "--benchmark", "kriegeskorte2008.hIT-rsa",
                "--data-dir", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and str(tmp_path / "nowhere") in proc.stderr
    # An existing folder without the data: every place looked is named.
    (tmp_path / "empty").mkdir()
    proc = _run("score", "--model", "torchvision:alexnet", "--benchmark", "kriegeskorte2008.hIT-rsa",
                "--data-dir", str(tmp_path / "empty"),
                env={"https_proxy": "http://127.0.0.1:9", "BRAINALIGN_CACHE": str(tmp_path / "c")})
    assert proc.returncode == 2
    assert "not found" in proc.stderr and str(tmp_path / "empty") in proc.stderr


@needs_data
def test_fetch_verifies_local_copies(data_dir, tmp_path):
    proc = _run("fetch", "kriegeskorte2008", "--data-dir", str(data_dir), "--no-download")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ok\t") == 5 and "5 of 5 files ready" in proc.stdout
    proc = _run("fetch", "kriegeskorte2008", "--data-dir", str(tmp_path), "--no-download",
                "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 1 and proc.stderr.count("FAILED") == 5
