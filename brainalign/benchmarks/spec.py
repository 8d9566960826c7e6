"""Benchmark definitions: YAML files in ``benchmarks/``, validated by the schema of their kind
(:mod:`brainalign.benchmarks.schemas`) into :class:`BenchmarkSpec`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from brainalign.benchmarks.schemas import BenchmarkSchema
from brainalign.errors import BenchmarkDefinitionError, UnknownBenchmarkError
from brainalign.schema import read_yaml, validate
from brainalign.settings import PathLike, benchmark_dirs


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


def _kind_schema(kind: Any, path: Path) -> type[BenchmarkSchema]:
    from brainalign.benchmarks.registry import KINDS  # the registry imports the kinds, which import us

    if not isinstance(kind, str) or kind not in KINDS:
        raise BenchmarkDefinitionError(f"{path}: kind: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return KINDS[kind].schema


def parse_benchmark(path: PathLike, schema: type[BenchmarkSchema] | None = None) -> BenchmarkSpec:
    """Read a benchmark YAML file and validate it with the schema of its ``kind``.

    Parameters
    ----------
    path
        The YAML file.
    schema
        The schema to validate with; default ``KINDS[kind].schema`` of
        :data:`brainalign.benchmarks.registry.KINDS`.

    Raises
    ------
    BenchmarkDefinitionError
        Invalid YAML, an unknown kind, key or value, a missing field: one line per problem, each
        naming the file and the key's path (``x.yaml: statistics.bootstrap.nn: unknown key``).
    """
    path = Path(path)
    raw = read_yaml(path, BenchmarkDefinitionError)
    if not isinstance(raw, dict):
        raise BenchmarkDefinitionError(f"{path}: a benchmark must be a mapping")
    if schema is None:
        if "kind" not in raw:  # report every problem the shared keys have, the kind among them
            validate(BenchmarkSchema, raw, path, BenchmarkDefinitionError)
        schema = _kind_schema(raw.get("kind"), path)
    model = validate(schema, raw, path, BenchmarkDefinitionError)
    if model.id != path.stem:
        raise BenchmarkDefinitionError(f"{path}: id: {model.id!r} differs from the file name {path.stem!r}")
    return spec_from_model(model, path)


def _section(value: Any) -> dict[str, Any]:
    # Only the keys the file sets: the kinds apply their documented defaults themselves.
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value or {})


def spec_from_model(model: BenchmarkSchema, path: Path) -> BenchmarkSpec:
    """The :class:`BenchmarkSpec` of a validated file; sections become plain dicts again."""
    extra: dict[str, Any] = {}
    for key in ("notes", "time_bin", "sessions"):
        if key in model.model_fields_set:
            value = getattr(model, key)
            extra[key] = [_section(v) for v in value] if isinstance(value, list) else (
                _section(value) if isinstance(value, BaseModel) else value)
    citation = model.citation
    return BenchmarkSpec(
        id=model.id, version=model.version, kind=model.kind, dataset=model.dataset, region=model.region,
        stimuli=_section(model.stimuli), target=_section(model.target), metric=_section(model.metric),
        citation=tuple([citation] if isinstance(citation, str) else citation), path=path,
        description=model.description, ceiling=_section(model.ceiling),
        statistics=_section(model.statistics), visual_degrees=model.visual_degrees, extra=extra)


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
