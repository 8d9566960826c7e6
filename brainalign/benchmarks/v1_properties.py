"""V1 single-unit property benchmarks (Marques, Schrimpf & DiCarlo 2021).

The model is the subject of in-silico experiments: the gratings of every experiment form one
StimulusSet (:func:`brainalign.insilico.experiments.grating_experiments`), recorded through the
same memory-bounded layer stream as every kind; each layer's per-unit properties are computed
from its responses (:func:`brainalign.insilico.experiments.properties_from_responses`);
each property's distribution over the layer's units is compared with macaque V1's by a KS-based
similarity, the model units resampled to the neural sample size; the ceiling is the same
similarity of the neural data against resamples of itself. A benchmark may hold several
properties; its score is then the mean of the per-property ceiling-normalised scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from brainalign.benchmarks.base import Benchmark, bootstrap_settings, percentile_ci
from brainalign.benchmarks.schemas import V1PropertiesSchema
from brainalign.data.v1_readers import PropertyDistribution, histogram
from brainalign.errors import MetricInputError, StimulusError, StimulusMismatchError, UnitLocationError
from brainalign.models.base import BrainModel
from brainalign.results.provenance import GENERATED_PER_MODEL
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
    kind_label = "a V1 property benchmark"

    @property
    def stimuli(self):  # type: ignore[override]
        raise AttributeError(f"{self.id}: stimuli are generated per model (gratings in the model's "
                             "field of view); see recording(model) and experiment_settings")

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
        n, _, seed = bootstrap_settings(self.spec, self.n_bootstrap)
        return {k: ks_ceiling(d, n_boot=n, seed=seed) for k, d in self.distributions.items()}

    def score_properties(self, table: pd.DataFrame) -> dict[str, dict[str, Any]]:
        """Score a per-unit property table (rows of one layer) on every property."""
        n, level, seed = bootstrap_settings(self.spec, self.n_bootstrap)
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
        """Requested layers (each must have locatable units: a conv map or a flat vector, else
        :class:`~brainalign.errors.UnitLocationError` before anything is recorded); by default the
        candidates whose units can be located."""
        from brainalign.insilico.recording import unit_layout

        if layers is not None:
            names = model.resolve_layers(layers)
            for n in names:
                unit_layout(model, n)
            return names
        names = [n for n in model.resolve_layers(None) if len(model.layer_info[n].output_shape) in (1, 3)]
        if not names:  # never an empty list of layers to record and count
            raise UnitLocationError(
                f"{model.name}: none of its default layers has units that can be located (a conv map "
                "channels x height x width, or a flat vector); name layers that do (layers= / "
                f"--layers; see `brainalign layers {model.name} --all`).")
        return names

    # ----- the run (template: Benchmark.__call__) ---------------------------------------------
    def experiments(self, model: BrainModel) -> Any:
        """The grating experiments in ``model``'s field of view
        (:class:`~brainalign.insilico.experiments.GratingExperiments`)."""
        from brainalign.insilico.experiments import grating_experiments

        return grating_experiments(model, self.experiment_settings)

    def recording(self, model: BrainModel) -> tuple[Any, Any]:
        """The gratings of every experiment as one StimulusSet, rendered in the model's own field
        of view (nothing to place): orientation × SF × phase, and the size-tuning gratings for
        every (orientation, SF) pair, so each unit's size curve at its own preference is among
        them (see :class:`~brainalign.insilico.experiments.GratingExperiments`)."""
        exp = self.experiments(model)
        stimuli = exp.stimuli
        # score_layer finds the experiments by the ids it is given (they spell out the field
        # of view and every grating's parameters), so models with other fields of view can
        # share this benchmark object, also from threads.
        self._experiments[_ids_key(stimuli.ids)] = exp
        return stimuli, _GratingPlacement(exp.fov)

    @cached_property
    def _experiments(self) -> dict[str, Any]:
        return {}

    def stimulus_order(self, ids: Sequence[str] | None) -> Sequence[str]:
        """The gratings :meth:`recording` made for the model whose responses carry ``ids``: the
        recorded set that holds most of them (so that responses to part of it are told apart
        from responses to other stimuli). Without ids: the one set recorded so far.

        Raises
        ------
        StimulusMismatchError
            No recorded set holds any of ``ids`` (or, without ids, none or several were recorded).
        """
        sets = {key: exp.stimuli.ids for key, exp in list(self._experiments.items())}  # other threads add sets
        if ids is None:
            if len(sets) != 1:
                raise StimulusMismatchError(
                    f"{self.id}: activations without stimulus ids, but {len(sets)} grating sets were recorded "
                    "(one per field of view); give a DataArray with the stimulus_id coordinate of the "
                    "stimuli recording(model) returns")
            return next(iter(sets.values()))
        exact = sets.get(_ids_key(ids))
        if exact is not None:
            return exact
        given = set(ids)
        best = max(sets.values(), key=lambda s: len(given.intersection(s)), default=())
        if not given.intersection(best):
            raise StimulusMismatchError(
                f"{self.id}: activations of {len(given)} stimuli (ids {', '.join(repr(i) for i in list(ids)[:3])}"
                f"{', …' if len(given) > 3 else ''}) are not responses to this benchmark's gratings (record the "
                "stimuli recording(model) returns)")
        return best

    def candidate_layers(self, model: BrainModel, layers: str | Sequence[str] | None) -> list[str]:
        return self.layers_of(model, layers)

    def default_reducers(self, model: BrainModel) -> Any:
        from brainalign.insilico.recording import centre_reducer

        return centre_reducer

    def layer_activations(self, model: BrainModel, layers: Any = None, *, stimuli: Any = None,
                          reducers: Any = None, max_features: int | None = None, **stream: Any) -> Any:
        """The units' responses to the gratings through the memory-bounded layer stream
        (activation cache, memory budget, progress, on_layer), like every kind.

        The units are each channel's centre unit (:class:`~brainalign.insilico.recording.CentreUnits`),
        whatever ``reducers`` / ``max_features`` the caller gives: a property is a single unit's,
        so a projection mixing units would measure nothing (the override is written in the
        memory plan's notes). The stimuli are fed at the model's input size, normalised without
        resize or crop (:func:`~brainalign.insilico.recording.physiology_view`)."""
        from brainalign.insilico.recording import centre_reducer, physiology_view

        stimuli = stimuli if stimuli is not None else self.recording(model)[0]
        out = super().layer_activations(physiology_view(model), layers, stimuli=stimuli,
                                        reducers=centre_reducer, **stream)
        if max_features is not None or (reducers is not None and reducers is not centre_reducer):
            asked = f"max_features={max_features}" if max_features is not None else f"reducers={reducers!r}"
            out.plan.notes.append(f"{asked} not applied: V1 properties are measured on each channel's "
                                  "centre unit")
        return out

    def score_layer(self, layer: str, activations: Any) -> list[LayerScore]:
        """Per-unit properties from the layer's responses to the gratings
        (:func:`~brainalign.insilico.experiments.properties_from_responses`), then the KS
        similarity of every property distribution to V1's, normalised by the data's
        self-similarity; a benchmark of several properties averages them.

        Raises
        ------
        StimulusError
            Activations that are not responses to the gratings :meth:`recording` made.
        """
        from brainalign.insilico.experiments import properties_from_responses

        ids = [str(x) for x in activations["stimulus_id"].values]
        exp = self._experiments.get(_ids_key(ids))
        if exp is None:
            raise StimulusError(f"{self.id}: activations of layer {layer!r} are not responses to this "
                                "benchmark's gratings (record the stimuli recording(model) returns)")
        pt = properties_from_responses(activations.values, exp, model=str(activations.attrs.get("model", "")),
                                       layer=layer)
        _, level, _ = bootstrap_settings(self.spec, self.n_bootstrap)
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
            # the layer's units with a measured property: a property none of them has (scored 0,
            # its count in per_property) made the least of the counts 0 for the whole layer
            n_stimuli=len(ids), n_neuroids=int(max(s["n_model"] for s in scores.values())),
            details={"properties": pt.table, "bootstrap_raw": boot_raw, "bootstrap_normalised": boot_norm,
                     "per_property": {k: {kk: vv for kk, vv in s.items()
                                          if kk not in ("samples", "normalised_samples")}
                                      for k, s in scores.items()}})]

    def run_meta(self) -> dict[str, Any]:
        return {"properties": list(self.distributions), "ceiling_method": "bootstrap of the neural "
                "histogram against itself (mean similarity)",
                "normalised": "mean over properties of raw / ceiling",
                "experiment": getattr(self, "_settings", {})}


def _ids_key(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class _GratingPlacement:
    def __init__(self, fov: Any):
        self.fov = fov

    def describe(self) -> str:
        return (f"{GENERATED_PER_MODEL} ({self.fov.degrees:g} deg, "
                f"{self.fov.size_px} px), no resize or crop")

    def as_dict(self) -> dict[str, Any]:
        return {"mode": "generated", "note": self.describe(), "visual_degrees": self.fov.degrees,
                "input_px": self.fov.size_px}
