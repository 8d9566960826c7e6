"""A ground-truth benchmark: simulated V1 responses, with repeats, to patches of real photographs.

The data come from :class:`~brainalign.insilico.simulator.SimulatedV1` with Poisson noise, so the
best possible model is known (the simulator itself). Each layer is scored by cross-validated
ridge encoding (:func:`brainalign.metrics.encoding_score`) against the repeat-averaged
responses, normalised per cell by the split-half ceiling
(:func:`brainalign.metrics.split_half_reliability`, √ρ convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.activations.extract import extract
from brainalign.benchmarks.base import row_context
from brainalign.data.stimuli import StimulusSet
from brainalign.insilico.simulator import SimulatedV1, V1Parameters, photo_patches, sample_parameters
from brainalign.insilico.stimuli import FieldOfView
from brainalign.metrics import encoding_ceiling, encoding_score, split_half_reliability
from brainalign.models.base import BrainModel
from brainalign.results.provenance import versions_string
from brainalign.results.result import ScoreResult
from brainalign.results.table import LayerScore, make_row, make_table


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


def pooled_reducer(grid: int = 3):
    """Average conv maps to ``grid`` × ``grid`` positions per channel (keeps coarse position);
    flat outputs unchanged."""
    def reduce(out: torch.Tensor) -> torch.Tensor:
        if out.ndim == 4:
            return F.adaptive_avg_pool2d(out, grid).flatten(1)
        return out.flatten(1)
    return reduce


class SimulatedV1Benchmark:
    """Score models on a :class:`SimulatedV1Data` set (ridge encoding / split-half ceiling)."""

    id = "simulated.V1-ridge"
    version = "1"

    def __init__(self, data: SimulatedV1Data, *, cv: int = 5, seed: int = 0, pool_grid: int = 3,
                 n_boot: int = 1000):
        self.data, self.cv, self.seed, self.pool_grid, self.n_boot = data, cv, seed, pool_grid, n_boot
        rel = split_half_reliability(data.trials, n_splits=10, seed=seed)
        self.reliability = rel
        self.ceiling = encoding_ceiling(rel)  # per cell, NaN where unreliable

    @property
    def target(self) -> np.ndarray:
        """(stimulus × cell) repeat-averaged responses."""
        return np.nanmean(self.data.trials, axis=2).T

    def score_features(self, X: np.ndarray) -> dict[str, Any]:
        """Encoding score of one (stimulus × feature) representation, per cell and summarised."""
        es = encoding_score(X, self.target, cv=self.cv, seed=self.seed)
        ok = ~es.excluded & np.isfinite(self.ceiling)
        norm = es.r[ok] / self.ceiling[ok]
        rng = np.random.default_rng(self.seed)
        boot_idx = rng.integers(0, ok.sum(), size=(self.n_boot, ok.sum()))
        boot = np.median(norm[boot_idx], axis=1)
        boot_raw = np.median(es.r[ok][boot_idx], axis=1)
        return {"raw": float(np.median(es.r[ok])), "ceiling": float(np.median(self.ceiling[ok])),
                "normalised": float(np.median(norm)), "boot": boot, "boot_raw": boot_raw,
                "r": es.r, "n_cells": int(ok.sum()), "n_excluded": int((~ok).sum()),
                "excluded_reason": [str(x) for x in es.exclusion_reason], "cv": es.cv}

    def __call__(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                 batch_size: int = 64, device: str = "auto", progress: bool = False) -> ScoreResult:
        acts = extract(model, self.data.stimuli, layers, batch_size=batch_size, device=device,
                       reducers=pooled_reducer(self.pool_grid), progress=progress)
        vers, prov = versions_string(), model.provenance()
        rows, details = [], {}
        for i, (layer, da) in enumerate(acts.items()):
            s = self.score_features(da.values)
            lo, hi = np.percentile(s["boot"], [2.5, 97.5])
            rlo, rhi = np.percentile(s["boot_raw"], [2.5, 97.5])
            ctx = row_context(model, self.id, self.version, layer, i, seed=self.seed, versions=vers,
                              provenance=prov, placement="shown over the population's field of view",
                              reduction={"kind": "adaptive_avg_pool", "grid": self.pool_grid})
            rows.append(make_row(LayerScore(
                raw=s["raw"], metric=f"ridge encoding r (median over cells), {s['cv']}",
                raw_ci_low=rlo, raw_ci_high=rhi, ceiling_upper=s["ceiling"], normalised=s["normalised"],
                normalised_ci_low=lo, normalised_ci_high=hi, n_stimuli=len(self.data.stimuli),
                n_neuroids=s["n_cells"], selection="all stimuli (in-sample): scored on every stimulus",
                details={"bootstrap_raw": s["boot_raw"], "bootstrap_normalised": s["boot"]}), ctx))
            details[(model.name, self.id, layer)] = {"r": s["r"], "n_cells": s["n_cells"],
                                                     "n_excluded": s["n_excluded"]}
        table = make_table(rows)
        meta = {"benchmark": self.id, "data": self.data.settings, "models": {model.name: prov},
                "ceiling": "per-cell sqrt of Spearman-Brown split-half reliability (10 splits)",
                "normalised": "median over cells of r / ceiling; CI: bootstrap over cells",
                "features": f"conv maps average-pooled to {self.pool_grid}x{self.pool_grid}"}
        return ScoreResult(table, details, meta)
