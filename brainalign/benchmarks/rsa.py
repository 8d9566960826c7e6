"""RSA benchmarks: model-layer RDMs against subjects' RDMs, with a noise ceiling."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainalign.benchmarks.base import EXTRA_COLUMNS, Benchmark, bootstrap_settings, percentile_ci
from brainalign.benchmarks.schemas import RSASchema
from brainalign.benchmarks.selection import DevSplit, dev_split, selection_settings
from brainalign.metrics.registry import metric_spec
from brainalign.metrics.rsa import RSABootstrap, compare_rdms, rdm, rsa_noise_ceiling
from brainalign.models.base import BrainModel
from brainalign.results.provenance import versions_string
from brainalign.results.result import TABLE_COLUMNS, ScoreResult


class RSABenchmark(Benchmark):
    """Compare each layer's RDM with every subject's RDM; average over subjects.

    YAML ``metric``: ``name: rsa``, ``rdm_distance`` (model RDM distance, default correlation),
    ``compare`` (comparator, default spearman). ``target`` is read into an RDM stack with a
    ``subject`` dimension; dims listed in ``target.average`` (e.g. ``[session]``) are averaged
    first. ``ceiling.method``: ``nili2014`` (needs ≥ 2 subjects) or ``none``.
    """

    schema = RSASchema

    def __init__(self, spec, **kwargs: Any):
        super().__init__(spec, **kwargs)
        self.metric = metric_spec(spec.metric.get("name", "rsa"))
        self.distance = spec.metric.get("rdm_distance", "correlation")
        self.method = spec.metric.get("compare", "spearman")
        self.ceiling_method = spec.ceiling.get("method", "nili2014")
        self.ceiling_reason = spec.ceiling.get("reason", "")
        self._subset_ceilings: dict[tuple[int, ...], float] = {}

    @cached_property
    def subject_rdms(self) -> xr.DataArray:
        """(subject, stimulus, stimulus_col) target RDMs, averaged over ``target.average`` dims."""
        section = {k: v for k, v in self.spec.target.items() if k != "average"}
        rdms = self.read(section, stimulus_ids=self.stimuli.ids)
        avg = self.spec.target.get("average") or []
        if avg:
            rdms = rdms.mean(dim=list(avg), keep_attrs=True)
        if "subject" not in rdms.dims:
            rdms = rdms.expand_dims("subject")
        self.check_ids(list(rdms["stimulus_id"].values), f"target {self.spec.target.get('file')}")
        return rdms.transpose("subject", "stimulus", "stimulus_col")

    @cached_property
    def ceiling(self) -> tuple[float, float] | None:
        """(lower, upper) noise ceiling, or None where the benchmark has none."""
        if self.ceiling_method == "none":
            return None
        return rsa_noise_ceiling(self.subject_rdms.values, self.method)

    @cached_property
    def _bootstrap(self) -> RSABootstrap:
        n, _, seed = bootstrap_settings(self.spec, self.n_bootstrap)
        return RSABootstrap(self.subject_rdms.values, self.method, n_boot=n, seed=seed)

    def score_rdm(self, model_rdm: np.ndarray) -> dict[str, Any]:
        """Score one model RDM: raw, per-subject values, ceiling, normalised, bootstrap CIs."""
        subj = self.subject_rdms.values
        per_subject = np.asarray(compare_rdms(model_rdm, subj, self.method)).ravel()
        raw = float(per_subject.mean())
        _, level, _ = bootstrap_settings(self.spec, self.n_bootstrap)
        boot = self._bootstrap.score(model_rdm)
        out: dict[str, Any] = {"raw": raw, "per_subject": per_subject, "bootstrap": boot}
        out["raw_ci_low"], out["raw_ci_high"] = percentile_ci(boot, level)
        if self.ceiling is not None and self.metric.normalisation == "divide":
            lower, upper = self.ceiling
            out.update(ceiling=upper, ceiling_lower=lower, normalised=raw / upper)
            ratio = boot / self._bootstrap.ceiling_upper
            out["ci_low"], out["ci_high"] = percentile_ci(ratio, level)
        else:
            out.update(ceiling=np.nan, ceiling_lower=np.nan, normalised=np.nan,
                       ci_low=np.nan, ci_high=np.nan)
        return out

    def score_features(self, features: np.ndarray) -> dict[str, Any]:
        """Score a (stimulus × feature) representation (a layer, pixels, …)."""
        return self.score_rdm(rdm(np.asarray(features), self.distance))

    @cached_property
    def dev_split(self) -> DevSplit:
        """The development / held-out split of the stimuli used to choose the best layer."""
        fraction, seed = selection_settings(self.spec.statistics)
        return dev_split(len(self.stimuli), fraction=fraction, seed=seed)

    def _subset_score(self, model_rdm: np.ndarray, index: tuple[int, ...]) -> float:
        """Ceiling-normalised (or raw, without a ceiling) score on a subset of the stimuli."""
        ix = np.ix_(index, index)
        subj = self.subject_rdms.values[:, ix[0], ix[1]]
        raw = float(np.mean(compare_rdms(model_rdm[ix], subj, self.method)))
        if self.ceiling is None or self.metric.normalisation != "divide":
            return raw
        if index not in self._subset_ceilings:  # the same for every layer
            self._subset_ceilings[index] = rsa_noise_ceiling(subj, self.method)[1]
        return raw / self._subset_ceilings[index]

    def __call__(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                 batch_size: int = 64, device: str = "auto", progress: bool = False,
                 **stream: Any) -> ScoreResult:
        """Record ``model`` on the stimuli (placed in its field of view) and score every layer.

        Layers are scored one at a time as they are recorded (see :meth:`layer_activations`;
        ``stream`` takes ``memory_budget``, ``max_features``, ``reducers``, ``cache``, ``on_layer``).
        """
        stimuli, placed = self.place(model)
        _ = self.subject_rdms  # read (and check) the target before any layer is recorded
        acts = self.layer_activations(model, layers, stimuli=stimuli, batch_size=batch_size,
                                      device=device, progress=progress, **stream)
        t_extract = 0.0  # recording and scoring interleave: time spent waiting on the stream
        t0 = time.perf_counter()
        rows, details = [], {}
        n_boot, _, seed = bootstrap_settings(self.spec, self.n_bootstrap)
        vers = versions_string()
        prov = model.provenance()
        split = self.dev_split
        layer_iter = iter(acts)
        for i in itertools.count():
            t = time.perf_counter()
            item = next(layer_iter, None)
            t_extract += time.perf_counter() - t
            if item is None:
                break
            layer, da = item
            self.check_ids(list(da["stimulus_id"].values), f"activations of {layer}")
            model_rdm = rdm(da.values, self.distance)
            s = self.score_rdm(model_rdm)
            rows.append({
                "model": model.name, "benchmark": self.id, "benchmark_version": self.spec.version,
                "layer": layer, "layer_index": i, "depth": model.depth(layer),
                "metric": f"rsa:{self.distance}/{self.method}",
                "raw": s["raw"], "raw_ci_low": s["raw_ci_low"], "raw_ci_high": s["raw_ci_high"],
                "ceiling": s["ceiling"], "ceiling_lower": s["ceiling_lower"],
                "normalised": s["normalised"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                "n_stimuli": len(self.stimuli), "n_bootstrap": n_boot, "seed": seed,
                "weights": prov["weights"], "weights_hash": prov["weights_hash"], "versions": vers,
                "session": "all", "n_neuroids": np.nan,
                "dev_score": self._subset_score(model_rdm, split.dev),
                "heldout_score": self._subset_score(model_rdm, split.heldout),
                "placement": placed.describe(), "data_sha256": self.data_hash(),
                "ceiling_note": self.ceiling_reason if self.ceiling is None else "",
            })
            details[(model.name, self.id, layer)] = {
                "per_subject": s["per_subject"], "bootstrap": s["bootstrap"],
                "subjects": list(self.subject_rdms["subject"].values)}
            del da, item  # free this layer before the stream records the next group
        t_total = time.perf_counter() - t0
        table = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, *EXTRA_COLUMNS])
        meta = {**self.provenance(), "models": {model.name: prov},
                "ceiling_method": self.ceiling_method, "rdm_distance": self.distance,
                "compare": self.method, "placement": placed.as_dict(),
                "layer_selection": split.describe(self.stimuli.ids),
                "timing_s": {self.id: {"extract": t_extract, "metric": t_total - t_extract}},
                "normalised": ("raw / upper bound of the noise ceiling" if self.ceiling is not None
                               else f"none: {self.ceiling_reason or 'no ceiling'}"),
                "reduction": {model.name: acts.reduction()},
                "memory_plan": {model.name: acts.plan.notes}}
        return ScoreResult(table, details, meta)
