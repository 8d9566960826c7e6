"""Scoring N checkpoints of a run at once vs N independent scoring runs, same process.

A LeNet-5 run on the digits (N-1 epochs: N checkpoints with the initial weights) is scored on
kriegeskorte2008.hIT-rsa (3 layers, the benchmark's 1,000 bootstrap samples):

- ``score_checkpoints``: one benchmark load (stimuli, subject RDMs, ceiling, bootstrap set-up)
  and one architecture, each checkpoint's weights loaded into it;
- ``independent``: for every checkpoint, what a fresh ``brainalign score`` run does: load the
  benchmark by id, load the model from the checkpoint, score.

    BRAINALIGN_DATA=/path/to/datasets python perf/score_checkpoints.py [--n 4] [--threads 1]

Measured 2026-11-22 (shared 2-core machine, load average ~12, 1 thread): 4 checkpoints × 3
layers, score_checkpoints 48.8 s vs 4 independent runs 130.8 s (ratio 0.37; 12.2 s vs 32.7 s
per checkpoint), identical scores.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import brainalign as ba

LAYERS = ["conv2", "fc1", "fc3"]
BENCH = "kriegeskorte2008.hIT-rsa"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4, help="checkpoints")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as out:
        run = ba.train("lenet5", out, epochs=args.n - 1, patience=None, progress=False)
        t0 = time.perf_counter()
        together = ba.score_checkpoints(run.run_dir, BENCH, layers=LAYERS, device="cpu")
        t_together = time.perf_counter() - t0
        t0 = time.perf_counter()
        alone = [ba.score(ba.load_model(f"file:{p}"), ba.load_benchmark(BENCH), layers=LAYERS,
                          device="cpu") for p in run.checkpoints]
        t_alone = time.perf_counter() - t0
    same = all(abs(a - b) < 1e-12 for a, b in zip(
        together.table["raw"], [r for res in alone for r in res.table["raw"]], strict=True))
    print(f"{args.n} checkpoints x {len(LAYERS)} layers: score_checkpoints {t_together:.1f} s, "
          f"{args.n} independent runs {t_alone:.1f} s, ratio {t_together / t_alone:.3f}; "
          f"per checkpoint {t_together / args.n:.1f} s vs {t_alone / args.n:.1f} s; identical "
          f"scores: {same} ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
