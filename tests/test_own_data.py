"""Your own data without touching the installed package (issue 13): a benchmark YAML and a dataset
manifest in a user's folder, scored from Python and from the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from torch import nn

import brainalign as ba
from brainalign.data import sha256_file
from brainalign.errors import UnknownDatasetError

STIM = "Kriegeskorte_Neuron2008_supplementalData.mat"


def _study(root, data_dir, where: str = "data_manifests"):
    """A user's folder: `mine.hIT-rsa.yaml` over the 92-image data under their own dataset id
    `my92`, its manifest listing local-only files (no URL) with their checksums."""
    root.mkdir(parents=True, exist_ok=True)
    src = data_dir / "kriegeskorte2008_92img"
    manifest = {"id": "my92", "title": "my copy of the 92 images", "licence": "see kriegeskorte2008",
                "citation": "Kriegeskorte et al. 2008", "local_dir": "kriegeskorte2008_92img",
                "files": {STIM: {"sha256": sha256_file(src / STIM)},
                          "92_brainRDMs.mat": {"sha256": sha256_file(src / "92_brainRDMs.mat")}}}
    mdir = {"data_manifests": root / "data_manifests", "same": root, "elsewhere": root.parent / "manifests"}[where]
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "my92.yaml").write_text(yaml.safe_dump(manifest))
    bench = yaml.safe_load(ba.benchmarks.spec.benchmark_paths()["kriegeskorte2008.hIT-rsa"].read_text())
    bench.update(id="mine.hIT-rsa", dataset="my92", statistics={"bootstrap": {"n": 20, "seed": 0}})
    path = root / "mine.hIT-rsa.yaml"
    path.write_text(yaml.safe_dump(bench))
    return path, mdir


def _pixels():
    return ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d(8), nn.Flatten()), name="pixels", input_size=32)


@pytest.fixture(scope="module")
def bundled_scores(data_dir):
    res = ba.score(_pixels(), "kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=20)
    return res.table.set_index("layer")["raw"]


@pytest.mark.parametrize("where", ["data_manifests", "same"])
def test_benchmark_yaml_finds_the_manifest_beside_it(tmp_path, data_dir, bundled_scores, where):
    path, _ = _study(tmp_path / "study", data_dir, where)
    res = ba.score(_pixels(), str(path), data_dir=data_dir)
    t = res.table.set_index("layer")
    assert set(t["benchmark"]) == {"mine.hIT-rsa"}
    # The same files scored the same way: the bundled benchmark's values.
    pd.testing.assert_series_equal(t["raw"], bundled_scores, check_names=False)
    assert ba.score(_pixels(), path, data_dir=data_dir).table["raw"].notna().all()  # a Path works too


def test_manifest_dirs_option_and_configured_folder(tmp_path, data_dir, monkeypatch):
    path, mdir = _study(tmp_path / "study", data_dir, "elsewhere")
    with pytest.raises(UnknownDatasetError, match="my92"):
        ba.load_benchmark(path, data_dir=data_dir).stimuli  # noqa: B018
    assert len(ba.load_benchmark(path, data_dir=data_dir, manifest_dirs=[mdir]).stimuli) == 92
    monkeypatch.setenv("BRAINALIGN_MANIFESTS", str(mdir))
    assert len(ba.load_benchmark(path, data_dir=data_dir).stimuli) == 92
    # A folder of the user's benchmarks, configured once, makes their ids known.
    monkeypatch.setenv("BRAINALIGN_BENCHMARKS", str(path.parent))
    assert ba.load_benchmark("mine.hIT-rsa", data_dir=data_dir).spec.path == path


def test_own_benchmark_from_the_command_line(tmp_path, data_dir, bundled_scores):
    path, mdir = _study(tmp_path / "study", data_dir, "elsewhere")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    env.pop("BRAINALIGN_MANIFESTS", None)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", "score", "--model", "zoo:lenet5", "--layers", "pool2",
         "--benchmark", str(path), "--data-dir", str(data_dir), "--manifest-dir", str(mdir),
         "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(next(out.glob("*.csv")))
    assert list(table["benchmark"]) == ["mine.hIT-rsa"] and np.isfinite(table["raw"]).all()
    # Beside the YAML, no option is needed.
    shutil.move(mdir / "my92.yaml", path.parent / "my92.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", "score", "--model", "zoo:lenet5", "--layers", "pool2",
         "--benchmark", str(path), "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=600,
        env=env)
    assert proc.returncode == 0 and "mine.hIT-rsa" in proc.stdout, proc.stderr[-2000:]


def test_fetch_checks_a_users_dataset(tmp_path, data_dir):
    from click.testing import CliRunner

    from brainalign.cli import main

    _, mdir = _study(tmp_path / "study", data_dir, "elsewhere")
    res = CliRunner().invoke(main, ["fetch", "my92", "--manifest-dir", str(mdir), "--data-dir", str(data_dir),
                                    "--no-download"])
    assert res.exit_code == 0, res.output
    assert "2 of 2 files ready" in res.output
