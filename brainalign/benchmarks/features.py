"""Bounding the size of layer features before a regression: spatial average pooling per batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class SpatialPool:
    """Average-pool a layer's output on a coarser grid so it has at most ``max_features`` values.

    A (B, C, H, W) map with C·H·W > ``max_features`` is pooled to g × g with
    g = ⌊√(max_features / C)⌋ (at least 1: global pooling); a (B, N, D) token sequence is pooled
    along N; anything else, or anything small enough, is passed on unchanged. Runs on the device,
    per batch, inside :func:`brainalign.extract`, so memory stays bounded.
    """

    def __init__(self, max_features: int):
        self.max_features = int(max_features)

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        size = math.prod(out.shape[1:])
        if size <= self.max_features:
            return out
        if out.ndim == 4:
            g = max(1, math.isqrt(self.max_features // max(out.shape[1], 1)))
            return F.adaptive_avg_pool2d(out, (min(g, out.shape[2]), min(g, out.shape[3])))
        if out.ndim == 3:
            n = max(1, self.max_features // max(out.shape[2], 1))
            return F.adaptive_avg_pool1d(out.transpose(1, 2), min(n, out.shape[1])).transpose(1, 2)
        return out

    def __repr__(self) -> str:
        return f"SpatialPool(max_features={self.max_features})"

    def describe(self) -> dict[str, object]:
        """What this reducer computes, for cache keys and result provenance."""
        return {"kind": "spatial_average_pool", "max_features": self.max_features,
                "text": f"spatial average pooling to at most {self.max_features} features per layer"}

    def output_features(self, shape: tuple[int, ...]) -> int:
        """Features out for one stimulus' layer output of ``shape`` (no batch axis): what the
        memory plan counts."""
        size = math.prod(shape)
        if size <= self.max_features:
            return size
        if len(shape) == 3:
            g = max(1, math.isqrt(self.max_features // max(shape[0], 1)))
            return shape[0] * min(g, shape[1]) * min(g, shape[2])
        if len(shape) == 2:
            n = max(1, self.max_features // max(shape[1], 1))
            return min(n, shape[0]) * shape[1]
        return size
