"""Extraction overhead: brainalign.extract vs a bare forward pass and other ways to record layers.

All 21 conv and linear layers of resnet18, full resolution (224 px), N images, batch 64. Every
method keeps every layer's output for every image (what a scorer needs). Methods run in
rotation, R rounds, and each method's best time is reported, as a ratio to the bare pass.

    python perf/extract_overhead.py [--n 512] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import time

import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import brainalign as ba


def bare(model: nn.Module, batches: list[torch.Tensor], layers: list[str]) -> None:
    with torch.inference_mode():
        for x in batches:
            model(x)


def brainalign_extract(m: ba.BrainModel, x: torch.Tensor, layers: list[str]) -> dict:
    return ba.extract(m, x, layers, batch_size=64, device="cpu")


def feature_extractor(model: nn.Module, batches: list[torch.Tensor], layers: list[str]) -> dict:
    fx = create_feature_extractor(model, return_nodes=layers)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
    with torch.inference_mode():
        for x in batches:
            for k, v in fx(x).items():
                out[k].append(v.flatten(1))
    return {k: torch.cat(v) for k, v in out.items()}


def clone_hooks(model: nn.Module, batches: list[torch.Tensor], layers: list[str]) -> dict:
    mods = dict(model.named_modules())
    out: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
    handles = [mods[k].register_forward_hook(lambda _m, _i, o, k=k: out[k].append(o.detach().clone()))
               for k in layers]
    try:
        with torch.inference_mode():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v).flatten(1) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    m = ba.load_model("torchvision:resnet18", weights="random")
    layers = m.layers_of_type(nn.Conv2d, nn.Linear)
    assert len(layers) == 21
    x = torch.randn(args.n, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    batches = list(x.split(64))
    gb = sum(torch.Size(m.layer_info[k].output_shape).numel() for k in layers) * args.n * 4 / 1e9
    print(f"resnet18, {len(layers)} layers, {args.n} images, batch 64: {gb:.1f} GB of activations; "
          f"torch threads {torch.get_num_threads()}")
    methods = {
        "bare forward pass": lambda: bare(m.module, batches, layers),
        "brainalign.extract": lambda: brainalign_extract(m, x, layers),
        "create_feature_extractor": lambda: feature_extractor(m.module, batches, layers),
        "clone hooks": lambda: clone_hooks(m.module, batches, layers),
    }
    best = dict.fromkeys(methods, float("inf"))
    for r in range(args.rounds):
        for name, fn in methods.items():
            gc.collect()
            t = time.perf_counter()
            res = fn()
            dt = time.perf_counter() - t
            del res
            best[name] = min(best[name], dt)
            print(f"  round {r}: {name:26s} {dt:7.2f} s", flush=True)
    base = best["bare forward pass"]
    print("\nmethod                      best (s)   ratio to bare pass")
    for name, t in best.items():
        print(f"{name:26s} {t:9.2f}   {t / base:6.2f}")


if __name__ == "__main__":
    main()
