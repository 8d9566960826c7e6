"""`brainalign demo` end to end with a reduced setting (offline, no data directory)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner


def test_demo_runs_offline_and_writes_table_plot_and_mosaic(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from brainalign.cli import main

    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path / "no-data"))  # needs no dataset
    out = tmp_path / "demo"
    res = CliRunner().invoke(main, ["demo", "--out", str(out), "--cells", "24", "--stimuli", "150",
                                    "--repeats", "4", "--noise-frames", "500"])
    assert res.exit_code == 0, res.output
    assert "simulated-v1" in res.output and "random-cnn" in res.output and "gabor-cnn" in res.output
    for f in ("scores.csv", "layers.png", "rf_mosaic.png", "rf_gabor_fits.csv"):
        assert (out / f).stat().st_size > 0, f
    t = pd.read_csv(out / "scores.csv")
    best = t.loc[t.groupby("model").normalised.idxmax()].set_index("model").normalised
    sim = best[next(m for m in best.index if m.startswith("simulated-v1"))]
    assert sim > 0.85 and best["random-cnn"] < sim - 0.2
