"""RSA benchmarks: model-layer RDMs against subjects' RDMs, with a noise ceiling."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from brainalign.benchmarks.base import Benchmark, bootstrap_settings, no_ceiling_note, percentile_ci
from brainalign.benchmarks.ceiling_store import store_key, stored
from brainalign.benchmarks.schemas import RSASchema
from brainalign.benchmarks.selection import DevSplit, dev_split, selection_settings
from brainalign.errors import BenchmarkDefinitionError, MetricInputError
from brainalign.metrics import rsa as rsa_metrics
from brainalign.metrics import stats
from brainalign.metrics.registry import metric_spec
from brainalign.metrics.rsa import RSABootstrap, compare_rdms, rdm, rsa_noise_ceiling
from brainalign.results.table import LayerScore
from brainalign.settings import ceiling_cache_dir


class RSABenchmark(Benchmark):
    """Compare each layer's RDM with every subject's RDM; average over subjects.

    YAML ``metric``: ``name: rsa``, ``rdm_distance`` (model RDM distance, default correlation),
    ``compare`` (comparator, default spearman). ``target`` is read into an RDM stack with a
    ``subject`` dimension; dims listed in ``target.average`` (e.g. ``[session]``) are averaged
    first. ``ceiling.method``: ``nili2014`` (needs ≥ 2 subjects) or ``none``.
    """

    schema = RSASchema
    kind_label = "an RSA benchmark"

    def __init__(self, spec, **kwargs: Any):
        super().__init__(spec, **kwargs)
        self.metric = metric_spec(spec.metric.get("name", "rsa"))
        self.distance = spec.metric.get("rdm_distance", "correlation")
        self.method = spec.metric.get("compare", "spearman")
        self.ceiling_method = spec.ceiling.get("method", "nili2014")
        self.ceiling_reason = no_ceiling_note(spec)
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
        rdms = rdms.transpose("subject", "stimulus", "stimulus_col")
        iu = np.triu_indices(rdms.sizes["stimulus"], k=1)
        for k, subject in enumerate(rdms["subject"].values):
            v = rdms.values[k][iu]
            if np.ptp(v) <= 1e-12 * max(1.0, float(np.abs(v).max(initial=0.0))):
                raise MetricInputError(
                    f"{self.id}: the RDM of subject {str(subject)!r} in {self.spec.target.get('file')} "
                    "is constant "
                    f"(every dissimilarity {float(v[0]):.6g}); it has no rank order to compare with and "
                    "would make every score NaN. Remove that subject or fix the file.")
        return rdms

    @cached_property
    def ceiling(self) -> tuple[float, float] | None:
        """(lower, upper) noise ceiling, or None where the benchmark has none."""
        if self.ceiling_method == "none":
            return None
        n_subjects = self.subject_rdms.sizes["subject"]
        if n_subjects < 2:
            raise BenchmarkDefinitionError(
                f"{self.id}: ceiling.method {self.ceiling_method!r} needs the RDMs of at least 2 "
                f"subjects; target {self.spec.target.get('file')} holds {n_subjects}. To score without "
                "a noise ceiling, set `ceiling: {method: none, reason: ...}` in the benchmark's YAML")
        return rsa_noise_ceiling(self.subject_rdms.values, self.method)

    @cached_property
    def _bootstrap(self) -> RSABootstrap:
        """The bootstrap over stimuli; its per-sample ceilings come from the ceiling store when an
        earlier run (any model) computed them for the same RDMs and settings."""
        n, _, seed = bootstrap_settings(self.spec, self.n_bootstrap)
        subj = self.subject_rdms.values
        if subj.shape[0] < 2 or self.ceiling_method == "none":
            return RSABootstrap(subj, self.method, n_boot=n, seed=seed, noise_ceiling=False)
        built: list[RSABootstrap] = []

        def compute() -> dict[str, np.ndarray]:
            built.append(RSABootstrap(subj, self.method, n_boot=n, seed=seed))
            return {"lower": built[0].ceiling_lower, "upper": built[0].ceiling_upper}

        key = store_key("rsa_bootstrap", {"method": self.method, "n_boot": n, "seed": seed},
                        {"subject_rdms": subj}, code=(rsa_metrics, stats))
        c = stored(ceiling_cache_dir(), key, {"lower": (n,), "upper": (n,)}, compute)
        return built[0] if built else RSABootstrap(subj, self.method, n_boot=n, seed=seed,
                                                   ceilings=(c["lower"], c["upper"]))

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
            out.update(ceiling_upper=upper, ceiling_lower=lower, normalised=raw / upper)
            ratio = boot / self._bootstrap.ceiling_upper
            out["bootstrap_normalised"] = ratio
            out["normalised_ci_low"], out["normalised_ci_high"] = percentile_ci(ratio, level)
        else:
            out.update(ceiling_upper=np.nan, ceiling_lower=np.nan, normalised=np.nan,
                       normalised_ci_low=np.nan, normalised_ci_high=np.nan,
                       bootstrap_normalised=np.full_like(boot, np.nan))
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

    def prepare(self) -> None:
        """The noise ceiling and the bootstrap (index sets, per-sample ceilings) of the run."""
        _ = self.ceiling, self._bootstrap

    def recording(self, model: Any) -> Any:
        _ = self.subject_rdms  # read (and check) the target before any layer is recorded
        return super().recording(model)

    def score_layer(self, layer: str, activations: xr.DataArray) -> list[LayerScore]:
        """RDM of the layer against every subject's RDM: raw (mean over subjects), the noise
        ceiling's bounds, normalised by the upper bound, bootstrap CIs over stimuli, and the
        dev / held-out scores that choose the best layer."""
        model_rdm = rdm(activations.values, self.distance)
        s = self.score_rdm(model_rdm)
        split = self.dev_split
        return [LayerScore(
            raw=s["raw"], metric=f"rsa:{self.distance}/{self.method}", session="all",
            raw_ci_low=s["raw_ci_low"], raw_ci_high=s["raw_ci_high"],
            ceiling_lower=s["ceiling_lower"], ceiling_upper=s["ceiling_upper"],
            normalised=s["normalised"], normalised_ci_low=s["normalised_ci_low"],
            normalised_ci_high=s["normalised_ci_high"],
            dev_score=self._subset_score(model_rdm, split.dev),
            heldout_score=self._subset_score(model_rdm, split.heldout),
            n_stimuli=len(self.stimuli), n_neuroids=np.nan,
            ceiling_note=self.ceiling_reason if self.ceiling is None else "",
            details={"per_subject": s["per_subject"], "subjects": list(self.subject_rdms["subject"].values),
                     "bootstrap_raw": s["bootstrap"], "bootstrap_normalised": s["bootstrap_normalised"]})]

    def run_meta(self) -> dict[str, Any]:
        return {"ceiling_method": self.ceiling_method, "rdm_distance": self.distance,
                "compare": self.method, "layer_selection": self.dev_split.describe(self.stimuli.ids),
                "normalised": ("raw / upper bound of the noise ceiling" if self.ceiling is not None
                               else f"none: {self.ceiling_reason}")}
