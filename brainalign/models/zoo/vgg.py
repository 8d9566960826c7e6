"""VGG (Simonyan & Zisserman 2015): stacks of 3×3 convolutions between max pools."""

from __future__ import annotations

from torch import nn

CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"],
    "vgg16": [1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M"],
}


class VGG(nn.Module):
    """VGG with channel widths ``width`` × (1, 2, 4, 8) (64 = the original).

    Layers follow torchvision's names: ``features.<i>`` (conv, batch norm, ReLU, pool) and
    ``classifier.<i>``.
    """

    def __init__(self, config: str = "vgg11", in_channels: int = 3, num_classes: int = 10,
                 width: int = 8, batch_norm: bool = True, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for v in CONFIGS[config]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            layers.append(nn.Conv2d(c, int(v) * width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v) * width))
            layers.append(nn.ReLU(inplace=True))
            c = int(v) * width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(c, 8 * width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(8 * width, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))
