"""Cost of a layer × layer CKA matrix between two resnet18s beside recording both models once.

Two randomly initialised resnet18s (seeds 0 and 1), their 21 conv and linear layers, N random
images (224 px), batch 64, one torch thread unless --threads. Methods, each in a fresh process
(so peak RSS is its own), in rotation for R rounds:

- ``record``: both models' 21 layers streamed once with the same memory plan compare_models uses,
  each layer's activations dropped as soon as it is handed over (the floor: forward passes and
  copying hooks);
- ``cka``: ``brainalign.compare_models(a, b, x, metric="cka")`` (the 21 × 21 matrix);
- ``cka32``: the same with ``precision="float32"`` Gram products (checked against ``cka``).

Reported: each method's best wall time, its peak RSS, the ratio cka / record, and the load
average. Results checked equal: the CKA matrix is the same in every round, and a separate run
recomputes a few entries from scratch with ``brainalign.metrics.cka`` on the layers' activations.

    python perf/similarity_cost.py [--n 1000] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time


def _setup(n: int, threads: int):
    import torch
    from torch import nn

    import brainalign as ba

    torch.set_num_threads(threads)
    a = ba.load_model("torchvision:resnet18", weights="random", seed=0)
    b = ba.load_model("torchvision:resnet18", weights="random", seed=1)
    layers = a.layers_of_type(nn.Conv2d, nn.Linear)
    assert len(layers) == 21
    x = torch.rand(n, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    x = (x - 0.45) / 0.225
    return ba, a, b, layers, x


def worker(method: str, n: int, threads: int, check: bool) -> dict:
    ba, a, b, layers, x = _setup(n, threads)
    from brainalign.activations.stream import LayerStream
    from brainalign.similarity import GRAM_SCORING_FACTOR, _budget, compare_models, plan_memory

    compare_models(a, b, x[:8], metric="cka", layers_a=layers[-2:], layers_b=layers[-2:], device="cpu")  # warm-up
    out: dict = {"method": method}
    t = time.perf_counter()
    if method == "record":
        budget = _budget("auto", n * n * 8 * (len(layers) + 2))
        for m in (b, a):
            plan = plan_memory(m, layers, n, budget=budget, scoring_factor=GRAM_SCORING_FACTOR)
            for _layer, acts in LayerStream(m, x, plan, batch_size=64, device="cpu", progress=False,
                                            cache=None, stimulus_ids=None, on_layer=None):
                del acts
            out.setdefault("groups", []).append(len(plan.groups))
    else:
        sim = compare_models(a, b, x, metric="cka", layers_a=layers, layers_b=layers, device="cpu",
                             precision="float32" if method == "cka32" else "float64")
        out["seconds"] = time.perf_counter() - t
        out["values"] = sim.values.tolist()
        out["sha256"] = hashlib.sha256(sim.values.tobytes()).hexdigest()[:16]
        out["diagonal"] = [round(float(v), 4) for v in sim.values.diagonal()]
        out["notes"] = sim.attrs["notes"]
        if check:  # a few entries from scratch, one pair of layers at a time
            pairs = [(layers[0], layers[0]), (layers[10], layers[12]), (layers[-1], layers[-1])]
            worst = 0.0
            for la, lb in pairs:
                X = ba.extract(a, x, [la], device="cpu")[la].values
                Y = ba.extract(b, x, [lb], device="cpu")[lb].values
                worst = max(worst, abs(ba.metrics.cka(X, Y) - float(sim.sel(layer_a=la, layer_b=lb))))
            out["max_abs_diff_vs_metrics_cka"] = worst
    out.setdefault("seconds", time.perf_counter() - t)
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", choices=["record", "cka", "cka32"])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.threads, args.check)))
        return
    print(f"resnet18 × resnet18 (random, seeds 0/1), 21 conv+linear layers, {args.n} images, "
          f"batch 64, {args.threads} torch thread(s); load average {os.getloadavg()}", flush=True)
    runs: dict[str, list[dict]] = {"record": [], "cka": [], "cka32": []}
    for r in range(args.rounds):
        for method in runs:
            cmd = [sys.executable, __file__, "--worker", method, "--n", str(args.n),
                   "--threads", str(args.threads)]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res = json.loads(proc.stdout.splitlines()[-1])
            runs[method].append(res)
            print(f"  round {r}: {method:6s} {res['seconds']:8.1f} s   peak RSS {res['peak_rss_gb']:.2f} GB"
                  + (f"   matrix {res['sha256']}" if method != "record" else ""), flush=True)
    # the from-scratch check in its own process, so that it does not inflate the timed runs' RSS
    cmd = [sys.executable, __file__, "--worker", "cka", "--check", "--n", str(args.n),
           "--threads", str(args.threads)]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    checked = json.loads(proc.stdout.splitlines()[-1])
    hashes = {r["sha256"] for r in runs["cka"]} | {checked["sha256"]}
    assert len(hashes) == 1, f"CKA matrix differs between rounds: {hashes}"
    first = checked
    assert first["max_abs_diff_vs_metrics_cka"] < 1e-6, first
    import numpy as np

    f32_err = max(float(np.abs(np.array(r["values"]) - np.array(checked["values"])).max()) for r in runs["cka32"])
    assert f32_err < 1e-4, f32_err
    best = {m: min(r["seconds"] for r in v) for m, v in runs.items()}
    rss = {m: max(r["peak_rss_gb"] for r in v) for m, v in runs.items()}
    print(f"\nload average after: {os.getloadavg()}")
    print(f"record both models once : {best['record']:8.1f} s   peak RSS {rss['record']:.2f} GB   "
          f"(groups per model {runs['record'][0]['groups']})")
    print(f"21 × 21 linear CKA      : {best['cka']:8.1f} s   peak RSS {rss['cka']:.2f} GB")
    print(f"21 × 21 CKA, float32    : {best['cka32']:8.1f} s   peak RSS {rss['cka32']:.2f} GB   "
          f"(max |diff| vs float64 {f32_err:.1e})")
    print(f"ratio cka / record      : {best['cka'] / best['record']:.2f} (time), "
          f"{rss['cka'] / rss['record']:.2f} (peak RSS); float32: {best['cka32'] / best['record']:.2f}, "
          f"{rss['cka32'] / rss['record']:.2f}")
    print(f"checks: same matrix in all {args.rounds} rounds and the check run; "
          f"max |diff| vs metrics.cka on 3 pairs "
          f"{first['max_abs_diff_vs_metrics_cka']:.1e}; diagonal {first['diagonal']}")
    print(f"plan notes: {first['notes'] or 'none'}")


if __name__ == "__main__":
    main()
