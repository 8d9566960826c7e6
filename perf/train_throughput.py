"""Training throughput: brainalign.train vs a plain PyTorch loop of the same model, same run.

LeNet-5 on scikit-learn's digits (32 px, 1,437 training images after the 20 % validation split),
batch 64, SGD + Nesterov momentum, cosine schedule, E epochs. The plain loop does only the
training steps; brainalign.train also evaluates the validation split, writes a checkpoint and
updates the history every epoch (the progress bar is off in both). Methods run in rotation,
R rounds; each method's best time is reported. Samples/s = training samples × epochs / wall time,
and per CPU second (one thread: CPU time is the work done, less sensitive to a busy machine).

    python perf/train_throughput.py [--epochs 5] [--rounds 3] [--threads 1]
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
    return len(y) * epochs


LAST_STEP_SECONDS: list[float] = []  # brainalign.train's own timing of its training steps


def brainalign_train(epochs: int, augment: bool) -> int:
    with tempfile.TemporaryDirectory() as out:
        res = ba.train("lenet5", out, epochs=epochs, augment=augment, patience=None, progress=False)
    LAST_STEP_SECONDS.append(float(res.history["seconds"].sum()))
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
        for _ in range(args.rounds):
            for name, fn in (("plain", plain_loop), ("brainalign", brainalign_train)):
                t0, c0 = time.perf_counter(), time.process_time()
                samples[name] = fn(args.epochs, augment)
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], time.process_time() - c0)
        rate = {k: samples[k] / best[k] for k in best}
        steps = samples["brainalign"] / min(LAST_STEP_SECONDS)
        print(f"augment={augment}: plain {rate['plain']:.0f} samples/s, brainalign.train "
              f"{rate['brainalign']:.0f} samples/s end to end (ratio "
              f"{rate['brainalign'] / rate['plain']:.3f}; its training steps alone {steps:.0f} "
              f"samples/s, ratio {steps / rate['plain']:.3f}) (best of {args.rounds}, "
              f"{args.epochs} epochs, {args.threads} thread(s))")
        crate = {k: samples[k] / cpu[k] for k in cpu}
        print(f"  by CPU time (less sensitive to other load): plain {crate['plain']:.0f}, "
              f"brainalign.train {crate['brainalign']:.0f} samples/CPU-s, ratio "
              f"{crate['brainalign'] / crate['plain']:.3f}")


if __name__ == "__main__":
    main()
