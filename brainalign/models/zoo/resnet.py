"""A residual network (He et al. 2016) of basic blocks, CIFAR style."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and a shortcut; the block's ReLU runs twice (``relu.t0``, ``relu.t1``)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet(nn.Module):
    """``conv1`` → ``layer1`` … ``layer<k>`` (``blocks`` basic blocks each, widths doubling) →
    ``avgpool`` → ``fc``. ``blocks=(2, 2, 2, 2)`` with ``width=64`` is ResNet-18's layout."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16,
                 blocks: tuple[int, ...] = (1, 1, 1), dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        c = width
        for i, n in enumerate(blocks, 1):
            out = width * 2 ** (i - 1)
            stage = [BasicBlock(c, out, 1 if i == 1 else 2)] + [BasicBlock(out, out) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            c = out
        self.n_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(1, self.n_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))
