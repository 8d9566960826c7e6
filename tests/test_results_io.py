"""Results kept whole: save/load with netCDF details, a NaN layer recorded and the others kept."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from brainalign.insilico.benchmark import SimulatedV1Benchmark, make_simulated_v1_data
from brainalign.models import wrap
from brainalign.results import COLUMNS, ScoreResult
from brainalign.results.folder import read_results


class _Poison(nn.Module):
    """Passes its input on, but with NaN in it (a diverged layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.where(torch.arange(x.shape[1]).view(1, -1, 1, 1) == 0, float("nan"), 0.0)


def _model() -> object:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), _Poison(), nn.Conv2d(4, 4, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return wrap(net, "poisoned", input_size=32, in_channels=1, mean=(0.5,), std=(0.5,), visual_degrees=4.0)


@pytest.fixture(scope="module")
def result() -> ScoreResult:
    data = make_simulated_v1_data(6, 40, 4, input_size=32, visual_degrees=4.0, seed=0)
    bench = SimulatedV1Benchmark(data, n_boot=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bench(_model(), ["0", "1", "2"], device="cpu")


def test_a_nan_layer_is_a_named_error_and_the_good_layers_are_kept(result):
    assert list(result.table["layer"]) == ["0", "1"]  # layer "2" outputs NaN
    failed = result.meta["failed_layers"]["poisoned"]
    assert set(failed) == {"2"} and "layer '2'" in failed["2"] and "NaN" in failed["2"]
    assert result.table["raw"].notna().all() and result.table["selected"].sum() == 1


def test_save_and_load_keep_table_meta_and_details(result, tmp_path):
    result.save(tmp_path)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    back = ScoreResult.load(tmp_path)
    assert list(back.table.columns) == COLUMNS
    pd.testing.assert_frame_equal(back.table, result.table, check_dtype=False)
    assert set(back.details) == set(result.details)
    for key, det in result.details.items():
        np.testing.assert_array_equal(back.details[key]["bootstrap_raw"], det["bootstrap_raw"])
        np.testing.assert_array_equal(back.details[key]["bootstrap_normalised"], det["bootstrap_normalised"])
        np.testing.assert_array_equal(back.details[key]["r"], det["r"])
    assert back.meta["failed_layers"] == result.meta["failed_layers"]
    result.save(tmp_path)  # saving again replaces the details whole
    assert len(list((tmp_path / "scores.details").glob("*.nc"))) == len(result.details)
    folder = read_results(tmp_path)  # the results-folder reader lives in results
    assert len(folder.table) == len(result.table) and not folder.skipped
