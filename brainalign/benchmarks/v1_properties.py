"""V1 single-unit property benchmarks (Marques, Schrimpf & DiCarlo 2021).

The model is the subject of in-silico experiments (:func:`brainalign.insilico.measure_properties`);
each property's distribution over the layer's units is compared with macaque V1's by a KS-based
similarity, the model units resampled to the neural sample size; the ceiling is the same
similarity of the neural data against resamples of itself. A benchmark may hold several
properties; its score is then the mean of the per-property ceiling-normalised scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from brainalign.benchmarks.base import Benchmark, bootstrap_settings, percentile_ci
from brainalign.benchmarks.schemas import V1PropertiesSchema
from brainalign.data.v1_readers import PropertyDistribution, histogram
from brainalign.errors import MetricInputError
from brainalign.models.base import BrainModel
from brainalign.results.table import LayerScore

NOT_SPLITTABLE = ("all stimuli (in-sample): a property distribution is measured over units on the whole "
                  "grating set and cannot be split into development and held-out stimuli")


def ks_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Largest absolute difference between the cumulative sums of two normalised histograms."""
    return float(np.abs(np.cumsum(p) - np.cumsum(q)).max())


def _max_ks(p: np.ndarray) -> float:
    first = np.zeros_like(p)
    first[0] = 1
    last = np.zeros_like(p)
    last[-1] = 1
    return max(ks_distance(p, first), ks_distance(p, last))


def ks_similarity(model_values: np.ndarray, data: PropertyDistribution, *, n_boot: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """KS-based similarity of model values to a neural distribution (Marques et al. 2021).

    NaN model values (units for which the property is undefined) are dropped and counted. The
    finite values are clipped into the bin range; ``n_boot`` times they are resampled with
    replacement to the neural sample size and histogrammed; similarity = 1 − KS / (the data's
    largest possible KS). Returns the bootstrap ``samples``, their mean ``raw``, and
    ``n_model`` / ``n_dropped``.

    Raises
    ------
    MetricInputError
        No finite model value.
    """
    v = np.asarray(model_values, float)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        raise MetricInputError(f"{data.name}: no unit has a finite value ({v.size} units, all NaN)")
    p = data.counts / data.counts.sum()
    norm = _max_ks(p)
    rng = np.random.default_rng(seed)
    sims = np.empty(n_boot)
    for b in range(n_boot):
        h = histogram(rng.choice(finite, size=data.n, replace=True), data.edges)
        sims[b] = 1 - ks_distance(h / h.sum(), p) / norm
    return {"raw": float(sims.mean()), "sd": float(sims.std()), "samples": sims,
            "n_model": int(finite.size), "n_dropped": int(v.size - finite.size)}


def ks_ceiling(data: PropertyDistribution, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The similarity of the neural data to resamples of itself (multinomial over its bins, the
    same as resampling cells: only bin counts enter the KS distance)."""
    p = data.counts / data.counts.sum()
    norm = _max_ks(p)
    rng = np.random.default_rng(seed)
    sims = np.array([1 - ks_distance(rng.multinomial(data.n, p) / data.n, p) / norm
                     for _ in range(n_boot)])
    return {"ceiling": float(sims.mean()), "sd": float(sims.std()), "samples": sims}


class V1PropertyBenchmark(Benchmark):
    """One or more V1 property distributions, measured by in-silico grating experiments.

    YAML: ``target.properties`` maps property name → reader section (``histogram_csv`` or
    ``ringach2002_mat``); ``stimuli`` holds ``experiment: marques2020`` and optional
    :class:`~brainalign.insilico.ExperimentSettings` overrides (degrees); ``metric.name:
    ks_similarity``; ``ceiling.method: bootstrap``.
    """

    schema = V1PropertiesSchema


    @property
    def stimuli(self):  # type: ignore[override]
        raise AttributeError(f"{self.id}: stimuli are generated per model (gratings in the model's "
                             "field of view); see experiment_settings")

    @cached_property
    def experiment_settings(self):
        from brainalign.insilico.experiments import ExperimentSettings

        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in self.spec.stimuli.items()
              if k != "experiment"}
        return ExperimentSettings(**kw)

    @cached_property
    def distributions(self) -> dict[str, PropertyDistribution]:
        return {name: self.read(section) for name, section in self.spec.target["properties"].items()}

    @cached_property
    def ceilings(self) -> dict[str, dict[str, Any]]:
        n, _, seed = bootstrap_settings(self.spec)
        return {k: ks_ceiling(d, n_boot=n, seed=seed) for k, d in self.distributions.items()}

    def score_properties(self, table: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """Score a per-unit property table (rows of one layer) on every property."""
        n, level, seed = bootstrap_settings(self.spec)
        out = {}
        for name, dist in self.distributions.items():
            v = table[name].to_numpy(float)
            if name == "preferred_orientation":  # De Valois' bins run -22.5..157.5
                v = np.where(v >= dist.edges[-1], v - 180, v)
            try:
                s = ks_similarity(v, dist, n_boot=n, seed=seed)
            except MetricInputError as err:
                s = {"raw": 0.0, "sd": 0.0, "samples": np.zeros(n), "n_model": 0,
                     "n_dropped": int(v.size), "flag": str(err)}
            c = self.ceilings[name]
            s["ceiling"] = c["ceiling"]
            s["normalised"] = s["raw"] / c["ceiling"]
            s["normalised_samples"] = s["samples"] / c["ceiling"]
            s["raw_ci"] = percentile_ci(s["samples"], level)
            out[name] = s
        return out

    def layers_of(self, model: BrainModel, layers: str | Sequence[str] | None) -> list[str]:
        """Requested layers; by default the candidates whose units can be located (conv maps
        and flat vectors)."""
        if layers is not None:
            return model.resolve_layers(layers)
        return [n for n in model.layers if len(model.layer_info[n].output_shape) in (1, 3)]

    # ----- the run (template: Benchmark.__call__) ---------------------------------------------
    def recording(self, model: BrainModel) -> tuple[Any, Any]:
        """Gratings are drawn in the model's own field of view (nothing to place)."""
        return None, _GratingPlacement()

    def candidate_layers(self, model: BrainModel, layers: str | Sequence[str] | None) -> list[str]:
        return self.layers_of(model, layers)

    def layer_activations(self, model: BrainModel, layers: Any = None, *, stimuli: Any = None,
                          batch_size: int = 64, device: str = "auto", progress: bool = False,
                          on_layer: Any = None, **stream: Any) -> _PropertyStream:
        """Per layer, the in-silico experiments' per-unit property table (the "activations" this
        kind scores). The experiments are adaptive (size tuning at each unit's preferred
        orientation and SF), so they run layer by layer through the model rather than through
        one stimulus set: one layer's centre units are held at a time (memory bounded by
        construction); the activation cache and feature reducers do not apply."""
        return _PropertyStream(model, self.candidate_layers(model, layers), self.experiment_settings,
                               batch_size, device, on_layer)

    def score_layer(self, layer: str, activations: Any) -> list[LayerScore]:
        """KS similarity of every property distribution of the layer's units to V1's, normalised
        by the data's self-similarity; a benchmark of several properties averages them."""
        pt = activations
        _, level, _ = bootstrap_settings(self.spec)
        scores = self.score_properties(pt.table)
        raw = float(np.mean([s["raw"] for s in scores.values()]))
        ceiling = float(np.mean([s["ceiling"] for s in scores.values()]))
        norm = float(np.mean([s["normalised"] for s in scores.values()]))
        boot_raw = np.mean([s["samples"] for s in scores.values()], axis=0)
        boot_norm = np.mean([s["normalised_samples"] for s in scores.values()], axis=0)
        rlo, rhi = percentile_ci(boot_raw, level)
        lo, hi = percentile_ci(boot_norm, level)
        self._settings = pt.settings
        return [LayerScore(
            raw=raw, metric="ks_similarity", raw_ci_low=rlo, raw_ci_high=rhi, ceiling_upper=ceiling,
            normalised=norm, normalised_ci_low=lo, normalised_ci_high=hi, selection=NOT_SPLITTABLE,
            n_stimuli=len(pt.settings["orientations"]) * len(pt.settings["sfs"]) * len(pt.settings["phases"]),
            n_neuroids=int(min(s["n_model"] for s in scores.values())),
            details={"properties": pt.table, "bootstrap_raw": boot_raw, "bootstrap_normalised": boot_norm,
                     "per_property": {k: {kk: vv for kk, vv in s.items()
                                          if kk not in ("samples", "normalised_samples")}
                                      for k, s in scores.items()}})]

    def run_meta(self) -> dict[str, Any]:
        return {"properties": list(self.distributions), "ceiling_method": "bootstrap of the neural "
                "histogram against itself (mean similarity)",
                "normalised": "mean over properties of raw / ceiling",
                "experiment": getattr(self, "_settings", {})}


class _GratingPlacement:
    def describe(self) -> str:
        return "gratings drawn in the model's field of view"

    def as_dict(self) -> dict[str, Any]:
        return {"mode": "generated", "note": self.describe()}


class _PropertyStream:
    """Iterator of ``(layer, PropertyTable)``, shaped like a LayerStream for the template."""

    def __init__(self, model: BrainModel, layers: list[str], settings: Any, batch_size: int, device: str,
                 on_layer: Any):
        from types import SimpleNamespace

        self.model, self.layers, self.settings = model, layers, settings
        self.batch_size, self.device, self.on_layer = batch_size, device, on_layer
        self.plan = SimpleNamespace(notes=["in-silico experiments, one layer at a time"])

    def reduction(self) -> dict[str, Any]:
        return {n: {"kind": "centre unit of each channel"} for n in self.layers}

    def __iter__(self):
        from brainalign.insilico.experiments import measure_properties

        for k, layer in enumerate(self.layers):
            yield layer, measure_properties(self.model, layer, self.settings, batch_size=self.batch_size,
                                            device=self.device)
            if self.on_layer is not None:
                self.on_layer(layer, k + 1, len(self.layers))
