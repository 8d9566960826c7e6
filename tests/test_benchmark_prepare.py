"""``Benchmark.start_preparing``: the model-independent preparation runs beside the recording,
hands its error to the run, and never keeps a finished (or failed) process alive."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from brainalign.benchmarks.base import Benchmark

SCRIPT = """
import threading
from brainalign.benchmarks.base import Benchmark

class Stuck(Benchmark):
    def prepare(self):
        threading.Event().wait()  # preparing that never ends (stands for a long bootstrap)

bench = Stuck.__new__(Stuck)
bench._preparing = None
bench.start_preparing()
raise SystemExit("the model failed")  # the run fails while preparing still works
"""


def test_a_failed_run_exits_without_waiting_for_the_preparation():
    # With a thread the interpreter joins at exit this never returns (the timeout fails it).
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "the model failed" in proc.stderr


class _Once(Benchmark):
    def __init__(self, error: Exception | None = None):
        self._preparing, self.calls, self.error = None, 0, error
        self.release = threading.Event()

    def prepare(self):
        self.calls += 1
        self.release.wait()
        if self.error is not None:
            raise self.error


def test_preparing_runs_once_and_hands_its_error_to_whoever_waits():
    ok = _Once()
    first = ok.start_preparing()
    assert ok.start_preparing() is first and not first.done()
    ok.release.set()
    assert first.result(timeout=60) is None and ok.calls == 1
    bad = _Once(ValueError("constant subject RDM"))
    bad.release.set()
    with pytest.raises(ValueError, match="constant subject RDM"):
        bad.start_preparing().result(timeout=60)
