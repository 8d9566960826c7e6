"""A ground-truth benchmark: simulated V1 responses, with repeats, to patches of real photographs.

The data come from :class:`~brainalign.insilico.simulator.SimulatedV1` with Poisson noise, so the
best possible model is known (the simulator itself). Each layer is scored by cross-validated
ridge encoding (:func:`brainalign.metrics.encoding_score`) against the repeat-averaged
responses, normalised per cell by the split-half ceiling
(:func:`brainalign.metrics.split_half_reliability`, √ρ convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.benchmarks.base import Benchmark, bootstrap_settings
from brainalign.benchmarks.schemas import SimulatedV1Schema
from brainalign.benchmarks.selection import dev_split
from brainalign.benchmarks.spec import BenchmarkSpec
from brainalign.data.stimuli import StimulusSet
from brainalign.insilico.simulator import SimulatedV1, V1Parameters, photo_patches, sample_parameters
from brainalign.insilico.stimuli import FieldOfView
from brainalign.metrics import encoding_ceiling, encoding_score, split_half_reliability
from brainalign.metrics.stats import aggregate, pearson_last, percentile_ci, resample_indices
from brainalign.models.base import BrainModel
from brainalign.results.table import LayerScore


@dataclass
class SimulatedV1Data:
    """Stimuli, trials (cell × stimulus × repeat spike counts) and the cells' true parameters."""

    stimuli: StimulusSet
    trials: np.ndarray
    params: V1Parameters
    fov: FieldOfView
    settings: dict[str, Any] = field(default_factory=dict)


def make_simulated_v1_data(n_cells: int = 64, n_stimuli: int = 400, n_repeats: int = 6, *,
                           input_size: int = 96, visual_degrees: float = 4.0, seed: int = 0,
                           params: V1Parameters | None = None) -> SimulatedV1Data:
    """Draw a population, crop ``n_stimuli`` photo patches and record ``n_repeats`` Poisson trials.

    The patches are shown over the population's field of view (``visual_degrees``), as
    ``input_size`` px grayscale images in 0..1; everything is seeded.
    """
    fov = FieldOfView(input_size, visual_degrees)
    params = params if params is not None else sample_parameters(n_cells, fov=fov, seed=seed)
    sim = SimulatedV1(params, fov)
    patches = photo_patches(n_stimuli, input_size, seed=seed + 1)
    trials = sim.sample(2 * patches - 1, n_repeats, seed=seed + 2)
    stim = StimulusSet.from_arrays("simulated-v1-photos", list(patches), visual_degrees=visual_degrees)
    return SimulatedV1Data(stim, trials, params, fov,
                           {"n_cells": len(params), "n_stimuli": n_stimuli, "n_repeats": n_repeats,
                            "input_size": input_size, "visual_degrees": visual_degrees, "seed": seed})


class GridPool:
    """Average conv maps to ``grid`` × ``grid`` positions per channel (keeps coarse position);
    flat outputs unchanged. Describes itself, so its outputs can be cached."""

    def __init__(self, grid: int = 3):
        self.grid = int(grid)

    def __repr__(self) -> str:
        return f"GridPool(grid={self.grid})"

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        if out.ndim == 4:
            return F.adaptive_avg_pool2d(out, self.grid).flatten(1)
        return out.flatten(1)

    def describe(self) -> dict[str, Any]:
        return {"kind": "adaptive_avg_pool", "grid": self.grid}

    def output_features(self, shape: tuple[int, ...]) -> int:
        return shape[0] * self.grid * self.grid if len(shape) == 3 else int(np.prod(shape))


def pooled_reducer(grid: int = 3) -> GridPool:
    """A :class:`GridPool` (kept for callers of the earlier function)."""
    return GridPool(grid)


def _spec(settings: dict[str, Any], cv: int, seed: int, pool_grid: int, n_boot: int) -> BenchmarkSpec:
    return BenchmarkSpec(
        id="simulated.V1-ridge", version="1", kind="simulated_v1", dataset="simulated", region="V1",
        stimuli=dict(settings), target={}, metric={"cv": cv, "pool_grid": pool_grid},
        citation=("brainalign simulated V1 (insilico.simulator)",), path=Path("<generated>"),
        statistics={"bootstrap": {"n": n_boot, "ci": 0.95, "seed": seed}},
        visual_degrees=settings.get("visual_degrees"))


class SimulatedV1Benchmark(Benchmark):
    """Score models on a :class:`SimulatedV1Data` set (ridge encoding / split-half ceiling).

    A registered kind (``simulated_v1``): built from a YAML whose ``stimuli`` section holds the
    arguments of :func:`make_simulated_v1_data` (``n_cells``, ``n_stimuli``, ``n_repeats``,
    ``input_size``, ``visual_degrees``, ``seed``) and ``metric`` {``cv``, ``pool_grid``}, or from
    a :class:`SimulatedV1Data` directly (``SimulatedV1Benchmark(data, cv=…, seed=…)``).
    """

    schema = SimulatedV1Schema
    kind_label = "a simulated V1 benchmark"

    def __init__(self, data: SimulatedV1Data | BenchmarkSpec, *, cv: int = 5, seed: int = 0,
                 pool_grid: int = 3, n_boot: int = 1000, **kwargs: Any):
        # Refused before the population is simulated (its stimuli are generated, never subset).
        self.refuse_max_stimuli(kwargs.get("max_stimuli"),
                                data.id if isinstance(data, BenchmarkSpec) else "simulated V1 data")
        if isinstance(data, BenchmarkSpec):
            spec = data
            st = {k: v for k, v in spec.stimuli.items() if k != "reader"}
            data = make_simulated_v1_data(**st)
            cv, pool_grid = int(spec.metric.get("cv", cv)), int(spec.metric.get("pool_grid", pool_grid))
            n_boot, _, seed = bootstrap_settings(spec, kwargs.get("n_bootstrap"))
        else:
            spec = _spec(data.settings, cv, seed, pool_grid, n_boot)
        super().__init__(spec, **kwargs)
        self.data, self.cv, self.seed, self.pool_grid, self.n_boot = data, cv, seed, pool_grid, n_boot
        self.version = spec.version
        rel = split_half_reliability(data.trials, n_splits=10, seed=seed)
        self.reliability = rel
        self.ceiling = encoding_ceiling(rel)  # per cell, NaN where unreliable

    @property
    def stimuli(self) -> StimulusSet:  # type: ignore[override]
        return self.data.stimuli

    @property
    def target(self) -> np.ndarray:
        """(stimulus × cell) repeat-averaged responses."""
        return np.nanmean(self.data.trials, axis=2).T

    def score_features(self, X: np.ndarray) -> dict[str, Any]:
        """Encoding score of one (stimulus × feature) representation, per cell and summarised."""
        es = encoding_score(X, self.target, cv=self.cv, seed=self.seed)
        ok = ~es.excluded & np.isfinite(self.ceiling)
        norm = es.r[ok] / self.ceiling[ok]
        # One index set over ALL cells (seeded, the same for every model), so two models'
        # samples are paired even when they keep different cells; cells without a score for
        # this model (excluded, or without a ceiling) are NaN and each sample's median skips them.
        with np.errstate(invalid="ignore", divide="ignore"):
            norm_all = np.where(ok, es.r / self.ceiling, np.nan)
        raw_all = np.where(ok, es.r, np.nan)
        boot_idx = self.bootstrap_indices
        boot = aggregate(norm_all[boot_idx], "median", axis=1)
        boot_raw = aggregate(raw_all[boot_idx], "median", axis=1)
        # Honest layer choice: r on the development / held-out stimuli of every fold's test set,
        # mean over folds, per cell over that part's own ceiling, median over cells.
        Y = self.target
        part = {}
        for name, mask in (("dev", self._is_dev), ("held", ~self._is_dev)):
            rs = [pearson_last(pred[mask[te]].T, Y[te][mask[te]].T) for (_, te), pred
                  in zip(es.splits, es.centred_predictions, strict=True) if mask[te].sum() >= 3]
            r_part = np.nanmean(np.stack(rs), 0) if rs else np.full(Y.shape[1], np.nan)
            ceil = self._part_ceiling[name]
            use = ok & np.isfinite(ceil) & (ceil > 0)
            part[name] = float(np.median(r_part[use] / ceil[use])) if use.any() else float("nan")
        return {"raw": float(np.median(es.r[ok])), "ceiling": float(np.median(self.ceiling[ok])),
                "normalised": float(np.median(norm)), "boot": boot, "boot_raw": boot_raw,
                "dev": part["dev"], "held": part["held"],
                "r": es.r, "n_cells": int(ok.sum()), "n_excluded": int((~ok).sum()),
                "excluded_reason": [str(x) for x in es.exclusion_reason], "cv": es.cv}

    @cached_property
    def bootstrap_indices(self) -> np.ndarray:
        """(n_bootstrap × n_cells) index sets over every simulated cell, seeded by the benchmark:
        the same for every model scored, so bootstrap samples are paired across models."""
        return resample_indices(self.data.trials.shape[0], self.n_boot, self.seed)

    @cached_property
    def _is_dev(self) -> np.ndarray:
        split = dev_split(len(self.data.stimuli), seed=self.seed)
        mask = np.zeros(len(self.data.stimuli), bool)
        mask[list(split.dev)] = True
        return mask

    @cached_property
    def _part_ceiling(self) -> dict[str, np.ndarray]:
        """Per-cell ceilings on the development and on the held-out stimuli."""
        return {name: encoding_ceiling(split_half_reliability(self.data.trials[:, mask], n_splits=10,
                                                              seed=self.seed))
                for name, mask in (("dev", self._is_dev), ("held", ~self._is_dev))}

    def default_reducers(self, model: BrainModel) -> GridPool:
        return GridPool(self.pool_grid)

    def score_layer(self, layer: str, activations: Any) -> list[LayerScore]:
        """Ridge encoding of every simulated cell from the layer; CIs by a bootstrap over cells."""
        s = self.score_features(activations.values)
        lo, hi = percentile_ci(s["boot"], 0.95)
        rlo, rhi = percentile_ci(s["boot_raw"], 0.95)
        return [LayerScore(
            raw=s["raw"], metric=f"ridge encoding r (median over cells), {s['cv']}",
            raw_ci_low=rlo, raw_ci_high=rhi, ceiling_upper=s["ceiling"], normalised=s["normalised"],
            normalised_ci_low=lo, normalised_ci_high=hi, n_stimuli=len(self.data.stimuli),
            n_neuroids=s["n_cells"], dev_score=s["dev"], heldout_score=s["held"],
            details={"r": s["r"], "n_cells": s["n_cells"], "n_excluded": s["n_excluded"],
                     "bootstrap_raw": s["boot_raw"], "bootstrap_normalised": s["boot"]})]

    def run_meta(self) -> dict[str, Any]:
        return {"data": self.data.settings,
                "ceiling": "per-cell sqrt of Spearman-Brown split-half reliability (10 splits)",
                "normalised": "median over cells of r / ceiling; CI: bootstrap over all cells (one seeded "
                              "index set for every model; per sample the median of the cells this "
                              "model scores)",
                "features": f"conv maps average-pooled to {self.pool_grid}x{self.pool_grid}"}
