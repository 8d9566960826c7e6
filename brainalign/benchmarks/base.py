"""The benchmark as an experiment: the model is the subject, shown the stimuli and recorded."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.activations.stream import LayerStream, stream_layers
from brainalign.benchmarks.spec import BenchmarkSpec
from brainalign.data.fetch import fetch_file
from brainalign.data.manifest import Manifest, load_manifest
from brainalign.data.readers import read
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import StimulusError
from brainalign.models.base import BrainModel
from brainalign.settings import PathLike


class Benchmark:
    """Base of every benchmark kind.

    Parameters
    ----------
    spec
        The parsed YAML definition.
    data_dir
        Local data directories (see :func:`brainalign.settings.data_dirs`).
    cache
        Download cache directory.
    download
        Whether files missing locally may be downloaded.
    """

    def __init__(self, spec: BenchmarkSpec, *, data_dir: PathLike | Sequence[PathLike] | None = None,
                 cache: PathLike | None = None, download: bool = True):
        self.spec = spec
        self.data_dir, self.cache, self.download = data_dir, cache, download
        self._resolved: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.id} v{self.spec.version}>"

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def manifest(self) -> Manifest:
        return load_manifest(self.spec.dataset)

    def path_of(self, name: str) -> Path:
        """Verified local path of a file of the benchmark's dataset."""
        if name not in self._resolved:
            self._resolved[name] = fetch_file(self.manifest, name, data_dir=self.data_dir,
                                              cache=self.cache, download_missing=self.download)
        return self._resolved[name]

    def read(self, section: dict[str, Any], **extra: Any) -> Any:
        params = {k: v for k, v in section.items() if k != "reader"}
        return read(section["reader"], self.path_of, **params, **extra)

    @cached_property
    def stimuli(self) -> StimulusSet:
        """The stimuli shown to the model."""
        stim = self.read(self.spec.stimuli, name=self.spec.dataset)
        return stim

    def data_files(self) -> dict[str, str]:
        """Files read so far and their sha256 (from the manifest, verified on read)."""
        return {n: self.manifest.file(n).sha256 or "unverified" for n in self._resolved}

    def check_ids(self, ids: Sequence[str], where: str) -> None:
        """Raise if ``ids`` do not match the stimulus ids in order."""
        ours = self.stimuli.ids
        if tuple(ids) != tuple(ours):
            diff = next((i for i, (a, b) in enumerate(zip(ids, ours, strict=False)) if a != b),
                        min(len(ids), len(ours)))
            got = ids[diff] if diff < len(ids) else "<none>"
            want = ours[diff] if diff < len(ours) else "<none>"
            raise StimulusError(
                f"{self.id}: stimulus ids of {where} do not match the stimulus set at position "
                f"{diff}: {got!r} vs {want!r} ({len(ids)} vs {len(ours)} stimuli)")

    def layer_activations(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                          batch_size: int = 64, device: str = "auto", progress: bool = False,
                          **stream: Any) -> LayerStream:
        """The model's responses to :attr:`stimuli`, one layer at a time, memory-bounded.

        Every benchmark kind scores through this: iterate over ``(layer, DataArray)`` pairs and
        score each before taking the next (see :func:`brainalign.activations.stream_layers`;
        ``stream`` takes its ``memory_budget``, ``max_features``, ``reducers``, ``cache`` and
        ``on_layer``). The stream's ``.plan`` and ``.reduction()`` say how the run was recorded.
        """
        return stream_layers(model, self.stimuli, layers, batch_size=batch_size, device=device,
                             progress=progress, **stream)

    def provenance(self) -> dict[str, Any]:
        return {"benchmark": self.id, "benchmark_version": self.spec.version,
                "benchmark_file": str(self.spec.path), "dataset": self.spec.dataset,
                "data_files": self.data_files(), "citation": list(self.spec.citation)}


def bootstrap_settings(spec: BenchmarkSpec) -> tuple[int, float, int]:
    """(n, confidence level, seed) of the bootstrap over stimuli."""
    b = spec.statistics.get("bootstrap", {})
    return int(b.get("n", 1000)), float(b.get("ci", 0.95)), int(b.get("seed", 0))


def percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaN samples dropped)."""
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
