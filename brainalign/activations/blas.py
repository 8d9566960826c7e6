"""numpy's BLAS beside torch on the CPU: one thread per caller while a run records and scores.

A pip-installed numpy (and scipy) brings its own OpenBLAS, a second pool of threads beside torch's
OpenMP pool. OpenBLAS's threads keep spinning for a while after each call (about 0.1 s), so
when numpy's products (the metrics: RDMs, bootstrap moments, ceilings) alternate or overlap with
torch's (the forward pass, ridge's ``eigh``), the two pools take the cores from each other. With
torch at its default thread count (all cores) that halved the speed of both; scoring resnet18 on
Cowley 2023's V4 data (300 images per session, 2 cores) took 55 s with the metric at 7.3 s, and
40 s with the metric at 2.8 s once numpy's BLAS ran on one thread (``perf/issue15_speed.py``).

:func:`numpy_blas_one_thread` therefore limits the BLAS libraries that are not torch's own
(OpenBLAS and BLIS, found by threadpoolctl) to one thread while a run computes on the CPU: the
cores belong to torch's pool and to the run's own threads (the metric of one layer beside the
recording of the next, ``prepare`` beside the model's loading). The limit changes which thread
does the work, not the order of any sum, so scores are the same to the last bit. It is
reference-counted, so runs that overlap on several threads (``batch``) lift it only when the
last one ends; a library that torch shares (an MKL build of numpy) is left alone, since its
threads come from torch's OpenMP pool.

OpenBLAS (0.3.31, measured) ignores a setting made on another thread once the main thread has
made one, so the limit is entered on the caller's thread of a run (the ``score`` and ``batch``
commands, :func:`brainalign.score`, :func:`brainalign.runner.run_batch`), which outlives the
runs of its workers. Where it cannot apply, a run is slower, never different.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

_SEPARATE_POOLS = ("openblas", "blis")
"""BLAS implementations that run their own threads (MKL runs on the OpenMP runtime torch uses)."""


class _Limit:
    """The one limit of this process: numpy's BLAS threads are a process-wide setting, so the
    guard of that setting is process-wide too (a lock and a count, no other state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._restore: list[tuple[Any, int]] = []

    def enter(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                libs = [lib for lib in ThreadpoolController().lib_controllers
                        if lib.internal_api in _SEPARATE_POOLS and lib.num_threads > 1]
                self._restore = [(lib, lib.num_threads) for lib in libs]
                for lib in libs:
                    lib.set_num_threads(1)

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for lib, n in self._restore:
                    lib.set_num_threads(n)
                self._restore = []


_LIMIT = _Limit()


@contextmanager
def numpy_blas_one_thread(device: Any = "cpu") -> Iterator[None]:
    """Within the block, numpy's and scipy's own BLAS (OpenBLAS, BLIS) run on the calling thread
    only (see the module docstring for why); their thread counts are restored when the last
    block open in this process ends. ``device``: the run's device (``"auto"`` resolved as the
    recording resolves it); on a GPU the block is a no-op, since the forward pass leaves the
    CPU's cores to the metric."""
    from brainalign.device import resolve_device  # torch: imported by every caller

    if resolve_device(device).type != "cpu":
        yield
        return
    _LIMIT.enter()
    try:
        yield
    finally:
        _LIMIT.exit()
