"""One factory for every model source: ``load_model("source:name", weights=…)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from brainalign.errors import UnknownModelError
from brainalign.models.base import BrainModel
from brainalign.models.preprocess import ImageTransform


def _torchvision(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.torchvision_source import load_torchvision

    if options:
        raise TypeError(f"torchvision:{name} takes no options, got {sorted(options)}")
    return load_torchvision(name, weights=weights, seed=seed)


def _list_torchvision() -> list[str]:
    from brainalign.models.torchvision_source import list_torchvision_models

    return list_torchvision_models()


def _zoo(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.zoo_source import load_zoo

    return load_zoo(name, weights, seed, **options)


def _list_zoo() -> list[str]:
    from brainalign.models.zoo_source import list_zoo_models

    return list_zoo_models()


def _file(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.file_source import load_file

    return load_file(name, weights, seed, **options)


def _timm(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.timm_source import load_timm

    return load_timm(name, weights, seed, **options)


def _list_timm() -> list[str]:
    from brainalign.models.timm_source import list_timm_models

    return list_timm_models()


def _hf(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.hf_source import load_hf

    return load_hf(name, weights, seed, **options)


def _list_hf() -> list[str]:
    from brainalign.models.hf_source import list_hf_models

    return list_hf_models()


# source prefix -> (loader, lister). An explicit table: no discovery by scanning.
# Layer names per source: torchvision / zoo / file = module paths (``features.0``, ``layer1.0``),
# recurrent calls ``<module>.t<k>``; timm = timm's module paths (``blocks.3``, ``stages.1``);
# hf = ``hidden.<i>`` (embeddings = 0, block i = i) pooled as asked, see hf_source.
SOURCES: dict[str, tuple[Callable[..., BrainModel], Callable[[], list[str]]]] = {
    "torchvision": (_torchvision, _list_torchvision),
    "zoo": (_zoo, _list_zoo),
    "file": (_file, list),
    "timm": (_timm, _list_timm),
    "hf": (_hf, _list_hf),
}


def list_models(source: str | None = None) -> list[str]:
    """Every model id ``"source:name"`` the installed sources offer."""
    out = []
    for prefix, (_, lister) in SOURCES.items():
        if source in (None, prefix):
            out += [f"{prefix}:{n}" for n in lister()]
    return out


def load_model(model_id: str, weights: str = "random", seed: int = 0, **options: Any) -> BrainModel:
    """Load a model by id.

    Parameters
    ----------
    model_id
        ``"source:name"``: ``"torchvision:alexnet"``, ``"zoo:cornet_rt"``, ``"timm:resnet18"``,
        ``"hf:sentence-transformers/all-MiniLM-L6-v2"`` (or ``"hf:/local/dir"``),
        ``"file:runs/x/epoch_005.pt"`` or ``"file:zoo:lenet5"`` / ``"file:pkg.mod:build"`` with
        ``weights=<checkpoint>``.
    weights
        ``"random"``, ``"pretrained"`` or the path of a checkpoint (loaded with
        ``weights_only=True``).
    seed
        Seed of random initialisation.
    options
        Source-specific options: ``input_size``, ``in_channels``, architecture options
        (``zoo``, ``file``), ``pooling`` and ``max_length`` (``hf`` text), ….

    Raises
    ------
    UnknownModelError
        An unknown source or name, with close matches suggested.
    """
    source, sep, name = model_id.partition(":")
    if not sep or source not in SOURCES:
        # Listing every source would import timm and transformers: suggest from the cheap ones.
        cheap = [f"{s}:" for s in SOURCES] + list_models("torchvision") + list_models("zoo")
        raise UnknownModelError(model_id, cheap + [f"{s}:{name}" for s in SOURCES])
    loader, _ = SOURCES[source]
    return loader(name, str(weights), seed, **options)


def wrap(module: nn.Module, name: str, input_size: int = 224, *, in_channels: int = 3,
         mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
         preprocess: Callable[[np.ndarray], torch.Tensor] | None = None,
         weights: str = "custom", visual_degrees: float = 8.0) -> BrainModel:
    """Wrap any ``nn.Module`` that takes (N, C, H, W) images.

    Parameters
    ----------
    module
        The network.
    name
        Name recorded in results.
    input_size
        Side of the square input in pixels; images are resized (short side) and centre-cropped.
    in_channels
        1 for grayscale networks, 3 for RGB.
    mean, std
        Per-channel normalisation; ImageNet's for 3 channels and (0.5, 0.5) for 1 by default.
    preprocess
        A full replacement for the default transform: one image array → (C, H, W) tensor.
    """
    if preprocess is None:
        mean = mean if mean is not None else ((0.485, 0.456, 0.406) if in_channels == 3 else (0.5,))
        std = std if std is not None else ((0.229, 0.224, 0.225) if in_channels == 3 else (0.5,))
        preprocess = ImageTransform(input_size, input_size, tuple(mean), tuple(std),
                                    channels=in_channels)
    extra = {"preprocess": preprocess.describe()} if isinstance(preprocess, ImageTransform) else {}
    return BrainModel(module=module, name=name, preprocess=preprocess, input_size=input_size,
                      weights=weights, visual_degrees=visual_degrees, source="wrap",
                      in_channels=in_channels, extra=extra)
