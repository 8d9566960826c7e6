"""A recurrent convolutional network in the manner of CORnet-RT (Kubilius et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn


class RecurrentArea(nn.Module):
    """One area: input convolution, plus a recurrent 3×3 convolution of its own previous state.

    Called once per time step; step k is recorded as ``<area>.t<k>``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv_input = nn.Conv2d(c_in, c_out, 3, stride, 1)
        self.norm_input = nn.GroupNorm(4, c_out)
        self.conv_state = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm_state = nn.GroupNorm(4, c_out)
        self.nonlin = nn.ReLU(inplace=True)

    def forward(self, inp: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm_input(self.conv_input(inp))
        if state is not None:
            x = x + self.norm_state(self.conv_state(state))
        return self.nonlin(x)


class CORnetRT(nn.Module):
    """Areas ``V1`` → ``V2`` → ``V4`` → ``IT``, unrolled for ``times`` steps, then ``decoder``.

    At every step each area takes the current output of the area below and its own state. Layers
    per area and step: ``V1.t0`` … ``IT.t<times-1>`` (the default layers); ``decoder`` reads IT's
    last state.
    """

    AREAS = ("V1", "V2", "V4", "IT")

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16, times: int = 3):
        super().__init__()
        self.times = times
        c = in_channels
        for i, area in enumerate(self.AREAS):
            out = width * 2 ** i
            setattr(self, area, RecurrentArea(c, out, 2))
            c = out
        self.decoder = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: dict[str, torch.Tensor | None] = dict.fromkeys(self.AREAS)
        for _ in range(self.times):
            inp = x
            for area in self.AREAS:
                states[area] = getattr(self, area)(inp, states[area])
                inp = states[area]
        return self.decoder(states["IT"])
