"""``file:`` models: a checkpoint plus an architecture (a zoo or torchvision name, or a Python
entry point ``module:callable``).

``load_model("file:runs/digits/epoch_003.pt")``
    A checkpoint written by :func:`brainalign.train`: its metadata names the architecture, its
    options and its preprocessing.
``load_model("file:zoo:lenet5", weights="ckpt.pt")`` / ``"file:torchvision:resnet18"``
    A named architecture and a checkpoint of its state dict.
``load_model("file:mypkg.nets:build_net", weights="ckpt.pt", input_size=64)``
    Any callable returning an ``nn.Module`` (called with the remaining options) or a
    :class:`BrainModel`; the module is imported because the user named it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainalign.errors import UnknownModelError, WeightsUnavailableError
from brainalign.models.base import BrainModel, seeded
from brainalign.models.torchvision_source import apply_checkpoint


def checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """The ``"meta"`` dict of a brainalign checkpoint (empty for a bare state dict)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def load_file(name: str, weights: str = "random", seed: int = 0, **options: Any) -> BrainModel:
    """Load a ``file:`` model (see the module docstring for the three forms)."""
    from brainalign.models.registry import SOURCES, load_model

    if Path(name).suffix in (".pt", ".pth", ".ckpt") or Path(name).is_file():
        if not Path(name).is_file():
            raise WeightsUnavailableError(f"checkpoint file {name!r} does not exist")
        meta = checkpoint_metadata(name)
        arch = meta.get("arch")
        if not arch:
            raise WeightsUnavailableError(
                f"checkpoint {name} records no architecture (no meta['arch']); name one: "
                f"load_model('file:zoo:lenet5', weights={name!r}) or 'file:<module>:<callable>'")
        opts = {**meta.get("arch_options", {}), **options}
        model = load_model(f"file:{arch}", weights=name, seed=seed, **opts)
        model.name = meta.get("name", f"file:{Path(name).stem}")
        model.extra["checkpoint_meta"] = {k: v for k, v in meta.items() if k != "history"}
        return model
    source, sep, rest = name.partition(":")
    if sep and source in SOURCES and source != "file":
        model = load_model(name, weights=weights, seed=seed, **options)
        model.source = f"file+{model.source}"
        return model
    if not sep:
        raise UnknownModelError(
            f"file:{name}", ["file:zoo:" + n for n in _zoo_names()] + ["file:<path.pt>",
                                                                       "file:<module>:<callable>"])
    return _entry_point(source, rest, weights, seed, **options)


def _zoo_names() -> list[str]:
    from brainalign.models.zoo import ZOO

    return list(ZOO)


def _entry_point(module_name: str, attr: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.zoo_source import image_model

    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise UnknownModelError(f"file:{module_name}:{attr}", []) from err
    input_size = int(options.pop("input_size", 224))
    in_channels = int(options.pop("in_channels", 3))
    mean, std = options.pop("mean", None), options.pop("std", None)
    with seeded(seed):
        built = fn(**options)
    if isinstance(built, BrainModel):
        module, model = built.module, built
    elif isinstance(built, nn.Module):
        module, model = built, None
    else:
        raise TypeError(f"{module_name}:{attr} returned a {type(built).__name__}, not an nn.Module")
    if weights not in ("random", "custom"):
        if not Path(weights).is_file():
            raise WeightsUnavailableError(f"weights={weights!r} for file:{module_name}:{attr} is not "
                                          "'random' nor an existing checkpoint file")
        apply_checkpoint(module, weights, f"{module_name}:{attr}")
    if model is not None:
        model.weights, model.source = str(weights), "file"
        return model
    return image_model(module, f"file:{module_name}:{attr}", source="file", weights=str(weights),
                       seed=seed if weights == "random" else None, input_size=input_size,
                       in_channels=in_channels, mean=mean, std=std,
                       extra={"arch": f"{module_name}:{attr}", "arch_options": options})
