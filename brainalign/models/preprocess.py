"""Turn stimulus images into model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from brainalign.data.stimuli import image_array
from brainalign.errors import StimulusError

# The one default normalisation, for every source that does not bring its own (wrap, zoo, file):
# ImageNet's per-channel statistics, what torchvision, timm and Brain-Score models expect.
# Grayscale networks get their channel average (0.449, 0.226).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Luma weights of ITU-R 601 (what PIL's convert("L") uses): RGB → one channel.
_LUMA = (0.299, 0.587, 0.114)


def default_normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) used when none is given: ImageNet's, averaged over channels for 1 channel."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    m, s = round(sum(IMAGENET_MEAN) / 3, 3), round(sum(IMAGENET_STD) / 3, 3)
    return (m,) * channels, (s,) * channels


def to_float_chw(image: np.ndarray, channels: int = 3) -> torch.Tensor:
    """An image → (C, H, W) float32 tensor in 0..1 with the model's ``channels``.

    Pixel values and layouts follow :func:`brainalign.data.stimuli.image_array` (the one rule);
    gray is replicated to 3 channels, RGB becomes gray by ITU-R 601 luma.
    """
    arr = image_array(image)
    t = torch.from_numpy(arr).permute(2, 0, 1)
    if t.shape[0] != channels:
        if t.shape[0] == 1:
            t = t.expand(channels, -1, -1)
        elif channels == 1:
            t = (t * torch.tensor(_LUMA, dtype=t.dtype).view(3, 1, 1)).sum(0, keepdim=True)
        else:
            raise StimulusError(f"a {t.shape[0]}-channel image for a {channels}-channel model")
    return t.contiguous()


@dataclass(frozen=True)
class ImageTransform:
    """Resize the short side, centre-crop, scale to 0..1, normalise.

    The same steps as torchvision's ``ImageClassification`` preset, applied to numpy images,
    with antialiasing. The parameters are recorded in results.
    """

    resize_size: int
    crop_size: int
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    interpolation: str = "bilinear"
    channels: int = 3

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        t = to_float_chw(image, self.channels).unsqueeze(0)
        h, w = t.shape[-2:]
        scale = self.resize_size / min(h, w)
        size = (max(round(h * scale), self.crop_size), max(round(w * scale), self.crop_size))
        if (h, w) != size:
            t = F.interpolate(t, size=size, mode=self.interpolation,
                              antialias=self.interpolation in ("bilinear", "bicubic"),
                              align_corners=False if self.interpolation != "nearest" else None)
        top = (size[0] - self.crop_size) // 2
        left = (size[1] - self.crop_size) // 2
        t = t[..., top:top + self.crop_size, left:left + self.crop_size]
        mean = torch.tensor(self.mean, dtype=t.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=t.dtype).view(1, -1, 1, 1)
        return ((t - mean) / std)[0]

    def describe(self) -> dict[str, object]:
        """Resize, crop, normalisation and interpolation, for result tables and cache keys."""
        return {"resize_size": self.resize_size, "crop_size": self.crop_size,
                "mean": [float(m) for m in self.mean], "std": [float(v) for v in self.std],
                "interpolation": self.interpolation, "channels": self.channels}
