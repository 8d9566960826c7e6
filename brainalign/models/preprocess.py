"""Turn stimulus images into model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def to_float_chw(image: np.ndarray, channels: int = 3) -> torch.Tensor:
    """(H, W) or (H, W, C) uint8/float image → (C, H, W) float32 tensor in 0..1."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
    else:
        t = torch.as_tensor(arr, dtype=torch.float32)
    if t.ndim == 2:
        t = t.unsqueeze(-1)
    if t.ndim != 3:
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {arr.shape}")
    t = t.permute(2, 0, 1)
    if t.shape[0] == 4:  # RGBA: drop alpha
        t = t[:3]
    if t.shape[0] != channels:
        t = t.mean(0, keepdim=True).expand(channels, -1, -1) if t.shape[0] in (1, 3) else t
    return t.contiguous()


@dataclass(frozen=True)
class ImageTransform:
    """Resize the short side, centre-crop, scale to 0..1, normalise.

    The same steps as torchvision's ``ImageClassification`` preset, applied to numpy images,
    with antialiasing. The parameters are recorded in results.
    """

    resize_size: int
    crop_size: int
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)
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
        return {"resize_size": self.resize_size, "crop_size": self.crop_size,
                "mean": list(self.mean), "std": list(self.std), "interpolation": self.interpolation}
