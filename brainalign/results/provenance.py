"""What a score needs to be reproduced: versions of everything that computed it."""

from __future__ import annotations

import platform
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from importlib import metadata
from typing import Any

# Model libraries whose code builds a model (timm:, hf: ids): recorded when installed, since a
# new release can change an architecture or its defaults under the same name.
_MODEL_LIBRARIES = ("timm", "transformers")


def versions() -> dict[str, str]:
    """Versions of brainalign, Python, the numerical stack and the installed model libraries."""
    out = {"python": platform.python_version()}
    for pkg in ("brainalign", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    for pkg in _MODEL_LIBRARIES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def versions_string() -> str:
    """Versions as one ``name=version`` string for a table column."""
    return ";".join(f"{k}={v}" for k, v in versions().items())


# ----- a results folder's meta: one entry per benchmark (and version) it holds -------------------
# Keys of a benchmark's meta that are keyed by model name; merged across models, and a model's
# share is dropped when its pair is scored again.
PER_MODEL = ("models", "placement", "reduction", "memory_plan", "failed_layers")
# Keyed by model or by benchmark: merged (every key kept) rather than first-wins.
MERGED = (*PER_MODEL, "timing_s")
ENTRIES = "benchmarks"  # a meta describing several benchmarks lists them under this key
GENERATED_PER_MODEL = "gratings drawn in the model's field of view"
"""How a row's ``placement`` starts when its benchmark generates the stimuli for each model (the V1
property benchmarks: gratings in the model's own field of view, so models with other input sizes
or degrees see other stimuli). Here, beside the other keys, so that ``compare`` reads it without
importing the benchmarks; tables written before it existed start the same way."""
FORWARD_STOPPED = "(forward pass)"
"""Key in ``meta["failed_layers"][model]`` of a model whose forward pass fails part-way: only the
layers before the failing module were scored (:attr:`BrainModel.forward_stopped` says why)."""


def unscored_layers(meta: dict[str, Any]) -> dict[str, str]:
    """layer → why, for every layer the meta of a score says could not be scored, over its
    benchmarks and models (:data:`FORWARD_STOPPED` for a forward pass that fails part-way)."""
    out: dict[str, str] = {}
    for entry in benchmark_entries(meta)[0]:
        for failed in (entry.get("failed_layers") or {}).values():
            out.update({str(k): str(v) for k, v in (failed or {}).items()})
    return out


def benchmark_entries(meta: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-benchmark entries of a ``scores.meta.json`` and its other top-level keys.

    Returns ``(entries, extras)``: a one-benchmark meta (the flat form a benchmark writes, with a
    ``benchmark`` key) is one entry; a several-benchmark meta lists its entries under
    ``"benchmarks"``; a meta without either (older or hand-written) has no entry, all extras.
    """
    listed = meta.get(ENTRIES)
    if isinstance(listed, list) and all(isinstance(e, dict) for e in listed):
        return [_per_model_placement(e) for e in listed], {k: v for k, v in meta.items() if k != ENTRIES}
    if "benchmark" in meta:
        return [_per_model_placement(meta)], {}
    return [], dict(meta)


def _per_model_placement(entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``entry``; a placement written before it was kept per model (one dict with a
    ``mode``: the first model's, which the later ones' did not replace) becomes the first model's."""
    entry = dict(entry)
    place, models = entry.get("placement"), entry.get("models")
    if isinstance(place, dict) and "mode" in place and isinstance(models, dict) and models:
        entry["placement"] = {next(iter(models)): place}
    return entry


def _entry_key(entry: dict[str, Any]) -> tuple[str, str]:
    # benchmark_version carries a subset (+max_stimuli=N): a subset run is its own entry
    return str(entry.get("benchmark")), str(entry.get("benchmark_version"))


def _merge_into(into: dict[str, Any], entry: dict[str, Any]) -> None:
    for k, v in entry.items():
        if k in MERGED and isinstance(v, dict) and isinstance(into.get(k), dict):
            merged = {**into[k], **v}
            if k == "failed_layers":  # a model scored twice keeps the failed layers of each
                merged.update({m: {**into[k].get(m, {}), **f} for m, f in v.items() if isinstance(f, dict)})
            into[k] = merged
        else:
            into.setdefault(k, v)


def merge_metas(metas: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One meta describing every benchmark of ``metas`` (each its own settings).

    Entries of the same benchmark and version are merged (their models kept side by side; shared
    settings from the first); different benchmarks, or a benchmark scored on a ``--max-stimuli``
    subset beside its full data, stay separate entries. Returns the flat form when one entry
    remains (what a single benchmark writes), else ``{"benchmarks": [entry, ...], **extras}``.
    """
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    extras: dict[str, Any] = {}
    for meta in metas:
        entries, more = benchmark_entries(meta)
        for k, v in more.items():
            extras.setdefault(k, v)
        for e in entries:
            _merge_into(groups.setdefault(_entry_key(e), {}), e)
    if not groups:
        return extras
    if len(groups) == 1:
        return {**extras, **next(iter(groups.values()))}
    return {**extras, ENTRIES: list(groups.values())}


def without_pairs(meta: dict[str, Any], pairs: set[tuple[str, str]]) -> dict[str, Any]:
    """``meta`` without what it says of the (model, benchmark) ``pairs`` (pairs scored again,
    whose rows are replaced): their models leave each entry of that benchmark; an entry left with
    no model is dropped. Returns the same form :func:`merge_metas` does."""
    entries, extras = benchmark_entries(meta)
    kept = []
    for e in entries:
        gone = {m for m, b in pairs if b == e.get("benchmark")}
        if not gone:
            kept.append(e)
            continue
        e = {k: ({m: x for m, x in v.items() if m not in gone} if k in PER_MODEL and isinstance(v, dict) else v)
             for k, v in e.items()}
        if isinstance(e.get("models"), dict) and e["models"]:  # other models' rows are kept
            kept.append(e)
    return merge_metas([extras, *({ENTRIES: kept} if len(kept) > 1 else kept[:1] or [{}])])


def held_weights(table: Any, model: str, besides: Collection[str]) -> dict[str, str]:
    """benchmark → weights sha256 of the rows of ``model`` that ``table`` (a results table) holds on
    benchmarks other than ``besides`` (those a run scores again, replacing their rows). Rows without
    a hash (older tables) are left out."""
    if table is None or not {"model", "benchmark", "weights_hash"} <= set(table.columns):
        return {}
    rows = table[(table["model"] == model) & ~table["benchmark"].isin(list(besides))]
    return {str(b): str(h) for b, h in zip(rows["benchmark"], rows["weights_hash"], strict=True)
            if isinstance(h, str) and h}


def refuse_other_network(held: Mapping[str, str], model: str, weights_hash: str, folder: object) -> None:
    """Refuse to score ``model`` (weights ``weights_hash``) into a folder that keeps its name's rows
    from other weights (``held``: :func:`held_weights`), before any of its work.

    Raises
    ------
    OtherNetworkError
        Naming the folder, the benchmarks of the other weights and both hashes.
    """
    from brainalign.errors import OtherNetworkError

    other = {b: h for b, h in held.items() if h != weights_hash}
    if other:
        raise OtherNetworkError(folder, model, other, weights_hash)


def full_data_pairs(table: Any) -> set[tuple[str, str]]:
    """(model, benchmark) of the rows ``table`` holds on a benchmark's full data (no
    ``--max-stimuli`` subset in their ``benchmark_version``)."""
    from brainalign.results.table import subset_of

    if table is None or not {"model", "benchmark", "benchmark_version"} <= set(table.columns):
        return set()
    full = [subset_of(v) is None for v in table["benchmark_version"]]
    return set(zip(table["model"][full].astype(str), table["benchmark"][full].astype(str), strict=True))


def refuse_subset_over_full(full: Collection[tuple[str, str]],
                            asked: Iterable[tuple[str, str, Callable[[], bool]]], folder: object,
                            limit: int | None) -> None:
    """Refuse, before any of their work, the (model, benchmark) pairs of ``asked`` that a folder
    holds on the full data (``full``: :func:`full_data_pairs`) when ``limit`` (``max_stimuli``)
    leaves stimuli out of them: a quick look never replaces what may be a paper number. Each pair
    comes with a call saying whether the limit cuts its benchmark (read from the data, so called
    only for pairs the folder holds on the full data).

    Raises
    ------
    SubsetOverFullError
        Naming the pairs.
    """
    from brainalign.errors import SubsetOverFullError

    over = [f"{model} × {bench}" for model, bench, cuts in asked if (model, bench) in full and cuts()]
    if over:
        raise SubsetOverFullError(folder, over, limit)
