"""Memory and throughput of batch scoring: all 21 conv/linear layers of ResNet-18 on 2,560 images.

Each configuration runs in its own subprocess and reports its peak resident memory
(``ru_maxrss``), so the numbers are side by side from one invocation:

- ``bare``: a bare forward pass of the same batches (no hooks, nothing kept);
- ``stream``: brainalign's streamed recording with a 1 GB activation budget, every layer scored
  (RSA, Spearman) against a synthetic target RDM: the planner must switch the projection on;
- ``full``: the layers whose full-resolution features fit (layer3.*, layer4.*, fc: ≈ 3.9 GB),
  unreduced, for the score difference reduced − unreduced;
- ``batch1`` / ``batch2``: a 4-model batch (hIT benchmark, 92 images) with 1 and 2 local workers.

Stimuli are synthetic (32 categories of smooth colour patterns plus per-image noise, generated
per index on demand, so no configuration holds the image set); the target is the correlation RDM
of a simulated population (a fixed random linear read-out of 16×16 grey images plus noise).

Usage: ``python perf/batch_memory.py [--n 2560] [--out perf/out/batch_memory.json]``
(the hIT data for the throughput part come from ``BRAINALIGN_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
N_CATEGORIES = 32


class SyntheticImages:
    """2,560 (or n) 256×256 RGB images made on demand from their index."""

    def __init__(self, n: int):
        self.n = n
        rng = np.random.default_rng(12345)
        self.bases = rng.uniform(0, 255, (N_CATEGORIES, 8, 8, 3))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        base = np.kron(self.bases[i % N_CATEGORIES], np.ones((32, 32, 1)))
        noise = np.random.default_rng(i).normal(0, 40, (256, 256, 3))
        return np.clip(base + noise, 0, 255).astype(np.uint8)


def stimuli(n: int):
    from brainalign.data import StimulusSet

    return StimulusSet("synthetic", tuple(f"img{i:05d}" for i in range(n)), SyntheticImages(n))


def target_vector(n: int) -> np.ndarray:
    from brainalign.metrics import rdm, upper

    imgs = SyntheticImages(n)
    grey = np.stack([imgs[i].reshape(16, 16, 16, 16, 3).mean(axis=(1, 3, 4)).ravel() for i in range(n)])
    rng = np.random.default_rng(7)
    resp = grey @ rng.normal(size=(256, 100)) + rng.normal(0, 200, (n, 100))
    return upper(rdm(resp))


def resnet():
    import brainalign as ba

    model = ba.load_model("torchvision:resnet18", weights="random", seed=0)
    from torch import nn

    return model, model.layers_of_type(nn.Conv2d, nn.Linear)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


def run_bare(n: int) -> dict:
    import torch

    from brainalign.activations.extract import _batches

    model, _ = resnet()
    stim = stimuli(n)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _, _, x in _batches(stim, model, BATCH):
            model.module(x)
    return {"seconds": time.perf_counter() - t0}


def _score_stream(n: int, layers, **kw) -> dict:
    from brainalign.activations import stream_layers
    from brainalign.metrics import compare_rdms, rdm, upper

    model, all_layers = resnet()
    layers = layers or all_layers
    target = target_vector(n)
    t0 = time.perf_counter()
    stream = stream_layers(model, stimuli(n), layers, batch_size=BATCH, device="cpu", **kw)
    plan = stream.plan
    scores = {}
    for layer, da in stream:
        scores[layer] = float(compare_rdms(upper(rdm(da.values)), target, "spearman"))
        del da
    return {"seconds": time.perf_counter() - t0, "scores": scores, "n_layers": len(layers),
            "full_gb": plan.full_bytes / 1e9, "planned_peak_gb": plan.peak_bytes / 1e9,
            "groups": len(plan.groups), "notes": plan.notes}


def run_stream(n: int) -> dict:
    return _score_stream(n, None, memory_budget="1GB")


def run_full(n: int) -> dict:
    _, layers = resnet()
    fit = [name for name in layers if name.startswith(("layer3", "layer4", "fc"))]
    return _score_stream(n, fit, memory_budget="6GB", adapt=False)


def run_batch_workers(workers: int) -> dict:
    from brainalign.runner import ModelEntry, run_batch
    from brainalign.runner.progress import BatchProgress
    from tests.batch_models import write_quick_benchmark

    tmp = Path(os.environ["PERF_TMP"])
    quick = write_quick_benchmark(tmp, n_boot=100)
    models = [ModelEntry(id="torchvision:resnet18", seed=s, label=f"resnet18-s{s}",
                         layers=("conv1", "layer1.1", "layer2.1"))
              for s in range(4)]
    t0 = time.perf_counter()
    report = run_batch(models, [str(quick)], tmp / f"out{workers}", workers=workers,
                       progress=BatchProgress(open(os.devnull, "w")), device="cpu")
    assert report.ok, report.failures
    return {"seconds": time.perf_counter() - t0, "rows": len(report.table),
            "table": report.table[["model", "layer", "raw"]].to_dict("records")}


def child(config: str, n: int) -> None:
    t0 = time.perf_counter()
    if config == "bare":
        out = run_bare(n)
    elif config == "stream":
        out = run_stream(n)
    elif config == "full":
        out = run_full(n)
    else:
        out = run_batch_workers(int(config[-1]))
    out.update(config=config, n=n, peak_rss_gb=peak_rss_gb(), wall_s=time.perf_counter() - t0)
    print("RESULT " + json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2560)
    ap.add_argument("--configs", default="bare,stream,full,batch1,batch2")
    ap.add_argument("--out", default=str(REPO / "perf" / "out" / "batch_memory.json"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n)
        return
    import tempfile

    results = {}
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        env["PERF_TMP"] = tmp
        for config in args.configs.split(","):
            p = subprocess.run([sys.executable, __file__, "--child", config, "--n", str(args.n)],
                               env=env, capture_output=True, text=True)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if p.returncode or not line:
                results[config] = {"error": p.stderr[-2000:], "returncode": p.returncode}
            else:
                results[config] = json.loads(line[-1][7:])
            r = results[config]
            print(f"{config:7s} peak RSS {r.get('peak_rss_gb', float('nan')):6.2f} GB  "
                  f"time {r.get('seconds', float('nan')):7.1f} s  {r.get('notes', r.get('error', ''))}",
                  flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    if "stream" in results and "full" in results and "scores" in results["full"]:
        red, full = results["stream"]["scores"], results["full"]["scores"]
        diffs = {k: red[k] - full[k] for k in full}
        print("layer                      unreduced  reduced  difference")
        for k, d in diffs.items():
            print(f"{k:26s} {full[k]:9.4f} {red[k]:8.4f} {d:+10.4f}")
        results["score_difference"] = diffs
    if "batch1" in results and "batch2" in results and "seconds" in results["batch2"]:
        ratio = results["batch1"]["seconds"] / results["batch2"]["seconds"]
        print(f"4-model batch: 1 worker {results['batch1']['seconds']:.1f} s, 2 workers "
              f"{results['batch2']['seconds']:.1f} s: speed-up {ratio:.2f}x")
        results["speedup_2_workers"] = ratio
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
