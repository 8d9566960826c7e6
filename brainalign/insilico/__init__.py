"""In-silico physiology: gratings and noise in degrees, receptive-field mapping, tuning
properties, and a simulated V1 population with known ground truth.

>>> from brainalign import insilico
>>> rf = insilico.map_receptive_fields(model, "features.0", n_frames=10_000)
>>> props = insilico.measure_properties(model, "features.0")      # per-unit V1 properties
>>> sim = insilico.simulated_v1_model(128)                         # a BrainModel of V1 cells

Attributes load on first use (no torch import at package import).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FieldOfView": "brainalign.insilico.stimuli",
    "grating": "brainalign.insilico.stimuli",
    "grating_set": "brainalign.insilico.stimuli",
    "drifting_grating": "brainalign.insilico.stimuli",
    "white_noise": "brainalign.insilico.stimuli",
    "sparse_noise": "brainalign.insilico.stimuli",
    "spot": "brainalign.insilico.stimuli",
    "record": "brainalign.insilico.recording",
    "unit_layout": "brainalign.insilico.recording",
    "map_receptive_fields": "brainalign.insilico.rf",
    "RFMaps": "brainalign.insilico.rf",
    "fit_gabor": "brainalign.insilico.gabor",
    "fit_gabors": "brainalign.insilico.gabor",
    "GaborFit": "brainalign.insilico.gabor",
    "measure_properties": "brainalign.insilico.experiments",
    "grating_experiments": "brainalign.insilico.experiments",
    "GratingExperiments": "brainalign.insilico.experiments",
    "properties_from_responses": "brainalign.insilico.experiments",
    "physiology_view": "brainalign.insilico.recording",
    "ExperimentSettings": "brainalign.insilico.experiments",
    "SimulatedV1": "brainalign.insilico.simulator",
    "sample_parameters": "brainalign.insilico.simulator",
    "simulated_v1_model": "brainalign.insilico.simulator",
    "make_simulated_v1_data": "brainalign.insilico.benchmark",
    "SimulatedV1Benchmark": "brainalign.insilico.benchmark",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'brainalign.insilico' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
