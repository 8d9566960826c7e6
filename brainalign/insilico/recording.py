"""Record a layer's units to physiology stimuli: contrast images → model inputs → unit responses.

A convolutional layer's units are its channels at the centre position of the feature map (the
unit whose receptive field sits at the centre of the field of view, where the stimuli are
placed); a fully connected layer's units are all its outputs (not located spatially, flagged so).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from brainalign.activations.extract import extract
from brainalign.device import DeviceLike, resolve_device
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


class CentreUnits:
    """Reducer keeping each channel's centre unit: (B, C, H, W) → (B, C) at the centre position
    (the unit whose receptive field sits where the stimuli are centred); (B, K) unchanged.
    Describes itself, so its outputs can be cached."""

    def __repr__(self) -> str:
        return "CentreUnits()"

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        if out.ndim == 4:
            return out[:, :, out.shape[2] // 2, out.shape[3] // 2]
        if out.ndim == 2:
            return out
        raise UnitLocationError(f"cannot locate units of an output of shape {tuple(out.shape[1:])}")

    def describe(self) -> dict[str, object]:
        return {"kind": "centre_unit", "note": "each channel at the centre position of its map "
                "(flat layers: every unit)"}

    def output_features(self, shape: tuple[int, ...]) -> int:
        return int(shape[0]) if len(shape) in (1, 3) else int(np.prod(shape))


centre_reducer = CentreUnits()
"""(B, C, H, W) → (B, C) at the centre position; (B, K) unchanged (a :class:`CentreUnits`)."""


def _normalised(lum: torch.Tensor, channels: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, H, W) luminance → (N, C, H, W) normalised input: the one conversion of physiology
    stimuli for a model with an :class:`ImageTransform` (its resize and crop are skipped)."""
    lum = lum.unsqueeze(1).expand(-1, channels, -1, -1)
    return (lum - mean.to(lum.device)) / std.to(lum.device)


def _mean_std(pre: ImageTransform) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor(pre.mean, dtype=torch.float32).view(1, -1, 1, 1),
            torch.tensor(pre.std, dtype=torch.float32).view(1, -1, 1, 1))


def _custom_input(model: BrainModel, lum: np.ndarray) -> torch.Tensor:
    out = model.preprocess(lum)
    if tuple(out.shape[-2:]) != tuple(lum.shape[-2:]):
        raise StimulusError(f"{model.name}: its preprocess changed a {tuple(lum.shape[-2:])} stimulus to "
                            f"{tuple(out.shape[-2:])}; stimuli are rendered at the input size")
    return out


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
        mean, std = _mean_std(pre)

        def convert(x: torch.Tensor) -> torch.Tensor:
            return _normalised(0.5 + 0.5 * x, c, mean, std)

        return convert

    def convert_custom(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([_custom_input(model, (0.5 + 0.5 * im).cpu().numpy()) for im in x]).to(x.device)

    return convert_custom


class PhysiologyInput:
    """The preprocess of :func:`physiology_view`: one luminance image (H, W) in 0..1, rendered at
    the model's input size, → the model's (C, H, W) input, by the same rule as
    :func:`input_converter` (normalised as the model's :class:`ImageTransform` does, without its
    resize and crop; a custom preprocess is applied as it is).

    Raises
    ------
    StimulusError
        An image not of the model's input size.
    """

    def __init__(self, model: BrainModel):
        self.model, self.pre, self.channels = model, model.preprocess, int(model.in_channels)
        self._ms = _mean_std(self.pre) if isinstance(self.pre, ImageTransform) else None

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        lum = np.asarray(image, dtype=np.float32)
        size = self.model.input_size
        if lum.shape != (size, size):
            raise StimulusError(f"{self.model.name}: physiology stimulus of shape {lum.shape}; expected "
                                f"({size}, {size}) luminance images rendered at the input size")
        if self._ms is None:
            return _custom_input(self.model, lum)
        return _normalised(torch.from_numpy(lum)[None], self.channels, *self._ms)[0]

    def describe(self) -> dict[str, object]:
        base = self.pre.describe() if isinstance(self.pre, ImageTransform) else {
            "custom": f"{getattr(self.pre, '__module__', '')}.{type(self.pre).__qualname__}"}
        base = {k: v for k, v in base.items() if k not in ("resize_size", "crop_size", "interpolation")}
        return {"physiology": "luminance 0.5 + 0.5 * contrast at the input size, no resize or crop",
                **base}


def physiology_view(model: BrainModel) -> BrainModel:
    """``model`` with :class:`PhysiologyInput` as its preprocess: the same module, weights, layers
    and name, for recording gratings rendered at the input size (in the model's own degrees)
    through :func:`brainalign.activations.stream_layers` and its cache (the preprocess is part
    of the cache key, so these entries never mix with the model's own)."""
    _ = (model.layer_info, model.weights_hash)  # found once here; replace() copies them to the view
    pre = PhysiologyInput(model)
    return dataclasses.replace(model, preprocess=pre, extra={**model.extra, "preprocess": pre.describe()})


def record(model: BrainModel, layer: str, images: np.ndarray | torch.Tensor, *, batch_size: int = 128,
           device: DeviceLike = "auto") -> np.ndarray:
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
