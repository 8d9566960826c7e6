"""Time bins: score recordings in a benchmark's window and match a model's time steps to bins.

A recording with a ``time_bin`` dim carries ``time_bin_start`` / ``time_bin_stop`` coordinates in
ms after stimulus onset. A benchmark's ``time_bin: {start: 70, stop: 170}`` keeps the bins that
lie inside the window. A model without time steps is compared with the responses averaged over
those bins (Brain-Score's IT window is 70–170 ms); a model whose features carry their own
``time_bin`` dim (a recurrent model's steps, each assigned an interval in ms) is compared bin by
bin, each neural bin with the model step whose interval overlaps it most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from brainalign.errors import BenchmarkDefinitionError


def _bins(da: xr.DataArray, what: str) -> np.ndarray:
    for c in ("time_bin_start", "time_bin_stop"):
        if c not in da.coords:
            raise BenchmarkDefinitionError(f"{what}: a time_bin dim needs coordinate {c!r}")
    return np.stack([da["time_bin_start"].values, da["time_bin_stop"].values], 1).astype(float)


def window_bins(da: xr.DataArray, window: Mapping[str, Any] | Sequence[float]) -> np.ndarray:
    """Indices of the bins of ``da`` that lie inside ``window`` (``{start, stop}`` in ms)."""
    start, stop = (window["start"], window["stop"]) if isinstance(window, Mapping) else window
    b = _bins(da, "recording")
    inside = np.flatnonzero((b[:, 0] >= float(start) - 1e-9) & (b[:, 1] <= float(stop) + 1e-9))
    if inside.size == 0:
        raise BenchmarkDefinitionError(
            f"no time bin lies inside the window {start}–{stop} ms; bins are {b.tolist()}")
    return inside


def select_window(da: xr.DataArray, window: Mapping[str, Any] | Sequence[float] | None,
                  average: bool = True) -> xr.DataArray:
    """The recording restricted to the bins inside ``window``, averaged over them if ``average``.

    A recording without a ``time_bin`` dim is returned as is (its single window is whatever the
    data provider integrated over, stated in the benchmark's description).
    """
    if "time_bin" not in da.dims:
        return da
    if window is None:
        raise BenchmarkDefinitionError("the recording has a time_bin dim but the benchmark states no "
                                       "time_bin window {start, stop}")
    sel = da.isel(time_bin=window_bins(da, window))
    return sel.mean("time_bin", keep_attrs=True) if average else sel


def match_bins(model_bins: np.ndarray, neural_bins: np.ndarray) -> np.ndarray:
    """For each neural bin, the index of the model bin that overlaps it most (ties: earliest).

    Both are (n, 2) arrays of [start, stop) in ms. A neural bin that no model bin overlaps takes
    the model bin whose centre is nearest.
    """
    m = np.asarray(model_bins, float)
    n = np.asarray(neural_bins, float)
    overlap = np.clip(np.minimum(m[None, :, 1], n[:, None, 1]) - np.maximum(m[None, :, 0], n[:, None, 0]),
                      0, None)
    best = overlap.argmax(1)
    none = overlap.max(1) <= 0
    if none.any():
        dist = np.abs(m.mean(1)[None, :] - n.mean(1)[:, None])
        best[none] = dist[none].argmin(1)
    return best


def model_time_bins(features: xr.DataArray) -> np.ndarray:
    """(n, 2) [start, stop] ms of a model's time steps (its features' ``time_bin`` coords)."""
    return _bins(features, "model features")
