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
from brainalign.insilico.benchmark import SimulatedV1Benchmark
from brainalign.settings import PathLike, bundled_benchmark_dir

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
        Dataset manifests are looked up in ``manifest_dirs``, then beside the YAML file (its folder
        and a ``data_manifests/`` folder in it), then in ``BRAINALIGN_MANIFESTS``, then the bundled
        ones: a user's own dataset and benchmark need no change to the installed package.

    Raises
    ------
    BenchmarkDefinitionError
        The YAML breaks its kind's schema (one line per problem: file and key path).
    UnknownBenchmarkError
        No benchmark of that id.
    """
    text = str(benchmark)
    # The YAML is validated here with its kind's schema (KINDS[kind].schema), before any data or
    # model is touched; a misspelt key names the file and the key's path.
    spec = parse_benchmark(text) if text.endswith((".yaml", ".yml")) and Path(text).is_file() \
        else find_benchmark(text, benchmark_dirs)
    kind = KINDS[spec.kind]
    options["manifest_dirs"] = [*options.get("manifest_dirs", ()), *manifests_beside(spec.path)]
    return kind(spec, data_dir=data_dir, cache=cache, download=download, **options)


def manifests_beside(path: PathLike) -> list[Path]:
    """Folders where a user's benchmark YAML keeps its dataset manifests: the YAML's own folder and
    a ``data_manifests/`` folder beside it (only those that exist; none for the bundled benchmarks,
    whose manifests are bundled too)."""
    folder = Path(path).resolve().parent
    if folder == bundled_benchmark_dir().resolve():
        return []
    return [d for d in (folder / "data_manifests", folder) if d.is_dir()]
