"""One factory for every model source: ``load_model("source:name", weights=…)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from brainalign.errors import UnknownModelError
from brainalign.models.base import BrainModel
from brainalign.models.preprocess import ImageTransform


def _torchvision(name: str, weights: str, seed: int) -> BrainModel:
    from brainalign.models.torchvision_source import load_torchvision

    return load_torchvision(name, weights=weights, seed=seed)


def _list_torchvision() -> list[str]:
    from brainalign.models.torchvision_source import list_torchvision_models

    return list_torchvision_models()


# source prefix -> (loader, lister). An explicit table: no discovery by scanning.
SOURCES: dict[str, tuple[Callable[[str, str, int], BrainModel], Callable[[], list[str]]]] = {
    "torchvision": (_torchvision, _list_torchvision),
}


def list_models(source: str | None = None) -> list[str]:
    """Every model id ``"source:name"`` the installed sources offer."""
    out = []
    for prefix, (_, lister) in SOURCES.items():
        if source in (None, prefix):
            out += [f"{prefix}:{n}" for n in lister()]
    return out


def load_model(model_id: str, weights: str = "random", seed: int = 0) -> BrainModel:
    """Load a model by id.

    Parameters
    ----------
    model_id
        ``"source:name"``, e.g. ``"torchvision:alexnet"``.
    weights
        ``"random"``, ``"pretrained"`` or the path of a checkpoint (loaded with
        ``weights_only=True``).
    seed
        Seed of random initialisation.

    Raises
    ------
    UnknownModelError
        An unknown source or name, with close matches suggested.
    """
    source, sep, name = model_id.partition(":")
    if not sep or source not in SOURCES:
        raise UnknownModelError(model_id, [f"{s}:" for s in SOURCES] + list_models())
    loader, _ = SOURCES[source]
    return loader(name, str(weights), seed)


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
