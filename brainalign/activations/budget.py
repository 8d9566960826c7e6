"""Preflight: how much memory a run's recorded activations need, and a plan that fits a budget."""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from brainalign.activations.reducers import RandomProjection, reducer_per_layer
from brainalign.errors import MemoryBudgetError
from brainalign.models.base import BrainModel

BYTES_PER_VALUE = 4  # activations are recorded as float32
SCORING_FACTOR = 4  # a metric's working set per layer: RDMs / regressions copy to float64 and centre

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12,
          "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a cluster job's allocation or
    ``taskset``; all of the machine's where the platform cannot say)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def parse_bytes(value: int | float | str) -> int:
    """``"2.5GB"``, ``"800 MiB"``, ``1e9`` → bytes."""
    if isinstance(value, int | float):
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {value!r} (e.g. '2.5GB', '800MiB')")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def release_free_memory() -> None:
    """Give memory that is free inside the C allocator back to the system (glibc ``malloc_trim``).

    Arrays of a few MB that a computation frees stay in glibc's heap (above its adaptive mmap
    threshold they are not unmapped), where the rest of the run, whose large allocations are
    mapped afresh, never reuses them: after a benchmark's preparation this was 0.19 GB of the
    hIT run's peak RSS (``perf/PROFILE.md``). The same remedy as Dask's worker memory trimming;
    a no-op where the C library is not glibc.
    """
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        pass


def available_memory() -> int | None:
    """Physical memory available now (Linux ``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """A byte count for people: ``"512 B"``, ``"28.8 kB"``, ``"1.7 MB"``, ``"5.14 GB"`` (SI units,
    as :func:`parse_bytes` reads them)."""
    if n >= 1e8:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e5:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n:.0f} B"


@dataclass
class MemoryPlan:
    """How a run records its layers: which reducer per layer, and which layers share a pass.

    Attributes
    ----------
    groups
        Layers recorded together in one forward pass over the stimuli, in forward order; a group's
        activations are scored and freed before the next group is recorded.
    reducers
        Reducer per layer (``None``: full features).
    layer_bytes
        Bytes each layer's recorded activations take.
    full_bytes
        Bytes of all layers at full resolution (what holding every layer would take).
    peak_bytes
        Bytes the largest group needs at once: its activations plus the scoring working set of
        its largest layer (``scoring_factor`` × that layer's bytes).
    budget
        The budget planned for (bytes), or None.
    notes
        What the plan changed to fit the budget, for logs and result provenance.
    """

    groups: list[list[str]]
    reducers: dict[str, Any]
    layer_bytes: dict[str, int]
    full_bytes: int
    peak_bytes: int
    budget: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[str]:
        return [name for g in self.groups for name in g]


def layer_features(model: BrainModel, layer: str) -> int:
    """Features per stimulus of ``layer``'s full output (from layer discovery)."""
    return math.prod(model.layer_info[layer].output_shape)


def _reduced(reducer: Any, d: int, shape: tuple[int, ...] | None = None) -> int:
    by_shape = getattr(reducer, "output_features", None)  # reducers whose size depends on the shape
    if callable(by_shape) and shape is not None:
        return int(by_shape(tuple(shape)))
    n_features = getattr(reducer, "n_features", None)
    return int(n_features(d)) if callable(n_features) else d  # unknown reducer: assume no reduction


def plan_memory(model: BrainModel, layers: str | Sequence[str] | None, n_stimuli: int, *,
                budget: int | str | None = None, reducers: Any = None,
                max_features: int | None = None, adapt: bool = True,
                adapt_features: int = 1024, seed: int = 0,
                scoring_factor: float = SCORING_FACTOR) -> MemoryPlan:
    """Estimate the activation memory of a run and plan it to fit ``budget``, before it starts.

    The estimate is exact for what is kept: per layer, the output shape found by the model's
    layer discovery (``model.layer_info``) × ``n_stimuli`` × 4 bytes, or the reducer's output
    size. Steps, until the largest group fits:

    1. everything in one pass, as asked;
    2. (``adapt``, no reducer given, some layer alone over budget) a :class:`RandomProjection` to
       ``adapt_features`` on every layer with more features than that;
    3. consecutive layers split into groups that each fit, one forward pass per group (exact:
       the same numbers as one pass, at the cost of more passes).

    Grouping alone is tried before projection: projection is switched on only when some layer
    does not fit the budget by itself.

    Parameters
    ----------
    model
        The model.
    layers
        Layer names or globs (``None``: ``model.layers``).
    n_stimuli
        Number of stimuli.
    budget
        Bytes (or ``"2.5GB"``) that recorded activations and the scoring of one layer may take
        at once (the model and one batch's forward pass come on top); ``None``: the memory
        available now (:func:`available_memory`), met by exact passes only: a layer that alone
        does not fit is refused rather than projected.
    reducers
        One reducer, or a mapping of layer names or globs to reducers
        (:func:`~brainalign.activations.reducers.reducer_per_layer`), applied as asked.
    max_features
        Cap on features per layer: a :class:`RandomProjection` to this size on every larger layer.
    adapt
        Allow step 2; when False, a layer that alone exceeds the budget is refused.
    adapt_features, seed
        Size and seed of the projection step 2 switches on.
    scoring_factor
        Transient memory of scoring one layer, in multiples of its recorded bytes (RSA's
        correlation RDM holds a float64 copy and its centred version: 4×).

    Raises
    ------
    MemoryBudgetError
        The run cannot fit, even adapted; nothing has been computed.
    """
    names = model.resolve_layers(layers)
    limit = parse_bytes(budget) if budget is not None else None
    if max_features is not None:
        if reducers is not None:
            raise ValueError("give either reducers or max_features, not both")
        reducers = RandomProjection(max_features, seed=seed)
    def passed_through(per: dict[str, Any]) -> dict[str, Any]:
        # A projection hands a layer no wider than its size on unchanged: such a layer is recorded,
        # keyed in the cache and described in the rows as the full features it is.
        return {n: None if isinstance(r, RandomProjection) and layer_features(model, n) <= r.n_components else r
                for n, r in per.items()}

    per_layer = passed_through(reducer_per_layer(model, reducers, names))
    full = {n: n_stimuli * layer_features(model, n) * BYTES_PER_VALUE for n in names}
    notes: list[str] = []

    def sizes() -> dict[str, int]:
        return {n: n_stimuli * _reduced(per_layer[n], layer_features(model, n), model.layer_info[n].output_shape)
                * BYTES_PER_VALUE
                for n in names}

    def need(group_sizes: list[int]) -> int:
        return int(sum(group_sizes) + scoring_factor * max(group_sizes, default=0))

    size = sizes()
    total = need(list(size.values()))
    implicit = limit is None
    if implicit:
        # No budget given: still plan against the memory available now, so a run that cannot fit
        # is split into exact passes, or refused naming the layer, before anything runs (instead
        # of failing mid-way). Projection, which changes the numbers, needs an explicit budget.
        limit = available_memory()
    if limit is None or total <= limit:
        return MemoryPlan([names], per_layer, size, sum(full.values()), total,
                          None if implicit else limit, notes)
    too_big = [n for n in names if need([size[n]]) > limit]
    if implicit and too_big:
        n = too_big[0]
        raise MemoryBudgetError(
            f"{model.name}: layer {n!r} alone needs {format_bytes(need([size[n]]))} for {n_stimuli} stimuli "
            f"(recording and scoring), more than the {format_bytes(limit)} of memory available now; give a "
            "memory budget (--memory-budget / memory_budget=, which switches on a seeded random "
            "projection for layers that do not fit), or cap features (--max-features), or score "
            "fewer layers")
    if implicit:
        notes.append(f"no memory budget given: planned against the {format_bytes(limit)} available now")
    if too_big and adapt and reducers is None:
        # Only the layers that alone exceed the budget: a projection changes what is measured, so
        # a layer that fits is scored on its full features.
        proj = RandomProjection(adapt_features, seed=seed)
        per_layer = passed_through({n: proj if n in too_big else None for n in names})
        size = sizes()
        projected = [n for n in names if per_layer[n] is not None]
        big, budget = format_bytes(need([full[too_big[0]]])), format_bytes(limit)
        notes.append(f"{len(projected)} layer(s) alone over budget {budget} ({too_big[0]!r}: {big} recording "
                     f"and scoring): random projection to {adapt_features} features")
        # The budget changed what is measured: said where the run's messages go, not only in a column.
        warnings.warn(f"{model.name}: memory budget {budget}: {len(projected)} of {len(names)} layers do not "
                      f"fit it alone (layer {too_big[0]!r} needs {big} to record and score) and are recorded "
                      f"through a random projection to {adapt_features} features; their scores are of the "
                      f"projected activations ({', '.join(projected)}; the reduction column says so per "
                      "layer). Raise the memory budget to score them in full", stacklevel=2)
    groups: list[list[str]] = [[]]
    for n in names:
        if need([size[n]]) > limit:
            red = per_layer[n]
            how = f", even projected to {red.n_components} features," if isinstance(red, RandomProjection) else ""
            raise MemoryBudgetError(
                f"{model.name}: layer {n!r} alone needs {format_bytes(need([size[n]]))} for {n_stimuli} stimuli "
                f"(recording and scoring){how} over the budget of {format_bytes(limit)}; raise the memory "
                f"budget or lower max_features")
        if groups[-1] and need([size[m] for m in groups[-1]] + [size[n]]) > limit:
            groups.append([])
        groups[-1].append(n)
    if len(groups) > 1:
        notes.append(f"layers split into {len(groups)} groups of at most {format_bytes(limit)}, "
                     f"one forward pass each")
    peak = max(need([size[n] for n in g]) for g in groups)
    return MemoryPlan(groups, per_layer, size, sum(full.values()), peak, limit, notes)


ONE_BATCH_MAX_FACTOR = 4
""":func:`one_batch` considers one batch of up to this many times the asked batch size."""


def one_batch(model: BrainModel, plan: MemoryPlan, n_stimuli: int, batch_size: int) -> bool:
    """Whether recording every stimulus in one forward pass holds less memory than batches.

    Recorded in batches, every layer of a group is complete only after the last batch, so the
    group's activations are all held at once: ``n · Σ layers``, plus one batch's forward pass.
    In one batch, :func:`~brainalign.activations.extract.iter_extract` hands each layer over
    from inside the pass, so at most two recorded layers are held (``n · 2 · max layer``), but
    the forward pass runs on all ``n`` stimuli. The pass's working set per stimulus is taken as
    twice the largest output of any module (an op's input and output). Chosen only for a single
    group (no memory budget split the layers), in eval mode (in train mode batch statistics
    depend on the batch), for at most :data:`ONE_BATCH_MAX_FACTOR` × ``batch_size`` stimuli, and
    when the estimate is lower. Batch composition does not enter an eval-mode forward pass, but
    float32 matrix products (Linear layers) round differently for another batch size: such a
    layer's outputs move by ~1e-7 relative, as with any change of ``batch_size`` (convolution,
    pooling and element-wise layers were equal to the bit in our tests).
    """
    if (len(plan.groups) != 1 or n_stimuli <= batch_size or model.mode != "eval"
            or n_stimuli > ONE_BATCH_MAX_FACTOR * batch_size):
        return False
    per_stimulus = [b / n_stimuli for b in plan.layer_bytes.values()]
    working = 2 * BYTES_PER_VALUE * max(math.prod(i.output_shape) for i in model.layer_info.values())
    batched = n_stimuli * sum(per_stimulus) + batch_size * working
    single = n_stimuli * (2 * max(per_stimulus, default=0) + working)
    return single < batched
