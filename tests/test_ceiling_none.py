"""Benchmarks scored without a noise ceiling (``ceiling: {method: none}``), for every kind that
has the choice: each row says why it is not normalised (the YAML's reason, else a default that
names the setting, never another cause), and the best layer is reported on the raw scale.

Real data: hIT fMRI RDMs (rsa) and Cowley V4 responses (regression, whose session 210325 has
repeats, so a wrong "no repeat trials" note would be visible).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import brainalign as ba
from brainalign.benchmarks.base import NO_CEILING_NOTE
from brainalign.benchmarks.spec import benchmark_paths
from brainalign.errors import BenchmarkDefinitionError
from tests.conftest import needs_data

pytestmark = [needs_data, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:encoding_score.*end of the grid:UserWarning")]

CASES = {"rsa": ("kriegeskorte2008.hIT-rsa", {}),
         "regression": ("cowley2023.V4-ridge", {"max_stimuli": 40})}


def _model() -> ba.BrainModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
    return ba.wrap(net, name="net", input_size=16)


def _variant(tmp_path, bench_id: str, **changes) -> str:
    """The bundled benchmark's YAML with ``changes``, as a user's own file."""
    doc = yaml.safe_load(benchmark_paths()[bench_id].read_text())
    if "ceiling" in changes:  # its other keys stay (sessions' `trials` extend `ceiling.trials`)
        changes["ceiling"] = {**doc.get("ceiling", {}), **changes["ceiling"]}
    doc.update(id=f"{bench_id}-mine", **changes)
    path = tmp_path / f"{bench_id}-mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("reason", ["", "my reason"])
@pytest.mark.parametrize("kind", list(CASES))
def test_rows_without_a_ceiling_say_why_and_the_best_layer_is_raw(kind, reason, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", "0")
    bench_id, options = CASES[kind]
    ceiling = {"method": "none", **({"reason": reason} if reason else {})}
    mine = ba.load_benchmark(_variant(tmp_path, bench_id, ceiling=ceiling), data_dir=data_dir,
                             n_bootstrap=20, **options)
    ref = ba.load_benchmark(bench_id, data_dir=data_dir, n_bootstrap=20, **options)
    layers = ["0", "2"]
    got = ba.score(_model(), mine, layers=layers, device="cpu")
    want = ba.score(_model(), ref, layers=layers, device="cpu")
    t, r = got.table, want.table
    assert (t["ceiling_note"] == (reason or NO_CEILING_NOTE)).all(), t["ceiling_note"].unique()
    assert t[["normalised", "ceiling_upper"]].isna().all().all()
    # The raw scores are the ceilinged benchmark's; the reference really is normalised.
    np.testing.assert_array_equal(t["raw"].to_numpy(float), r["raw"].to_numpy(float))
    assert r["normalised"].notna().any()
    # best_score: the chosen layer's held-out score, raw here.
    best = got.best.iloc[0]
    row = t[(t["layer"] == best["layer"]) & (t["session"] == best["session"])].iloc[0]
    assert best["best_score"] == row["heldout_score"]
    if kind == "rsa":  # one session: the held-out score is the raw score on the held-out stimuli
        ref_row = r[r["layer"] == best["layer"]].iloc[0]
        assert ref_row["heldout_score"] != row["heldout_score"]  # normalised there, raw here


def test_an_rsa_ceiling_over_one_subject_is_a_named_error(data_dir, tmp_path):
    """nili2014 bounds need two subjects: hIT averaged over its subjects is refused before any
    model runs, naming the benchmark, the file and the fix."""
    doc = yaml.safe_load(benchmark_paths()["kriegeskorte2008.hIT-rsa"].read_text())
    target = {**doc["target"], "average": ["session", "subject"]}
    bench = ba.load_benchmark(_variant(tmp_path, "kriegeskorte2008.hIT-rsa", target=target), data_dir=data_dir)
    assert bench.subject_rdms.sizes["subject"] == 1
    fix = r"hIT-rsa-mine.*at least 2.*92_brainRDMs.mat.*method: none"
    with pytest.raises(BenchmarkDefinitionError, match=fix):
        bench.prepare()
    # Without a ceiling the same single RDM scores, raw.
    plain = ba.load_benchmark(_variant(tmp_path, "kriegeskorte2008.hIT-rsa", target=target,
                                       ceiling={"method": "none"}), data_dir=data_dir, n_bootstrap=20)
    s = plain.score_features(np.random.default_rng(0).standard_normal((92, 30)))
    assert np.isfinite(s["raw"]) and np.isnan(s["normalised"])
