"""Record a layer's units to physiology stimuli: contrast images → model inputs → unit responses.

A convolutional layer's units are its channels at the centre position of the feature map (the
unit whose receptive field sits at the centre of the field of view, where the stimuli are
placed); a fully connected layer's units are all its outputs (not located spatially, flagged so).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from brainalign.activations.extract import extract, resolve_device
from brainalign.errors import StimulusError, UnitLocationError
from brainalign.models.base import BrainModel, on_device
from brainalign.models.preprocess import ImageTransform


def unit_layout(model: BrainModel, layer: str) -> dict[str, object]:
    """How ``layer``'s units are located: ``{"spatial": bool, "n_units": int, "shape": tuple}``.

    Raises
    ------
    UnitLocationError
        An output that is neither (C, H, W) nor a flat vector (a transformer's token sequence,
        a 3-D volume): which position is "the centre" is not defined.
    """
    name = model.resolve_layers(layer)
    if len(name) != 1:
        raise UnitLocationError(f"{model.name}: {layer!r} names {len(name)} layers; name one layer")
    shape = tuple(model.layer_info[name[0]].output_shape)
    if len(shape) == 3:
        return {"spatial": True, "n_units": shape[0], "shape": shape, "layer": name[0]}
    if len(shape) == 1:
        return {"spatial": False, "n_units": shape[0], "shape": shape, "layer": name[0]}
    raise UnitLocationError(
        f"{model.name}: layer {name[0]!r} has per-stimulus output shape {shape}; in-silico "
        "physiology needs (channels, height, width) maps (each channel is read at the centre) or "
        "a flat vector of units")


def centre_reducer(out: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C) at the centre position; (B, K) unchanged."""
    if out.ndim == 4:
        return out[:, :, out.shape[2] // 2, out.shape[3] // 2]
    if out.ndim == 2:
        return out
    raise UnitLocationError(f"cannot locate units of an output of shape {tuple(out.shape[1:])}")


def input_converter(model: BrainModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping (N, H, W) contrast tensors (-1..1, grey = 0) to the model's input.

    Luminance is ``0.5 + 0.5 * contrast`` in 0..1, replicated over channels and normalised the
    way the model's :class:`ImageTransform` does. The stimuli are rendered at the model's input
    size and fed as they are (no resize or crop), so their degrees are the model's degrees. A
    model with a custom preprocess is given each luminance image through it.
    """
    pre = model.preprocess
    c = int(model.in_channels)
    if isinstance(pre, ImageTransform):
        mean = torch.tensor(pre.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(pre.std, dtype=torch.float32).view(1, -1, 1, 1)

        def convert(x: torch.Tensor) -> torch.Tensor:
            lum = (0.5 + 0.5 * x).unsqueeze(1).expand(-1, c, -1, -1)
            return (lum - mean.to(x.device)) / std.to(x.device)

        return convert

    def convert_custom(x: torch.Tensor) -> torch.Tensor:
        imgs = [pre((0.5 + 0.5 * im).cpu().numpy()) for im in x]
        out = torch.stack(imgs).to(x.device)
        if out.shape[-2:] != x.shape[-2:]:
            raise StimulusError(f"{model.name}: its preprocess changed a {tuple(x.shape[-2:])} stimulus to "
                                f"{tuple(out.shape[-2:])}; stimuli are rendered at the input size")
        return out

    return convert_custom


def record(model: BrainModel, layer: str, images: np.ndarray | torch.Tensor, *, batch_size: int = 128,
           device: str = "auto") -> np.ndarray:
    """Responses (N, units) of ``layer``'s units to (N, H, W) contrast images.

    Raises
    ------
    StimulusError
        Images not of the model's input size.
    UnitLocationError
        A layer whose units cannot be located (see :func:`unit_layout`).
    """
    layout = unit_layout(model, layer)
    images = torch.as_tensor(images, dtype=torch.float32)
    if images.ndim != 3 or images.shape[1:] != (model.input_size, model.input_size):
        raise StimulusError(f"{model.name}: stimuli of shape {tuple(images.shape)}; expected "
                            f"(N, {model.input_size}, {model.input_size}) contrast images")
    dev = resolve_device(device)
    convert = input_converter(model)
    out = np.empty((len(images), layout["n_units"]), np.float32)
    with on_device(model.module, dev):  # moved once, not once per batch; given back after
        for start in range(0, len(images), batch_size):
            x = convert(images[start:start + batch_size].to(dev))
            acts = extract(model, x, [layout["layer"]], batch_size=len(x), device=dev,
                           reducers=centre_reducer)
            out[start:start + len(x)] = acts[layout["layer"]].values
    return out
