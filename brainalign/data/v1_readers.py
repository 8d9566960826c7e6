"""Readers for the macaque V1 property distributions (Marques et al. 2021 data).

Each returns a :class:`PropertyDistribution`: the histogram the benchmark compares with (bin
edges and counts) and, where the source has them, the per-cell values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.errors import BenchmarkDefinitionError

PathGetter = Callable[[str], Path]


@dataclass(frozen=True)
class PropertyDistribution:
    """A neural property distribution: ``edges`` (n_bins + 1), ``counts`` (n_bins), and the
    per-cell ``values`` where known; ``scale`` is the axis the bins are uniform on."""

    name: str
    edges: np.ndarray
    counts: np.ndarray
    scale: str = "linear"
    values: np.ndarray | None = None
    source: str = ""

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def read_histogram_csv(path_of: PathGetter, *, file: str, property: str, scale: str = "linear",
                       ) -> PropertyDistribution:
    """A ``bin_low,bin_high,count`` table (contiguous bins)."""
    path = path_of(file)
    t = pd.read_csv(path)
    missing = {"bin_low", "bin_high", "count"} - set(t.columns)
    if missing:
        raise BenchmarkDefinitionError(f"{path}: missing column(s) {sorted(missing)}")
    lo, hi = t["bin_low"].to_numpy(float), t["bin_high"].to_numpy(float)
    if not np.allclose(lo[1:], hi[:-1]):
        raise BenchmarkDefinitionError(f"{path}: bins are not contiguous")
    if scale not in ("linear", "log2", "log10"):
        raise BenchmarkDefinitionError(f"{path}: unknown bin scale {scale!r}")
    return PropertyDistribution(property, np.append(lo, hi[-1]), t["count"].to_numpy(float), scale,
                                None, str(path))


def _bw(db: dict[str, np.ndarray]) -> np.ndarray:
    return np.where(db["bw"] > 90, np.nan, db["bw"])


# Ringach 2002 database fields → property; bw > 90 deg counts as untuned (NaN; "not orientation
# selective") as in Brain-Score's data packaging (marques_ringach2002.py).
_RINGACH = {
    "circular_variance": lambda db: db["orivar"],
    "orientation_bandwidth": _bw,
    "orthogonal_preferred_ratio": lambda db: db["po"],
    "modulation_ratio": lambda db: db["maxfirst"] / db["maxdc"],
    "orientation_selective": lambda db: np.isfinite(_bw(db)).astype(float),
    "circular_variance_bandwidth_ratio": lambda db: db["orivar"] / _bw(db),
    "orthogonal_preferred_ratio_circular_variance_difference": lambda db: db["po"] - db["orivar"],
    "orthogonal_preferred_ratio_bandwidth_ratio": lambda db: db["po"] / _bw(db),
    "baseline_rate": lambda db: db["spont"],
    "max_dc": lambda db: db["maxdc"],
    "min_dc": lambda db: db["mindc"],
    "max_ac": lambda db: db["maxfirst"],
}


def read_ringach2002(path_of: PathGetter, *, file: str, property: str, bins: dict,
                     min_rate_above_spont: float = 5.0) -> PropertyDistribution:
    """Per-cell values from the Ringach, Shapley & Hawken (2002) database (``db`` struct in the
    original .mat), filtered as Brain-Score does (``maxdc > spont + 5`` spk/s), clipped into the
    bin range and histogrammed with ``bins`` = ``{low, high, n, scale}``."""
    path = path_of(file)
    if property not in _RINGACH:
        raise BenchmarkDefinitionError(f"{path}: no Ringach 2002 property {property!r}; "
                                       f"known: {sorted(_RINGACH)}")
    try:
        from scipy.io import loadmat  # only the .mat readers need scipy.io: imported on use

        db = loadmat(path)["db"][0, 0]
    except (KeyError, IndexError, ValueError) as err:
        raise BenchmarkDefinitionError(f"{path}: not the Ringach 2002 database ('db' struct): {err}") from err
    cols = {k: np.asarray(db[k], dtype=float).ravel() for k in ("orivar", "bw", "po", "maxfirst",
                                                                   "maxdc", "mindc", "spont")}
    keep = cols["maxdc"] > cols["spont"] + min_rate_above_spont
    values = _RINGACH[property](cols)[keep]
    edges = make_edges(bins)
    finite = values[np.isfinite(values)]
    counts = histogram(finite, edges, bins.get("scale", "linear"))
    return PropertyDistribution(property, edges, counts, bins.get("scale", "linear"), values, str(path))


def make_edges(bins: dict) -> np.ndarray:
    """Bin edges from ``{low, high, n, scale}`` (uniform on the given axis)."""
    try:
        low, high, n = float(bins["low"]), float(bins["high"]), int(bins["n"])
    except (KeyError, TypeError, ValueError) as err:
        raise BenchmarkDefinitionError(f"bins need low, high and n: {bins}") from err
    scale = bins.get("scale", "linear")
    if scale == "linear":
        return np.linspace(low, high, n + 1)
    base = {"log2": 2.0, "log10": 10.0}.get(scale)
    if base is None:
        raise BenchmarkDefinitionError(f"unknown bin scale {scale!r}")
    if not 0 < low < high:
        raise BenchmarkDefinitionError(f"bins {bins}: a {scale} axis needs 0 < low < high")
    log = np.log2 if scale == "log2" else np.log10  # exact logs: a decade edge stays exactly 1.0
    return np.logspace(log(low), log(high), n + 1, base=base)


def histogram(values: np.ndarray, edges: np.ndarray, scale: str = "linear") -> np.ndarray:
    """Counts of ``values`` clipped into [edges[0], edges[-1]] (numpy's last bin is closed)."""
    v = np.clip(np.asarray(values, float), edges[0], edges[-1])
    return np.histogram(v, bins=edges)[0].astype(float)


V1_READERS: dict[str, Callable[..., PropertyDistribution]] = {
    "histogram_csv": read_histogram_csv,
    "ringach2002_mat": read_ringach2002,
}


@dataclass(frozen=True)
class SFTuningRecording:
    """One neuron's SF experiment: per-trial SF (NaN = blank), spike count and duration (s)."""

    unit: str
    sf: np.ndarray
    spike_count: np.ndarray
    duration: np.ndarray
    stim_rate_mean: np.ndarray  # as stored by the authors, per SF level
    sf_levels: np.ndarray
    spont_rate: float

    def rates_by_sf(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """SF levels and the per-trial rates (spikes/s) at each."""
        rate = self.spike_count / self.duration
        return self.sf_levels, [rate[np.isclose(self.sf, f, rtol=1e-4)] for f in self.sf_levels]


def read_goris2015_sf(path: Path | str) -> SFTuningRecording:
    """A ``<unit>_sf.mat`` file of Goris, Simoncelli & Movshon (2015): struct ``S.sf.exp``."""
    path = Path(path)
    try:
        from scipy.io import loadmat

        e = loadmat(path, squeeze_me=True, struct_as_record=False)["S"].sf.exp
        tr = e.trial
        sf = np.asarray(tr.sf[0] if np.asarray(tr.sf).dtype == object else tr.sf, float)
        return SFTuningRecording(path.stem.replace("_sf", ""), sf, np.asarray(tr.spikeCount, float),
                                 np.asarray(tr.duration, float), np.asarray(e.stimRateMean, float),
                                 np.asarray(e.sf, float), float(e.sponRateMean))
    except (KeyError, AttributeError, IndexError) as err:
        raise BenchmarkDefinitionError(f"{path}: not a Goris 2015 SF file (S.sf.exp): {err}") from err
