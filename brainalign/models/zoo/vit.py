"""A Vision Transformer (Dosovitskiy et al. 2021) whose layers report a chosen token pooling."""

from __future__ import annotations

import torch
from torch import nn

from brainalign.models.zoo.taps import TokenPool


class Block(nn.Module):
    """Pre-norm transformer block: attention and an MLP, each with a residual connection."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Patches → linear embedding + class token + positions → ``depth`` blocks → head.

    Layers: ``patch_embed``; per block ``blocks.<i>`` (every token, (T, D)) and ``tokens.<i>``
    (the pooled token choice: ``token="cls"``, ``"mean"`` over patches, or ``"all"``); the
    default layers are ``tokens.0`` … ``tokens.<depth-1>`` and ``head``.
    """

    def __init__(self, in_channels: int = 3, input_size: int = 32, patch: int = 4, dim: int = 64,
                 depth: int = 4, heads: int = 4, num_classes: int = 10, token: str = "cls",
                 dropout: float = 0.0):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        n = (input_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout=dropout) for _ in range(depth)])
        self.tokens = nn.ModuleList([TokenPool(token) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block, pool in zip(self.blocks, self.tokens, strict=True):
            x = block(x)
            pool(x)  # a recording site only: its output does not feed the next block
        return self.head(self.norm(x)[:, 0])
