"""Benchmark definitions: YAML files in ``benchmarks/``, validated into :class:`BenchmarkSpec`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from brainalign.errors import BenchmarkDefinitionError, UnknownBenchmarkError
from brainalign.settings import PathLike, benchmark_dirs

_KEYS = {"id", "version", "kind", "dataset", "region", "description", "stimuli", "target",
         "metric", "ceiling", "statistics", "citation", "notes", "visual_degrees", "splits",
         "time_bin", "sessions"}
_REQUIRED = {"id", "version", "kind", "dataset", "region", "stimuli", "target", "metric", "citation"}


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark as data: what is shown, what is recorded, how it is compared."""

    id: str
    version: str
    kind: str
    dataset: str
    region: str
    stimuli: dict[str, Any]
    target: dict[str, Any]
    metric: dict[str, Any]
    citation: tuple[str, ...]
    path: Path
    description: str = ""
    ceiling: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    visual_degrees: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_benchmark(path: PathLike) -> BenchmarkSpec:
    """Read and validate a benchmark YAML file.

    Raises
    ------
    BenchmarkDefinitionError
        Invalid YAML, an unknown key, a missing field; the message names the file.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise BenchmarkDefinitionError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise BenchmarkDefinitionError(f"{path}: a benchmark must be a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise BenchmarkDefinitionError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    missing = _REQUIRED - set(raw)
    if missing:
        raise BenchmarkDefinitionError(f"{path}: missing field(s) {sorted(missing)}")
    if raw["id"] != path.stem:
        raise BenchmarkDefinitionError(f"{path}: id {raw['id']!r} differs from the file name {path.stem!r}")
    citation = raw["citation"]
    return BenchmarkSpec(
        id=raw["id"], version=str(raw["version"]), kind=raw["kind"], dataset=raw["dataset"],
        region=raw["region"], stimuli=dict(raw["stimuli"]), target=dict(raw["target"]),
        metric=dict(raw["metric"]), citation=tuple([citation] if isinstance(citation, str) else citation),
        path=path, description=raw.get("description", ""), ceiling=dict(raw.get("ceiling") or {}),
        statistics=dict(raw.get("statistics") or {}), visual_degrees=raw.get("visual_degrees"),
        extra={k: raw[k] for k in ("notes", "splits", "time_bin", "sessions") if k in raw},
    )


def benchmark_paths(extra_dirs: Sequence[PathLike] = ()) -> dict[str, Path]:
    """Benchmark id → YAML path; earlier directories win."""
    found: dict[str, Path] = {}
    for d in benchmark_dirs(extra_dirs):
        for p in sorted(Path(d).glob("*.yaml")):
            found.setdefault(p.stem, p)
    return found


def list_benchmarks(extra_dirs: Sequence[PathLike] = ()) -> list[str]:
    """Ids of every benchmark definition found."""
    return sorted(benchmark_paths(extra_dirs))


def find_benchmark(benchmark_id: str, extra_dirs: Sequence[PathLike] = ()) -> BenchmarkSpec:
    """The spec of ``benchmark_id``."""
    paths = benchmark_paths(extra_dirs)
    if benchmark_id not in paths:
        raise UnknownBenchmarkError(benchmark_id, paths)
    return parse_benchmark(paths[benchmark_id])
