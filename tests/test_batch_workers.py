"""Worker processes of ``brainalign batch --workers N``: one that dies fails only its own pair,
none outlives a killed parent, SIGTERM stops a run as Ctrl-C does, and a script without the
``__main__`` guard is refused once, before any pair."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.batch import WORKER_DIED, BatchTerminated, _sigterm_as_ctrl_c
from brainalign.runner.progress import BatchProgress
from tests.batch_models import write_quick_benchmark
from tests.conftest import REPO, needs_data

LAYERS = ("0", "6")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    return write_quick_benchmark(tmp_path_factory.mktemp("bench"))


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1], start time [19])."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _descendants(pid: int) -> dict[int, str]:
    """pid → start time of every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        st = _stat(int(d.name)) if d.name.isdigit() else None
        if st is not None:
            children.setdefault(int(st[1]), []).append(int(d.name))
    found, stack = {}, list(children.get(pid, []))
    while stack:
        p = stack.pop()
        st = _stat(p)
        if st is not None:
            found[p] = st[19]
            stack.extend(children.get(p, []))
    return found


def _alive(procs: dict[int, str]) -> list[int]:
    """Those of ``procs`` still running (the same processes: a reused pid has another start time;
    a zombie has ended)."""
    return [p for p, start in procs.items() if (st := _stat(p)) is not None and st[19] == start and st[0] != "Z"]


def _batch_in_a_process(tmp_path: Path, quick: Path, data_dir: Path, n_models: int = 8) -> subprocess.Popen:
    """``brainalign batch --workers 2`` in a process of its own (its own session, so the test
    can clean up after it), started on slow-to-build models so that it is still running."""
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + "".join(
        f"  - {{factory: 'tests.batch_models:tiny_cnn_slow', seed: {s}, label: tiny-{s}, layers: ['0', '6']}}\n"
        for s in range(n_models)))
    args = ["batch", str(models), "--benchmark", str(quick), "--data-dir", str(data_dir), "--workers", "2",
            "--out", str(tmp_path / "out")]
    return subprocess.Popen([sys.executable, "-m", "brainalign.cli", *args],
                            env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_a_pair(proc: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.glob("pairs/*.parquet")):
        assert proc.poll() is None, f"the batch ended before any pair finished: {proc.communicate()}"
        assert time.monotonic() < deadline, "no pair finished in time"
        time.sleep(0.05)


def _wait_gone(procs: dict[int, str], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(procs)


@needs_data
def test_a_worker_process_that_dies_fails_only_its_own_pair(quick, data_dir, tmp_path):
    """A model that kills its worker (SIGKILL, as the OOM killer does) among good ones: the pool
    is restarted, the pairs in flight are scored again alone, and only the culprit fails, with the
    reason; no duration is printed as "nans"."""
    models = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=LAYERS)
              for s in range(3)]
    models.insert(1, ModelEntry(factory="tests.batch_models:crashing_cnn", label="crash", layers=LAYERS))
    log = io.StringIO()
    report = run_batch(models, [str(quick)], tmp_path / "out", workers=2, data_dir=data_dir,
                       progress=BatchProgress(log))
    text = log.getvalue()
    assert sorted(report.failures["model"]) == ["crash"], text
    (fail,) = report.failures.to_dict("records")
    assert fail["error_type"] == WORKER_DIED
    assert "the worker process scoring it died (killed by signal 9 (SIGKILL): out of memory?)" in fail["error"]
    assert sorted(report.table["model"].unique()) == ["tiny-0", "tiny-1", "tiny-2"]
    assert len(report.scored) == 3
    assert "nans" not in text and "BrokenProcessPool" not in text, text
    assert "FAILED crash × kriegeskorte2008.hIT-rsa-quick in " in text
    err = json.loads(next((tmp_path / "out" / "errors").glob("*.json")).read_text())
    assert math.isfinite(err["seconds"])


@needs_data
@needs_proc
def test_workers_exit_soon_after_their_parent_is_killed(quick, data_dir, tmp_path):
    proc = _batch_in_a_process(tmp_path, quick, data_dir)
    try:
        _wait_for_a_pair(proc, tmp_path / "out")
        below = _descendants(proc.pid)
        assert len(below) >= 3, below  # two workers and multiprocessing's resource tracker
        os.kill(proc.pid, signal.SIGKILL)  # the parent alone: its workers are left to notice
        proc.wait()
        assert not _wait_gone(below, 15), "worker processes outlived their killed parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


@needs_data
@needs_proc
def test_sigterm_stops_a_batch_as_ctrl_c_does(quick, data_dir, tmp_path):
    """What `timeout`, SLURM and `docker stop` send: the finished pairs are kept (in the tables
    too), the workers stopped, the lock released, and the message says to --resume; status 143."""
    out = tmp_path / "out"
    proc = _batch_in_a_process(tmp_path, quick, data_dir)
    try:
        _wait_for_a_pair(proc, out)
        below = _descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 143, stderr
        assert "interrupted: " in stderr and "are kept in" in stderr, stderr
        assert "interrupted (SIGTERM): the pairs finished so far are kept in" in stderr
        assert "--resume" in stderr
        assert not (out / "batch.lock").exists()
        assert "tiny-" in (out / "scores.csv").read_text()
        assert not _wait_gone(below, 10), "worker processes outlived the run"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_sigterm_is_handled_as_ctrl_c_only_during_the_run():
    from brainalign.io import interrupt_after

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(BatchTerminated), _sigterm_as_ctrl_c():
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGTERM) is before
    held = []
    with pytest.raises(BatchTerminated), _sigterm_as_ctrl_c():
        with interrupt_after():  # a write in progress finishes first, as it does on Ctrl-C
            os.kill(os.getpid(), signal.SIGTERM)
            held.append(True)
    assert held == [True]
    assert signal.getsignal(signal.SIGTERM) is before


SCRIPT = """
from brainalign.runner import ModelEntry, run_batch

def main():
    run_batch([ModelEntry(factory="tests.batch_models:tiny_cnn", label="tiny-0", layers=("0", "6")),
               ModelEntry(factory="tests.batch_models:tiny_cnn", seed=1, label="tiny-1", layers=("0", "6"))],
              [{bench!r}], {out!r}, workers=2, data_dir={data!r})
"""


@needs_data
def test_workers_without_the_main_guard_are_refused_once_before_any_pair(quick, data_dir, tmp_path):
    """Spawned workers import the main module again: a script calling run_batch(workers=2) at its
    top level (or from stdin) gets one named error before any pair, not every pair failed; the
    same script with the guard runs."""
    runs = {"unguarded": "main()\n", "stdin": "main()\n", "guarded": "if __name__ == '__main__':\n    main()\n"}
    for how, call in runs.items():
        out = tmp_path / how
        script = tmp_path / f"{how}.py"
        script.write_text(SCRIPT.format(bench=str(quick), out=str(out), data=str(data_dir)) + call)
        if how == "stdin":
            r = subprocess.run([sys.executable, "-"], stdin=script.open(), capture_output=True, text=True,
                               env=ENV, cwd=tmp_path, timeout=600)
        else:
            r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=ENV,
                               cwd=tmp_path, timeout=600)
        if how == "guarded":
            assert r.returncode == 0, r.stderr
            assert "2 scored" in r.stderr
            continue
        assert r.returncode == 1, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("brainalign.errors.BatchWorkerError: "), r.stderr
        assert 'if __name__ == "__main__":' in last and "stdin" in last
        assert "BrokenProcessPool" not in r.stderr and "FAILED" not in r.stderr, r.stderr
        assert not list(out.glob("pairs/*.parquet")) and not list(out.glob("errors/*.json"))
        assert not (out / "batch.lock").exists()
