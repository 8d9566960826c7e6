"""A multilayer perceptron over the pixels."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn


def mlp(in_channels: int = 1, input_size: int = 32, hidden: tuple[int, ...] = (256, 128),
        num_classes: int = 10, dropout: float = 0.0) -> nn.Sequential:
    """Flatten → (Linear → ReLU → Dropout) per hidden width → Linear.

    Layers: ``fc1``, ``relu1``, …, ``fc<k+1>`` (the logits).
    """
    parts: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    width = in_channels * input_size * input_size
    for i, h in enumerate(hidden, 1):
        parts[f"fc{i}"] = nn.Linear(width, h)
        parts[f"relu{i}"] = nn.ReLU(inplace=True)
        parts[f"drop{i}"] = nn.Dropout(dropout)
        width = h
    parts[f"fc{len(hidden) + 1}"] = nn.Linear(width, num_classes)
    return nn.Sequential(parts)
