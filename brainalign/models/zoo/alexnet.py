"""A compact AlexNet (Krizhevsky et al. 2012): five convolutions, three fully connected layers."""

from __future__ import annotations

from torch import nn


class AlexNet(nn.Module):
    """AlexNet's layout at a width and input size a CPU trains in minutes.

    Layers follow torchvision's names: ``features.0`` … ``features.12``, ``classifier.1`` …
    ``classifier.6``; ``width`` scales the channels (64 = torchvision's first layer).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 dropout: float = 0.5):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 5, stride=2, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 3 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(3 * w, 6 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(4 * w * 4, 16 * w), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(16 * w, 16 * w), nn.ReLU(inplace=True),
            nn.Linear(16 * w, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
