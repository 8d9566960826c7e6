"""RSABootstrap before/after: ``metrics/rsa.py`` of another commit (``--before``, default a79808f,
the rankdata version) vs this tree's.

Run from the repository (needs git history and the 92-image data):
    BRAINALIGN_DATA=/path/to/datasets PYTHONPATH=. python perf/bootstrap_speed.py [--before REV] [--rounds 3]

Both run side by side in one process on the kriegeskorte2008.hIT-rsa subject RDMs (4 subjects,
92 stimuli, 1000 samples), after a warm-up, interleaved over ``--rounds`` rounds (medians; the
load average is printed); the ceilings and the scores of a model RDM must agree to 1e-10. The
model RDM has no ties (a layer's RDM almost never has), so the closed-form Spearman path of
stop 22 is what "after" runs.

2026-12-01, before = f2b7071 (stop 21), one thread, load ≈ 0.9, 5 rounds: spearman: score one
RDM 88.3 → 47.8 ms (1.8×), construct 1.66 → 1.52 s; pearson and cosine (same code) equal within
noise (7 rounds: 48.4 / 44.9 ms, 41.8 / 43.1 ms); max |difference| 7.8e-16.
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import brainalign as ba
from brainalign.metrics.rsa import RSABootstrap

BEFORE = "a79808f"


def old_module(rev: str = BEFORE):
    src = subprocess.run(["git", "show", f"{rev}:brainalign/metrics/rsa.py"], check=True,
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
    import argparse
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("methods", nargs="*", default=["spearman", "pearson"])
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    old = old_module(args.before)
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa")
    subj = bench.subject_rdms.values
    rng = np.random.default_rng(0)
    model = subj.mean(0) + 0.05 * rng.random(subj.shape[1:])
    model = (model + model.T) / 2
    np.fill_diagonal(model, 0)
    print(f"before = {args.before}; load {os.getloadavg()}")
    for method in args.methods:
        impl = {"before": old.RSABootstrap, "after": RSABootstrap}
        t_con: dict[str, list[float]] = {k: [] for k in impl}
        t_score: dict[str, list[float]] = {k: [] for k in impl}
        boots = {k: c(subj, method, n_boot=50) for k, c in impl.items()}  # warm-up
        for rnd in range(args.rounds):
            for k in (list(impl) if rnd % 2 == 0 else list(impl)[::-1]):
                t, boots[k] = timed(lambda c=impl[k], m=method: c(subj, m))
                t_con[k].append(t)
                boots[k].score(model)
                t, _ = timed(lambda b=boots[k]: [b.score(model) for _ in range(10)])
                t_score[k].append(t / 10)
        b_old, b_new = boots["before"], boots["after"]
        diff = max(np.abs(b_old.ceiling_upper - b_new.ceiling_upper).max(),
                   np.abs(b_old.ceiling_lower - b_new.ceiling_lower).max(),
                   np.nanmax(np.abs(b_old.score(model) - b_new.score(model))))
        med = {k: (float(np.median(t_con[k])), float(np.median(t_score[k]))) for k in impl}
        (cb, sb), (ca, sa) = med["before"], med["after"]
        print(f"{method:9s} construct: before {cb:6.2f} s  after {ca:6.2f} s  ({cb / ca:4.1f}×)   "
              f"score one RDM: before {1e3 * sb:6.1f} ms  after {1e3 * sa:6.1f} ms ({sb / sa:4.1f}×)   "
              f"max |difference| {diff:.1e}   (load {os.getloadavg()[0]:.1f})")
        assert diff < 1e-10


if __name__ == "__main__":
    main()
