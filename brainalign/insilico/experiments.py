"""In-silico V1 experiments on a layer's units: gratings in degrees → per-unit properties.

The experiments follow Marques et al. (2021) / Brain-Score in spirit (see the v1_properties
PROVENANCE): circular gratings at the centre of the field of view, orientation × SF × phase,
then size tuning at each unit's preferred orientation and SF. Responses are rectified
activations; "driven" responses subtract the response to a blank (mean grey) screen.

Two steps: the stimuli (:func:`grating_experiments`: one StimulusSet for every unit and layer,
recorded like any benchmark's stimuli) and the properties computed from the recorded responses
(:func:`properties_from_responses`); :func:`measure_properties` runs both for one layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import product
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from brainalign.data.stimuli import StimulusSet
from brainalign.errors import StimulusError
from brainalign.insilico import tuning
from brainalign.insilico.recording import centre_reducer, physiology_view, unit_layout
from brainalign.insilico.stimuli import FieldOfView, GratingImages
from brainalign.models.base import BrainModel

if TYPE_CHECKING:
    from brainalign.device import DeviceLike

PROPERTIES = ("preferred_orientation", "circular_variance", "orientation_bandwidth",
              "orthogonal_preferred_ratio", "osi", "orientation_selective",
              "circular_variance_bandwidth_ratio", "orthogonal_preferred_ratio_circular_variance_difference",
              "orthogonal_preferred_ratio_bandwidth_ratio", "modulation_ratio",
              "baseline_rate", "max_dc", "min_dc", "max_ac",
              "peak_sf", "sf_bandwidth", "sf_bandwidth_oct", "sf_selective",
              "surround_suppression_index", "strongly_suppressed", "grating_summation_field",
              "surround_diameter", "surround_gsf_ratio")
"""Per-unit properties :func:`measure_properties` reports (NaN where undefined for a unit)."""

RINGACH_PROPERTIES = ("circular_variance", "orientation_bandwidth", "orthogonal_preferred_ratio",
                      "orientation_selective", "circular_variance_bandwidth_ratio",
                      "orthogonal_preferred_ratio_circular_variance_difference",
                      "orthogonal_preferred_ratio_bandwidth_ratio", "modulation_ratio",
                      "baseline_rate", "max_dc", "min_dc", "max_ac")
"""Properties compared with Ringach et al. (2002), whose cells were kept only when their largest
mean rate exceeded the spontaneous rate by 5 spk/s: model units get the same filter."""

RINGACH_MIN_DRIVE = 5.0  # spk/s above the spontaneous rate (Brain-Score's RESPONSE_THRESHOLD)


@dataclass(frozen=True)
class ExperimentSettings:
    """Stimulus parameters of the in-silico experiments, in degrees of visual angle.

    ``None`` values are set from the field of view: SFs in quarter-octave steps from
    max(0.35, 1.5 / field) to min(22.4, 0.7 × Nyquist) c/deg; the orientation/SF aperture is
    min(3, field) deg; size-tuning diameters in half-octave steps from 0.25 deg to the field.
    """

    orientations: tuple[float, ...] = tuple(np.arange(0, 180, 15.0))
    phases: tuple[float, ...] = tuple(np.arange(0, 360, 45.0))
    sfs: tuple[float, ...] | None = None
    diameter: float | None = None
    size_diameters: tuple[float, ...] | None = None
    size_phases: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
    responsive_fraction: float = 5 / 243.1  # of the largest driven response in the layer

    def resolve(self, fov: FieldOfView) -> ExperimentSettings:
        sfs = self.sfs
        if sfs is None:
            lo, hi = max(0.35, 1.5 / fov.degrees), min(22.4, 0.7 * fov.nyquist)
            sfs = tuple(2 ** np.arange(np.log2(lo), np.log2(hi) + 1e-9, 0.25))
        diam = self.diameter if self.diameter is not None else min(3.0, fov.degrees)
        sizes = self.size_diameters
        if sizes is None:
            sizes = tuple(2 ** np.arange(np.log2(0.25), np.log2(fov.degrees) + 1e-9, 0.5))
        return ExperimentSettings(tuple(self.orientations), tuple(self.phases), tuple(sfs), diam,
                                  tuple(sizes), tuple(self.size_phases), self.responsive_fraction)


@dataclass(repr=False)
class PropertyTable:
    """Per-unit properties of one layer (one row per unit) plus the raw tuning data.

    ``table`` has a column per property, ``responsive`` and ``flag`` (why a unit has no value);
    ``curves`` keeps orientation, SF and size curves for plots. Its repr is a one-line summary
    (as pandas prints a frame's shape); the data are in ``table``, ``curves`` and ``settings``.
    """

    table: pd.DataFrame
    curves: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        t = self.table
        names = [f"{c}={t[c].iloc[0]!r}" for c in ("model", "layer") if c in t and len(t) and t[c].iloc[0]]
        props = [c for c in PROPERTIES if c in t]
        responsive = int(t["responsive"].sum()) if "responsive" in t else len(t)
        flagged = int((t["flag"].astype(str) != "").sum()) if "flag" in t else 0
        return (f"<PropertyTable{' ' + ' '.join(names) if names else ''}: {len(t)} units "
                f"({responsive} responsive, {flagged} flagged), {len(props)} properties; "
                f"full data in .table ({len(t)} rows × {t.shape[1]} columns), "
                f".curves ({', '.join(self.curves) or 'none'}), .settings>")

    __str__ = __repr__


@dataclass(frozen=True)
class GratingExperiments:
    """The stimuli of the in-silico experiments on one field of view, in one fixed order.

    1. the blank (mean grey) screen;
    2. orientation × SF × phase gratings in the aperture ``settings.diameter``;
    3. size tuning: orientation × SF × ``size_phases`` × ``size_diameters``, for EVERY
       (orientation, SF) pair of part 2, so each unit's size curve at its own preferred
       orientation and SF is among them whatever that preference turns out to be (the
       experiment is adaptive, the stimulus set is not: one set for every unit, layer and model
       of this field of view, recorded and cached like any other benchmark's stimuli).

    Build with :func:`grating_experiments`; ``settings`` is resolved (no ``None``).
    """

    fov: FieldOfView
    settings: ExperimentSettings

    @property
    def grid(self) -> tuple[int, int, int]:
        """(orientations, SFs, phases) of part 2."""
        s = self.settings
        return len(s.orientations), len(s.sfs), len(s.phases)

    @property
    def size_grid(self) -> tuple[int, int, int, int]:
        """(orientations, SFs, size phases, diameters) of part 3."""
        s = self.settings
        return len(s.orientations), len(s.sfs), len(s.size_phases), len(s.size_diameters)

    @cached_property
    def params(self) -> pd.DataFrame:
        """One row per stimulus: ``part`` (blank / tuning / size), ``orientation``, ``sf``,
        ``phase`` (deg, c/deg, deg) and ``diameter`` (deg); NaN where a part has none."""
        s = self.settings
        blank_row = pd.DataFrame({"orientation": [np.nan], "sf": [np.nan], "phase": [np.nan],
                                  "diameter": [np.nan]})
        tune = pd.DataFrame(list(product(s.orientations, s.sfs, s.phases, [s.diameter])),
                            columns=["orientation", "sf", "phase", "diameter"])
        size = pd.DataFrame(list(product(s.orientations, s.sfs, s.size_phases, s.size_diameters)),
                            columns=["orientation", "sf", "phase", "diameter"])
        parts = ["blank"] + ["tuning"] * len(tune) + ["size"] * len(size)
        out = pd.concat([blank_row, tune, size], ignore_index=True).astype(float)
        out.insert(0, "part", parts)
        return out

    @cached_property
    def stimuli(self) -> StimulusSet:
        """The gratings as a :class:`~brainalign.data.StimulusSet` of luminance images (0..1) at
        the model's input size, rendered on demand. The ids spell out the field of view and each
        grating's parameters, so equal ids mean equal images."""
        fov, p = self.fov, self.params
        tag = f"{fov.size_px}px{fov.degrees:g}deg"
        ids = [f"{tag}/blank" if part == "blank" else
               f"{tag}/{part}/o={o:g}/sf={f:.6g}/p={ph:g}/d={d:.6g}"
               for part, o, f, ph, d in p[["part", "orientation", "sf", "phase", "diameter"]].itertuples(
                   index=False)]
        return StimulusSet(f"gratings-{tag}", tuple(ids), GratingImages(fov, p.drop(columns="part")),
                           p, visual_degrees=fov.degrees)

    def split(self, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stimulus × unit) responses → blank (unit,), tuning (unit × ori × sf × phase) and
        size (unit × ori × sf × size phase × diameter) responses.

        Raises
        ------
        StimulusError
            Responses to another number of stimuli.
        """
        r = np.asarray(responses)
        n_t, n_s = int(np.prod(self.grid)), int(np.prod(self.size_grid))
        if r.ndim != 2 or r.shape[0] != 1 + n_t + n_s:
            raise StimulusError(f"responses of shape {r.shape} to the gratings; expected "
                                f"({1 + n_t + n_s}, units) in the order of GratingExperiments.params")
        n = r.shape[1]
        return (r[0], r[1:1 + n_t].T.reshape(n, *self.grid),
                r[1 + n_t:].T.reshape(n, *self.size_grid))


def grating_experiments(model_or_fov: BrainModel | FieldOfView,
                        settings: ExperimentSettings | None = None) -> GratingExperiments:
    """The experiments' stimuli in a model's field of view (``settings`` resolved for it)."""
    fov = model_or_fov if isinstance(model_or_fov, FieldOfView) else FieldOfView.of(model_or_fov)
    return GratingExperiments(fov, (settings or ExperimentSettings()).resolve(fov))


def measure_properties(model: BrainModel, layer: str, settings: ExperimentSettings | None = None, *,
                       batch_size: int = 128, device: DeviceLike = "auto") -> PropertyTable:
    """Run the orientation/SF/phase and size experiments on ``layer`` and compute per-unit
    properties: :func:`grating_experiments` recorded through the memory-bounded layer stream
    (centre unit of each channel), then :func:`properties_from_responses`.

    Raises
    ------
    UnitLocationError
        A layer whose units cannot be located spatially.
    """
    from brainalign.activations.stream import stream_layers

    layout = unit_layout(model, layer)
    exp = grating_experiments(model, settings)
    stream = stream_layers(physiology_view(model), exp.stimuli, [layout["layer"]], batch_size=batch_size,
                           device=device, reducers=centre_reducer)
    ((name, acts),) = list(stream)
    return properties_from_responses(acts.values, exp, model=model.name, layer=name,
                                     spatial=bool(layout["spatial"]))


def properties_from_responses(responses: np.ndarray, experiments: GratingExperiments, *,
                              model: str = "", layer: str = "", spatial: bool | None = None) -> PropertyTable:
    """Per-unit V1 properties from a layer's responses to :attr:`GratingExperiments.stimuli`.

    Responses are rectified; "driven" responses subtract the blank's. Units whose largest driven
    response is below ``responsive_fraction`` of the layer's largest are flagged
    ``"unresponsive"`` and get no property values; properties undefined for a unit (orientation
    bandwidth of an untuned unit, SF bandwidth of a unit not SF-selective) are NaN with the
    reason in ``flag``. Size tuning is read at each responsive unit's preferred orientation and
    SF (the argmax of its driven response over part 2), averaged over the size phases.

    Parameters
    ----------
    responses
        (stimulus × unit) responses in the order of ``experiments.params``.
    experiments
        The experiments that were shown.
    model, layer
        Names written into the table.
    spatial
        Whether the units are centre units of conv maps (True) or a flat layer's (False);
        recorded in ``settings["units"]``.

    Raises
    ------
    StimulusError
        Responses that do not match the experiments' stimuli.
    """
    s, fov = experiments.settings, experiments.fov
    oris, sfs, phases = np.asarray(s.orientations), np.asarray(s.sfs), np.asarray(s.phases)
    base, r, r_size = experiments.split(np.maximum(np.asarray(responses, np.float32), 0))
    f0 = r.mean(-1)
    driven = f0 - base[:, None, None]
    n = len(r)
    peak = driven.reshape(n, -1).max(1)
    responsive = peak > s.responsive_fraction * max(float(peak.max()), 1e-12)
    bo, bs = np.unravel_index(driven.reshape(n, -1).argmax(1), driven.shape[1:])
    idx = np.arange(n)
    ocurve = np.clip(driven[idx, :, bs], 0, None)
    scurve = np.clip(driven[idx, bo, :], 0, None)
    phase_curve = r[idx, bo, bs, :]
    cv = tuning.circular_variance(oris, ocurve)
    bw = tuning.orientation_bandwidth(oris, ocurve)
    opr = tuning.orthogonal_preferred_ratio(oris, ocurve)
    # Firing rates (spk/s) by Marques et al.'s affine map, for the response-magnitude properties.
    slope, offset = tuning.firing_rate_affine(base, f0.reshape(n, -1).max(1), responsive)
    rate = np.maximum(slope * r[idx, :, bs, :] + offset, 0)  # units × ori × phase at the preferred SF
    rate_mod = tuning.modulation_ratio(rate[idx, bo])
    base_rate = np.maximum(slope * base + offset, 0)
    max_dc = rate_mod["f0"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: dict[str, np.ndarray] = {
            "preferred_orientation": tuning.preferred_orientation(oris, ocurve),
            "circular_variance": cv,
            "orientation_bandwidth": bw,
            "orthogonal_preferred_ratio": opr,
            "osi": tuning.osi(oris, ocurve),
            # Ringach's "not orientation selective" = half-bandwidth beyond 90 deg (NaN here)
            "orientation_selective": np.isfinite(bw).astype(float),
            "circular_variance_bandwidth_ratio": cv / bw,
            "orthogonal_preferred_ratio_circular_variance_difference": opr - cv,
            "orthogonal_preferred_ratio_bandwidth_ratio": opr / bw,
            "modulation_ratio": tuning.modulation_ratio(phase_curve)["modulation_ratio"],
            "baseline_rate": base_rate,
            "max_dc": max_dc,
            "min_dc": rate.mean(-1).min(1),
            "max_ac": rate_mod["f1"],
        }
    sft = tuning.sf_tuning(sfs, scurve)
    out.update(peak_sf=sft["peak_sf"], sf_bandwidth=sft["bandwidth_ratio"],
               sf_bandwidth_oct=sft["bandwidth_oct"], sf_selective=sft["selective"].astype(float))

    # Size tuning at each responsive unit's preferred (orientation, SF), mean over size phases.
    diams = np.asarray(s.size_diameters)
    size_props = ("surround_suppression_index", "grating_summation_field", "surround_diameter",
                  "surround_gsf_ratio", "strongly_suppressed")
    sizes_out = {k: np.full(n, np.nan) for k in size_props}
    size_curves = np.full((n, len(diams)), np.nan)
    units = idx[responsive]
    if units.size:
        curve = r_size[units, bo[units], bs[units]].mean(1) - base[units, None]  # units × diameter
        size_curves[units] = curve
        st = tuning.size_tuning(diams, np.clip(curve, 0, None))
        for k in size_props:
            sizes_out[k][units] = st[k]
    out.update(sizes_out)

    table = pd.DataFrame({"unit": idx, "responsive": responsive, "peak_driven": peak,
                          "baseline": base, **out})
    flags = np.full(n, "", dtype=object)
    flags[~responsive] = "unresponsive"
    for col in PROPERTIES:
        table.loc[~responsive, col] = np.nan
    untuned = responsive & ~np.isfinite(table["orientation_bandwidth"].to_numpy())
    flags[untuned] = "orientation untuned (bandwidth > 90 deg)"
    not_sel = responsive & (table["sf_selective"].to_numpy() == 0)
    flags[not_sel] = [f"{f}; " if f else "" for f in flags[not_sel]]
    flags[not_sel] = flags[not_sel] + "not SF-selective (cut-off outside tested range)"
    weak = responsive & ~(max_dc > base_rate + RINGACH_MIN_DRIVE)
    table.loc[weak, list(RINGACH_PROPERTIES)] = np.nan
    flags[weak] = [f"{f}; " if f else "" for f in flags[weak]]
    flags[weak] = flags[weak] + f"peak rate < {RINGACH_MIN_DRIVE:g} spk/s above spontaneous (Ringach filter)"
    table["flag"] = flags
    # Simple vs complex by the F1/F0 ratio (Skottun et al. 1991): > 1 simple, < 1 complex.
    mr = table["modulation_ratio"].to_numpy()
    table["cell_class"] = np.where(~np.isfinite(mr), "", np.where(mr > 1, "simple", "complex"))
    table.insert(0, "layer", layer)
    table.insert(0, "model", model)
    units_note = {True: "centre position of each channel", False: "all units",
                  None: "centre position of each channel (conv maps) or all units (flat layers)"}[spatial]
    return PropertyTable(
        table, {"orientations": oris, "sfs": sfs, "diameters": diams, "orientation": ocurve,
                "sf": scurve, "size": size_curves, "phase": phase_curve, "phases": phases},
        {"field_of_view_deg": fov.degrees, "input_px": fov.size_px, "orientations": list(oris),
         "sfs": [float(v) for v in sfs], "phases": list(phases), "diameter": s.diameter,
         "size_diameters": [float(v) for v in diams], "size_phases": list(s.size_phases),
         "n_stimuli": len(experiments.params), "responsive_fraction": s.responsive_fraction,
         "units": units_note,
         "firing_rate_affine": {"slope": slope, "offset": offset, "median_spontaneous": 0.82,
                                "median_peak": 33.8, "ringach_min_drive": RINGACH_MIN_DRIVE}})


def sf_tuning_check(sfs: Sequence[float], counts: Sequence[np.ndarray]) -> dict[str, float]:
    """SF tuning of one recorded neuron from per-trial spike counts at each SF (the same
    analysis as for model units): mean rate per SF → :func:`tuning.sf_tuning`."""
    means = np.array([np.mean(c) for c in counts])
    out = tuning.sf_tuning(np.asarray(sfs), means[None])
    return {k: float(v[0]) for k, v in out.items()}
