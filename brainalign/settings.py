"""Where brainalign looks for data, caches downloads and finds benchmark definitions.

Every function takes an explicit argument first; the environment variables are only the
documented fallback a user sets once per machine (``BRAINALIGN_DATA``: local copies of datasets,
a path list; ``BRAINALIGN_CACHE``: the download cache; ``BRAINALIGN_MANIFESTS`` /
``BRAINALIGN_BENCHMARKS``: folders of the user's own dataset manifests / benchmark YAML files;
``BRAINALIGN_CEILING_CACHE``: where benchmarks' bootstrap ceilings are stored, ``0`` for nowhere;
``BRAINALIGN_ALLOW_INSECURE=1``: allow downloads that are not https or have no checksum).
They are read at call time, never stored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

PathLike = str | os.PathLike[str]

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


def data_dirs(data_dir: PathLike | Sequence[PathLike] | None = None) -> list[Path]:
    """Local data directories, in search order.

    Parameters
    ----------
    data_dir
        A directory or a list of them. When ``None``, ``BRAINALIGN_DATA`` (``os.pathsep``-separated)
        is read; when that is unset too, no local directory is searched.
    """
    if data_dir is None:
        raw = os.environ.get("BRAINALIGN_DATA", "")
        items: list[PathLike] = [p for p in raw.split(os.pathsep) if p]
    elif isinstance(data_dir, str | os.PathLike):
        items = [data_dir]
    else:
        items = list(data_dir)
    return [Path(p).expanduser() for p in items]


def cache_dir(cache: PathLike | None = None) -> Path:
    """The download cache: ``cache``, else ``BRAINALIGN_CACHE``, else ``~/.cache/brainalign``."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get("BRAINALIGN_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "brainalign"


def ceiling_cache_dir(path: PathLike | None = None) -> Path | None:
    """Where benchmarks store their bootstrap noise ceilings (:mod:`brainalign.benchmarks.ceiling_store`):
    ``path``, else ``BRAINALIGN_CEILING_CACHE`` (``0``, ``off`` or ``none``: not stored, None),
    else ``<cache_dir()>/ceilings``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("BRAINALIGN_CEILING_CACHE", "").strip()
    if env.lower() in ("0", "off", "none", "false", "no"):
        return None
    if env:
        return Path(env).expanduser()
    return cache_dir() / "ceilings"


def _bundled(name: str) -> Path:
    # In a source checkout the folders sit beside the package; a wheel carries them inside it.
    inside = _PACKAGE_DIR / f"_{name}"
    return inside if inside.is_dir() else _REPO_DIR / name


def _env_dirs(name: str) -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get(name, "").split(os.pathsep) if p]


def bundled_benchmark_dir() -> Path:
    """The folder of the benchmark definitions that ship with brainalign."""
    return _bundled("benchmarks")


def benchmark_dirs(extra: Sequence[PathLike] = ()) -> list[Path]:
    """Directories holding benchmark YAML files: ``extra`` first, then ``BRAINALIGN_BENCHMARKS``
    (``os.pathsep``-separated, a user's own folders), then the bundled ones."""
    return [Path(p) for p in extra] + _env_dirs("BRAINALIGN_BENCHMARKS") + [_bundled("benchmarks")]


def manifest_dirs(extra: Sequence[PathLike] = ()) -> list[Path]:
    """Directories holding dataset manifests: ``extra`` first, then ``BRAINALIGN_MANIFESTS``
    (``os.pathsep``-separated, a user's own folders), then the bundled ones."""
    return [Path(p) for p in extra] + _env_dirs("BRAINALIGN_MANIFESTS") + [_bundled("data_manifests")]
