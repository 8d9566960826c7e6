"""`brainalign demo` end to end, reduced, as a subprocess (offline, no data directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_offline_and_writes_table_plot_and_mosaic(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "BRAINALIGN_DATA": str(tmp_path / "no-data")}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "brainalign.cli", "demo", "--out", str(out), "--cells", "24",
         "--stimuli", "150", "--repeats", "4", "--noise-frames", "500"],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "simulated-v1" in proc.stdout and "random-cnn" in proc.stdout and "gabor-cnn" in proc.stdout
    for f in ("scores.csv", "layers.png", "rf_mosaic.png", "rf_gabor_fits.csv"):
        assert (out / f).stat().st_size > 0, f
    t = pd.read_csv(out / "scores.csv")
    best = t.loc[t.groupby("model").normalised.idxmax()].set_index("model").normalised
    sim = best[next(m for m in best.index if m.startswith("simulated-v1"))]
    assert sim > 0.85 and best["random-cnn"] < sim - 0.2
