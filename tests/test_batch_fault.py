"""Kill a batch with SIGKILL mid-run, resume it: same table, no finished pair computed twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.progress import BatchProgress
from tests.batch_models import write_quick_benchmark
from tests.conftest import REPO, needs_data

SEEDS = (0, 1, 2, 3)


def _events(out: Path) -> list[dict]:
    lines = (out / "batch.log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@needs_data
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, data_dir):
    quick = write_quick_benchmark(tmp_path)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + "".join(
        f"  - {{factory: 'tests.batch_models:tiny_cnn_slow', seed: {s}, label: tiny-{s}, "
        f"layers: ['0', '2', '6']}}\n" for s in SEEDS))
    out = tmp_path / "out"
    args = ["batch", str(models), "--benchmark", str(quick), "--data-dir", str(data_dir), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "brainalign.cli", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("pairs/*.parquet")):
            assert proc.poll() is None, "the batch ended before any pair finished"
            assert time.monotonic() < deadline, "no pair finished in time"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # the next model is being built: mid-run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    finished = {p.stem for p in (out / "pairs").glob("*.parquet")}
    assert 0 < len(finished) < len(SEEDS)
    n_events_before = len(_events(out))
    # Leftovers of a write cut short must never be read back as results.
    (out / "pairs" / f".{next(iter(finished))}.parquet.999.tmp").write_bytes(b"PAR1 half a table")
    (out / ".scores.parquet.999.tmp").write_bytes(b"garbage")

    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    after = _events(out)[n_events_before:]
    assert {e["key"] for e in after if e["event"] == "skipped"} == finished
    recomputed = [e["key"] for e in after if e["event"] == "submit"]
    assert not set(recomputed) & finished  # no finished pair computed again
    assert len(recomputed) == len(SEEDS) - len(finished)
    done = [e["key"] for e in _events(out) if e["event"] == "done"]
    assert len(done) == len(set(done))  # every pair computed once over both runs
    assert not list(out.rglob("*.tmp"))

    clean = run_batch([ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}",
                                  layers=("0", "2", "6")) for s in SEEDS],
                      [str(quick)], tmp_path / "clean", data_dir=data_dir,
                      progress=BatchProgress(open(tmp_path / "p", "w")))
    resumed = pd.read_parquet(out / "scores.parquet")
    key = ["model", "layer"]
    a = resumed.drop(columns="pair_key").sort_values(key).reset_index(drop=True)
    b = clean.table.drop(columns="pair_key").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 3 * len(SEEDS)
