"""``brainalign batch`` sums a pair's warnings like ``brainalign score``: one "α at an end of the
grid" line per model × benchmark, whichever executor scored it (this process, worker processes,
Dask threads), never the raw per-layer warnings of the process that scored it."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.pair_warnings import collect_warnings, warning_lines
from brainalign.runner.progress import BatchProgress
from tests.conftest import needs_data

V4 = "cowley2023.V4-ridge"  # ridge on few stimuli: a random tiny CNN's α runs to an end of the grid
LABELS = [f"tiny-{s} × {V4}" for s in (0, 1)]
ROOT = Path(__file__).resolve().parents[1]
RAW = "neuroids the chosen α is mostly at an end of the grid"  # encoding_score's own message


def _summaries(text: str, label: str) -> list[str]:
    return re.findall(rf"warning: {re.escape(label)}: in \d+ ridge fit\(s\), the chosen α was at an end of the "
                      r"grid \[[^\]]*\] in most folds for some neuroids \(\d+ of \d+ neuroid fits; \d+ at the "
                      r"low end, \d+ at the high end\); ", text)


@needs_data
@pytest.mark.parametrize("workers", [1, 2])
def test_batch_prints_one_alpha_grid_summary_per_pair_and_no_raw_warnings(tmp_path, data_dir, workers):
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-0}\n"
                      "  - {factory: 'tests.batch_models:tiny_cnn', label: tiny-1, seed: 1}\n")
    out = tmp_path / "b"
    # A real process: its stderr holds whatever it or its worker processes print, warnings included
    # (in pytest's own process, pytest would record them instead).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", "from brainalign.cli import main; main()", "batch", str(models),
                        "--benchmark", V4, "--max-stimuli", "25", "--n-bootstrap", "10", "--data-dir",
                        str(data_dir), "--workers", str(workers), "--out", str(out)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    for label in LABELS:
        assert len(_summaries(text, label)) == 1, text
    assert RAW not in text and "UserWarning" not in text, text
    # The log keeps the summary with the pair's event.
    done = [json.loads(ln) for ln in (out / "batch.log.jsonl").read_text().splitlines()]
    done = {f"{e['model']} × {e['benchmark']}": e for e in done if e["event"] == "done"}
    for label in LABELS:
        assert len(_summaries("\n".join(done[label]["warnings"]), label)) == 1


@needs_data
def test_dask_threads_scoring_pairs_at_once_each_get_their_own_warnings(tmp_path, data_dir):
    distributed = pytest.importorskip("distributed")
    entries = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}") for s in (0, 1)]
    opts = {"max_stimuli": 25}
    local = io.StringIO()
    run_batch(entries, [V4], tmp_path / "local", data_dir=data_dir, n_bootstrap=10, benchmark_options=opts,
              progress=BatchProgress(local))
    threaded = io.StringIO()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        report = run_batch(entries, [V4], tmp_path / "dask", data_dir=data_dir, n_bootstrap=10,
                           benchmark_options=opts, scheduler=client, progress=BatchProgress(threaded))
    assert report.ok
    for label in LABELS:
        one = _summaries(local.getvalue(), label)
        # The same counts as pair by pair in one thread: no warning went to the other pair, none lost.
        assert len(one) == 1 and _summaries(threaded.getvalue(), label) == one, threaded.getvalue()
    assert RAW not in threaded.getvalue()


@needs_data
def test_ba_score_sums_a_pair_s_warnings_as_the_command_line_does(data_dir):
    """From Python too, one "α at an end of the grid" warning per pair, saying which end, instead
    of one per layer and session (18 for a small CNN on the V4 sessions)."""
    import brainalign as ba
    from tests.batch_models import tiny_cnn

    bench = ba.load_benchmark(V4, data_dir=data_dir, max_stimuli=25, n_bootstrap=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ba.score(tiny_cnn(), bench)
    texts = [str(w.message) for w in caught]
    assert not any(RAW in t for t in texts), texts
    summaries = [t for t in texts if "ridge fit(s)" in t]
    assert len(summaries) == 1 and summaries[0].startswith(f"tiny-0 × {V4}: in "), texts
    assert "at the low end" in summaries[0] and "at the high end" in summaries[0]


def test_the_collector_restores_the_warning_hook_and_routes_by_thread():
    import threading

    before = warnings.showwarning
    got: dict[str, list[str]] = {}
    ready = threading.Barrier(2)

    def pair(name: str) -> None:
        with collect_warnings() as caught:
            ready.wait()  # both collectors open at once
            for k in range(3):
                warnings.warn(f"{name} {k}", UserWarning, stacklevel=1)
            ready.wait()
        got[name] = caught

    threads = [threading.Thread(target=pair, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {"a": ["a 0", "a 1", "a 2"], "b": ["b 0", "b 1", "b 2"]}
    assert warnings.showwarning is before
    assert warning_lines(got["a"], "m × b") == ["warning: a 0", "warning: a 1", "warning: a 2"]
