"""GPU end to end: extraction + every metric for resnet50 vs the device's bare forward throughput.

resnet50 (random weights, seed 0) records every default layer (``model.layers``) of N images,
each layer average-pooled on the device to at most 4,096 features (the regression benchmarks'
``SpatialPool``), into tensors that stay on the device (``extract(..., keep_on_device=True)``).
Each layer is then scored there against synthetic neural data made on the device (100 neuroids:
a random linear read-out of the last layer plus noise, and their correlation RDM):

* RSA: correlation RDM of the layer (``rdm``) vs the neural RDM, Spearman (``compare_rdms``);
* CKA (linear) between the layer and the neural responses (``cka``);
* ridge encoding (``encoding_score``, 5 folds, per-neuroid α by exact LOO);
* PLS(25) encoding (``encoding_score(model="pls")``).

Only the per-layer results come back to the host (a few numbers per layer). The images are made
on the device, so the bare pass measures the model, not a data loader. Rounds alternate the bare
forward pass and the end-to-end run after a warm-up; the table gives the median and the ratio.
``--check`` (on by default with ``--small``) also recomputes every metric from the host copies
of the activations (the default ``extract``) and asserts that the values agree.

    python perf/gpu_end_to_end.py                     # 10,000 images at 224 px on the GPU
    python perf/gpu_end_to_end.py --small             # 20 images at 32 px (CI; tests run this)

Measured on one NVIDIA H200 (2026-11-30, torch 2.11.0+cu130, 2 rounds after a warm-up, load 3.7):

    resnet50 (random), 21 layers pooled to <= 4096 features, 10000 images at 224 px, batch 250
      bare forward                   1.34 s    1.00x   (7457 images/s)
      extract + every metric        17.41 s   12.98x   ( 574 images/s)

The metrics, not the recording, take most of it: per layer a 10,000 × 10,000 RDM and its Spearman
comparison, CKA, 5-fold ridge with per-neuroid α and 5-fold PLS(25), for 21 layers. The same run's
``--check`` at 2,000 images compared the device's scores with a CPU *re-extraction* and failed on
ridge (median r off by up to 2.2e-4): the CPU and cuDNN's TF32 convolutions give activations
~1e-3 apart (that check passed), and ridge passes the difference on. The check now scores the
device's own activations on the host, so it tests the metric paths alone; that version has run on
the CPU only (the device was not lent again this session). CPU, ``--small``, shared 2-core
machine under load ~8: it runs and the checks pass (times are meaningless at that size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
import torch

import brainalign as ba
from brainalign.benchmarks.features import SpatialPool
from brainalign.device import resolve_device
from brainalign.metrics import cka, compare_rdms, encoding_score, rdm


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def neural_data(last: torch.Tensor, n_neuroids: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(stimulus × neuroid) responses: a random read-out of ``last`` plus noise; and their RDM."""
    g = torch.Generator(device=last.device).manual_seed(seed)
    X = last.double()
    W = torch.randn(X.shape[1], n_neuroids, generator=g, device=last.device, dtype=torch.float64)
    S = (X - X.mean(0)) @ W
    Y = S / S.std(0) + torch.randn(S.shape, generator=g, device=last.device, dtype=torch.float64)
    return Y, rdm(Y)


def score_layers(acts: dict[str, Any], Y: Any, target: Any, folds: int) -> dict[str, np.ndarray]:
    """Every metric on every layer; arrays or tensors in, (layer,) host arrays out."""
    out: dict[str, list[Any]] = {"rsa": [], "cka": [], "ridge": [], "pls": []}
    with warnings.catch_warnings():  # random weights, synthetic data: α at the grid's end is expected
        warnings.simplefilter("ignore", UserWarning)
        for X in acts.values():
            _score_layer(X, Y, target, folds, out)
    return {k: np.array([float(v) for v in vs]) for k, vs in out.items()}  # the one transfer


def _score_layer(X: Any, Y: Any, target: Any, folds: int, out: dict[str, list[Any]]) -> None:
    k = min(25, X.shape[1], X.shape[0] * (folds - 1) // folds - 1)  # PLS needs k < training stimuli
    out["rsa"].append(compare_rdms(rdm(X), target, "spearman"))
    out["cka"].append(cka(X, Y))
    out["ridge"].append(np.nanmedian(encoding_score(X, Y, cv=folds).r))
    out["pls"].append(np.nanmedian(encoding_score(X, Y, model="pls", cv=folds, n_components=k).r))


def run(n: int = 10_000, size: int = 224, batch: int = 250, device: str = "auto", rounds: int = 3,
        check: bool = False, n_neuroids: int = 100, folds: int = 5) -> dict[str, Any]:
    dev = resolve_device(device)
    model = ba.load_model("torchvision:resnet50", weights="random", seed=0)
    layers = model.layers
    module = model.module.to(dev).eval()
    x = torch.randn(n, 3, size, size, generator=torch.Generator(device=dev).manual_seed(0), device=dev)
    pool = SpatialPool(4096)

    def bare() -> None:
        with torch.inference_mode():
            for b in x.split(batch):
                module(b)
        sync(dev)

    state: dict[str, Any] = {}

    def end_to_end() -> dict[str, np.ndarray]:
        acts = ba.extract(model, x, layers, batch_size=batch, device=dev, reducers=pool, keep_on_device=True)
        if "Y" not in state:  # the neural data are made once, from the first run's last layer
            state["Y"], state["target"] = neural_data(acts[layers[-1]], n_neuroids)
        res = score_layers(acts, state["Y"], state["target"], folds)
        sync(dev)
        return res

    # warm-up: kernels, cuDNN autotuning, allocator, first linear-algebra calls
    with torch.inference_mode():
        module(x[: min(batch, n)])
    result = end_to_end()
    times: dict[str, list[float]] = {"bare forward": [], "extract + every metric": []}
    for r in range(rounds):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for name in order:
            t0 = time.perf_counter()
            bare() if name == "bare forward" else end_to_end()
            times[name].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"device": str(dev), "n": n, "size": size, "batch": batch, "layers": len(layers),
                           "times": times, "result": result}
    if check:
        host = ba.extract(model, x.cpu(), layers, batch_size=batch, device="cpu", reducers=pool)
        mine = ba.extract(model, x, layers, batch_size=batch, device=dev, reducers=pool, keep_on_device=True)
        for k in layers:
            a, b = mine[k].cpu().numpy(), host[k].values
            tol = 0 if dev.type == "cpu" else 1e-3 * max(1.0, float(np.abs(b).max()))
            if not np.allclose(a, b, rtol=0, atol=tol):
                raise AssertionError(f"{k}: activations kept on {dev} differ from the host copy")
        # The metrics' check uses the device's own activations copied to the host, so it compares
        # the metric code paths only: activations recorded on the CPU differ from cuDNN's (TF32
        # convolutions) by up to ~1e-3, which moved the ridge r of the H200 run by 2e-4.
        ref = score_layers({k: v.cpu().numpy() for k, v in mine.items()}, state["Y"].cpu().numpy(),
                           state["target"].cpu().numpy(), folds)
        tol = 1e-8 if dev.type == "cpu" else 1e-4
        for k in result:
            if not np.allclose(result[k], ref[k], rtol=tol, atol=tol, equal_nan=True):
                raise AssertionError(f"{k}: scores on {dev} {result[k]} differ from the host's {ref[k]}")
        out["checked"] = True
    return out


def report(out: dict[str, Any]) -> None:
    t = {k: statistics.median(v) for k, v in out["times"].items()}
    base = t["bare forward"]
    print(f"resnet50 (random), {out['layers']} layers pooled to <= 4096 features, {out['n']} images at "
          f"{out['size']} px, batch {out['batch']}, on {out['device']}; load "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    for k, v in t.items():
        print(f"  {k:26s} {v:8.2f} s  {v / base:6.2f}x   ({out['n'] / v:8.0f} images/s)")
    for k, v in out["result"].items():
        print(f"  {k:6s} per layer: {np.round(v, 3).tolist()}")
    if out.get("checked"):
        print("  checked: activations and every metric equal the host computation")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="20 images at 32 px, checked (CI)")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if args.small:
        out = run(20, 32, 10, args.device, rounds=1, check=True, n_neuroids=10, folds=2)
    else:
        out = run(args.n, args.size, args.batch, args.device, args.rounds, check=args.check)
    report(out)
    return out


if __name__ == "__main__":
    main()
