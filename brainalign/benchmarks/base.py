"""The benchmark as an experiment: the model is the subject, shown the stimuli and recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from brainalign.activations.stream import LayerStream, stream_layers
from brainalign.benchmarks.schemas import BenchmarkSchema
from brainalign.benchmarks.spec import BenchmarkSpec
from brainalign.data.fetch import fetch_file
from brainalign.data.manifest import Manifest, load_manifest
from brainalign.data.placement import Placement, place_stimuli
from brainalign.data.readers import read
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import BenchmarkDefinitionError, StimulusError
from brainalign.settings import PathLike

if TYPE_CHECKING:
    from brainalign.models.base import BrainModel


# Columns every benchmark kind adds after TABLE_COLUMNS: where the row comes from and how the
# stimuli were shown (provenance on every row), and the scores that choose the best layer honestly.
EXTRA_COLUMNS = ["session", "n_neuroids", "dev_score", "heldout_score", "placement", "data_sha256",
                 "ceiling_note"]


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

    n_bootstrap
        Overrides the YAML's ``statistics.bootstrap.n`` (fewer samples: faster, coarser CIs).
    manifest_dirs
        Extra directories of dataset manifests, searched before the bundled ones.
    max_stimuli
        Regression kinds: score a seeded random subset of at most this many stimuli per session
        (a quick check; recorded in every row's ``n_stimuli`` and in ``meta``). None: all.
    """

    # The pydantic schema that validates this kind's YAML when it is loaded (see
    # brainalign.benchmarks.schemas); a kind narrows its sections with its own subclass.
    schema: ClassVar[type[BenchmarkSchema]] = BenchmarkSchema

    def __init__(self, spec: BenchmarkSpec, *, data_dir: PathLike | Sequence[PathLike] | None = None,
                 cache: PathLike | None = None, download: bool = True, n_bootstrap: int | None = None,
                 manifest_dirs: Sequence[PathLike] = (), max_stimuli: int | None = None):
        self.spec = spec
        self.data_dir, self.cache, self.download = data_dir, cache, download
        self.n_bootstrap = n_bootstrap
        self.manifest_dirs = tuple(manifest_dirs)
        self.max_stimuli = max_stimuli
        self._resolved: dict[tuple[str, str], Path] = {}
        self._manifests: dict[str, Manifest] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.id} v{self.spec.version}>"

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def manifest(self) -> Manifest:
        return self.manifest_of(self.spec.dataset)

    def manifest_of(self, dataset: str) -> Manifest:
        """The manifest of ``dataset`` (the benchmark's own, or one a YAML section names)."""
        if dataset not in self._manifests:  # parsed once per benchmark: rows ask for it often
            self._manifests[dataset] = load_manifest(dataset, self.manifest_dirs)
        return self._manifests[dataset]

    def path_of(self, name: str, dataset: str | None = None) -> Path:
        """Verified local path of a file of the benchmark's dataset (or of ``dataset``)."""
        dataset = dataset or self.spec.dataset
        key = (dataset, name)
        if key not in self._resolved:
            manifest = self.manifest if dataset == self.spec.dataset else self.manifest_of(dataset)
            self._resolved[key] = fetch_file(manifest, name, data_dir=self.data_dir,
                                             cache=self.cache, download_missing=self.download)
        return self._resolved[key]

    def read(self, section: dict[str, Any], **extra: Any) -> Any:
        """Run the reader a YAML section names; a ``dataset`` key reads another dataset's files."""
        if "reader" not in section:
            raise BenchmarkDefinitionError(f"{self.spec.path}: a data section lacks its 'reader': {section}")
        params = {k: v for k, v in section.items() if k not in ("reader", "dataset")}
        dataset = section.get("dataset")

        def path_of(name: str) -> Path:
            return self.path_of(name, dataset)

        return read(section["reader"], path_of, **params, **extra)

    @cached_property
    def stimuli(self) -> StimulusSet:
        """The stimuli shown to the model."""
        stim = self.read(self.spec.stimuli, name=self.spec.dataset)
        return stim

    def data_files(self) -> dict[str, str]:
        """Files read so far and their sha256 (from the manifest, verified on read)."""
        out = {}
        for ds, n in self._resolved:
            entry = self.manifest_of(ds).file(n)
            key = n if ds == self.spec.dataset else f"{ds}/{n}"
            out[key] = entry.sha256 or (f"sha1:{entry.sha1}" if getattr(entry, "sha1", None) else "unverified")
        return out

    def data_hash(self) -> str:
        """sha256 over the names and checksums of the data files read so far (one short key)."""
        h = hashlib.sha256()
        for k, v in sorted(self.data_files().items()):
            h.update(f"{k}={v};".encode())
        return h.hexdigest()[:16]

    def place(self, model: BrainModel, stimuli: StimulusSet | None = None) -> tuple[StimulusSet, Placement]:
        """The stimuli as ``model`` sees them: placed in its field of view by their size in degrees."""
        stimuli = stimuli if stimuli is not None else self.stimuli
        deg = self.spec.visual_degrees if self.spec.visual_degrees is not None else stimuli.visual_degrees
        return place_stimuli(stimuli, model.visual_degrees, deg)

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
                          stimuli: StimulusSet | None = None, batch_size: int = 64,
                          device: str = "auto", progress: bool = False,
                          **stream: Any) -> LayerStream:
        """The model's responses to ``stimuli`` (default :attr:`stimuli`; benchmarks pass them
        placed by :meth:`place`), one layer at a time, memory-bounded.

        Every benchmark kind scores through this: iterate over ``(layer, DataArray)`` pairs and
        score each before taking the next (see :func:`brainalign.activations.stream_layers`;
        ``stream`` takes its ``memory_budget``, ``max_features``, ``reducers``, ``cache`` and
        ``on_layer``). The stream's ``.plan`` and ``.reduction()`` say how the run was recorded.
        """
        stimuli = stimuli if stimuli is not None else self.stimuli
        return stream_layers(model, stimuli, layers, batch_size=batch_size, device=device,
                             progress=progress, **stream)

    def provenance(self) -> dict[str, Any]:
        return {"benchmark": self.id, "benchmark_version": self.spec.version,
                "benchmark_file": str(self.spec.path), "dataset": self.spec.dataset,
                "data_files": self.data_files(), "citation": list(self.spec.citation)}


def bootstrap_settings(spec: BenchmarkSpec, n: int | None = None) -> tuple[int, float, int]:
    """(n, confidence level, seed) of the bootstrap; ``n`` overrides the YAML's."""
    b = spec.statistics.get("bootstrap", {})
    return int(n if n is not None else b.get("n", 1000)), float(b.get("ci", 0.95)), int(b.get("seed", 0))


def percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaN samples dropped)."""
    s = samples[np.isfinite(samples)]
    if s.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
