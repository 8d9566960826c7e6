"""``batch``: every model × benchmark × layer, resumable, one failure does not stop the rest.

The output folder holds

- ``scores.parquet`` and ``scores.csv``: every finished pair's rows, rewritten (atomically) each
  time a pair finishes, so the table grows as the run goes. They hold the union of the finished
  pairs in the folder: a pair this run scores replaces its earlier rows; every other pair an
  earlier run (or ``brainalign score --out``) left there is kept as it was, so resuming with
  fewer models or benchmarks loses nothing;
- ``pairs/<key>.parquet``: one file per finished (model, benchmark) pair. A pair is finished
  exactly when its file exists: files are written under a temporary name and moved into place,
  so a run killed at any moment leaves whole files or none, and ``resume`` skips those pairs.
  ``pairs/<key>.details`` beside it holds the pair's per-layer details (bootstrap samples); once
  a pair is scored anew under another key, its files under the old key are removed, and readers
  (:meth:`ScoreResult.load <brainalign.results.ScoreResult.load>`) read only the keys the
  table's ``pair_key`` column names. A run that scores anything removes ``compare.csv`` (it
  compared the scores before);
- ``failures.csv`` and ``errors/<key>.json``: failed pairs, with the error and traceback (a
  resumed run tries again those it lists; the failed pairs of earlier runs it does not list stay
  in ``failures.csv``);
- ``batch.log.jsonl``: one event per line (``submit``, ``done``, ``failed``, ``skipped``).

The pair key hashes the model entry (id or factory, weights, seed, layers), the content of a
``file:`` or ``factory`` model's own code (its module and the modules beside it that it imports)
and of a checkpoint file (:func:`model_source`), the benchmark (id, version and the sha256 of its
YAML file) and the settings that change scores (feature cap, memory budget, benchmark options),
so a changed definition or edited code is scored anew rather than mistaken for a finished one,
and ``--resume`` says which changed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import re
import shutil
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import Field, model_validator

from brainalign.activations.blas import numpy_blas_one_thread
from brainalign.errors import (
    BatchLockedError,
    BatchOutputError,
    BatchSpecError,
    BatchWorkerError,
    DuplicateModelNameError,
    without_names,
)
from brainalign.io import atomic_write, atomic_write_text, interrupt_after
from brainalign.results.details import save_details
from brainalign.results.provenance import FORWARD_STOPPED, full_data_pairs, unscored_layers
from brainalign.schema import StrictModel, Text, read_yaml, validate
from brainalign.settings import PathLike

if TYPE_CHECKING:
    from brainalign.device import DeviceLike


@dataclass(frozen=True)
class ModelEntry:
    """One model of a batch.

    Attributes
    ----------
    id
        Registry id ``"source:name"`` (see :func:`brainalign.load_model`).
    weights
        ``"random"``, ``"pretrained"`` or a checkpoint path.
    seed
        Seed of random weights.
    layers
        Layer names or globs to score (``None``: the model's default layers).
    label
        Name in the results table (default: the id); must be unique within a batch.
    factory
        ``"package.module:function"`` called as ``function(weights=…, seed=…)`` to build a
        :class:`~brainalign.models.BrainModel` for models outside the registry (instead of ``id``).
    """

    id: str | None = None
    weights: str = "random"
    seed: int = 0
    layers: tuple[str, ...] | None = None
    label: str | None = None
    factory: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.id or str(self.factory)

    def load(self):
        """Build the model (in the process that scores it)."""
        if self.factory:
            from brainalign.errors import ModelImportError
            from brainalign.models.file_source import import_user_module

            mod, _, fn = self.factory.partition(":")
            module = import_user_module(mod, f"factory {self.factory!r}")  # the Python path, else here
            if not callable(getattr(module, fn, None)):
                raise ModelImportError(f"factory {self.factory!r}: {mod} has no function {fn!r}")
            build = getattr(module, fn)
            try:
                inspect.signature(build).bind(weights=self.weights, seed=self.seed)
            except TypeError as err:
                raise ModelImportError(f"factory {self.factory!r} is called as {fn}(weights=..., seed=...), "
                                       f"but its signature is {fn}{inspect.signature(build)} ({err})") from None
            except ValueError:  # a builtin without a signature: the call says
                pass
            model = build(weights=self.weights, seed=self.seed)
            from brainalign.models.base import BrainModel

            if not isinstance(model, BrainModel):
                raise ModelImportError(
                    f"factory {self.factory!r} returned a {type(model).__name__}, not a BrainModel: return "
                    "brainalign.wrap(module, name=..., input_size=...) (or list the module as "
                    "`file:<module>:<function>`, which wraps an nn.Module)")
            # What the factory was given, where its model does not say: the rows record it.
            if model.weights == "custom" and self.weights not in ("random", "pretrained", "custom"):
                model.weights = self.weights  # the checkpoint it was built from
            if model.seed is None and self.weights == "random":
                model.seed = self.seed  # the seed of its random initial weights
        else:
            from brainalign.models import load_model

            # "random" is the entry's default: the source's default then (a checkpoint's own weights)
            model = load_model(str(self.id), weights=None if self.weights == "random" else self.weights,
                               seed=self.seed)
        if self.label:
            model.name = self.label
        return model


class ModelEntrySchema(StrictModel):
    """One model of a batch list (or just its id as a string)."""

    id: str | None = Field(None, description="Registry id `source:name` (see `brainalign list models`).")
    source: str | None = Field(None, description="Model source; with `name` instead of `id`.")
    name: str | None = Field(None, description="Model name within `source`.")
    weights: Text = Field("random", description="`random`, `pretrained` or a checkpoint path.")
    seed: int = Field(0, description="Seed of random weights.")
    layers: str | list[str] | None = Field(None, description="Layer names or globs (default: the model's).")
    label: str | None = Field(None, description="Name in the results (default: the id); unique in a batch.")
    factory: str | None = Field(None, description="`package.module:function` building a BrainModel, "
                                "instead of `id`; found on the Python path, else in the working directory.")

    @model_validator(mode="after")
    def _one_model(self) -> ModelEntrySchema:
        if self.layers is not None and not self.layers:
            raise ValueError("'layers: []' selects no layer; leave 'layers' out for the model's default layers")
        from brainalign.models.file_source import is_checkpoint_id

        if "weights" in self.model_fields_set and is_checkpoint_id(self.id):
            raise ValueError(f"{self.id} is a checkpoint, which carries its own weights: leave 'weights' out")
        if self.source is not None and self.name is None:
            raise ValueError("'source' needs 'name' (or give 'id: source:name')")
        if self.name is not None and self.source is None:
            raise ValueError("'name' needs 'source' (or give 'id: source:name')")
        has_id = self.id is not None or self.source is not None
        if has_id == (self.factory is not None) or (self.id is not None and self.source is not None):
            raise ValueError("give exactly one of 'id' (or 'source' + 'name') and 'factory'")
        mod, sep, fn = (self.factory or "").partition(":")
        if self.factory is not None and not (sep and mod.strip() and fn.strip().isidentifier()):
            raise ValueError(f"factory {self.factory!r} is not 'package.module:function'")
        return self

    def entry(self) -> ModelEntry:
        mid = self.id if self.id is not None or self.source is None else f"{self.source}:{self.name}"
        layers = [self.layers] if isinstance(self.layers, str) else self.layers
        return ModelEntry(id=mid.strip() if mid else None, weights=self.weights, seed=self.seed,
                          layers=tuple(layers) if layers else None, label=self.label, factory=self.factory)


class ModelListSchema(StrictModel):
    """A batch model list in YAML (`models:`; a bare list of entries is read the same way)."""

    models: list[str | ModelEntrySchema] = Field(min_length=1, description="Model ids or entries.")


def _entry(item: Any, where: str) -> ModelEntry:
    """One model entry (an id string or a mapping), validated by :class:`ModelEntrySchema`."""
    if isinstance(item, str):
        return ModelEntry(id=item.strip())
    return validate(ModelEntrySchema, item, where, BatchSpecError).entry()


def read_models(path: PathLike) -> list[ModelEntry]:
    """Model entries from a YAML file (``models:`` list of ids or mappings with ``id`` or
    ``source``/``name``, ``weights``, ``seed``, ``layers``, ``label``, ``factory``) or from a plain
    text file of model ids, one per line (``#`` starts a comment).

    Raises
    ------
    BatchSpecError
        An unknown key, an entry without a model, or two entries with the same label.
    """
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = read_yaml(path, BatchSpecError)
        spec = validate(ModelListSchema, {"models": doc} if isinstance(doc, list) else doc, path, BatchSpecError)
        entries = [ModelEntry(id=m.strip()) if isinstance(m, str) else m.entry() for m in spec.models]
    else:
        try:
            text = path.read_text()
        except OSError as err:
            raise BatchSpecError(f"{path}: cannot be read: {err.strerror or err}") from err
        lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
        entries = [ModelEntry(id=ln) for ln in lines if ln]
        if not entries:
            raise BatchSpecError(f"{path}: no model ids")
    check_entries(entries, path)
    return entries


EntryField = Callable[[int, str], str]
"""Where field ``key`` of entry ``i`` was given, for messages: ``models[i].weights`` in a model
list (:func:`in_model_list`), ``--weights`` on ``brainalign score``'s command line."""


def in_model_list(i: int, key: str) -> str:
    """:data:`EntryField` of a batch model list."""
    return f"models[{i}].{key}"


def model_list_problems(entries: Sequence[ModelEntry], at: EntryField = in_model_list) -> list[str]:
    """What can be known of a list of models before any pair runs, without loading a model or
    running your code, each problem said where ``at`` places it: ids no source knows
    (:func:`~brainalign.models.registry.unknown_model`), weights files that do not exist, a
    factory's module and the callable of a factory or a ``file:`` id (read from the module's
    source); then, when all those are right, two entries whose rows would carry one model name
    (equal labels or ids, or checkpoints of one training run, which load under the run's one name:
    read from the files' metadata, weights mapped, not read). One check for batch model lists
    (:func:`check_entries`) and for ``brainalign score``'s ``--model``s. Empty when all is well.
    """
    from brainalign.models.file_source import (
        checkpoint_model_name,
        is_checkpoint_id,
        missing_callable,
        module_exists,
    )
    from brainalign.models.registry import unknown_model

    problems = []
    for i, e in enumerate(entries):
        if e.weights != "random" and is_checkpoint_id(e.id):
            problems.append(f"{at(i, 'weights')} {e.weights!r}: {e.id} is a checkpoint, which carries its own "
                            "weights; leave weights out")
        elif e.weights not in ("random", "pretrained", "custom") and not Path(e.weights).expanduser().is_file():
            problems.append(f"{at(i, 'weights')} {e.weights!r}: no such checkpoint file (weights are "
                            "random, pretrained or the path of a checkpoint)")
        mod = (e.factory or "").partition(":")[0]
        if e.factory and not module_exists(mod):
            problems.append(f"{at(i, 'factory')} {e.factory!r}: no module {mod!r} on the Python path, and "
                            f"no {mod.replace('.', '/')}.py in the working directory {Path.cwd()}")
            continue
        ref, key = (e.factory, "factory") if e.factory else (e.id or "", "id")
        if e.factory or ref.startswith("file:"):
            why = missing_callable(ref.removeprefix("file:"))
        else:
            err = unknown_model(ref)
            why = str(err).splitlines()[0] if err is not None else None  # the listing of sources left out
        if why:
            problems.append(f"{at(i, key)} {ref!r}: {why}")
    if problems:
        return problems
    seen: dict[str, tuple[int, bool]] = {}
    for i, e in enumerate(entries):
        # A label names the rows; without one, a checkpoint loads under its training run's name.
        ckpt = None if e.label or not e.id else checkpoint_model_name(e.id)
        name = ckpt or e.name
        if name in seen:
            j, j_ckpt = seen[name]
            return [str(DuplicateModelNameError(
                name, f"{at(j, 'id')} {entries[j].id or entries[j].name!r}", f"{at(i, 'id')} {e.id or e.name!r}",
                why="checkpoints of one training run load under its name" if ckpt or j_ckpt else ""))]
        seen[name] = (i, ckpt is not None)
    return []


def check_entries(entries: Sequence[ModelEntry], where: object) -> None:
    """Refuse a batch model list with any problem :func:`model_list_problems` finds.

    Raises
    ------
    BatchSpecError
        Naming every entry at fault at once (``models[i]``) and ``where`` (the list).
    """
    problems = model_list_problems(entries)
    if problems:
        raise BatchSpecError(f"{where}: " + "\n  ".join(problems))


@dataclass(frozen=True)
class BatchSettings:
    """Settings every pair of a batch is scored with."""

    batch_size: int = 64
    device: str = "auto"
    max_features: int | None = None
    memory_budget: int | str | None = None
    cache_dir: str | None = None  # activation cache folder; None: no cache
    data_dir: tuple[str, ...] | None = None
    threads: int | None = None  # torch threads in the scoring process
    benchmark_options: dict[str, Any] | None = None  # passed to load_benchmark (n_bootstrap, …)

    def scoring(self) -> dict[str, Any]:
        """The settings that can change scores (part of the pair key)."""
        return {"max_features": self.max_features, "memory_budget": self.memory_budget,
                "benchmark_options": self.benchmark_options}

    def load_benchmark(self, ref: str) -> Any:
        from brainalign.benchmarks import load_benchmark
        from brainalign.errors import CoarseBootstrapWarning

        with warnings.catch_warnings():  # said once by run_batch, not by every load in every worker
            warnings.simplefilter("ignore", CoarseBootstrapWarning)
            return load_benchmark(ref, data_dir=list(self.data_dir) if self.data_dir else None,
                                  **(self.benchmark_options or {}))


@dataclass(frozen=True)
class PairTask:
    """One (model, benchmark) pair: what a worker needs to score it, nothing loaded yet."""

    model: ModelEntry
    benchmark: str  # id or YAML path
    benchmark_id: str
    settings: BatchSettings
    key: str
    source: dict[str, str] | None = None  # file → sha256 of the model's own code (model_source)
    # (benchmark, weights sha256) of the rows of this model's name that the folder keeps from
    # earlier runs on benchmarks this run does not score: the model must be the same network.
    held: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.model.name} × {self.benchmark_id}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60]


def model_source(entry: ModelEntry) -> dict[str, str]:
    """file → sha256 of the files a model entry's content comes from, read without building it:
    a ``file:`` model's module and the modules beside it that it imports (or its checkpoint), a
    ``factory``'s module likewise, and a ``weights`` checkpoint file. Names are relative to the
    first file's folder, so a moved folder keeps its pairs. ``{}`` for registry models (their
    id, weights and the library versions identify them)."""
    from brainalign.activations.cache import file_sha256
    from brainalign.models.file_source import source_files

    files: list[Path] = []
    if entry.id and entry.id.startswith("file:"):
        files = source_files(entry.id[len("file:"):])
    elif entry.factory:  # "package.module:function": found like a file: module
        files = source_files(entry.factory)
    if entry.weights not in ("random", "pretrained", "custom") and Path(entry.weights).is_file():
        files.append(Path(entry.weights).resolve())
    if not files:
        return {}
    root = files[0].parent

    def name(f: Path) -> str:
        return str(f.relative_to(root)) if f.is_relative_to(root) else str(f)

    return {name(f): file_sha256(f) for f in files}


def pair_key(entry: ModelEntry, bench_id: str, bench_version: str, bench_sha: str,
             settings: BatchSettings, source: dict[str, str] | None = None) -> str:
    """Readable, content-derived file name of a pair (``source``: :func:`model_source`)."""
    parts = {"model": dataclasses.asdict(entry), "benchmark": bench_id, "version": bench_version,
             "benchmark_sha256": bench_sha, "settings": settings.scoring()}
    if source:  # not in the key of registry models, so their earlier keys stay valid
        parts["model_source"] = source
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{_slug(entry.name)}__{_slug(bench_id)}__{digest}"


def run_pair(task: PairTask, on_layer: Callable[[str, int, int], None] | None = None,
             benchmarks: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score one pair; never raises for the pair's own failures (they are returned).

    ``benchmarks`` (ref → loaded benchmark) lets one process reuse a benchmark's stimuli, targets
    and bootstrap across pairs; it is filled as benchmarks are loaded.

    Returns
    -------
    dict
        ``key``, ``model``, ``benchmark``, ``ok``, ``seconds``, ``pid``, ``warnings`` (the message
        of every warning the pair raised: data for the coordinating process to summarise, not
        lines a worker prints) and either ``table`` (a DataFrame), ``details`` and ``meta`` (the
        result's) or ``error_type``, ``error`` and ``traceback``.
    """
    from brainalign.runner.pair_warnings import collect_warnings

    t0 = time.perf_counter()
    out: dict[str, Any] = {"key": task.key, "model": task.model.name, "benchmark": task.benchmark_id,
                           "pid": os.getpid()}
    with collect_warnings() as caught:
        _score_pair(task, out, on_layer, benchmarks)
    out["warnings"] = list(caught)
    out["seconds"] = time.perf_counter() - t0
    return out


def _score_pair(task: PairTask, out: dict[str, Any], on_layer: Callable[[str, int, int], None] | None,
                benchmarks: dict[str, Any] | None) -> None:
    """:func:`run_pair`'s work: fills ``out`` with the table or the error."""
    try:
        import torch

        from brainalign.activations.cache import ActivationCache
        from brainalign.results.provenance import refuse_other_network

        s = task.settings
        if s.threads:
            torch.set_num_threads(s.threads)
        benchmarks = benchmarks if benchmarks is not None else {}
        if task.benchmark not in benchmarks:
            benchmarks[task.benchmark] = s.load_benchmark(task.benchmark)
        bench = benchmarks[task.benchmark]
        model = task.model.load()
        refuse_other_network(dict(task.held), model.name, model.weights_hash, "the output folder")
        cache = ActivationCache(s.cache_dir) if s.cache_dir else None
        result = bench(model, list(task.model.layers) if task.model.layers else None,
                       batch_size=s.batch_size, device=s.device, max_features=s.max_features,
                       memory_budget=s.memory_budget, cache=cache, on_layer=on_layer)
        table = result.table.copy()  # every kind: the one schema (reduction included)
        table["pair_key"] = task.key
        # The meta too: what `score` keeps in scores.meta.json (placement, reductions, the layers
        # that could not be scored and why), so a batch folder says what a score folder says.
        out.update(ok=True, table=table, details=result.details, meta=result.meta)
    except Exception as err:
        out.update(ok=False, error_type=type(err).__name__, error=str(err),
                   traceback=traceback.format_exc())


_atomic_write_bytes = atomic_write  # the one atomic-write helper (brainalign.io)

_KEEPS_EARLIER = {"OtherNetworkError", "SubsetOverFullError"}
"""``error_type`` of a pair refused before any of its work for what the folder holds: the pair's
earlier rows stay in the tables (nothing replaced them)."""


def _read_meta(path: Path) -> dict[str, Any] | None:
    """A meta JSON file, or None when it is missing or unreadable (a pair written before metas
    were kept per pair)."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None

_HOST = socket.gethostname()


def _proc_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` on this host runs (and is the one that started at ``start``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    if start is not None:
        now = _proc_start(pid)
        return now is None or now == start
    return True


def _temp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) a temporary file name written by :func:`brainalign.io.atomic_path` carries."""
    m = re.search(r"\.@(.+)-(\d+)@\.[^.]*\.tmp$", name)
    return (m.group(1), int(m.group(2))) if m else None


@dataclass
class BatchReport:
    """What a batch run did."""

    table: pd.DataFrame
    failures: pd.DataFrame
    scored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    out: Path | None = None
    summary: str = ""
    kept: list[str] = field(default_factory=list)  # "model × benchmark" of earlier pairs left as they were
    # "model × benchmark" of this run's pairs scored only in part: the model's forward pass fails
    # part-way, so only the layers before the failing module have rows (meta["failed_layers"]).
    partial: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failures.empty


class _Output:
    """The output folder; only the coordinating process writes here."""

    def __init__(self, out: Path, tasks: Sequence[PairTask]):
        self.out, self.tasks = out, tasks
        self.pairs, self.errors = out / "pairs", out / "errors"
        for d in (self.pairs, self.errors):
            d.mkdir(parents=True, exist_ok=True)
        for d in (out, self.pairs, self.errors):
            for leftover in d.glob(".*.tmp"):
                owner = _temp_owner(leftover.name)
                # Half-written by an interrupted run (never read). This run holds the folder's lock,
                # so a file without a named writer is stale; one whose writer still runs on this
                # host (a lock taken over from a live process) is left alone.
                if owner is None or (owner[0] == _HOST and not _pid_alive(owner[1])):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
        self.tables: dict[str, pd.DataFrame] = {}
        self.metas: dict[str, dict[str, Any]] = {}  # pair key → its meta (pairs/<key>.meta.json)
        self.failures: dict[str, dict[str, Any]] = {}
        # (model, benchmark) → keys of its pair files under other keys (other settings or code):
        # removed once this run scores the pair, so no reader can take them for current.
        self.superseded: dict[tuple[str, str], list[str]] = {}
        self.full_data: set[tuple[str, str]] = set()  # (model, benchmark) with full-data rows here
        # The newest earlier rows of each pair this run scores again: kept in the tables when the
        # pair is refused before any work (:data:`_KEEPS_EARLIER`), dropped once it is scored.
        self.replaced: dict[tuple[str, str], pd.DataFrame] = {}
        self.ours = {(t.model.name, t.benchmark_id) for t in tasks}  # the pairs this run scores
        self.earlier = self._earlier_pairs()
        self.earlier_failures = self._earlier_failures()
        self.earlier_meta = self._earlier_meta()

    def _earlier_pairs(self) -> dict[tuple[str, str], pd.DataFrame]:
        """(model, benchmark) → rows of every pair already finished in the folder that this run
        does not score: the newest pair file of each, else the rows ``scores.csv`` holds for it
        (written by ``brainalign score --out`` into this folder). They stay in the tables, so a
        run with fewer models or benchmarks never erases what an earlier one finished."""
        ours = self.ours
        keys = {t.key for t in self.tasks}
        found: dict[tuple[str, str], tuple[float, pd.DataFrame]] = {}
        for path in self.pairs.glob("*.parquet"):
            if path.stem in keys:
                continue
            try:
                table = pd.read_parquet(path)
                pair = (str(table["model"].iloc[0]), str(table["benchmark"].iloc[0]))
                mtime = path.stat().st_mtime
            except Exception:  # unreadable or empty: not a finished pair
                continue
            self.superseded.setdefault(pair, []).append(path.stem)
            self.full_data |= full_data_pairs(table)
            if pair not in found or mtime > found[pair][0]:
                found[pair] = (mtime, table)
        self.replaced = {pair: table for pair, (_, table) in found.items() if pair in ours}
        found = {pair: v for pair, v in found.items() if pair not in ours}
        earlier = {pair: table for pair, (_, table) in found.items()}
        csv = self.out / "scores.csv"
        if csv.is_file():
            from brainalign.results.table import read_table

            try:
                old = read_table(csv)
            except Exception:
                old = None
            if old is not None and {"model", "benchmark"} <= set(old.columns):
                self.full_data |= full_data_pairs(old)
                for (m, b), rows in old.groupby(["model", "benchmark"], sort=False):
                    pair = (str(m), str(b))
                    if pair not in ours and pair not in earlier:
                        earlier[pair] = rows.reset_index(drop=True)
                    elif pair in ours:
                        self.replaced.setdefault(pair, rows.reset_index(drop=True))
        return {pair: earlier[pair] for pair in sorted(earlier)}

    def _earlier_meta(self) -> dict[str, Any]:
        """The meta of every earlier pair this run keeps: its pair file's, or for rows that
        ``brainalign score --out`` wrote here, their share of the folder's ``scores.meta.json``."""
        from brainalign.results.provenance import merge_metas, without_pairs

        metas = []
        from_pairs = set()
        for pair, table in self.earlier.items():
            key = str(table["pair_key"].iloc[0]) if "pair_key" in table and len(table) else ""
            meta = _read_meta(self.pairs / f"{key}.meta.json") if key else None
            if meta is not None:
                metas.append(meta)
                from_pairs.add(pair)
        folder_meta = _read_meta(self.out / "scores.meta.json") or {}
        rest = without_pairs(folder_meta, self.ours | from_pairs) if folder_meta else {}
        return merge_metas([*metas, rest])

    def held(self, model: str) -> tuple[tuple[str, str], ...]:
        """(benchmark, weights sha256) of the rows of ``model`` this folder keeps from earlier runs."""
        from brainalign.results.provenance import held_weights

        rows = [t for (m, _), t in self.earlier.items() if m == model]
        return tuple(held_weights(pd.concat(rows), model, ()).items()) if rows else ()

    def _earlier_failures(self) -> list[dict[str, Any]]:
        """Failures an earlier run recorded (``errors/<key>.json``) for pairs this run does not
        list and the folder has no result for: still failed, so ``failures.csv`` keeps them."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for path in sorted(self.errors.glob("*.json")):
            try:
                info = json.loads(path.read_text())
                pair = (str(info["model"]), str(info["benchmark"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if pair not in self.ours and pair not in self.earlier:
                found[pair] = info
        return [found[p] for p in sorted(found)]

    def has_results(self) -> bool:
        return any(self.pairs.glob("*.parquet"))

    def finished(self, task: PairTask) -> bool:
        """Whether ``task`` has a complete, readable pair file (loaded into the table)."""
        path = self.pairs / f"{task.key}.parquet"
        if not path.exists():
            return False
        try:
            table = pd.read_parquet(path)
            if set(table["pair_key"]) != {task.key}:
                raise ValueError("pair file of another pair")
        except Exception:
            path.unlink()
            return False
        self.tables[task.key] = table
        self.metas[task.key] = _read_meta(self.pairs / f"{task.key}.meta.json") or {}
        return True

    def log(self, event: str, task: PairTask, **extra: Any) -> None:
        rec = {"event": event, "key": task.key, "model": task.model.name, "benchmark": task.benchmark_id,
               "time": time.time(), **extra}
        with open(self.out / "batch.log.jsonl", "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")

    def record(self, task: PairTask, outcome: dict[str, Any]) -> None:
        """Write a pair's outcome (its table and details, or its error) and the folder's tables;
        a Ctrl-C meanwhile is raised when they are whole (:func:`brainalign.io.interrupt_after`)."""
        with interrupt_after():
            self._record(task, outcome)

    def _record(self, task: PairTask, outcome: dict[str, Any]) -> None:
        err_file = self.errors / f"{task.key}.json"
        if outcome["ok"]:
            table = outcome["table"]
            # The per-layer details (bootstrap samples, per neuroid, …) first: a pair whose table
            # is on disk (finished, for --resume) always has them, so `brainalign compare` works.
            save_details(outcome.get("details") or {}, self.pairs / f"{task.key}.details")
            meta = outcome.get("meta") or {}
            atomic_write_text(self.pairs / f"{task.key}.meta.json", json.dumps(meta, indent=1, default=str))
            _atomic_write_bytes(self.pairs / f"{task.key}.parquet", lambda p: table.to_parquet(p, index=False))
            self.tables[task.key] = table
            self.metas[task.key] = meta
            self.failures.pop(task.key, None)
            with contextlib.suppress(FileNotFoundError):
                err_file.unlink()
            self.write_tables()  # the tables name the new key before the old files go
            self._remove_superseded(task)
            return
        else:
            info = {k: outcome.get(k) for k in ("key", "model", "benchmark", "error_type", "error",
                                                 "traceback", "seconds", "pid")}
            atomic_write_text(err_file, json.dumps(info, indent=1, default=str))
            self.failures[task.key] = info
        self.write_tables()

    def _remove_superseded(self, task: PairTask) -> None:
        """Remove the files of ``task``'s pair that earlier runs wrote under other keys (other
        settings or code): its table, details and error, now replaced by this run's."""
        for key in self.superseded.pop((task.model.name, task.benchmark_id), []):
            if key == task.key:
                continue
            for path in (self.pairs / f"{key}.parquet", self.pairs / f"{key}.meta.json",
                         self.errors / f"{key}.json"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            shutil.rmtree(self.pairs / f"{key}.details", ignore_errors=True)

    def recomputed(self, tasks: Sequence[PairTask]) -> list[str]:
        """Labels of ``tasks`` whose pair an earlier run finished under another key."""
        return [t.label for t in tasks if any(k != t.key for k in
                                              self.superseded.get((t.model.name, t.benchmark_id), []))]

    def kept_on_refusal(self) -> list[PairTask]:
        """This run's pairs refused before any work (:data:`_KEEPS_EARLIER`) whose earlier rows stay."""
        return [t for t in self.tasks if t.key not in self.tables
                and (t.model.name, t.benchmark_id) in self.replaced
                and self.failures.get(t.key, {}).get("error_type") in _KEEPS_EARLIER]

    def table(self) -> pd.DataFrame:
        """This run's finished pairs, then every earlier pair of the folder this run does not score
        (and those of its pairs refused before any work: nothing replaced them)."""
        parts = [self.tables[t.key] for t in self.tasks if t.key in self.tables]
        parts += [t for t in self.earlier.values() if len(t)]
        parts += [self.replaced[(t.model.name, t.benchmark_id)] for t in self.kept_on_refusal()]
        if not parts:
            from brainalign.results.table import COLUMNS

            return pd.DataFrame(columns=[*COLUMNS, "pair_key"])
        from brainalign.results.table import with_count_types

        return with_count_types(pd.concat(parts, ignore_index=True))  # counts as 33, not 33.0

    def failure_table(self, earlier: bool = False) -> pd.DataFrame:
        """This run's failed pairs (``earlier``: then those of earlier runs it left as they were)."""
        cols = ["model", "benchmark", "error_type", "error", "key"]
        rows = [self.failures[t.key] for t in self.tasks if t.key in self.failures]
        rows += self.earlier_failures if earlier else []
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)

    def meta(self) -> dict[str, Any]:
        """The folder's meta, as ``scores.meta.json`` of ``brainalign score``: this run's finished
        pairs' metas, then those of the earlier pairs it keeps."""
        from brainalign.results.provenance import merge_metas

        kept = [self.replaced[(t.model.name, t.benchmark_id)] for t in self.kept_on_refusal()]
        kept_metas = [_read_meta(self.pairs / f"{t['pair_key'].iloc[0]}.meta.json") or {}
                      for t in kept if "pair_key" in t and len(t)]
        return merge_metas([*(self.metas[t.key] for t in self.tasks if t.key in self.metas), self.earlier_meta,
                            *kept_metas])

    def write_tables(self) -> None:
        table = self.table()
        fails = self.failure_table(earlier=True)  # the file, like the tables, covers the folder
        meta = self.meta()
        with interrupt_after():  # the tables always name the same pairs
            _atomic_write_bytes(self.out / "scores.parquet", lambda p: table.to_parquet(p, index=False))
            _atomic_write_bytes(self.out / "scores.csv", lambda p: table.to_csv(p, index=False))
            atomic_write_text(self.out / "scores.meta.json", json.dumps(meta, indent=1, default=str))
            _atomic_write_bytes(self.out / "failures.csv", lambda p: fails.to_csv(p, index=False))


def _refuse_subset_over_full(tasks: Sequence[PairTask], output: _Output, settings: BatchSettings) -> None:
    """:func:`~brainalign.results.provenance.refuse_subset_over_full` for a ``max_stimuli`` run,
    before any pair runs; each benchmark loaded (its data read) at most once, and only for pairs
    the folder holds on the full data.

    Raises
    ------
    SubsetOverFullError
        Naming the pairs.
    """
    from brainalign.results.provenance import refuse_subset_over_full

    limit = (settings.benchmark_options or {}).get("max_stimuli")
    if not limit:
        return

    @functools.cache
    def cuts(ref: str) -> bool:  # whether the limit leaves stimuli out of this benchmark
        return bool(settings.load_benchmark(ref).subset_applied())

    refuse_subset_over_full(output.full_data, [(t.model.name, t.benchmark_id, functools.partial(cuts, t.benchmark))
                                               for t in tasks], output.out, limit)


def plan_tasks(models: Sequence[ModelEntry], benchmarks: Sequence[str], settings: BatchSettings,
               layers: Sequence[str] | None = None) -> list[PairTask]:
    """Every (model, benchmark) pair; benchmarks are resolved (and checked) here, before any work."""
    if layers is not None and not isinstance(layers, str) and not len(layers):
        raise BatchSpecError("layers=[] selects no layer; leave it out (None) for each model's own layers")
    tasks = []
    resolved = []
    for ref in benchmarks:
        b = settings.load_benchmark(ref)
        sha = hashlib.sha256(Path(b.spec.path).read_bytes()).hexdigest() if b.spec.path else ""
        resolved.append((str(ref), b.id, str(b.spec.version), sha))
    for entry in models:
        if layers:
            entry = dataclasses.replace(entry, layers=tuple(layers))
        source = model_source(entry)  # edited code is scored anew, not resumed
        for ref, bid, version, sha in resolved:
            tasks.append(PairTask(entry, ref, bid, settings, pair_key(entry, bid, version, sha, settings, source),
                                  source or None))
    return tasks


def _execute(tasks: Sequence[PairTask], executor: str, workers: int, scheduler: Any,
             progress: Any) -> Iterable[tuple[PairTask, dict[str, Any]]]:
    """Each pair's outcome (:func:`run_pair`'s dict) as pairs finish: on the Dask ``scheduler``,
    in this process (``workers`` ≤ 1) or in ``workers`` spawned processes (:func:`_pool_outcomes`).

    Raises
    ------
    BatchWorkerError
        Worker processes that cannot start at all (see :func:`_start_pool`).
    """
    if scheduler is not None:
        from distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            started = time.perf_counter()
            futures = {client.submit(run_pair, t, pure=False, key=f"brainalign-{t.key}"): t for t in tasks}
            for fut in as_completed(futures):
                t = futures[fut]
                try:
                    yield t, fut.result()
                except Exception as err:  # the worker itself died (KilledWorker, …): this future's pair only
                    yield t, _failed(t, type(err).__name__, str(err), time.perf_counter() - started,
                                     traceback.format_exc())
        finally:
            if client is not scheduler:
                client.close()
        return
    if executor == "local" and workers <= 1:
        loaded: dict[str, Any] = {}  # one load per benchmark for the whole run
        for t in tasks:
            n_layers = len(t.model.layers) if t.model.layers else None
            progress.pair_started(t.label, n_layers)
            yield t, run_pair(t, on_layer=lambda layer, d, n, t=t: progress.layer_done(t.label, layer, d, n),
                              benchmarks=loaded)
        return
    yield from _pool_outcomes(tasks, workers, progress)


def _failed(task: PairTask, error_type: str, error: str, seconds: float, tb: str = "") -> dict[str, Any]:
    """The outcome of a pair whose process failed it (rather than :func:`run_pair` itself)."""
    return {"key": task.key, "model": task.model.name, "benchmark": task.benchmark_id, "ok": False,
            "error_type": error_type, "error": error, "traceback": tb, "seconds": seconds}


WORKER_DIED = "WorkerDied"
"""``error_type`` of a pair whose worker process died while it scored the pair alone."""


def _death(exitcode: int | None) -> str:
    """Why a worker process ended, from its exit code, in words."""
    import signal

    if exitcode is None or exitcode >= 0:
        return f"exited with status {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    hint = {signal.SIGKILL: ": out of memory?", signal.SIGSEGV: ": a crash in native code?"}.get(-exitcode, "")
    return f"killed by signal {-exitcode} ({name}){hint}"


def _worker_start(parent: int) -> None:
    """Initializer of every worker process: Ctrl-C is the coordinating process's to handle (it
    stops the workers), and a worker exits as soon as that process is gone, so a parent killed
    with SIGKILL leaves no idle workers holding memory (and a resumed run none beside its own)."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="brainalign-watch-parent").start()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:  # reparented (to init or a subreaper) once the parent dies
        time.sleep(every)
    os._exit(1)


def _worker_ready() -> int:
    """The no-op task that tells a fresh pool's workers can start."""
    return os.getpid()


_MAIN_GUARD = ("worker processes are started with 'spawn', which imports the main module again in each "
               "one: call run_batch(workers=...) under `if __name__ == \"__main__\":` in a script file "
               "(not from stdin), or use workers=1")


def _refuse_in_a_starting_worker() -> None:
    """Refuse a run started by a spawned worker process as it imports the main module (a script
    without the ``__main__`` guard): said at once, before it loads anything or meets the folder's lock.

    Raises
    ------
    BatchWorkerError
        This process is a worker being started.
    """
    import multiprocessing as mp

    # What multiprocessing's own check of an unguarded main module reads (spawn sets it meanwhile).
    if getattr(mp.current_process(), "_inheriting", False):
        raise BatchWorkerError(f"run_batch was called by a worker process as it started: {_MAIN_GUARD}")


def _start_pool(ctx: Any, workers: int, check: bool) -> Any:
    """A process pool of ``workers`` spawned processes (:func:`_worker_start` in each).

    ``check``: run a no-op task first, so that workers that cannot start at all fail the run once
    with the reason, rather than every pair as a model's failure.

    Raises
    ------
    BatchWorkerError
        ``check`` and the workers died before running anything: most often a script that calls
        run_batch without the ``__main__`` guard (each spawned worker re-runs it), or run from stdin.
    """
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not Path(main_file).exists():  # "<stdin>": spawn cannot import it
        raise BatchWorkerError(f"the main module {main_file} is not a file: {_MAIN_GUARD}")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                               initargs=(os.getpid(),))
    if check:
        try:
            pool.submit(_worker_ready).result()
        except BrokenProcessPool:
            _stop_pool(pool)
            raise BatchWorkerError(f"the batch's worker processes died as they started (their error is "
                                   f"printed above); {_MAIN_GUARD}") from None
    return pool


def _stop_pool(pool: Any) -> None:
    """Stop ``pool`` now: its workers are killed rather than waited for (a running pair can take
    hours, and an interrupted run must end promptly), then its threads are joined."""
    # The executor has no public way to stop running work; its process table is stable (3.8+).
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def _pool_outcomes(tasks: Sequence[PairTask], workers: int,
                   progress: Any) -> Iterable[tuple[PairTask, dict[str, Any]]]:
    """Outcomes of ``tasks`` scored by ``workers`` spawned processes (spawn: a forked child would
    inherit torch's thread pools and locks mid-state).

    At most ``workers`` pairs are submitted at once, so when a worker dies (OOM killer, segfault)
    and the pool breaks, the pairs in flight are exactly the suspects: each is scored again alone
    in a process of its own (:func:`_run_alone`); the one whose process dies again fails with the
    reason, the others are scored, and the run goes on in a fresh pool.

    Raises
    ------
    BatchWorkerError
        Workers that cannot start at all (:func:`_start_pool`).
    """
    import multiprocessing as mp
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, Future, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    todo = deque(tasks)
    pool = _start_pool(ctx, workers, check=True)
    running: dict[Future, tuple[PairTask, float]] = {}
    empty_breaks = 0  # pools in a row that broke with no pair in flight
    try:
        while todo or running:
            broken = False
            while todo and len(running) < workers:
                try:  # refused when a worker died since the last pair finished
                    fut = pool.submit(run_pair, todo[0])
                except BrokenProcessPool:
                    broken = True
                    break
                running[fut] = (todo.popleft(), time.perf_counter())
            if not broken:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
            if broken:
                wait(running)  # a broken pool fails every future it holds at once
                done = set(running)
            suspects = []
            for fut in [f for f in running if f in done]:  # in the order they were submitted
                t, t0 = running.pop(fut)
                err = fut.exception()
                if isinstance(err, BrokenProcessPool):
                    suspects.append(t)
                elif err is not None:  # the task could not be sent or returned (pickling, …)
                    yield t, _failed(t, type(err).__name__, str(err), time.perf_counter() - t0)
                else:
                    yield t, fut.result()
            if not broken:
                continue
            _stop_pool(pool)
            empty_breaks = 0 if suspects else empty_breaks + 1
            if empty_breaks >= 3:
                raise BatchWorkerError("the batch's worker processes keep dying before they score anything "
                                       "(out of memory as they start?); try fewer --workers")
            if suspects:
                progress.note(f"a worker process died while {len(suspects)} pair(s) were being scored; scoring "
                              f"each alone to find the one that kills it: {_some([t.label for t in suspects])}")
            for t in suspects:
                yield t, _run_alone(ctx, t)
            pool = _start_pool(ctx, workers, check=False)
    except BaseException:  # interrupted (or the consumer stopped): the pairs running are not waited for
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)  # every pair done: the idle workers exit as asked


def _alone(conn: Any, task: PairTask, parent: int) -> None:
    """Target of :func:`_run_alone`'s process: the pair's outcome, sent back on ``conn``."""
    _worker_start(parent)
    conn.send(run_pair(task))
    conn.close()


def _run_alone(ctx: Any, task: PairTask) -> dict[str, Any]:
    """Score ``task`` in a process of its own: its outcome, or a :data:`WORKER_DIED` failure saying
    how the process died (its exit code) when it ended without one."""
    t0 = time.perf_counter()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_alone, args=(send, task, os.getpid()), name=f"brainalign {task.label}")
    proc.start()
    send.close()  # ours: the child's end alone keeps the pipe open, so its death reads as EOF
    try:
        try:
            outcome = receive.recv()
        except EOFError:
            outcome = None
        proc.join()
    except BaseException:  # interrupted: stop it rather than wait for the pair
        proc.kill()
        proc.join()
        raise
    finally:
        receive.close()
    if outcome is not None:
        return outcome
    return _failed(task, WORKER_DIED, f"the worker process scoring it died ({_death(proc.exitcode)}); "
                   "scored alone, it died again", time.perf_counter() - t0)


class BatchTerminated(KeyboardInterrupt):
    """A batch run stopped by SIGTERM (what ``timeout``, SLURM and ``docker stop`` send), handled
    as Ctrl-C is: the finished pairs are kept, the workers stopped, the lock released."""


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """Handle SIGTERM during the block as Ctrl-C: whatever handles SIGINT at that moment handles
    it (so a write that holds Ctrl-C till it is whole, :func:`brainalign.io.interrupt_after`,
    holds it too), and the ``KeyboardInterrupt`` it leads to leaves the block as
    :class:`BatchTerminated`. Only on the main thread (where Python delivers signals); the handler
    in place before is restored after.

    Raises
    ------
    BatchTerminated
        SIGTERM arrived during the block.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def on_term(signum: int, frame: Any) -> None:
        received.append(signum)
        ctrl_c = signal.getsignal(signal.SIGINT)
        if not callable(ctrl_c):  # SIGINT ignored or left to the OS: stop all the same
            raise KeyboardInterrupt
        ctrl_c(signal.SIGINT, frame)

    before = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt as err:
        if received and not isinstance(err, BatchTerminated):
            raise BatchTerminated(*err.args) from err
        raise
    finally:
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)


LOCK_NAME = "batch.lock"
PROVENANCE_NAME = "provenance.json"


class _Lock:
    """``<out>/batch.lock``: one writer per output folder.

    The file names its holder (host, pid, process start, start time, command line). A second run
    is refused with a :class:`~brainalign.errors.BatchLockedError` naming the holder; a lock whose
    holder died on this host (no such pid, or the pid reused by another process) is taken over
    with a warning. A holder on another host cannot be checked, so it is never taken over.
    """

    def __init__(self, out: Path, note: Callable[[str], None]):
        self.path = out / LOCK_NAME
        self.info = {"host": _HOST, "pid": os.getpid(), "pid_start": _proc_start(os.getpid()),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "argv": list(sys.argv)}
        for _ in range(3):
            if self._create():
                return
            holder = self._read()
            if holder is None:  # unreadable or half-written: give its writer a moment
                time.sleep(0.2)
                holder = self._read()
                if holder is None:
                    raise BatchLockedError(f"{self.path} exists but cannot be read; if no other batch "
                                           f"run writes to {out}, delete it and start again")
            same_host = holder.get("host") == _HOST
            if same_host and not _pid_alive(int(holder.get("pid", -1)), holder.get("pid_start")):
                note(f"warning: taking over the stale lock of a run that is no longer alive "
                     f"({self._who(holder)})")
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            where = "" if same_host else " (on another host, so it cannot be checked from here)"
            raise BatchLockedError(
                f"{out} is being written by another batch run: {self._who(holder)}{where}. Wait for it "
                f"to finish, or choose another --out; if you are sure it is gone, delete {self.path}")
        raise BatchLockedError(f"{out}: could not take the lock {self.path}; another run keeps taking it")

    @staticmethod
    def _who(h: dict[str, Any]) -> str:
        return f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started')}"

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.info, f)
        return True

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        """Remove the lock if it is still ours."""
        h = self._read()
        if h is not None and h.get("pid") == self.info["pid"] and h.get("host") == _HOST:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _run_record(tasks: Sequence[PairTask], settings: BatchSettings, workers: int) -> dict[str, Any]:
    """What a run was asked to do: settings, models and benchmarks, for the provenance file."""
    from brainalign.results.provenance import versions

    models, benches = {}, {}
    for t in tasks:
        models[t.model.name] = {k: (list(v) if isinstance(v, tuple) else v)
                                for k, v in dataclasses.asdict(t.model).items()}
        if t.source:
            models[t.model.name]["source"] = t.source
        benches[t.benchmark_id] = {"ref": t.benchmark, "key": t.key.rsplit("__", 1)[0]}
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(settings).items()}
    cfg["workers"] = workers
    return {"host": _HOST, "pid": os.getpid(), "argv": list(sys.argv),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "settings": cfg, "models": models,
            "benchmarks": sorted(benches), "pairs": {t.label: t.key for t in tasks}, "versions": versions()}


_SCORE_SETTINGS = {"max_features", "memory_budget", "benchmark_options"}


def resume_changes(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between an earlier run's record and this one's, one line per change, saying
    whether it changes scores (the pairs it touches are recomputed) or not."""
    lines = []
    old_s, new_s = previous.get("settings", {}), current["settings"]
    for k in sorted(set(old_s) | set(new_s)):
        if k in ("threads",) or old_s.get(k) == new_s.get(k):
            continue
        effect = "changes scores: this run's pairs are recomputed" if k in _SCORE_SETTINGS else \
            "does not change scores: finished pairs are kept"
        lines.append(f"setting {k}: {old_s.get(k)!r} → {new_s.get(k)!r} ({effect})")
    old_m, new_m = previous.get("models", {}), current["models"]
    for name in sorted(set(old_m) & set(new_m)):
        diff = [f"{k} {old_m[name].get(k)!r} → {new_m[name].get(k)!r}" for k in sorted(new_m[name])
                if old_m[name].get(k) != new_m[name].get(k) and k != "source"]
        old_src, new_src = old_m[name].get("source") or {}, new_m[name].get("source") or {}
        if old_src != new_src:
            what = new_m[name].get("id") or new_m[name].get("factory") or name
            files = sorted(f for f in set(old_src) | set(new_src) if old_src.get(f) != new_src.get(f))
            # Said as what they are: a new checkpoint is other weights, an edited module other code.
            named = [f"{f} ({'code' if f.endswith('.py') else 'weights'})" for f in files]
            diff.append(f"files of {what} changed: {_some(named)}" if old_src else
                        f"the files of {what} were not recorded by that run")
        if diff:
            lines.append(f"model {name}: {', '.join(diff)} (its pairs are recomputed)")
    scoring_changed = any(old_s.get(k) != new_s.get(k) for k in _SCORE_SETTINGS)
    models_changed = {n for n in set(old_m) & set(new_m) if old_m[n] != new_m[n]}
    old_p = previous.get("pairs", {})
    for label, key in sorted(current.get("pairs", {}).items()):
        model = label.rsplit(" × ", 1)[0]
        if label in old_p and old_p[label] != key and not scoring_changed and model not in models_changed:
            lines.append(f"{label}: the benchmark definition changed (recomputed)")
    return lines


def _read_provenance(out: Path) -> dict[str, Any]:
    try:
        doc = json.loads((out / PROVENANCE_NAME).read_text())
        return doc if isinstance(doc, dict) and isinstance(doc.get("runs"), list) else {"runs": []}
    except (OSError, ValueError):
        return {"runs": []}


def _write_provenance(out: Path, doc: dict[str, Any]) -> None:
    text = json.dumps(doc, indent=1, default=str)
    _atomic_write_bytes(out / PROVENANCE_NAME, lambda p: p.write_text(text))


def _some(names: Sequence[str], most: int = 10) -> str:
    """``names`` joined, the first ``most`` of a long list and how many more."""
    more = f" … and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def run_batch(models: Sequence[ModelEntry | str] | PathLike, benchmarks: Sequence[str] | str,
              out: PathLike, *, resume: bool = False, layers: Sequence[str] | None = None,
              workers: int = 1, scheduler: Any = None, batch_size: int = 64, device: DeviceLike = "auto",
              max_features: int | None = None, memory_budget: int | str | None = None,
              cache_dir: PathLike | None = None, data_dir: PathLike | Sequence[PathLike] | None = None,
              threads: int | None = None, progress: Any = None, n_bootstrap: int | None = None,
              benchmark_options: dict[str, Any] | None = None) -> BatchReport:
    """Score every model on every benchmark, every layer, into ``out``.

    Parameters
    ----------
    models
        Model entries or ids, or the path of a model list (YAML or text; see :func:`read_models`).
    benchmarks
        Benchmark ids or YAML paths.
    out
        Output folder (see the module docstring for its layout).
    resume
        Skip pairs finished by an earlier run into ``out``; without it, an ``out`` that holds
        results is refused (:class:`~brainalign.errors.BatchOutputError`) rather than mixed.
        Earlier pairs this run does not list stay in the tables (``BatchReport.kept``).
    layers
        Layer names or globs for every model (overrides the entries' ``layers``).
    workers
        Local processes scoring pairs in parallel (1: in this process, with per-layer progress).
    scheduler
        A Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``: each pair
        becomes one Dask task; workers need the data and cache folders at the same paths.
    batch_size, device
        Passed to the extraction.
    max_features, memory_budget
        Feature cap per layer and activation memory budget (see
        :func:`brainalign.activations.stream_layers`).
    cache_dir
        Activation cache folder (content-addressed); ``None``: no cache.
    data_dir
        Local data directories.
    threads
        torch threads per scoring process (default: cores / workers for local processes).
    progress
        A :class:`~brainalign.runner.progress.BatchProgress` (default: one on stderr).
    benchmark_options
        Keyword arguments of :func:`brainalign.load_benchmark` for every benchmark
        (``n_bootstrap``, ``max_stimuli``, ``manifest_dirs``…); part of the pair key.
    n_bootstrap
        Bootstrap samples of every benchmark (default: each benchmark's own; fewer: quicker,
        coarser CIs). Part of the pair key.

    Returns
    -------
    BatchReport
        The table of every finished pair in ``out`` (this run's and the earlier ones it kept),
        this run's failures, and what was scored, skipped (reused) or kept.

    Raises
    ------
    BatchSpecError, BatchOutputError, BatchLockedError
        A bad model list, a folder of an earlier run without ``resume``, a folder another run holds.
    BatchWorkerError
        ``workers`` > 1 and the worker processes cannot start (a script without the
        ``if __name__ == "__main__":`` guard, or run from stdin), before any pair runs. A worker
        that dies while it scores (OOM killer, segfault) fails only the pair it scored.
    KeyboardInterrupt, BatchTerminated
        Ctrl-C, or SIGTERM (a ``KeyboardInterrupt`` too): the finished pairs are kept, the
        workers stopped and the folder's lock released; ``resume=True`` continues the run.
    """
    # numpy's BLAS on one thread for the whole run when torch computes on the CPU, entered on
    # this (the caller's) thread, which outlives the workers' runs (activations.blas).
    # SIGTERM (timeout, SLURM, docker) stops the run as Ctrl-C does: what finished is kept, the lock freed.
    with numpy_blas_one_thread(device), _sigterm_as_ctrl_c():
        from brainalign.activations.budget import parse_bytes
        from brainalign.results.compare import remove_stale_comparison
        from brainalign.runner.pair_warnings import warning_lines
        from brainalign.runner.progress import BatchProgress

        _refuse_in_a_starting_worker()
        if memory_budget is not None:
            memory_budget = parse_bytes(memory_budget)  # a typo fails here, not in every pair
        if isinstance(models, str | os.PathLike):
            entries = read_models(models)
        else:
            entries = [m if isinstance(m, ModelEntry) else ModelEntry(id=m) for m in models]
            check_entries(entries, "models")
        benches = [benchmarks] if isinstance(benchmarks, str) else list(benchmarks)
        if workers > 1 and threads is None and scheduler is None:
            from brainalign.activations.budget import usable_cores

            threads = max(1, usable_cores() // workers)
        dirs = None
        if data_dir is not None:
            dirs = (str(data_dir),) if isinstance(data_dir, str | os.PathLike) else tuple(map(str, data_dir))
        if n_bootstrap is not None:
            benchmark_options = {**(benchmark_options or {}), "n_bootstrap": n_bootstrap}
        settings = BatchSettings(batch_size=batch_size, device=device, max_features=max_features,
                                 memory_budget=memory_budget, cache_dir=str(cache_dir) if cache_dir else None,
                                 data_dir=dirs, threads=threads, benchmark_options=benchmark_options)
        tasks = plan_tasks(entries, benches, settings, layers)
        outdir = Path(out)
        outdir.mkdir(parents=True, exist_ok=True)
        progress = progress if progress is not None else BatchProgress()
        if n_bootstrap is not None:
            from brainalign.benchmarks.base import coarse_bootstrap

            if why := coarse_bootstrap(int(n_bootstrap)):
                progress.note(f"warning: {why}")
        lock = _Lock(outdir, progress.note)  # before anything in the folder is touched
        try:
            output = _Output(outdir, tasks)
            tasks = output.tasks = [dataclasses.replace(t, held=output.held(t.model.name)) for t in tasks]
            _refuse_subset_over_full(tasks, output, settings)
            if output.has_results() and not resume:
                raise BatchOutputError(f"{outdir} holds results of an earlier run; resume it (--resume on the "
                                       "command line, resume=True from Python), or choose another output folder")
            prov = _read_provenance(outdir)
            record = _run_record(tasks, settings, workers)
            todo, skipped = [], []
            for t in tasks:
                if resume and output.finished(t):
                    skipped.append(t.key)
                    output.log("skipped", t)
                else:
                    todo.append(t)
            if resume and prov["runs"]:
                changes = resume_changes(prov["runs"][-1], record)
                if changes:
                    progress.note("--resume: these differ from the run being resumed:\n  " + "\n  ".join(changes))
            redo = output.recomputed(todo) if resume else []
            if redo:  # whichever earlier run finished them
                progress.note(f"--resume: {len(redo)} pair(s) finished by an earlier run were scored with other "
                              f"settings or code and will be recomputed: {_some(redo)}")
            prov["runs"].append(record)
            _write_provenance(outdir, prov)
            progress.start(len(tasks), len(skipped))
            scored: list[str] = []
            # Pairs reused from an earlier run that scored them only in part stay so (said, exit 1).
            reused = set(skipped)
            partial: list[str] = [t.label for t in tasks if t.key in reused
                                  and FORWARD_STOPPED in unscored_layers(output.metas.get(t.key, {}))]
            for t in todo:
                output.log("submit", t)
            try:
                for t, outcome in _execute(todo, "local", workers, scheduler, progress):
                    output.record(t, outcome)
                    # What the pair's scoring warned of, summed (as `score` does) in this process: a
                    # worker returns its warnings as data rather than printing one line per layer.
                    warned = warning_lines(outcome.get("warnings") or [], t.label)
                    # Layers the pair could not score (NaN activations, a refused metric, a forward
                    # pass that stops part-way): said as `score` says them, and kept in the meta.
                    failed = unscored_layers(outcome.get("meta") or {}) if outcome["ok"] else {}
                    warned += [f"warning: {t.label}: {why}" for why in failed.values()]
                    if FORWARD_STOPPED in failed:
                        partial.append(t.label)
                    if outcome["ok"]:
                        scored.append(t.key)
                        output.log("done", t, seconds=outcome["seconds"], pid=outcome.get("pid"), warnings=warned,
                                   failed_layers=failed)
                    else:
                        output.log("failed", t, error=f"{outcome['error_type']}: {outcome['error']}",
                                   warnings=warned)
                    for line in warned:
                        progress.note(line)
                    why = "" if outcome["ok"] else \
                        f"{outcome['error_type']}: {without_names(outcome['error'], t.model.name, t.benchmark_id)}"
                    progress.pair_done(t.label, outcome["ok"], outcome["seconds"], why)
            except KeyboardInterrupt:  # Ctrl-C: the finished pairs stay, in the tables too
                # Counted on disk: a worker may have written a pair that this process had not yet
                # been told of (the next --resume reuses it all the same); the tables take it too.
                done_now = sum(output.finished(t) for t in todo)
                output.write_tables()
                progress.note(f"interrupted: {done_now} pair(s) scored by this run and {len(skipped)} reused "
                              f"are kept in {outdir}; {len(todo) - done_now} not scored. Run it again with "
                              "--resume (Python: resume=True) to continue: the kept pairs are not scored again.")
                raise
            output.write_tables()
            if todo:  # the tables changed (a pair failing again drops its old rows)
                remove_stale_comparison(outdir, progress.note)
            labels = {t.key: t.label for t in tasks}
            kept = [f"{m} × {b}" for m, b in output.earlier]
            for what, names in (("reused (finished by an earlier run, not scored again)",
                                 [labels[k] for k in skipped]),
                                ("scored by this run", [labels[k] for k in scored]),
                                ("kept from earlier runs (not part of this run)", kept)):
                if names:
                    progress.note(f"{what}: {_some(names)}")
            summary = progress.close(kept=len(kept))
            fails = output.failure_table()
            record.update(finished=time.strftime("%Y-%m-%d %H:%M:%S %z"), scored=len(scored),
                          skipped=len(skipped), failed=fails[["model", "benchmark", "error_type", "error"]]
                          .to_dict("records"))
            _write_provenance(outdir, prov)
            return BatchReport(output.table(), fails, scored, skipped, outdir, summary, kept, partial)
        finally:
            lock.release()
