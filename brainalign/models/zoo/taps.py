"""Recording sites that do not feed the network: token pooling and sequence read-outs."""

from __future__ import annotations

import torch
from torch import nn

TOKEN_MODES = ("cls", "mean", "all", "last")


class TokenPool(nn.Module):
    """Pool a (B, T, D) token sequence into what a layer reports.

    Modes: ``"cls"`` the first token, ``"mean"`` the mean over the other tokens (the patches;
    with ``has_cls=False`` over all tokens), ``"all"`` every token (B, T·D), ``"last"`` the last
    token. A (B, T) ``mask`` (1 = real token) keeps padding out of ``mean`` and ``last`` and
    zeroes it in ``all``.
    """

    def __init__(self, mode: str = "cls", has_cls: bool = True):
        super().__init__()
        if mode not in TOKEN_MODES:
            raise ValueError(f"token mode {mode!r} is not one of {TOKEN_MODES}")
        self.mode, self.has_cls = mode, has_cls

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                has_cls: bool | None = None) -> torch.Tensor:
        has_cls = self.has_cls if has_cls is None else has_cls
        if self.mode == "cls":
            return x[:, 0]
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
        m = mask.to(x.dtype).unsqueeze(-1)
        if self.mode == "all":
            return (x * m).flatten(1)
        if self.mode == "last":
            last = mask.long().sum(1).clamp(min=1) - 1
            return x[torch.arange(x.shape[0], device=x.device), last]
        if has_cls:
            x, m = x[:, 1:], m[:, 1:]
        return (x * m).sum(1) / m.sum(1).clamp(min=1)


class Tap(nn.Module):
    """Identity that is a recording site (``nn.Identity`` is skipped by layer discovery)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
