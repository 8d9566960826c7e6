"""The benchmark as an experiment: the model is the subject, shown the stimuli and recorded."""

from __future__ import annotations

import functools
import hashlib
import itertools
import numbers
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr

from brainalign.activations.blas import numpy_blas_one_thread
from brainalign.activations.budget import release_free_memory
from brainalign.activations.extract import check_batch_size
from brainalign.activations.stream import LayerStream, stream_layers
from brainalign.benchmarks.schemas import BenchmarkSchema
from brainalign.benchmarks.spec import BenchmarkSpec
from brainalign.data.fetch import fetch_file
from brainalign.data.manifest import Manifest, load_manifest
from brainalign.data.placement import Placement, place_stimuli
from brainalign.data.readers import read
from brainalign.data.stimuli import StimulusSet
from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import (
    BenchmarkDefinitionError,
    CoarseBootstrapWarning,
    LayerActivationError,
    MetricInputError,
    StimulusError,
    StimulusMismatchError,
    without_names,
)
from brainalign.metrics.stats import percentile_ci
from brainalign.results.provenance import FORWARD_STOPPED, versions_string
from brainalign.results.result import ScoreResult
from brainalign.results.table import LayerScore, RowContext, make_row, make_table, reduction_json
from brainalign.settings import PathLike

__all__ = ["Benchmark", "LayerScore", "bootstrap_settings", "check_activations", "percentile_ci", "row_context"]

_ScoreLayer = Callable[[Any, str, Any], list[LayerScore]]

if TYPE_CHECKING:
    from brainalign.models.base import BrainModel


class Benchmark:
    """Base of every benchmark kind.

    Parameters
    ----------
    spec
        The parsed YAML definition.
    data_dir
        Local data directories (see :func:`brainalign.settings.data_dirs`).
    cache
        Download cache directory.
    download
        Whether files missing locally may be downloaded.

    n_bootstrap
        Overrides the YAML's ``statistics.bootstrap.n`` (fewer samples: faster, coarser CIs).
    manifest_dirs
        Extra directories of dataset manifests, searched before the bundled ones.
    max_stimuli
        Regression kinds: score a seeded random subset of at most this many stimuli per session
        (a quick check, not a paper number; recorded in every row's ``n_stimuli``, in its
        ``benchmark_version`` as ``+max_stimuli=N`` and in ``meta``). None: all. Other kinds
        (``supports_max_stimuli`` False) cannot limit their stimuli: for them a limit raises
        :class:`~brainalign.errors.BenchmarkDefinitionError` (:meth:`refuse_max_stimuli`).
    """

    # The pydantic schema that validates this kind's YAML when it is loaded (see
    # brainalign.benchmarks.schemas); a kind narrows its sections with its own subclass.
    schema: ClassVar[type[BenchmarkSchema]] = BenchmarkSchema
    # Whether this kind honours ``max_stimuli``; the others refuse it (``refuse_max_stimuli``: a
    # limit silently ignored would pass a full run off as a quick look, or the reverse).
    supports_max_stimuli: ClassVar[bool] = False
    # What this kind is called in messages to users ("an RSA benchmark"), never a class name.
    kind_label: ClassVar[str] = "a benchmark of this kind"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every kind's score_layer (the library's and a user's) receives its activations through
        # align_activations: a kind then never scores stimuli in another order, or other stimuli,
        # by mistake, and no kind repeats the check.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("score_layer")
        if own is not None and not getattr(own, "_aligns_stimuli", False):
            cls.score_layer = _aligned(own)  # type: ignore[method-assign]

    def __init__(self, spec: BenchmarkSpec, *, data_dir: PathLike | Sequence[PathLike] | None = None,
                 cache: PathLike | None = None, download: bool = True, n_bootstrap: int | None = None,
                 manifest_dirs: Sequence[PathLike] = (), max_stimuli: int | None = None):
        self.spec = spec
        self.data_dir, self.cache, self.download = data_dir, cache, download
        if n_bootstrap is not None and not (_whole_and_positive(n_bootstrap) and n_bootstrap >= 2):
            raise BenchmarkDefinitionError(
                f"{spec.id}: n_bootstrap={n_bootstrap!r} (--n-bootstrap) must be a whole number of "
                "bootstrap samples, at least 2 (None: the benchmark's own, usually 1,000).")
        self.n_bootstrap = n_bootstrap
        level = bootstrap_settings(spec)[1]
        if n_bootstrap is not None and (why := coarse_bootstrap(n_bootstrap, level, spec.id)):
            warnings.warn(why, CoarseBootstrapWarning, stacklevel=2)
        self.manifest_dirs = tuple(manifest_dirs)
        self.refuse_max_stimuli(max_stimuli, spec.id)
        self.max_stimuli = None if max_stimuli is None else int(max_stimuli)
        self._resolved: dict[tuple[str, str], Path] = {}
        self._manifests: dict[str, Manifest] = {}
        self._preparing: Future | None = None

    @classmethod
    def refuse_max_stimuli(cls, max_stimuli: int | None, benchmark: str) -> None:
        """Raise :class:`~brainalign.errors.BenchmarkDefinitionError` when ``max_stimuli`` is given
        to a kind that cannot limit its stimuli: ignored, it would pass a full run off as a quick
        look (or the reverse), and its rows would say nothing of it. A limit that is not a
        whole number ≥ 1 is refused for every kind."""
        if max_stimuli is not None and not _whole_and_positive(max_stimuli):
            raise BenchmarkDefinitionError(
                f"{benchmark}: max_stimuli={max_stimuli!r} (--max-stimuli) must be a whole number of "
                "stimuli, at least 1 (None: all stimuli).")
        if max_stimuli is not None and not cls.supports_max_stimuli:
            raise BenchmarkDefinitionError(
                f"{benchmark}: max_stimuli={max_stimuli} (--max-stimuli) is only honoured by regression "
                f"benchmarks, and this one is {cls.kind_label}; it would be ignored, so it is "
                "refused. Score this benchmark in a separate run without --max-stimuli (from "
                "Python: give load_benchmark(id, max_stimuli=N) only for regression benchmarks, "
                "and this one without it).")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.id} v{self.spec.version}>"

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version_label(self) -> str:
        """The ``benchmark_version`` written in every row: the YAML's version, plus
        ``+max_stimuli=N`` when a stimulus limit is applied, so a quick look on a subset is never
        mistaken for (or paired with, in model comparisons) a full run."""
        if not self.subset_applied():
            return str(self.spec.version)
        return f"{self.spec.version}+max_stimuli={self.max_stimuli}"

    def subset_applied(self) -> bool:
        """Whether ``max_stimuli`` leaves stimuli out. Kinds that honour it refine this from their
        data (a limit at or above every session's size leaves the full benchmark)."""
        return self.max_stimuli is not None and self.supports_max_stimuli

    @cached_property
    def manifest(self) -> Manifest:
        return self.manifest_of(self.spec.dataset)

    def manifest_of(self, dataset: str) -> Manifest:
        """The manifest of ``dataset`` (the benchmark's own, or one a YAML section names)."""
        if dataset not in self._manifests:  # parsed once per benchmark: rows ask for it often
            self._manifests[dataset] = load_manifest(dataset, self.manifest_dirs)
        return self._manifests[dataset]

    def path_of(self, name: str, dataset: str | None = None) -> Path:
        """Verified local path of a file of the benchmark's dataset (or of ``dataset``)."""
        dataset = dataset or self.spec.dataset
        key = (dataset, name)
        if key not in self._resolved:
            manifest = self.manifest if dataset == self.spec.dataset else self.manifest_of(dataset)
            self._resolved[key] = fetch_file(manifest, name, data_dir=self.data_dir,
                                             cache=self.cache, download_missing=self.download)
        return self._resolved[key]

    def read(self, section: dict[str, Any], **extra: Any) -> Any:
        """Run the reader a YAML section names; a ``dataset`` key reads another dataset's files."""
        if "reader" not in section:
            raise BenchmarkDefinitionError(f"{self.spec.path}: a data section lacks its 'reader': {section}")
        params = {k: v for k, v in section.items() if k not in ("reader", "dataset")}
        dataset = section.get("dataset")

        def path_of(name: str) -> Path:
            return self.path_of(name, dataset)

        return read(section["reader"], path_of, **params, **extra)

    @cached_property
    def stimuli(self) -> StimulusSet:
        """The stimuli shown to the model."""
        stim = self.read(self.spec.stimuli, name=self.spec.dataset)
        return stim

    def data_files(self) -> dict[str, str]:
        """Files read so far and their sha256 (from the manifest, verified on read)."""
        out = {}
        for ds, n in self._resolved:
            entry = self.manifest_of(ds).file(n)
            key = n if ds == self.spec.dataset else f"{ds}/{n}"
            out[key] = entry.sha256 or (f"sha1:{entry.sha1}" if getattr(entry, "sha1", None) else "unverified")
        return out

    def data_hash(self) -> str:
        """sha256 over the names and checksums of the data files read so far (one short key)."""
        h = hashlib.sha256()
        for k, v in sorted(self.data_files().items()):
            h.update(f"{k}={v};".encode())
        return h.hexdigest()[:16]

    def place(self, model: BrainModel, stimuli: StimulusSet | None = None) -> tuple[StimulusSet, Placement]:
        """The stimuli as ``model`` sees them: placed in its field of view by their size in degrees."""
        stimuli = stimuli if stimuli is not None else self.stimuli
        deg = self.spec.visual_degrees if self.spec.visual_degrees is not None else stimuli.visual_degrees
        return place_stimuli(stimuli, model.visual_degrees, deg)

    def check_ids(self, ids: Sequence[str], where: str, *, expected: Sequence[str] | None = None) -> None:
        """Raise if ``ids`` do not match the stimulus ids (``expected``, default :attr:`stimuli`)
        in order."""
        ours = tuple(expected) if expected is not None else self.stimuli.ids
        if tuple(ids) != tuple(ours):
            diff = next((i for i, (a, b) in enumerate(zip(ids, ours, strict=False)) if a != b),
                        min(len(ids), len(ours)))
            got = ids[diff] if diff < len(ids) else "<none>"
            want = ours[diff] if diff < len(ours) else "<none>"
            raise StimulusError(
                f"{self.id}: stimulus ids of {where} do not match the stimulus set at position "
                f"{diff}: {got!r} vs {want!r} ({len(ids)} vs {len(ours)} stimuli)")

    def layer_activations(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                          stimuli: StimulusSet | None = None, batch_size: int = 64,
                          device: DeviceLike = "auto", progress: bool = False,
                          **stream: Any) -> LayerStream:
        """The model's responses to ``stimuli`` (default :attr:`stimuli`; benchmarks pass them
        placed by :meth:`place`), one layer at a time, memory-bounded.

        Every benchmark kind scores through this: iterate over ``(layer, DataArray)`` pairs and
        score each before taking the next (see :func:`brainalign.activations.stream_layers`;
        ``stream`` takes its ``memory_budget``, ``max_features``, ``reducers``, ``cache`` and
        ``on_layer``). The stream's ``.plan`` and ``.reduction()`` say how the run was recorded.
        Arrays of layers kept by reference (one batch) are read-only: ``.copy()`` one to change
        it. Exhaust or close the stream before recording the model again.
        """
        stimuli = stimuli if stimuli is not None else self.stimuli
        return stream_layers(model, stimuli, layers, batch_size=batch_size, device=device,
                             progress=progress, **stream)

    def provenance(self) -> dict[str, Any]:
        return {"benchmark": self.id, "benchmark_version": self.version_label,
                "max_stimuli": self.max_stimuli if self.subset_applied() else None,
                "benchmark_file": str(self.spec.path), "dataset": self.spec.dataset,
                "data_files": self.data_files(), "citation": list(self.spec.citation)}

    # ----- the run: one template for every kind ------------------------------------------------
    def recording(self, model: BrainModel) -> tuple[StimulusSet, Placement]:
        """The stimuli shown to ``model`` (placed in its field of view) and how they were placed;
        called once per run. Multi-session kinds return the union of their sessions' stimuli."""
        return self.place(model)

    def default_reducers(self, model: BrainModel) -> Any:
        """The reducer the benchmark applies when the caller gives neither ``reducers`` nor
        ``max_features`` (default: none, full features)."""
        return None

    def candidate_layers(self, model: BrainModel, layers: str | Sequence[str] | None) -> Any:
        """The layers to record (default: as asked; ``None`` = the model's default layers)."""
        return layers

    def score_layer(self, layer: str, activations: Any) -> list[LayerScore]:
        """THE method a benchmark kind implements: score one layer's activations.

        Callers may give the activations in any stimulus order: before a kind's ``score_layer``
        runs they pass through :meth:`align_activations` (wrapped in when the kind is defined),
        so the kind always receives the benchmark's stimuli in its order.

        Parameters
        ----------
        layer
            The layer's name.
        activations
            (stimulus × unit[, time_bin]) responses to the stimuli :meth:`recording` returned:
            an ``xarray.DataArray`` with a ``stimulus_id`` coordinate (any order; reordered to
            the benchmark's), or an array without ids (numpy, torch, a DataArray without
            ``stimulus_id``) that must hold exactly the benchmark's stimuli in its order
            (:meth:`stimulus_order`).

        Returns
        -------
        list of LayerScore
            One per row (session, metric) this layer gets; each carries the row's statistics and
            its ``details`` (per neuroid / subject / split arrays, ``bootstrap_raw`` and
            ``bootstrap_normalised``).

        Raises
        ------
        StimulusMismatchError
            Stimulus ids missing, unknown or repeated, or an array without ids of another length
            than the benchmark's number of stimuli (see :meth:`align_activations`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement score_layer")

    def stimulus_order(self, ids: Sequence[str] | None) -> Sequence[str]:
        """The stimulus ids :meth:`score_layer` scores, in its order: those of :meth:`recording`
        (default: :attr:`stimuli`). ``ids`` are those the activations carry (None: an array
        without ids), for kinds whose stimuli depend on the model (they find the model's set by
        them)."""
        return self.stimuli.ids

    def align_activations(self, layer: str, activations: Any) -> xr.DataArray:
        """``activations`` as a (stimulus × …) DataArray in the order of :meth:`stimulus_order`,
        with its ``stimulus_id`` coordinate.

        Activations with a ``stimulus_id`` coordinate are reordered by it (the same object when
        already in order); an array without ids is taken to be in the benchmark's order and must
        hold exactly its number of stimuli (dims ``stimulus``, ``unit``[, ``time_bin``]).

        Raises
        ------
        StimulusMismatchError
            Ids of the benchmark's stimuli missing from the activations, ids it does not know,
            an id given twice, or an array without ids of another length; the message gives the
            counts and a few of the ids.
        """
        where = f"{self.id}: activations of layer {layer!r}"
        if isinstance(activations, xr.DataArray) and "stimulus_id" in activations.coords:
            coord = activations["stimulus_id"]
            if coord.ndim != 1:
                raise StimulusMismatchError(f"{where}: stimulus_id must be one-dimensional, not over {coord.dims}")
            ids = [str(x) for x in coord.values]
            order = [str(x) for x in self.stimulus_order(ids)]
            if ids == order:
                return activations
            position = {sid: i for i, sid in enumerate(ids)}
            repeated = list(dict.fromkeys(sid for i, sid in enumerate(ids) if position[sid] != i))
            known = set(order)
            missing = [sid for sid in order if sid not in position]
            unknown = [sid for sid in position if sid not in known]
            if repeated or missing or unknown:
                found = (("missing", missing), ("not among its stimuli", unknown), ("given twice", repeated))
                parts = [f"{len(v)} {what} ({_few(v)})" for what, v in found if v]
                raise StimulusMismatchError(
                    f"{where} are not responses to its stimuli: {len(ids)} given, {len(order)} expected; "
                    f"stimulus ids {'; '.join(parts)}. Score the responses to all of the benchmark's stimuli "
                    "(their stimulus_id in any order): record them with "
                    "brainalign.extract(model, bench.recording(model)[0]), the stimuli as the benchmark "
                    "shows them to that model (every session, placed in its field of view)")
            return activations.isel({coord.dims[0]: [position[sid] for sid in order]})
        order = self.stimulus_order(None)
        values = activations
        if hasattr(values, "detach"):  # a torch tensor (extract's keep_on_device)
            values = values.detach().cpu().numpy()
        if not isinstance(values, xr.DataArray):
            values = np.asarray(values)
            names = ("stimulus", "unit", "time_bin") if values.ndim <= 3 else \
                ("stimulus", *(f"dim_{i}" for i in range(1, values.ndim)))
            values = xr.DataArray(values, dims=names[:values.ndim])
        if values.ndim == 0 or values.shape[0] != len(order):
            n = values.shape[0] if values.ndim else 0
            raise StimulusMismatchError(
                f"{where} carry no stimulus ids and hold {n} stimuli along their first axis, but the "
                f"benchmark scores {len(order)}: an array without ids must hold exactly its stimuli, in its "
                "order (give a DataArray with a stimulus_id coordinate to score them in any order)")
        return values.assign_coords(stimulus_id=(values.dims[0], [str(x) for x in order]))

    def prepare(self) -> None:
        """Build the scoring state that does not depend on the model (noise ceilings, bootstrap
        index sets and their ceilings). Kinds override it (default: nothing); it runs once per
        benchmark object, on a helper thread (:meth:`start_preparing`)."""

    def start_preparing(self) -> Future:
        """Run :meth:`prepare` on a helper thread, once: a run starts it (and waits for it before
        scoring its first layer), and callers that know a run is coming may start it earlier
        (the CLI does, before loading the model). Its error, if any, is raised by the run.

        The thread is a daemon: a run that fails (a model that cannot be loaded or run) returns
        and its process exits at once, instead of waiting for ceilings and bootstrap samples
        nobody will use (a ThreadPoolExecutor's worker is joined at exit). What it computes,
        and so every score, is the same."""
        if self._preparing is None:
            future: Future = Future()

            def run() -> None:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    self._prepare_then_trim()
                except BaseException as err:  # handed to the run that waits on it
                    future.set_exception(err)
                else:
                    future.set_result(None)

            threading.Thread(target=run, name="brainalign-prepare", daemon=True).start()
            self._preparing = future
        return self._preparing

    def _prepare_then_trim(self) -> None:
        self.prepare()
        release_free_memory()  # the preparation's transient arrays, not needed by the run

    def run_meta(self) -> dict[str, Any]:
        """Settings of this kind for ``ScoreResult.meta`` (ceiling method, metric, splits…)."""
        return {}

    def __call__(self, model: BrainModel, layers: str | Sequence[str] | None = None, *,
                 batch_size: int = 64, device: DeviceLike = "auto", progress: bool = False,
                 memory_budget: int | str | None = None, max_features: int | None = None,
                 reducers: Any = None, cache: Any = None, on_layer: Any = None) -> ScoreResult:
        """Record ``model`` on the benchmark's stimuli and score every layer (every kind).

        The stimuli are placed once (:meth:`recording`); layers are recorded through the
        memory-bounded stream (:meth:`layer_activations`: activation ``cache``,
        ``memory_budget``, ``reducers`` / ``max_features``, ``progress``, ``on_layer``) and each
        is scored by :meth:`score_layer` as it arrives, then freed. Rows are built by
        :func:`brainalign.results.make_row`; ``selected`` marks the layer
        :func:`brainalign.results.choose_best` picks.

        A layer whose activations hold NaN or inf, or that the metric refuses (a constant RDM, a
        stimulus pattern without variance), raises no further: it is recorded in
        ``meta["failed_layers"]`` (a message naming the layer) and the other layers' rows are kept.
        A model whose forward pass fails part-way is scored on the layers before the failing
        module and recorded there too, under :data:`FORWARD_STOPPED`.

        Parameters
        ----------
        model
            The model (the subject of the experiment).
        layers
            Layer names or globs; ``None``: the model's default layers.
        batch_size, device, progress
            Passed to the extraction.
        memory_budget, max_features, reducers, cache, on_layer
            See :func:`brainalign.activations.stream_layers`. Without ``reducers`` and
            ``max_features`` the benchmark's own reducer applies (:meth:`default_reducers`).
        """
        resolve_device(device)  # a device this machine lacks: refused before the stimuli are read
        check_batch_size(batch_size)
        # numpy's BLAS on one thread while torch computes on the CPU (activations.blas: two
        # thread pools would take the cores from each other).
        with numpy_blas_one_thread(device):
            stimuli, placed = self.recording(model)
            if reducers is None and max_features is None:
                reducers = self.default_reducers(model)
            stream = self.layer_activations(
                model, self.candidate_layers(model, layers), stimuli=stimuli, batch_size=batch_size,
                device=device, progress=progress, memory_budget=memory_budget, max_features=max_features,
                reducers=reducers, cache=cache, on_layer=on_layer)
            reduction = stream.reduction()
            _, _, seed = bootstrap_settings(self.spec, self.n_bootstrap)
            prov, vers, data_sha = model.provenance(), versions_string(), None
            rows: list[dict[str, Any]] = []
            details: dict[tuple[str, ...], dict[str, Any]] = {}
            failed: dict[str, str] = {}
            t_extract = t_metric = 0.0  # recording and scoring interleave: time waiting on the stream
            prepared = self.start_preparing()  # overlaps the recording of the first layers
            release_free_memory()  # what loading the model and layer discovery left in the heap
            layer_iter = iter(stream)
            try:
                for i in itertools.count():
                    t = time.perf_counter()
                    item = next(layer_iter, None)
                    t_extract += time.perf_counter() - t
                    t = time.perf_counter()
                    prepared.result()  # raises what preparing raised, before any layer is scored
                    t_metric += time.perf_counter() - t
                    if item is None:
                        break
                    layer, acts = item
                    t = time.perf_counter()
                    try:
                        if isinstance(acts, xr.DataArray):  # every kind's stream yields DataArrays
                            check_activations(model, layer, acts)
                        scores = self.score_layer(layer, acts)  # checks (and aligns) the stimulus ids
                    except LayerActivationError as err:
                        failed[layer] = str(err)
                        continue
                    except MetricInputError as err:
                        # The targets were checked before recording (a constant subject RDM stops the run
                        # there), so a metric refusing its input here refuses the layer's activations (a
                        # constant RDM, a stimulus whose pattern has no variance): that layer only.
                        why = without_names(str(err), model.name, self.id)
                        failed[layer] = (f"{model.name}: layer {layer!r} cannot be scored: {why}; it is not "
                                         "scored, the other layers are kept")
                        continue
                    finally:
                        del acts, item  # free this layer before the stream records the next group
                    data_sha = data_sha if data_sha is not None else self.data_hash()
                    ctx = row_context(model, self.id, self.version_label, layer, i, seed=seed,
                                      placement=placed.describe(), data_sha256=data_sha,
                                      reduction=reduction.get(layer), versions=vers, provenance=prov)
                    for sc in scores:
                        rows.append(make_row(sc, ctx))
                        key = (model.name, self.id, layer, sc.session)
                        if key in details:  # a second metric on the same session (fMRI ROI RSA)
                            key = (model.name, self.id, layer, f"{sc.session}/{sc.metric}")
                        details[key] = sc.details
                    t_metric += time.perf_counter() - t
            finally:
                layer_iter.close()  # stops the recording however the loop ends (an error, Ctrl-C)
            if model.forward_stopped:  # the layers past the failing module were never recordable
                failed[FORWARD_STOPPED] = model.forward_stopped
            meta = {**self.provenance(), "models": {model.name: prov},
                    "placement": {model.name: placed.as_dict()},  # per model: its field of view
                    "timing_s": {self.id: {"extract": t_extract, "metric": t_metric}},
                    "reduction": {model.name: reduction}, "memory_plan": {model.name: stream.plan.notes},
                    "failed_layers": {model.name: failed}, **self.run_meta()}
            return ScoreResult(make_table(rows), details, meta)


def _aligned(score_layer: _ScoreLayer) -> _ScoreLayer:
    """A kind's ``score_layer`` that receives its activations through
    :meth:`Benchmark.align_activations` (raising its :class:`StimulusMismatchError`)."""
    @functools.wraps(score_layer)
    def aligned(self: Benchmark, layer: str, activations: Any) -> list[LayerScore]:
        return score_layer(self, layer, self.align_activations(layer, activations))

    # A kind that takes another's method (score_layer = Other.score_layer) does not wrap it twice.
    aligned._aligns_stimuli = True  # type: ignore[attr-defined]
    return aligned


def _few(ids: Sequence[str], k: int = 3) -> str:
    """The first ``k`` of ``ids`` quoted, and how many more."""
    shown = ", ".join(repr(i) for i in ids[:k])
    return shown + (f", … {len(ids) - k} more" if len(ids) > k else "")


def _whole_and_positive(value: Any) -> bool:
    """Whether a count given by the user (``max_stimuli``, ``n_bootstrap``) is a whole number ≥ 1
    (a bool is not a count)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


def check_activations(model: BrainModel, layer: str, acts: Any) -> None:
    """Raise :class:`LayerActivationError` naming ``layer`` when its activations hold NaN / inf."""
    values = np.asarray(acts.values if hasattr(acts, "values") else acts)
    # NaN makes max NaN; +inf / −inf make max / min infinite: two reductions, no temporary.
    if values.dtype.kind == "f" and values.size and not (np.isfinite(values.max()) and np.isfinite(values.min())):
        bad = np.argwhere(~np.isfinite(values))[0]
        n = int((~np.isfinite(values)).sum())
        raise LayerActivationError(
            f"{model.name}: layer {layer!r} output holds {n} NaN/inf value(s) (first at index "
            f"{tuple(int(x) for x in bad)}); it is not scored, the other layers are kept")


def coarse_bootstrap(n: int, level: float = 0.95, where: str = "") -> str:
    """Why ``n`` bootstrap samples are too few for a ``level`` percentile CI (each tail then holds
    less than one sample, so the ends are the extreme samples), or "" when they are enough."""
    fewest = int(np.ceil(2 / (1 - level)))
    if n >= fewest:
        return ""
    return (f"{where + ': ' if where else ''}n_bootstrap={n} is too few for a {level:.0%} CI (at least {fewest}; "
            "1,000 for a paper): its ends are the extreme samples, so it is coarse and may not contain the score")


def bootstrap_settings(spec: BenchmarkSpec, n: int | None = None) -> tuple[int, float, int]:
    """(n, confidence level, seed) of the bootstrap; ``n`` overrides the YAML's."""
    b = spec.statistics.get("bootstrap", {})
    return int(n if n is not None else b.get("n", 1000)), float(b.get("ci", 0.95)), int(b.get("seed", 0))


NO_CEILING_NOTE = "no noise ceiling (the benchmark's ceiling.method is none): raw scores only, not normalised"


def no_ceiling_note(spec: BenchmarkSpec, default: str = NO_CEILING_NOTE) -> str:
    """``ceiling_note`` of the rows of a benchmark whose YAML says ``ceiling: {method: none}``:
    its ``reason``, else ``default`` (a row without a ceiling always says why)."""
    return str(spec.ceiling.get("reason") or default)


def row_context(model: BrainModel, benchmark: str, version: Any, layer: str, index: int, *,
                seed: int, placement: str = "", data_sha256: str = "", reduction: Any = None,
                versions: str | None = None, provenance: dict[str, Any] | None = None) -> RowContext:
    """What identifies the rows of ``layer`` of ``model`` (see :class:`brainalign.results.RowContext`).

    ``preprocessing`` and ``mode`` come from ``model.provenance()``; models that do not report
    them are described by their preprocess object and recorded in eval mode (BrainModel keeps
    its module in eval mode)."""
    prov = provenance if provenance is not None else model.provenance()
    prep = prov.get("preprocessing")
    if prep is None:
        prep = repr(getattr(model, "preprocess", ""))
    return RowContext(
        model=model.name, benchmark=benchmark, benchmark_version=str(version), layer=layer,
        layer_index=index, depth=model.depth(layer), seed=seed, weights=prov.get("weights", ""),
        weights_hash=prov.get("weights_hash", ""),
        preprocessing=prep if isinstance(prep, str) else reduction_json(prep),
        mode=str(prov.get("mode", "eval")), versions=versions or versions_string(),
        reduction=reduction_json(reduction if reduction is not None else {"kind": "none"}),
        placement=placement, data_sha256=data_sha256,
        model_seed=prov.get("model_seed") if str(prov.get("weights", "")) == "random" else None)
