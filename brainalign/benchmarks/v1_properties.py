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
from brainalign.results.provenance import versions_string
from brainalign.results.result import TABLE_COLUMNS, ScoreResult


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

    def __call__(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                 batch_size: int = 64, device: str = "auto", progress: bool = False) -> ScoreResult:
        """Run the experiments on every requested layer and score its property distributions."""
        from brainalign.insilico.experiments import measure_properties

        n_boot, level, seed = bootstrap_settings(self.spec)
        vers, prov = versions_string(), model.provenance()
        rows, details = [], {}
        names = self.layers_of(model, layers)
        for i, layer in enumerate(names):
            pt = measure_properties(model, layer, self.experiment_settings, batch_size=batch_size,
                                    device=device)
            scores = self.score_properties(pt.table)
            raw = float(np.mean([s["raw"] for s in scores.values()]))
            ceiling = float(np.mean([s["ceiling"] for s in scores.values()]))
            norm = float(np.mean([s["normalised"] for s in scores.values()]))
            boot_raw = np.mean([s["samples"] for s in scores.values()], axis=0)
            boot_norm = np.mean([s["normalised_samples"] for s in scores.values()], axis=0)
            rlo, rhi = percentile_ci(boot_raw, level)
            lo, hi = percentile_ci(boot_norm, level)
            rows.append({
                "model": model.name, "benchmark": self.id, "benchmark_version": self.spec.version,
                "layer": layer, "layer_index": model.layers.index(layer) if layer in model.layers else i,
                "depth": model.depth(layer), "metric": "ks_similarity",
                "raw": raw, "raw_ci_low": rlo, "raw_ci_high": rhi, "ceiling": ceiling,
                "ceiling_lower": np.nan, "normalised": norm, "ci_low": lo, "ci_high": hi,
                "n_stimuli": len(pt.settings["orientations"]) * len(pt.settings["sfs"])
                * len(pt.settings["phases"]),
                "n_bootstrap": n_boot, "seed": seed, "weights": prov["weights"],
                "weights_hash": prov["weights_hash"], "versions": vers,
            })
            details[(model.name, self.id, layer)] = {
                "properties": pt.table,
                "per_property": {k: {kk: vv for kk, vv in s.items() if kk not in ("samples", "normalised_samples")}
                                 for k, s in scores.items()}}
        table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
        meta = {**self.provenance(), "models": {model.name: prov},
                "properties": list(self.distributions), "ceiling_method": "bootstrap of the neural "
                "histogram against itself (mean similarity)",
                "normalised": "mean over properties of raw / ceiling",
                "experiment": pt.settings if names else {}}
        return ScoreResult(table, details, meta)
