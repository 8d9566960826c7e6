"""A results folder never holds two networks under one model name (score --out and batch alike)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from click.testing import CliRunner

import brainalign as ba
from brainalign.cli import main
from brainalign.runner import ModelEntry, run_batch
from tests.batch_models import write_quick_benchmark
from tests.conftest import needs_data

pytestmark = needs_data


def _two_quick_benchmarks(folder: Path) -> list[str]:
    """The quick hIT benchmark under two ids: two benchmarks of one model in one folder."""
    first = write_quick_benchmark(folder, n_boot=20)
    doc = yaml.safe_load(first.read_text())
    doc["id"] = "kriegeskorte2008.hIT-rsa-quick2"
    second = folder / f"{doc['id']}.yaml"
    second.write_text(yaml.safe_dump(doc, sort_keys=False))
    return [str(first), str(second)]


def test_score_refuses_other_weights_under_a_name_the_folder_keeps(tmp_path, data_dir):
    a, b = _two_quick_benchmarks(tmp_path)
    out = tmp_path / "o"
    (tmp_path / "mynet.py").write_text(  # random initial weights from torch's RNG, seeded by --seed
        "from torch import nn\n\ndef net():\n    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(),"
        " nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))\n")
    common = ["--model", f"file:{tmp_path / 'mynet.py'}:net", "--label", "net", "--layers", "4", "--data-dir",
              str(data_dir), "--out", str(out)]
    r = CliRunner().invoke(main, ["score", *common, "--benchmark", a, "--benchmark", b, "--seed", "0"])
    assert r.exit_code == 0, r.output
    before = pd.read_csv(out / "scores.csv")
    assert before["weights_hash"].nunique() == 1
    # Other weights (seed 1) under the same label, on one of the two benchmarks: refused before work
    r = CliRunner().invoke(main, ["score", *common, "--benchmark", a, "--seed", "1"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert f"keeps rows of 'net' on kriegeskorte2008.hIT-rsa-quick2 from other weights (sha256 " \
           f"{before['weights_hash'].iloc[0][:12]}" in text
    assert "--label" in text and "two networks under one name" in text
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), before)  # nothing lost or mixed
    # The same network again is welcome; on both benchmarks other weights replace the rows
    r = CliRunner().invoke(main, ["score", *common, "--benchmark", a, "--seed", "0"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["score", *common, "--benchmark", a, "--benchmark", b, "--seed", "1"])
    assert r.exit_code == 0, r.output
    after = pd.read_csv(out / "scores.csv")
    assert after["weights_hash"].nunique() == 1 and after["weights_hash"].iloc[0] != before["weights_hash"].iloc[0]


def test_batch_refuses_other_weights_under_a_name_the_folder_keeps(tmp_path, data_dir):
    a, b = _two_quick_benchmarks(tmp_path)
    out = tmp_path / "b"
    opts = {"data_dir": data_dir, "resume": True, "layers": ["4"]}
    net = ModelEntry(factory="tests.batch_models:tiny_cnn", label="net", seed=0)
    first = run_batch([net], [a, b], out, **opts)
    assert first.ok and first.table["weights_hash"].nunique() == 1
    # The checkpoint (here: the seed) changed, resumed on one benchmark: the pair is refused, the
    # other benchmark's rows of the earlier network stay, and the folder holds one network
    again = run_batch([ModelEntry(factory="tests.batch_models:tiny_cnn", label="net", seed=1)], [a], out, **opts)
    assert not again.ok and again.failures["error_type"].tolist() == ["OtherNetworkError"]
    assert "keeps rows of 'net' on kriegeskorte2008.hIT-rsa-quick2" in again.failures["error"].iloc[0]
    assert set(again.table["weights_hash"]) == set(first.table["weights_hash"])
    # Nothing was scored, so nothing is replaced: the refused pair's earlier rows stay in the tables
    # (a fresh user saw them vanish from scores.csv and the report), and its meta with them
    cols = ["model", "benchmark", "layer", "raw"]
    on_disk = pd.read_csv(out / "scores.csv", dtype={"layer": str})[cols]
    pd.testing.assert_frame_equal(on_disk.sort_values(cols).reset_index(drop=True),
                                  first.table[cols].sort_values(cols).reset_index(drop=True), check_dtype=False)
    from brainalign.results.provenance import benchmark_entries

    entries, _ = benchmark_entries(ba.ScoreResult.load(out).meta)
    assert sorted(e["benchmark"] for e in entries) == sorted(first.table["benchmark"].unique())
    # Listed with both benchmarks, the new network replaces the old one everywhere
    both = run_batch([ModelEntry(factory="tests.batch_models:tiny_cnn", label="net", seed=1)], [a, b], out, **opts)
    assert both.ok and both.table["weights_hash"].nunique() == 1
    assert set(both.table["weights_hash"]) != set(first.table["weights_hash"])
