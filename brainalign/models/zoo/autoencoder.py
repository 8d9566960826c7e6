"""A convolutional autoencoder; its encoder's layers are the ones scored."""

from __future__ import annotations

import torch
from torch import nn


class ConvAutoencoder(nn.Module):
    """``encoder`` (three stride-2 convolutions and a linear code) → ``decoder`` (mirror).

    Layers scored by default: ``encoder.0`` … ``encoder.8`` (the code). ``forward`` returns
    the reconstruction.
    """

    def __init__(self, in_channels: int = 3, input_size: int = 32, width: int = 16, code: int = 64):
        super().__init__()
        w, s = width, input_size // 8
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(4 * w * s * s, code), nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            nn.Linear(code, 4 * w * s * s), nn.ReLU(inplace=True), nn.Unflatten(1, (4 * w, s, s)),
            nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(w, in_channels, 4, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
