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


def test_demo_headline_is_the_held_out_score_of_the_layer_chosen_on_development_stimuli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo ends with `brainalign score`'s summary (held-out score of the layer chosen on
    development stimuli, same legend), and its per-layer table shows the dev / held-out scores."""
    from brainalign.cli import main
    from brainalign.commands.summary import format_summary
    from brainalign.results import ScoreResult

    monkeypatch.setenv("BRAINALIGN_DATA", str(tmp_path / "no-data"))
    captured: list[ScoreResult] = []
    concat = ScoreResult.concat

    def keep(results):  # the demo's own result, to compare its printout with
        captured.append(concat(results))
        return captured[-1]

    monkeypatch.setattr(ScoreResult, "concat", staticmethod(keep))
    res = CliRunner().invoke(main, ["demo", "--cells", "12", "--stimuli", "100", "--repeats", "4"])
    assert res.exit_code == 0, res.output
    table = captured[-1].table
    assert format_summary(table) in res.output  # the one formatting of `score`'s summary
    assert "held-out (1 split): the chosen layer's score on stimuli not used to choose it" in res.output
    assert "of ceiling)" not in res.output  # no second, in-sample headline
    lines = res.output.splitlines()
    header = next(x for x in lines if x.lstrip().startswith("model") and "depth" in x)
    assert "dev_score" in header and "heldout_score" in header
    assert "chosen on development stimuli" in res.output
    chosen = table[table["selected"].astype(bool)]
    for r in chosen.itertuples():
        line = next(x for x in lines if x.startswith(r.model + " ") and "development stimuli" in x)
        assert f"{r.heldout_score:.3f}" in line
