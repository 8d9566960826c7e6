"""Receptive-field mapping and Gabor fits against known filters; unlocatable units."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from brainalign.errors import UnitLocationError
from brainalign.insilico.gabor import fit_gabor, fit_gabors, gabor
from brainalign.insilico.recording import record, unit_layout
from brainalign.insilico.rf import map_receptive_fields
from brainalign.models import wrap


def test_gabor_fit_recovers_parameters_and_flags_failures() -> None:
    m, cell = 33, 0.05
    c = (np.arange(m) - (m - 1) / 2) * cell
    x, y = np.meshgrid(c, -c)
    truth = dict(x0=0.1, y0=-0.05, sigma_x=0.15, sigma_y=0.25, orientation=60.0, sf=2.5, phase=30.0)
    rf = gabor(x, y, **truth) + np.random.default_rng(0).normal(0, 0.05, (m, m))
    fit = fit_gabor(rf, cell)
    assert fit.ok and fit.r2 > 0.8
    assert fit.orientation == pytest.approx(60.0, abs=3)
    assert fit.sf == pytest.approx(2.5, rel=0.08)
    assert fit.x0 == pytest.approx(0.1, abs=0.03) and fit.y0 == pytest.approx(-0.05, abs=0.03)
    assert fit.aspect_ratio == pytest.approx(0.25 / 0.15, rel=0.2)
    assert abs((fit.phase - 30 + 180) % 360 - 180) < 15
    table = fit_gabors(np.stack([rf, np.zeros((m, m)), np.random.default_rng(1).normal(size=(m, m))]), cell)
    assert list(table["ok"]) == [True, False, False]
    assert "flat map" in table.loc[1, "flag"] and "poor fit" in table.loc[2, "flag"]
    assert table.loc[[1], ["orientation", "sf", "r2"]].isna().all().all()  # a failed fit has no values
    assert table.loc[2, "r2"] < 0.5  # a poor fit keeps its values for inspection, flagged not ok


def _linear_model(kernel: np.ndarray, size: int = 32) -> nn.Module:
    conv = nn.Conv2d(1, 2, kernel.shape[-1], padding=kernel.shape[-1] // 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(np.stack([kernel, -kernel])[:, None], dtype=torch.float32))
    return wrap(nn.Sequential(conv, nn.ReLU()), "linear", size, in_channels=1, mean=(0.5,), std=(0.5,))


@pytest.mark.parametrize("method", ["sta", "ridge"])
def test_rf_mapping_recovers_a_known_linear_filter(method: str) -> None:
    k = 9
    c = np.arange(k) - 4
    x, y = np.meshgrid(c, -c)
    kernel = gabor(x, y, 0, 0, 1.5, 2.5, 30, 0.2, 0)
    model = _linear_model(kernel)
    block = 1 if method == "sta" else 2  # ridge holds every frame: a coarser grid
    rf = map_receptive_fields(model, "0", n_frames=1500, method=method, device="cpu", block_px=block)
    m = 32 // block
    assert rf.maps.shape == (2, m, m) and rf.responsive.all()
    if block == 2:
        kernel = kernel[:8, :8].reshape(4, 2, 4, 2).sum((1, 3))  # the kernel on the 2-px grid
        centre = rf.maps[0, 6:10, 6:10]
    else:
        centre = rf.maps[0, 16 - 4:16 + 5, 16 - 4:16 + 5]  # conv centre unit sits at pixel 16
    # the model sees contrast/0.5*0.5... the map is proportional to the kernel
    assert np.corrcoef(centre.ravel(), kernel.ravel())[0, 1] > 0.97
    if method == "sta":  # after the ReLU: the same shape
        rect = map_receptive_fields(model, "1", n_frames=1500, device="cpu")
        assert np.corrcoef(rect.maps[0, 12:21, 12:21].ravel(), kernel.ravel())[0, 1] > 0.9


def test_units_that_cannot_be_located_are_a_named_error() -> None:
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Conv2d(1, 8, 8, stride=8)
            self.mix = nn.Linear(8, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.mix(self.embed(x).flatten(2).transpose(1, 2))  # (B, tokens, dim)
            return self.head(t.mean(1))

    model = wrap(Tokens(), "tokens", 32, in_channels=1)
    with pytest.raises(UnitLocationError, match=r"mix.*\(16, 8\)"):
        map_receptive_fields(model, "mix", n_frames=10, device="cpu")
    assert unit_layout(model, "head") == {"spatial": False, "n_units": 3, "shape": (3,), "layer": "head"}
    assert record(model, "embed", np.zeros((2, 32, 32)), device="cpu").shape == (2, 8)


def test_alexnet_conv1_sta_equals_its_kernel() -> None:
    """Independent reference: the STA of a linear conv unit is its kernel (in luminance units,
    summed over RGB after dividing by each channel's std)."""
    import brainalign as ba

    model = ba.load_model("torchvision:alexnet", weights="random", seed=0)
    rf = map_receptive_fields(model, "features.0", n_frames=600, batch_size=200, device="cpu")
    w = model.module.features[0].weight.detach().numpy()  # (64, 3, 11, 11)
    std = np.array(model.preprocess.std)[None, :, None, None]
    lum_kernel = (w / std).sum(1)  # a luminance change reaches every channel
    # centre unit of the 55x55 map: output 27 ↔ input pixels 27*4-2 … +10 = 106…116
    sta = rf.maps[:, 106:117, 106:117]
    r = [np.corrcoef(sta[i].ravel(), lum_kernel[i].ravel())[0, 1] for i in range(64)]
    assert np.median(r) > 0.7 and min(r) > 0.4
