"""The closing summary of ``brainalign score``: one line per model × benchmark, and for a
multi-session benchmark one more line per session at the layer chosen on the pooled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from brainalign.commands.summary import format_summary, summary_table
from brainalign.plots.synthetic import synthetic_table
from brainalign.results.table import choose_best
from tests.conftest import needs_data


def _multi_session() -> pd.DataFrame:
    """Benchmark 0: one session (none); benchmark 1: pooled rows without a ceiling and two
    sessions, only s2 with a ceiling (as cowley2023.V4: only 210325 has one)."""
    t = synthetic_table(2, 2, 4, seed=2)
    single = t[t["benchmark"] == "synthetic0.region-rsa"]
    multi = t[t["benchmark"] == "synthetic1.region-rsa"].assign(session="all")
    multi[["normalised", "ceiling_lower", "ceiling_upper"]] = np.nan
    s1 = multi.assign(session="s1", raw=multi["raw"] - 0.1)
    s2 = multi.assign(session="s2", raw=multi["raw"] + 0.1, ceiling_upper=0.8,
                      normalised=(multi["raw"] + 0.1) / 0.8)
    table = pd.concat([single, multi, s1, s2], ignore_index=True)
    chosen = choose_best(table)
    key = set(zip(chosen["model"], chosen["benchmark"], chosen["layer"], chosen["session"].fillna("–"),
                  strict=True))
    table["selected"] = [(m, b, lay, s if isinstance(s, str) else "–") in key for m, b, lay, s in
                         zip(table["model"], table["benchmark"], table["layer"], table["session"], strict=True)]
    return table


def test_multi_session_benchmarks_list_each_session_at_the_chosen_layer():
    table = _multi_session()
    s = summary_table(table)
    # 2 models × (1 single-session line + 1 pooled line + 2 session lines).
    assert len(s) == 8
    pooled = s[s["session"] == "all"]
    assert len(pooled) == 2
    for i in pooled.index:
        subs = s.loc[i + 1:i + 2]
        assert list(subs["session"]) == ["  └ s1", "  └ s2"]
        assert (subs["layer"] == pooled.at[i, "layer"]).all()  # the same chosen layer
        model = pooled.at[i, "model"]
        want = table[(table["model"] == model) & (table["session"] == "s2") &
                     (table["layer"] == pooled.at[i, "layer"])]
        assert subs.iloc[1]["all stimuli [95% CI]"].startswith(f"{want['normalised'].iloc[0]:.3f}")
        assert subs.iloc[1]["ceiling"].startswith("≤0.800") and subs.iloc[0]["ceiling"] == "none"
    single = s[s["benchmark"] == "synthetic0.region-rsa"]
    assert len(single) == 2 and (single["session"] == "–").all()  # single-session output unchanged
    text = format_summary(table)
    assert "  └ s2" in text and "└ lines" in text


def test_without_a_selected_column_the_layer_is_still_chosen_once_on_the_pooled_rows():
    table = _multi_session().drop(columns="selected")
    s = summary_table(table)
    assert len(s) == 8 and (s["session"].str.startswith("  └")).sum() == 4


def test_alpha_grid_warnings_are_summed_into_one_line_that_says_how_to_widen_the_grid():
    import warnings

    from brainalign.runner.pair_warnings import warning_lines

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(57):
            warnings.warn(f"encoding_score: for {k % 5 + 1} of 40 neuroids the chosen α is mostly at an end "
                          "of the grid [0.01, 1e+08]; widen `alphas`", stacklevel=1)
        for _ in range(3):
            warnings.warn("the activation cache /x could not be written\nsecond line", stacklevel=1)
    lines = warning_lines(caught, "m × antolik2016.V1-ridge")
    assert len(lines) == 2
    n = sum(k % 5 + 1 for k in range(57))
    assert lines[0].startswith("warning: m × antolik2016.V1-ridge: in 57 ridge fit(s), the chosen α was at an "
                               "end of the grid [0.01, 1e+08] in most folds for some neuroids")
    assert f"some neuroids ({n} of {57 * 40} neuroid fits)" in lines[0] and "`alphas:` under `metric:`" in lines[0]
    assert lines[1] == "warning: the activation cache /x could not be written\n    second line"
    # encoding_score's own messages say which end: the line says what each end means
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for low, high in ((0, 3), (1, 2)):
            warnings.warn(f"encoding_score: for {low + high} of 40 neuroids the chosen α is mostly at an end of "
                          f"the grid [0.01, 1e+08] ({low} at the low end, {high} at the high end). At …",
                          stacklevel=1)
    (line,) = warning_lines(caught, "m × b")
    assert ("(6 of 80 neuroid fits; 1 at the low end, 5 at the high end); at the high end the strongest "
            "shrinkage won, as it does for neuroids the features barely predict; to extend the grid (downwards "
            "for the low end, upwards for the high end), copy") in line
    only_low = warning_lines(["encoding_score: for 2 of 40 neuroids the chosen α is mostly at an end of the grid "
                              "[0.01, 1e+08] (2 at the low end, 0 at the high end). At …"], "m × b")[0]
    assert "strongest shrinkage" not in only_low and "to extend the grid (downwards" in only_low


@needs_data
def test_a_regression_score_prints_its_alpha_warnings_as_one_line_never_raw(tmp_path, data_dir):
    """The real command, end to end: the benchmark's preparation starts on its own thread before
    the first pair's warnings are collected, and its ``catch_warnings`` blocks used to put
    Python's printing hook back under the collector, so every ridge fit printed a raw
    ``UserWarning`` (39 on antolik's 3 sessions × 13 layers). A torchvision model, whose import
    takes the preparation's thread past the collector's start, as a user's run does."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BRAINALIGN_DATA": str(data_dir), "PYTHONWARNINGS": ""}
    r = subprocess.run([sys.executable, "-c", "from brainalign.cli import main; main()", "score",
                        "--model", "torchvision:resnet18", "--layers", "conv1", "--layers", "layer1.1",
                        "--benchmark", "antolik2016.V1-ridge",
                        "--max-stimuli", "40", "--device", "cpu", "--out", str(tmp_path / "out")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "UserWarning" not in r.stderr and "UserWarning" not in r.stdout
    alpha = [ln for ln in r.stderr.splitlines() if "ridge fit(s)" in ln]
    assert len(alpha) == 1 and "torchvision:resnet18 × antolik2016.V1-ridge" in alpha[0]


def test_next_steps_do_not_suggest_a_file_model_after_one_was_scored():
    from pathlib import Path

    from brainalign.commands.score import next_steps

    assert "--model file:mynet:build" in next_steps(Path("r"))
    assert "--model file:" not in next_steps(Path("r"), own_model=True)
    assert "brainalign report r" in next_steps(Path("r"), own_model=True)


@needs_data
def test_a_file_model_run_lists_a_multi_line_failure_indented_and_no_file_hint(tmp_path, data_dir, monkeypatch):
    from click.testing import CliRunner

    from brainalign.cli import main

    (tmp_path / "goodnet.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4),\n"
        "                         nn.Flatten())\n")
    (tmp_path / "badnet.py").write_text("def build():\n    raise ValueError('first line\\nsecond line')\n")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["score", "--model", "file:goodnet:build", "--model", "file:badnet:build",
                                  "--layers", "0", "--benchmark", "kriegeskorte2008.hIT-rsa",
                                  "--n-bootstrap", "10",
                                  "--data-dir", str(data_dir)])
    assert r.exit_code == 1, r.output
    tail = r.output[r.output.index("1 of 2 model(s) failed"):].splitlines()
    first = next(i for i, ln in enumerate(tail) if ln.startswith("  file:badnet:build: "))
    assert "first line" in tail[first] and tail[first + 1] == "    second line"
    assert "next:" in r.output and "--model file:mynet:build" not in r.output


def test_the_legend_gives_the_units_of_the_held_out_score():
    text = format_summary(_multi_session())
    legend = text.splitlines()[-1]
    held = legend.split("; all stimuli:")[0]
    assert held.startswith("held-out (1 split): the chosen layer's score on stimuli not used to choose it")
    # Its units: normalised by the ceiling of the held-out subset, raw without a ceiling.
    assert "score / upper bound of the noise ceiling of those held-out stimuli" in held
    assert "'raw' where there is no ceiling" in held


def test_a_raw_number_says_raw_in_both_score_columns_and_the_ci_heads_its_own_column():
    """A session without a ceiling shows raw r; beside a normalised session it must say so, in the
    held-out column as in the all-stimuli one; and the CI's header names the all-stimuli score."""
    s = summary_table(_multi_session().assign(heldout_score=0.25))
    raw_line = s[(s["session"] == "  └ s1")].iloc[0]
    norm_line = s[(s["session"] == "  └ s2")].iloc[0]
    assert raw_line["held-out (1 split)"] == "0.250 raw" and norm_line["held-out (1 split)"] == "0.250"
    assert raw_line["all stimuli [95% CI]"].endswith(" raw")
    text = format_summary(_multi_session())
    assert "all stimuli [95% CI]" in text.splitlines()[0] and "one seeded split" in text


@needs_data
def test_ctrl_c_in_score_says_what_is_kept_and_how_to_go_on(tmp_path, data_dir, monkeypatch):
    """Not a bare "Aborted!": the models finished before the interrupt are on disk and said so."""
    from click.testing import CliRunner

    from brainalign.cli import main

    (tmp_path / "goodnet.py").write_text(
        "import torch.nn as nn\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4),\n"
        "                         nn.Flatten())\n")
    (tmp_path / "stopnet.py").write_text("def build():\n    raise KeyboardInterrupt\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["score", "--model", "file:goodnet:build", "--model", "file:stopnet:build",
                                  "--layers", "0", "--benchmark", "kriegeskorte2008.hIT-rsa",
                                  "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 130, r.output
    assert "Aborted!" not in r.output
    assert f"interrupted: 1 of 2 model(s) had finished, kept in {out / 'scores.csv'}" in r.output
    assert set(pd.read_csv(out / "scores.csv")["model"]) == {"file:goodnet:build"}


@needs_data
def test_ctrl_c_before_any_model_finished_says_nothing_was_written(tmp_path, data_dir, monkeypatch):
    """Interrupted before the first model finished: no scores.csv is claimed as kept."""
    from click.testing import CliRunner

    from brainalign.cli import main

    (tmp_path / "stopnet.py").write_text("def build():\n    raise KeyboardInterrupt\n")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["score", "--model", "file:stopnet:build", "--benchmark",
                                  "kriegeskorte2008.hIT-rsa", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 130, r.output
    assert f"interrupted: 0 of 1 model(s) had finished, nothing written to {out}" in r.output
    assert "kept in" not in r.output and not (out / "scores.csv").exists()


def test_summary_columns_stay_aligned_with_a_negative_ci():
    """Every column is left-aligned: a negative CI bound ('[-0.021, …]') used to shift its line's
    right-aligned CI text, and the ceiling after it, by one character."""
    t = synthetic_table(2, 1, 3)
    t.loc[t.index[:3], "normalised_ci_low"] = -0.021  # model-00's layers
    lines = format_summary(t).splitlines()[1:3]
    starts = [ln.index("0.450–0.600") for ln in lines]
    assert "[-0.021" in lines[0] and "[-0.021" not in lines[1]
    assert starts[0] == starts[1]
    ci = [ln.index(" [") - 5 for ln in lines]  # where each line's all-stimuli score starts
    assert ci[0] == ci[1]


def test_a_long_selection_reason_goes_under_the_table_not_into_every_line():
    """The V1-properties benchmark says why its layers cannot be split in a whole sentence; in the
    'chosen on' column it stretched the summary ~200 characters wide."""
    from brainalign.benchmarks.v1_properties import NOT_SPLITTABLE
    from brainalign.commands.summary import format_summary

    t = synthetic_table(n_models=2, n_benchmarks=1, n_layers=3).assign(selection=NOT_SPLITTABLE)
    text = format_summary(t)
    head, _, reason = NOT_SPLITTABLE.partition(": ")
    table_lines = text.splitlines()[:-1]
    assert all(len(ln) < 140 for ln in table_lines), table_lines
    assert all(reason not in ln for ln in table_lines)
    assert f"chosen on {head}: {reason}" in text.splitlines()[-1]
