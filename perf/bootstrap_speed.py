"""RSABootstrap before/after: the rankdata version (commit a79808f) vs the current counting version.

Run from the repository (needs git history and the 92-image data):
    BRAINALIGN_DATA=/path/to/datasets PYTHONPATH=. python perf/bootstrap_speed.py

Both run side by side in one process on the kriegeskorte2008.hIT-rsa subject RDMs (4 subjects,
92 stimuli, 1000 samples); the ceilings and the scores of a model RDM must agree to 1e-10.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import brainalign as ba
from brainalign.metrics.rsa import RSABootstrap

BEFORE = "a79808f"


def old_module():
    src = subprocess.run(["git", "show", f"{BEFORE}:brainalign/metrics/rsa.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "rsa_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("rsa_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def main() -> None:
    old = old_module()
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa")
    subj = bench.subject_rdms.values
    rng = np.random.default_rng(0)
    model = subj.mean(0) + 0.05 * rng.random(subj.shape[1:])
    model = (model + model.T) / 2
    np.fill_diagonal(model, 0)
    for method in sys.argv[1:] or ["spearman", "pearson"]:
        t_old, b_old = timed(lambda m=method: old.RSABootstrap(subj, m))
        t_new, b_new = timed(lambda m=method: RSABootstrap(subj, m))
        s_old = timed(lambda b=b_old: b.score(model))
        s_new = timed(lambda b=b_new: b.score(model))
        diff = max(np.abs(b_old.ceiling_upper - b_new.ceiling_upper).max(),
                   np.abs(b_old.ceiling_lower - b_new.ceiling_lower).max(),
                   np.abs(s_old[1] - s_new[1]).max())
        print(f"{method:9s} construct: before {t_old:6.2f} s  after {t_new:6.2f} s  ({t_old / t_new:4.1f}×)   "
              f"score one RDM: before {s_old[0]:5.2f} s  after {s_new[0]:5.2f} s  "
              f"({s_old[0] / s_new[0]:4.1f}×)   max |difference| {diff:.1e}")
        assert diff < 1e-10


if __name__ == "__main__":
    main()
