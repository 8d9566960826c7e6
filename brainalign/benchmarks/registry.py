"""Turn a benchmark id or YAML file into a runnable benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brainalign.benchmarks.base import Benchmark
from brainalign.benchmarks.fmri import FMRIBenchmark
from brainalign.benchmarks.regression import RegressionBenchmark
from brainalign.benchmarks.rsa import RSABenchmark
from brainalign.benchmarks.spec import find_benchmark, parse_benchmark
from brainalign.benchmarks.v1_properties import V1PropertyBenchmark
from brainalign.errors import BenchmarkDefinitionError
from brainalign.insilico.benchmark import SimulatedV1Benchmark
from brainalign.settings import PathLike

# benchmark kind (the YAML's `kind`) -> class. An explicit table: no discovery by scanning.
KINDS: dict[str, type[Benchmark]] = {
    "rsa": RSABenchmark,
    "regression": RegressionBenchmark,
    "fmri": FMRIBenchmark,
    "v1_properties": V1PropertyBenchmark,
    "simulated_v1": SimulatedV1Benchmark,
}


def load_benchmark(benchmark: str | PathLike, *, data_dir: PathLike | Sequence[PathLike] | None = None,
                   cache: PathLike | None = None, download: bool = True,
                   benchmark_dirs: Sequence[PathLike] = (), **options: Any) -> Benchmark:
    """A benchmark from its id (``"kriegeskorte2008.hIT-rsa"``) or the path of a YAML file.

    Parameters
    ----------
    benchmark
        Benchmark id or YAML path.
    data_dir
        Local data directories searched before the cache and download.
    cache
        Download cache directory.
    download
        Allow downloading files that are not found locally.
    benchmark_dirs
        Extra directories of benchmark YAML files, searched before the bundled ones.
    options
        Passed to the benchmark kind: ``n_bootstrap``, ``manifest_dirs`` (see :class:`Benchmark`).
    """
    text = str(benchmark)
    spec = parse_benchmark(text) if text.endswith((".yaml", ".yml")) and Path(text).is_file() \
        else find_benchmark(text, benchmark_dirs)
    try:
        kind = KINDS[spec.kind]
    except KeyError:
        raise BenchmarkDefinitionError(
            f"{spec.path}: unknown kind {spec.kind!r}; known kinds: {sorted(KINDS)}") from None
    return kind(spec, data_dir=data_dir, cache=cache, download=download, **options)
