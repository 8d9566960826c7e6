"""``score``: one or more models on one or more benchmarks, into one result."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

from brainalign.activations.extract import check_batch_size
from brainalign.benchmarks.base import Benchmark
from brainalign.benchmarks.registry import load_benchmark
from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import DuplicateModelNameError
from brainalign.models.base import BrainModel
from brainalign.results.provenance import unscored_layers
from brainalign.results.result import ScoreResult
from brainalign.runner.pair_warnings import summed_warnings
from brainalign.settings import PathLike


def score(model: BrainModel | Sequence[BrainModel], benchmark: str | Benchmark | Sequence[str | Benchmark],
          *, layers: str | Sequence[str] | None = None, batch_size: int = 64, device: DeviceLike = "auto",
          data_dir: PathLike | Sequence[PathLike] | None = None, progress: bool = False,
          memory_budget: int | str | None = None, max_features: int | None = None, reducers: Any = None,
          cache: Any = None, on_layer: Any = None, **benchmark_kwargs: Any) -> ScoreResult:
    """Score models on benchmarks, every layer in ``model.layers`` unless ``layers`` is given.

    Parameters
    ----------
    model
        A model from :func:`brainalign.load_model` / :func:`brainalign.wrap`, or a list.
    benchmark
        A benchmark id, the path of a benchmark YAML (its dataset manifest may sit beside it), a
        loaded benchmark, or a list of them.
    layers
        Layer names or glob patterns.
    batch_size, device
        Passed to :func:`brainalign.extract`.
    data_dir
        Local data directories (default: ``BRAINALIGN_DATA``).
    memory_budget, max_features, reducers, cache, on_layer
        How layers are recorded (see :meth:`brainalign.benchmarks.Benchmark.__call__`): the
        same for every benchmark kind.

    Returns
    -------
    ScoreResult
        ``.table`` (one row per model × benchmark × session × layer[, metric]), ``.best``.

    Raises
    ------
    DuplicateModelNameError
        Two of ``model`` share a name (before anything is scored).
    DeviceUnavailableError
        A ``device`` this machine does not have (before any benchmark is loaded).

    Warns
    -----
    UserWarning
        For every layer that could not be scored (activations holding NaN/inf, a metric that
        refused it, a forward pass failing part-way): it has no row; the other layers are kept.
    """
    resolve_device(device)
    check_batch_size(batch_size)
    models = [model] if isinstance(model, BrainModel) else list(model)
    seen: dict[str, int] = {}
    for i, m in enumerate(models):
        if m.name in seen:
            raise DuplicateModelNameError(m.name, f"model {seen[m.name]}", f"model {i}")
        seen[m.name] = i
    benches = [benchmark] if isinstance(benchmark, str | os.PathLike | Benchmark) else list(benchmark)
    loaded = [b if isinstance(b, Benchmark) else load_benchmark(b, data_dir=data_dir, **benchmark_kwargs)
              for b in benches]
    results = []
    for m in models:
        for b in loaded:
            with summed_warnings(f"{m.name} × {b.id}"):  # as the command line prints them
                results.append(b(m, layers, batch_size=batch_size, device=device, progress=progress,
                                 memory_budget=memory_budget, max_features=max_features,
                                 reducers=reducers, cache=cache, on_layer=on_layer))
                # A layer without rows is said, as the command line says it, not only kept in the meta.
                for why in unscored_layers(results[-1].meta).values():
                    warnings.warn(f"{why} (result.meta['failed_layers'])", UserWarning, stacklevel=2)
    return ScoreResult.concat(results)
