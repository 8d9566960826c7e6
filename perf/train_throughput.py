"""Training throughput: brainalign.train vs a plain PyTorch loop of the same model, same run.

LeNet-5 on scikit-learn's digits (32 px, 1,437 training images after the 20 % validation split),
batch 64, SGD + Nesterov momentum, cosine schedule, E epochs. The plain loop does only the
training steps; brainalign.train also evaluates the validation split, writes a checkpoint and
updates the history every epoch (the progress bar is off in both). Methods run in rotation,
R rounds; each method's best time is reported. Samples/s = training samples × epochs / wall time,
and per CPU second (one thread: CPU time is the work done, less sensitive to a busy machine).

    python perf/train_throughput.py [--epochs 5] [--rounds 3] [--threads 1]

Measured 2026-11-22 (shared 2-core machine, load average ~12; 4 epochs, best of 5, 1 thread),
brainalign.train / plain loop:
    training steps only: 0.998 (CPU time), 1.016 (wall) without augmentation; 1.08 / 1.12 with
    end to end (+ validation pass, checkpoint and history per epoch): 0.886 (CPU), 0.897 (wall)
    without augmentation; 0.950 / 0.972 with augmentation
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

import brainalign as ba
from brainalign.models.train import augment as augment_batch
from brainalign.models.train import load_training_data
from brainalign.models.train.loop import _stratified_split
from brainalign.models.zoo import build

PLAIN_STEPS: list[tuple[float, float]] = []  # the plain loop's training steps: (wall, CPU) seconds


def plain_loop(epochs: int, augment: bool, seed: int = 0) -> int:
    data = load_training_data("digits", 32)
    gen = torch.Generator().manual_seed(seed)
    tr, _ = _stratified_split(data.y, 0.2, gen)
    x, y = data.x[tr], data.y[tr]
    torch.manual_seed(seed)
    net = build("lenet5", in_channels=1, num_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    net.train()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), 64):
            idx = order[s:s + 64]
            xb = augment_batch(x[idx], gen) if augment else x[idx]
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
    PLAIN_STEPS.append((time.perf_counter() - t0, time.process_time() - c0))
    return len(y) * epochs


LAST_STEP_SECONDS: list[tuple[float, float]] = []  # brainalign.train's timing of its steps


def brainalign_train(epochs: int, augment: bool) -> int:
    with tempfile.TemporaryDirectory() as out:
        res = ba.train("lenet5", out, epochs=epochs, augment=augment, patience=None, progress=False)
    LAST_STEP_SECONDS.append((float(res.history["seconds"].sum()), float(res.history["cpu_seconds"].sum())))
    return res.config["n_train"] * epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plain_loop(1, False)  # warm-up: imports, allocator, data set
    brainalign_train(1, False)
    for augment in (False, True):
        best = {"plain": float("inf"), "brainalign": float("inf")}
        cpu = dict(best)
        samples = {}
        LAST_STEP_SECONDS.clear()
        PLAIN_STEPS.clear()
        for _ in range(args.rounds):
            for name, fn in (("plain", plain_loop), ("brainalign", brainalign_train)):
                t0, c0 = time.perf_counter(), time.process_time()
                samples[name] = fn(args.epochs, augment)
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], time.process_time() - c0)
        rate = {k: samples[k] / best[k] for k in best}
        crate = {k: samples[k] / cpu[k] for k in cpu}
        n = samples["brainalign"]
        steps = {"plain": n / min(w for w, _ in PLAIN_STEPS),
                 "brainalign": n / min(w for w, _ in LAST_STEP_SECONDS)}
        csteps = {"plain": n / min(c for _, c in PLAIN_STEPS),
                  "brainalign": n / min(c for _, c in LAST_STEP_SECONDS)}
        print(f"augment={augment} (best of {args.rounds}, {args.epochs} epochs, {args.threads} thread(s)):")
        for label, r in (("end to end, wall", rate), ("end to end, CPU", crate),
                         ("training steps only, wall", steps), ("training steps only, CPU", csteps)):
            print(f"  {label:27s} plain {r['plain']:6.0f}  brainalign.train {r['brainalign']:6.0f} "
                  f"samples/s  ratio {r['brainalign'] / r['plain']:.3f}")


if __name__ == "__main__":
    main()
