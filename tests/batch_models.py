"""Tiny models for the batch tests, built by ``factory: tests.batch_models:<name>`` entries."""

from __future__ import annotations

import time

import torch
from torch import nn

from brainalign.models import wrap
from brainalign.models.base import BrainModel


def tiny_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """Two conv layers and a linear read-out on 32-pixel inputs, seeded random weights."""
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    # A private generator, not the global RNG: Dask runs pairs in threads of one process.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else p.numel()
            p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
    return wrap(net, name=f"tiny-{seed}", input_size=32, weights=weights)


def unsaid_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """:func:`tiny_cnn` wrapped without saying its weights or seed, as many users' factories are."""
    model = tiny_cnn(weights, seed)
    return wrap(model.module, name=f"unsaid-{seed}", input_size=32)


def tiny_cnn_slow(weights: str = "random", seed: int = 0) -> BrainModel:
    """:func:`tiny_cnn` that takes a second to build, like weights loaded from a slow disk, so a
    test can stop a batch between two pairs."""
    time.sleep(1.0)
    return tiny_cnn(weights, seed)


def broken_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """A model whose forward pass fails on every input (wrong input channels for its first conv)."""
    model = tiny_cnn(weights, seed)
    model.module[0] = nn.Conv2d(5, 8, 5, stride=2)
    model._layer_info = tiny_cnn(weights, seed).layer_info  # discovered on the working net
    return model


def unloadable_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """A factory that fails while it builds, as one whose own files went missing would."""
    raise FileNotFoundError("unloadable_cnn: its configuration file is gone")


def interrupting_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """A factory interrupted while it builds, as Ctrl-C would interrupt a batch mid-run."""
    raise KeyboardInterrupt


def crashing_cnn(weights: str = "random", seed: int = 0) -> BrainModel:
    """:func:`tiny_cnn` whose process is killed (SIGKILL, as by the OOM killer) when it sees a
    batch of more than 4 images: its layers are found on a small probe, the scoring pass kills it."""
    import os
    import signal

    def die(module: nn.Module, args: tuple) -> None:
        if args[0].shape[0] > 4:
            os.kill(os.getpid(), signal.SIGKILL)

    model = tiny_cnn(weights, seed)
    model.module.register_forward_pre_hook(die)
    return model


def write_quick_benchmark(folder, n_boot: int = 50):
    """kriegeskorte2008.hIT-rsa with a smaller bootstrap, as a YAML file in ``folder``."""
    from pathlib import Path

    import yaml

    from brainalign.benchmarks.spec import find_benchmark

    doc = yaml.safe_load(Path(find_benchmark("kriegeskorte2008.hIT-rsa").path).read_text())
    doc["id"] = "kriegeskorte2008.hIT-rsa-quick"
    doc["statistics"]["bootstrap"]["n"] = n_boot
    path = Path(folder) / f"{doc['id']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
