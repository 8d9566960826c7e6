"""The console script's fast exit (``brainalign.cli.run``): after a command, ``atexit`` handlers
run and the exit status is kept, but the interpreter's module teardown (1–1.5 s with torch
loaded) is skipped; while a non-daemon thread still runs, the usual exit waits for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd

from tests.conftest import needs_data

PRELUDE = textwrap.dedent("""
    import atexit, os, sys, threading, time
    from brainalign.cli import run, _fast_exit

    class Teardown:  # a module global: finalised only by the interpreter's teardown
        def __init__(self):
            self.write = os.write
        def __del__(self):
            self.write(1, b"<teardown>")

    marker = Teardown()
    atexit.register(lambda: os.write(1, b"<atexit>"))
""")


def _run(body: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
                          capture_output=True, text=True, timeout=300, **kw)


def test_command_exit_runs_atexit_keeps_output_and_skips_teardown():
    r = _run('run(["list", "benchmarks"])')
    assert r.returncode == 0, r.stderr
    assert "kriegeskorte2008.hIT-rsa" in r.stdout  # flushed before the process ended
    assert "<atexit>" in r.stdout
    assert "<teardown>" not in r.stdout


def test_failing_command_keeps_its_exit_status():
    r = _run('run(["list", "nonsense"])')  # click's usage error
    assert r.returncode == 2
    assert "Invalid value" in r.stderr
    assert "<atexit>" in r.stdout and "<teardown>" not in r.stdout


def test_message_exit_prints_it_with_status_1():
    r = _run('_fast_exit("something went wrong")')
    assert r.returncode == 1
    assert "something went wrong" in r.stderr


def test_a_running_non_daemon_thread_gets_the_usual_exit():
    r = _run("""
        import brainalign.cli as cli

        fast_exit = cli._fast_exit

        def with_a_thread(code):  # a thread still running when the command has finished
            threading.Thread(target=lambda: (time.sleep(0.5), os.write(1, b"<thread>"))).start()
            fast_exit(code)

        cli._fast_exit = with_a_thread
        run(["list", "benchmarks"])
    """)
    assert r.returncode == 0, r.stderr
    # The usual exit: the thread finished first, then atexit, then the teardown.
    assert r.stdout.index("<thread>") < r.stdout.index("<atexit>") < r.stdout.index("<teardown>")


def test_console_script_is_the_fast_exit_entry_point():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "brainalign"]
    assert ep.value == "brainalign.cli:run"



@needs_data
def test_a_real_score_run_takes_the_fast_exit_with_its_files_complete(tmp_path, data_dir):
    """After ``score`` (prepare thread, recording thread, figure) no thread holds the exit up,
    so the fast path is taken; the table and figure are whole on disk."""
    out = tmp_path / "r"
    r = _run(f"""
        run(["score", "--model", "torchvision:resnet18", "--benchmark", "kriegeskorte2008.hIT-rsa",
             "--layers", "conv1", "--layers", "fc", "--n-bootstrap", "20", "--device", "cpu",
             "--data-dir", {str(data_dir)!r}, "--out", {str(out)!r}])
    """, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "<atexit>" in r.stdout and "<teardown>" not in r.stdout
    table = pd.read_csv(out / "scores.csv")
    assert sorted(table["layer"]) == ["conv1", "fc"]
    png = (out / "layers.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png.rstrip().endswith(b"IEND\xaeB`\x82")


def test_a_reader_that_stops_early_does_not_fail_the_listing():
    """`brainalign layers MODEL | head -1`: the listing is one write, so the reader closing the
    pipe after the first line leaves exit status 0 (click's broken-pipe exit was 1)."""
    p = subprocess.Popen([sys.executable, "-c", "from brainalign.cli import run; run()", "layers",
                          "torchvision:resnet18"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    p.stdout.close()
    assert p.wait(timeout=120) == 0, p.stderr.read()
    assert first.startswith("conv1\tConv2d\t64x112x112")
