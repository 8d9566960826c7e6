"""The one way to make a :class:`BrainModel` from an ``nn.Module``: ``wrap`` and every source
(zoo, file, torchvision, timm, hf) build through :func:`from_module`, so the default
preprocessing, its record in results and the recording mode are the same everywhere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from brainalign.models.base import BrainModel
from brainalign.models.preprocess import ImageTransform, default_normalisation


def from_module(module: nn.Module, name: str, *, source: str = "wrap", input_size: int = 224,
                in_channels: int = 3, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, resize_size: int | None = None,
                interpolation: str = "bilinear",
                preprocess: Callable[[np.ndarray], torch.Tensor] | None = None,
                weights: str = "custom", seed: int | None = None, visual_degrees: float = 8.0,
                mode: str = "eval", revision: str | None = None,
                default_layers: Sequence[str] | None = None,
                example_input: torch.Tensor | None = None,
                extra: dict[str, Any] | None = None, built_here: bool = True) -> BrainModel:
    """A :class:`BrainModel` for ``module``.

    Unless ``preprocess`` is given, images are resized (short side to ``resize_size``, default
    ``input_size``), centre-cropped to ``input_size``, scaled to 0..1 by the one pixel rule of
    :func:`brainalign.data.stimuli.image_array` and normalised by ``mean`` / ``std``: by default
    ImageNet's statistics (:func:`~brainalign.models.preprocess.default_normalisation`), what
    torchvision, timm and Brain-Score models expect. The preprocessing is described in
    ``extra["preprocess"]`` and, in one line, in :meth:`BrainModel.provenance`
    (``preprocessing``).

    Parameters
    ----------
    module
        The network. One the source built itself (``built_here``) is put in eval mode, as
        torchvision's and timm's models are used; a module the user hands over (``wrap``) is
        left as it is: recording sets the mode it needs and restores the module's own.
    name, source, weights, seed, visual_degrees, mode, revision, default_layers, example_input
        As the :class:`BrainModel` attributes.
    input_size, in_channels, mean, std, resize_size, interpolation
        The default image transform's settings.
    preprocess
        A replacement for that transform: one image → (C, H, W) tensor. Give it a
        ``describe()`` method returning a dict to have its settings recorded.
    extra
        Source-specific provenance, kept in ``model.extra``.
    """
    if preprocess is None:
        dmean, dstd = default_normalisation(in_channels)
        preprocess = ImageTransform(resize_size or input_size, input_size,
                                    tuple(mean) if mean is not None else dmean,
                                    tuple(std) if std is not None else dstd,
                                    interpolation=interpolation, channels=in_channels)
    elif mean is not None or std is not None:
        raise TypeError("give either preprocess or mean/std, not both")
    if built_here:
        module.eval()
    info: dict[str, Any] = dict(extra or {})
    describe = getattr(preprocess, "describe", None)
    if callable(describe):
        info["preprocess"] = describe()
    return BrainModel(module=module, name=name, preprocess=preprocess, input_size=input_size,
                      weights=weights, visual_degrees=visual_degrees, seed=seed, source=source,
                      in_channels=in_channels, extra=info, mode=mode, revision=revision,
                      default_layers=list(default_layers) if default_layers is not None else None,
                      example_input=example_input)
