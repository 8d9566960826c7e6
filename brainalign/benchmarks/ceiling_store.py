"""Content-addressed store of a benchmark's bootstrap noise ceilings, shared by runs.

The ceilings on a benchmark's bootstrap samples depend only on the brain data and the statistics
settings, never on the model, yet they are the largest part of a benchmark's preparation (for
``kriegeskorte2008.hIT-rsa``, the pooled-rank ceilings of 1,000 samples: preparing takes 1.4–1.8 s
computing them, 0.45–0.6 s reading them; it runs beside the model's loading, so a whole run saves
about 1 s of CPU, less of wall time).
A user who scores one model per process — a shell loop over 500 models — would pay them in every
process. As Brain-Score's ``result_caching`` does for its ceilings, they are computed once and
stored, here under ``<cache>/ceilings`` (:func:`brainalign.settings.ceiling_cache_dir`).

An entry is ``<key>.npz`` (float arrays, written with ``np.savez``, read with
``allow_pickle=False``). The key is the sha256 of what determines the numbers: the kind of
ceiling and its settings, the bytes, dtype and shape of every input array (the subjects' RDMs, the
half-averages of the repeats, the bootstrap's index sets), the source files of the modules that
compute it, :data:`STORE_VERSION` and the versions of brainalign and numpy. A benchmark's name
is not part of it, so renaming one cannot return another's ceilings and a changed dataset
misses. A stored entry holds the very float64 values the computation returned, so a run that
reads it gives the same table, bit for bit, as one that computes (tests check this on real data).

Files are written to a temporary name and moved into place (:func:`brainalign.io.atomic_write_bytes`):
runs in parallel that compute the same entry each write the same bytes. An entry that cannot be
read (truncated, corrupted: the zip's CRC fails) or does not hold the expected arrays is
recomputed and rewritten, with a warning; a store that cannot be written (read-only cache, a file
in the folder's place) only warns: the run goes on with what it computed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from brainalign.io import atomic_write_bytes

STORE_VERSION = 1
"""Bump when any stored computation changes its numbers, so older entries are never read."""


def store_key(kind: str, settings: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
              code: Sequence[ModuleType] = ()) -> str:
    """sha256 (hex) of a ceiling's kind, settings (JSON-serialisable), input arrays and the source
    files of the modules ``code`` that compute it (so an edited computation misses, in a
    development install too), with :data:`STORE_VERSION` and the brainalign and numpy versions."""
    from brainalign import __version__

    h = hashlib.sha256()
    head = {"kind": kind, "store": STORE_VERSION, "brainalign": __version__, "numpy": np.__version__,
            "settings": dict(settings),
            "arrays": {k: [str(np.asarray(a).dtype), list(np.shape(a))] for k, a in sorted(arrays.items())},
            "code": {m.__name__: _source_sha(m) for m in code}}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for _, a in sorted(arrays.items()):
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def _source_sha(module: ModuleType) -> str:
    try:
        return hashlib.sha256(Path(module.__file__ or "").read_bytes()).hexdigest()
    except OSError:  # no readable source (a zip import): the versions in the key stand for it
        return "unreadable"


def stored(root: Path | None, key: str, expect: Mapping[str, tuple[int, ...]],
           compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of entry ``key`` under ``root``, else ``compute()``'s, then stored.

    Parameters
    ----------
    root
        The store's folder; None: no store, always compute.
    key
        From :func:`store_key`.
    expect
        Name → shape of every array an entry must hold (float64); an entry that differs is
        recomputed.
    compute
        Returns the arrays (name → array of the expected shape; returned as float64).

    Raises
    ------
    ValueError
        ``compute()`` returned arrays of other shapes than ``expect`` (a programming error).
    """
    if root is None:
        return compute()
    path = Path(root) / f"{key}.npz"
    if path.is_file():
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # closed if not a zip
                got = {name: z[name] for name in expect}
            if all(got[n].shape == tuple(s) and got[n].dtype == np.float64 for n, s in expect.items()):
                return got
            _warn(f"the stored ceilings {path} do not hold the expected arrays; recomputing them")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            _warn(f"the stored ceilings {path} could not be read ({e}); recomputing them")
    # float64, as an entry is read back: a run that computes and one that reads agree bit for bit.
    out = {name: np.asarray(a, dtype=np.float64) for name, a in compute().items()}
    bad = {n: a.shape for n, a in out.items() if n in expect and a.shape != tuple(expect[n])}
    if bad or set(expect) - set(out):
        raise ValueError(f"stored(): computed arrays {bad or sorted(out)} do not match {dict(expect)}")
    buf = io.BytesIO()
    np.savez(buf, **{name: out[name] for name in expect})
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(f"{path.parent} is a file, not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        _warn(f"could not store the ceilings in {path.parent} ({e}); they will be computed again next "
              "run (BRAINALIGN_CEILING_CACHE sets another folder, 0 turns the store off)")
    return out


def entries(root: Path | None) -> list[Path]:
    """The entry files of the store in ``root`` (``<sha256>.npz``, and temporary files of writes
    that did not finish); nothing else a shared folder may hold."""
    if root is None or not Path(root).is_dir():
        return []
    return sorted(p for p in Path(root).iterdir() if p.is_file() and _ENTRY.fullmatch(p.name))


_ENTRY = re.compile(r"\.?[0-9a-f]{64}\.npz(\.@.*)?")


def _warn(message: str) -> None:
    # A warning, not a log record: the CLI prints warnings with the run's progress lines.
    warnings.warn(message, stacklevel=3)
