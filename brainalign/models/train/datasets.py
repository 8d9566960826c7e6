"""Offline training sets: images as (N, C, S, S) floats normalised as the model's preprocessing does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("digits",)


@dataclass(frozen=True)
class TrainingData:
    """Inputs, labels and what identifies them."""

    name: str
    x: torch.Tensor  # (N, C, S, S) float32, normalised with mean/std
    y: torch.Tensor  # (N,) int64
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.x.numpy().tobytes())
        h.update(self.y.numpy().tobytes())
        return h.hexdigest()


def load_training_data(name: str, input_size: int = 32) -> TrainingData:
    """A data set that needs no download.

    ``"digits"``: scikit-learn's 1,797 handwritten digits (8×8, 10 classes), scaled to 0..1,
    resized to ``input_size`` with antialiasing, then normalised by mean 0.5 / std 0.5 — what
    :class:`~brainalign.models.preprocess.ImageTransform` does to a grayscale image, so a trained
    model sees benchmark stimuli the way it saw its training data.
    """
    if name != "digits":
        raise ValueError(f"unknown training data set {name!r}; known: {list(DATASETS)}")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    if input_size != 8:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", antialias=True,
                          align_corners=False)
    mean, std = (0.5,), (0.5,)
    x = (x - mean[0]) / std[0]
    return TrainingData(name, x.contiguous(), torch.from_numpy(d.target.astype(np.int64)), 10, mean, std)


def augment(x: torch.Tensor, gen: torch.Generator, shift: float = 0.1, degrees: float = 10.0,
            scale: float = 0.1) -> torch.Tensor:
    """Random affine jitter per image (translation, rotation, scale), drawn from ``gen``."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    ang = u[:, 0] * np.deg2rad(degrees)
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * 2 * shift], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Background outside the image is the data's minimum (blank paper), not zero.
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    return F.grid_sample(x - lo, grid, align_corners=False, padding_mode="zeros") + lo
