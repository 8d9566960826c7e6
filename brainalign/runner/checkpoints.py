"""Score every checkpoint of a training run: brain alignment as a function of training."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brainalign.benchmarks.base import Benchmark
from brainalign.benchmarks.registry import load_benchmark
from brainalign.device import DeviceLike, resolve_device
from brainalign.models.checkpoint import apply_checkpoint, checkpoint_metadata
from brainalign.models.registry import load_model
from brainalign.results.result import ScoreResult
from brainalign.runner.pair_warnings import summed_warnings
from brainalign.settings import PathLike

_EPOCH = re.compile(r"epoch_(\d+)\.pt$")


def list_checkpoints(run: PathLike | Sequence[PathLike]) -> list[Path]:
    """A run folder's ``epoch_<k>.pt`` files in epoch order (or the given paths, unchanged)."""
    if isinstance(run, str | Path) and Path(run).is_dir():
        found = [p for p in Path(run).iterdir() if _EPOCH.search(p.name)]
        if not found:
            raise FileNotFoundError(f"no epoch_<k>.pt checkpoints in {run}")
        return sorted(found, key=lambda p: int(_EPOCH.search(p.name).group(1)))
    return [Path(p) for p in ([run] if isinstance(run, str | Path) else run)]


def score_checkpoints(run: PathLike | Sequence[PathLike], benchmark: str | Benchmark, *,
                      layers: str | Sequence[str] | None = None, batch_size: int = 64,
                      device: DeviceLike = "auto", data_dir: PathLike | Sequence[PathLike] | None = None,
                      progress: bool = False, **benchmark_kwargs: Any) -> ScoreResult:
    """Score each checkpoint of a run on one benchmark; the table gains an ``epoch`` column.

    The benchmark is loaded once (stimuli, target RDMs, ceiling, bootstrap) and the architecture
    is built once; each checkpoint's weights are loaded into it (strictly: a key mismatch is a
    :class:`~brainalign.errors.CheckpointMismatchError`).

    Parameters
    ----------
    run
        A run folder written by :func:`brainalign.train`, or checkpoint paths.
    benchmark
        A benchmark id or a loaded benchmark.
    layers
        Layer names or globs (default: the model's default layers).

    Returns
    -------
    ScoreResult
        One row per (checkpoint, layer); ``epoch`` from the checkpoint's metadata.
    """
    resolve_device(device)  # a device this machine lacks: refused before the benchmark loads
    paths = list_checkpoints(run)
    bench = benchmark if isinstance(benchmark, Benchmark) else load_benchmark(
        benchmark, data_dir=data_dir, **benchmark_kwargs)
    model = load_model(f"file:{paths[0]}")
    results = []
    for i, path in enumerate(paths):
        if i:
            apply_checkpoint(model.module, path, model.name)
            model.weights, model._weights_hash = str(path), None
        meta = checkpoint_metadata(path)
        with summed_warnings(f"{Path(path).name} × {bench.id}"):  # one line per checkpoint, not per fit
            res = bench(model, layers, batch_size=batch_size, device=device, progress=progress)
        epoch = meta.get("epoch", i)
        res.table.insert(res.table.columns.get_loc("layer"), "epoch", epoch)
        res.details = {(*k, epoch): v for k, v in res.details.items()}
        results.append(res)
    out = ScoreResult.concat(results)
    out.meta["checkpoints"] = [str(p) for p in paths]
    return out
