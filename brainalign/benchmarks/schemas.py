"""Declared schemas of benchmark YAML files: the keys every kind shares, and one schema per kind.

A kind's class names its schema (``schema = RSASchema``); :func:`brainalign.benchmarks.spec.parse_benchmark`
validates a file with the schema of its ``kind`` when it is loaded, so a misspelt key anywhere
(``statistics: {bootstrapp: …}``, ``compare: spearmann``) fails before any model runs. Data
sections (``stimuli``, ``target``, ``ceiling.trials``, a session's overrides) name a reader of
:data:`brainalign.data.readers.READERS`; their keys are checked against that reader's parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from brainalign.data.readers import check_section
from brainalign.schema import StrictModel, Text

Section = dict[str, Any]
# The same values as brainalign.metrics.rsa's COMPARATORS / DISTANCES (a test keeps them equal;
# not imported here, so loading a definition does not load the metrics).
Comparator = Literal["spearman", "pearson", "kendall_tau_a", "cosine"]
Distance = Literal["correlation", "euclidean", "cosine", "crossnobis"]


# ----- shared ---------------------------------------------------------------------------------------

class Bootstrap(StrictModel):
    """`statistics.bootstrap`: the bootstrap over stimuli behind every CI."""

    n: PositiveInt = Field(1000, description="Bootstrap samples (the `n_bootstrap=` option overrides it).")
    ci: float = Field(0.95, gt=0, lt=1, description="Confidence level of the percentile interval.")
    seed: int = Field(0, description="Seed of the resampled index sets (the same for every model).")


class LayerSelection(StrictModel):
    """`statistics.layer_selection`: the development / held-out split that chooses the best layer."""

    dev_fraction: float = Field(0.5, gt=0, lt=1, description="Share of stimuli (or folds) used to choose.")
    seed: int = Field(0, description="Seed of the split.")


class Statistics(StrictModel):
    """`statistics`: how uncertainty and the layer choice are computed."""

    bootstrap: Bootstrap = Field(default_factory=Bootstrap, description="Bootstrap settings.")
    layer_selection: LayerSelection = Field(default_factory=LayerSelection,
                                            description="Honest best-layer split.")


class TimeBin(StrictModel):
    """`time_bin`: the response window in ms after stimulus onset (recordings with time bins)."""

    start: float = Field(description="Window start, ms.")
    stop: float = Field(description="Window stop, ms.")

    @model_validator(mode="after")
    def _ordered(self) -> TimeBin:
        if self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be after start ({self.start})")
        return self


class BenchmarkSchema(StrictModel):
    """Keys every benchmark file shares. A kind's schema subclasses this and narrows the sections."""

    id: Text = Field(description="Benchmark id; must equal the file name without `.yaml`.")
    version: Text = Field(description="Version of the definition; recorded in every result row.")
    kind: Text = Field(description="Benchmark kind: a key of `brainalign.benchmarks.registry.KINDS`.")
    dataset: Text = Field(description="Dataset id: the manifest `data_manifests/<dataset>.yaml`.")
    region: Text = Field(description="Brain region (or `behavior`) the data come from.")
    description: str = Field("", description="What is measured and how it is scored.")
    notes: str = Field("", description="Caveats, assumptions, sources checked.")
    citation: str | list[str] = Field(description="Papers to cite: one string or a list.")
    visual_degrees: float | None = Field(None, gt=0, description="Stimulus size in degrees of visual angle.")
    stimuli: Section = Field(description="Reader section of the stimuli (`reader` + its parameters).")
    target: Section = Field(description="Reader section of the neural (or behavioural) data.")
    metric: Section = Field(description="How a layer is compared with the data.")
    ceiling: Section = Field(default_factory=dict, description="Noise ceiling.")
    statistics: Statistics = Field(default_factory=Statistics, description="Bootstrap and layer choice.")

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        """(key path, section, complete, the kind's own keys) of every reader section to check.

        By default the sections that name a ``reader``; a kind's schema lists its own (a kind whose
        data come from elsewhere, e.g. a simulator, declares sections without a reader)."""
        for where, sec in (("stimuli", self.stimuli), ("target", self.target)):
            if isinstance(sec, dict) and "reader" in sec:
                yield where, sec, True, frozenset()

    @model_validator(mode="after")
    def _readers(self) -> BenchmarkSchema:
        problems = [p for where, sec, complete, own in self.reader_sections()
                    for p in check_section(sec, where, complete=complete, own=own)]
        if problems:
            raise ValueError("\n".join(problems))
        return self


class NoCeiling(StrictModel):
    """`ceiling` of a benchmark without a noise ceiling."""

    method: Literal["none"] = Field("none", description="`none`: rows carry raw scores only.")
    reason: str = Field("", description="Why there is no ceiling: every row's `ceiling_note`; empty: "
                        "a default note.")


# ----- rsa ------------------------------------------------------------------------------------------

class RSAMetric(StrictModel):
    """`metric` of an `rsa` benchmark."""

    name: Literal["rsa"] = Field("rsa", description="Metric id (see `brainalign.metrics.registry`).")
    rdm_distance: Distance = Field("correlation", description="Distance of the model layer's RDM.")
    compare: Comparator = Field("spearman", description="How the model RDM is compared with each subject's.")


class RSACeiling(StrictModel):
    """`ceiling` of an `rsa` benchmark."""

    method: Literal["nili2014", "none"] = Field(
        "nili2014", description="`nili2014`: lower/upper bounds over subjects (needs ≥ 2); `none`.")
    reason: str = Field("", description="Why there is no ceiling (with `method: none`): every row's "
                        "`ceiling_note`; empty: a note naming the setting.")


class RSASchema(BenchmarkSchema):
    """`kind: rsa`: each layer's RDM against every subject's RDM, averaged over subjects; `target`
    also takes `average`, the dims of the RDM stack averaged first (e.g. `[session]`)."""

    kind: Literal["rsa"] = Field(description="`rsa`.")
    metric: RSAMetric = Field(description="RDM distance and comparator.")
    ceiling: RSACeiling = Field(default_factory=RSACeiling, description="Noise ceiling.")

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        yield "stimuli", self.stimuli, True, frozenset()
        yield "target", self.target, True, frozenset({"average"})

    @field_validator("target")
    @classmethod
    def _average(cls, target: Section) -> Section:
        avg = target.get("average", [])
        if not isinstance(avg, list) or not all(isinstance(a, str) for a in avg):
            raise ValueError(f"average: a list of dim names, got {avg!r}")
        return target


# ----- regression -----------------------------------------------------------------------------------

class RegressionMetric(StrictModel):
    """`metric` of a `regression` (and `fmri`) benchmark: cross-validated encoding per neuroid."""

    name: Literal["ridge", "pls"] | None = Field(None, description="Metric id; must equal `model` when given.")
    model: Literal["ridge", "pls"] = Field("ridge", description="Encoding model.")
    cv: int = Field(5, ge=2, description="Outer cross-validation folds over stimuli.")
    alphas: list[float] | None = Field(None, description="Ridge α grid (default: the encoder's).")
    aggregate: Literal["median", "mean"] = Field("median", description="Summary over neuroids.")
    max_features: PositiveInt = Field(4096, description="Spatial pooling bound of a layer's features.")
    n_components: PositiveInt | None = Field(None, description="PLS components (default 25).")
    inner_cv: Literal["loo"] | int | None = Field(None, description="Inner CV choosing α: `loo` or folds.")
    dtype: Literal["float64", "float32"] | None = Field(None, description="Solver precision.")
    seed: int = Field(0, description="Seed of the fold assignment.")

    @model_validator(mode="after")
    def _name_is_model(self) -> RegressionMetric:
        if self.name is not None and self.name != self.model:
            raise ValueError(f"name {self.name!r} differs from model {self.model!r}")
        return self


class RegressionCeiling(StrictModel):
    """`ceiling` of a `regression` benchmark: split-half reliability of raw repeats."""

    method: Literal["split_half", "none"] = Field("split_half", description="Ceiling method.")
    convention: Literal["sqrt", "brainscore"] = Field("sqrt", description="√ρ (r a noise-free model reaches) "
                                                      "or Brain-Score's ρ.")
    n_splits: PositiveInt = Field(10, description="Random split halves averaged.")
    seed: int = Field(0, description="Seed of the split halves.")
    trials: Section | None = Field(None, description="Reader section of the raw repeats (sessions may add "
                                   "`file`).")
    reason: str = Field("", description="Why there is no ceiling (with `method: none`): every row's "
                        "`ceiling_note`; empty: a note naming the setting.")


class Session(StrictModel):
    """One entry of `sessions`: overrides of the top-level reader sections for one recording
    session; `{session}` in any string becomes the name."""

    name: Text = Field(description="Session name (rows' `session`).")
    stimuli: Section = Field(default_factory=dict, description="Overrides of `stimuli`.")
    target: Section = Field(default_factory=dict, description="Overrides of `target`.")
    trials: Section | None = Field(None, description="Raw repeats: overrides of `ceiling.trials`.")


class RegressionSchema(BenchmarkSchema):
    """`kind: regression`: predict each neuroid from a layer (cross-validated ridge or PLS)."""

    kind: Literal["regression"] = Field(description="`regression`.")
    metric: RegressionMetric = Field(description="Encoding model.")
    ceiling: RegressionCeiling = Field(default_factory=RegressionCeiling, description="Noise ceiling.")
    sessions: list[Session] | None = Field(None, description="Recording sessions scored apart and pooled.")
    time_bin: TimeBin | None = Field(None, description="Response window for recordings with time bins.")

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        sessions = self.sessions or []
        # Sessions complete the top-level sections (e.g. `file: {session}/…` or a session's file).
        yield "stimuli", self.stimuli, not sessions, frozenset()
        yield "target", self.target, not sessions, frozenset()
        if self.ceiling.trials is not None:
            yield "ceiling.trials", self.ceiling.trials, False, frozenset()
        for i, s in enumerate(sessions):
            yield f"sessions[{i}].stimuli", {**self.stimuli, **s.stimuli}, True, frozenset()
            yield f"sessions[{i}].target", {**self.target, **s.target}, True, frozenset()
            if s.trials is not None:
                yield f"sessions[{i}].trials", {**(self.ceiling.trials or {}), **s.trials}, True, frozenset()

    @field_validator("sessions")
    @classmethod
    def _unique(cls, sessions: list[Session] | None) -> list[Session] | None:
        names = [s.name for s in sessions or []]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"session names must differ; repeated: {dup}")
        return sessions


# ----- fmri -----------------------------------------------------------------------------------------

class FMRIMetric(RegressionMetric):
    """`metric` of an `fmri` benchmark: the regression keys plus the ROI RSA's."""

    rdm_distance: Distance = Field("correlation", description="Distance of the ROI and layer RDMs.")
    compare: Comparator = Field("spearman", description="Comparator of the ROI RSA.")


class FMRISchema(BenchmarkSchema):
    """`kind: fmri`: voxelwise encoding and per-ROI RSA on NIfTI betas (`target.reader: nifti_betas`)."""

    kind: Literal["fmri"] = Field(description="`fmri`.")
    metric: FMRIMetric = Field(description="Encoding model and ROI RSA.")
    ceiling: NoCeiling = Field(default_factory=NoCeiling, description="No ceiling yet (no repeated betas).")

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        yield "stimuli", self.stimuli, True, frozenset()
        yield "target", self.target, True, frozenset()

    @field_validator("target")
    @classmethod
    def _nifti(cls, target: Section) -> Section:
        if target.get("reader") != "nifti_betas":
            raise ValueError(f"reader: the fmri kind reads `nifti_betas`, got {target.get('reader')!r}")
        return target


# ----- v1_properties --------------------------------------------------------------------------------

class V1Experiment(StrictModel):
    """`stimuli` of a `v1_properties` benchmark: the in-silico grating experiments
    (:class:`brainalign.insilico.ExperimentSettings` overrides, in degrees)."""

    experiment: Literal["marques2020"] = Field(description="The experiment protocol.")
    orientations: list[float] | None = Field(None, description="Grating orientations, deg.")
    phases: list[float] | None = Field(None, description="Grating phases, deg.")
    sfs: list[float] | None = Field(None, description="Spatial frequencies, c/deg (default: from the field).")
    diameter: float | None = Field(None, gt=0, description="Aperture diameter, deg.")
    size_diameters: list[float] | None = Field(None, description="Size-tuning diameters, deg.")
    size_phases: list[float] | None = Field(None, description="Size-tuning phases, deg.")
    responsive_fraction: float | None = Field(None, gt=0, lt=1, description="Responsiveness threshold.")


class V1Target(StrictModel):
    """`target` of a `v1_properties` benchmark."""

    properties: dict[str, Section] = Field(min_length=1, description="Property name → reader section of "
                                           "its neural distribution.")

    @field_validator("properties")
    @classmethod
    def _known(cls, props: dict[str, Section]) -> dict[str, Section]:
        from brainalign.insilico.experiments import PROPERTIES

        unknown = sorted(set(props) - set(PROPERTIES))
        if unknown:
            raise ValueError(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} "
                             f"{unknown}; known: {', '.join(PROPERTIES)}")
        return props


class KSMetric(StrictModel):
    """`metric` of a `v1_properties` benchmark."""

    name: Literal["ks_similarity"] = Field(description="1 − KS distance / its largest value.")


class BootstrapCeiling(StrictModel):
    """`ceiling` of a `v1_properties` benchmark."""

    method: Literal["bootstrap"] = Field("bootstrap", description="The neural data against resamples of itself.")


class V1PropertiesSchema(BenchmarkSchema):
    """`kind: v1_properties`: distributions of single-unit properties (Marques et al. 2021)."""

    kind: Literal["v1_properties"] = Field(description="`v1_properties`.")
    stimuli: V1Experiment = Field(description="The grating experiments.")  # type: ignore[assignment]
    target: V1Target = Field(description="Property distributions.")  # type: ignore[assignment]
    metric: KSMetric = Field(description="KS similarity.")
    ceiling: BootstrapCeiling = Field(default_factory=BootstrapCeiling, description="Ceiling.")

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        for name, sec in self.target.properties.items():
            yield f"target.properties.{name}", sec, True, frozenset()


# ----- simulated_v1 ---------------------------------------------------------------------------------

class SimulatedV1Population(StrictModel):
    """`stimuli` of a `simulated_v1` benchmark: the arguments of
    :func:`brainalign.insilico.benchmark.make_simulated_v1_data` (no reader: the data are generated)."""

    n_cells: PositiveInt = Field(64, description="Simulated V1 cells.")
    n_stimuli: PositiveInt = Field(400, description="Photograph patches shown.")
    n_repeats: int = Field(6, ge=2, description="Poisson repeats per stimulus (≥ 2 for a split-half ceiling).")
    input_size: PositiveInt = Field(96, description="Patch size in pixels.")
    visual_degrees: float = Field(4.0, gt=0, description="Field of view of the population, degrees.")
    seed: int = Field(0, description="Seed of the population, the patches and the spikes.")


class SimulatedV1Metric(StrictModel):
    """`metric` of a `simulated_v1` benchmark."""

    name: Literal["ridge"] = Field("ridge", description="Cross-validated ridge encoding.")
    cv: int = Field(5, ge=2, description="Outer folds.")
    pool_grid: PositiveInt = Field(3, description="Spatial pooling grid (g × g) of convolutional features.")


class SimulatedV1Schema(BenchmarkSchema):
    """`kind: simulated_v1`: a simulated V1 population with Poisson repeats (ground truth known)."""

    kind: Literal["simulated_v1"] = Field(description="`simulated_v1`.")
    stimuli: SimulatedV1Population = Field(description="The simulated population.")  # type: ignore[assignment]
    metric: SimulatedV1Metric = Field(description="Ridge encoding settings.")  # type: ignore[assignment]

    def reader_sections(self) -> Iterator[tuple[str, Section, bool, frozenset[str]]]:
        return iter(())
