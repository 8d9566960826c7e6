"""Small CNNs for the offline demo: random weights, or a first layer initialised with Gabors."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brainalign.insilico.gabor import gabor


def small_cnn(seed: int = 0, channels: tuple[int, int, int] = (32, 64, 64)) -> nn.Sequential:
    """Three conv–ReLU stages (7×7 stride 2, then 3×3 with pooling), randomly initialised."""
    g = torch.Generator().manual_seed(seed)
    c1, c2, c3 = channels
    net = nn.Sequential(
        nn.Conv2d(1, c1, 7, stride=2, padding=3), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * np.sqrt(2 / fan_in))
                m.bias.zero_()
    return net


def gabor_bank(n: int, size: int, *, px_per_cycle: tuple[float, ...] = (3.0, 4.5, 7.0),
               seed: int = 0) -> torch.Tensor:
    """``n`` unit-norm Gabor kernels (n, 1, size, size): orientations × wavelengths × even/odd phase."""
    c = np.arange(size) - (size - 1) / 2
    x, y = np.meshgrid(c, -c)
    ks = []
    n_ori = max(1, n // (2 * len(px_per_cycle)))
    for lam in px_per_cycle:
        for o in np.arange(n_ori) * 180 / n_ori:
            for ph in (0.0, 90.0):
                k = gabor(x, y, 0, 0, 0.45 * lam, 0.7 * lam, o, 1 / lam, ph)
                k -= k.mean()
                ks.append(k / np.linalg.norm(k))
    rng = np.random.default_rng(seed)
    while len(ks) < n:  # fill with random Gabors
        lam = rng.choice(px_per_cycle)
        k = gabor(x, y, 0, 0, 0.45 * lam, 0.7 * lam, rng.uniform(0, 180), 1 / lam, rng.uniform(0, 360))
        k -= k.mean()
        ks.append(k / np.linalg.norm(k))
    return torch.tensor(np.stack(ks[:n])[:, None], dtype=torch.float32)


def gabor_cnn(seed: int = 0, channels: tuple[int, int, int] = (32, 64, 64)) -> nn.Sequential:
    """:func:`small_cnn` whose first layer holds a Gabor bank (quadrature pairs over orientations
    and three wavelengths); deeper layers stay random."""
    net = small_cnn(seed, channels)
    conv = net[0]
    with torch.no_grad():
        conv.weight.copy_(gabor_bank(conv.out_channels, conv.kernel_size[0], seed=seed) * 3)
        conv.bias.zero_()
    return net
