"""`brainalign demo` end to end with a reduced setting (offline, no data directory)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner


def _earlier_result(out: Path) -> None:
    from brainalign.results import COLUMNS, ScoreResult

    row = {c: None for c in COLUMNS}
    row.update(model="other-model", benchmark="other-benchmark", session="all", layer="fc", layer_index=0,
               depth=1.0, metric="rsa", raw=0.25, ceiling_upper=0.5, normalised=0.5, selected=True)
    ScoreResult(pd.DataFrame([row], columns=list(COLUMNS))).save(out)


def test_demo_runs_offline_and_writes_table_plot_and_mosaic(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from brainalign.cli import main

    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path / "no-data"))  # needs no dataset
    out = tmp_path / "demo"
    _earlier_result(out)  # another benchmark's results already in the folder
    res = CliRunner().invoke(main, ["demo", "--out", str(out), "--cells", "24", "--stimuli", "150",
                                    "--repeats", "4", "--noise-frames", "500"])
    assert res.exit_code == 0, res.output
    assert "simulated-v1" in res.output and "random-cnn" in res.output and "gabor-cnn" in res.output
    for f in ("scores.csv", "layers.png", "rf_mosaic.png", "rf_gabor_fits.csv"):
        assert (out / f).stat().st_size > 0, f
    t = pd.read_csv(out / "scores.csv")
    kept = t[t["benchmark"] == "other-benchmark"]  # the demo adds to the folder, never erases
    assert len(kept) == 1 and kept["raw"].iloc[0] == 0.25 and "holds earlier results" in res.output
    t = t[t["benchmark"] != "other-benchmark"]
    best = t.loc[t.groupby("model").normalised.idxmax()].set_index("model").normalised
    sim = best[next(m for m in best.index if m.startswith("simulated-v1"))]
    assert sim > 0.85 and best["random-cnn"] < sim - 0.2
