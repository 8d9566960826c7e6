"""LeNet-5 (LeCun et al. 1998), with ReLU and max pooling as usually trained today."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def lenet5(in_channels: int = 1, input_size: int = 32, num_classes: int = 10,
           dropout: float = 0.0) -> nn.Sequential:
    """conv1 (6@5×5) → pool1 → conv2 (16@5×5) → pool2 → fc1 (120) → fc2 (84) → fc3.

    Layers: ``conv1``, ``relu1``, ``pool1``, ``conv2``, ``relu2``, ``pool2``, ``fc1``, ``relu3``,
    ``fc2``, ``relu4``, ``fc3``. Inputs other than 32 px are pooled to 5×5 before ``fc1``.
    """
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_channels, 6, 5), relu1=nn.ReLU(inplace=True), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(inplace=True), pool2=nn.MaxPool2d(2),
        resize=nn.AdaptiveAvgPool2d(5), flatten=nn.Flatten(),
        fc1=nn.Linear(16 * 5 * 5, 120), relu3=nn.ReLU(inplace=True), drop1=nn.Dropout(dropout),
        fc2=nn.Linear(120, 84), relu4=nn.ReLU(inplace=True), drop2=nn.Dropout(dropout),
        fc3=nn.Linear(84, num_classes),
    ))
