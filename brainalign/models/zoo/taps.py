"""Recording sites that do not feed the network: token pooling and sequence read-outs."""

from __future__ import annotations

import torch
from torch import nn

TOKEN_MODES = ("cls", "mean", "all", "last")


class TokenPool(nn.Module):
    """Pool a (B, T, D) token sequence into what a layer reports.

    Modes: ``"cls"`` the first real token, ``"mean"`` the mean over the other real tokens (the
    patches; with ``has_cls=False`` over all real tokens), ``"all"`` every token (B, T·D), padding
    zeroed, ``"last"`` the last real token. Real tokens are where the (B, T) ``mask`` is 1, on
    either side of padding (left- or right-padding tokenizers); no mask: every token is real.
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
        rows = torch.arange(x.shape[0], device=x.device)
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
        real = mask > 0
        # Token positions come from the mask whatever the padding side: with left padding the
        # first real token (the CLS) is not at 0, and the last is always at T - 1.
        pos = torch.arange(x.shape[1], device=x.device).expand_as(real)
        if self.mode == "cls":
            first = torch.where(real, pos, x.shape[1]).amin(1).clamp(max=x.shape[1] - 1)
            return x[rows, first]
        m = mask.to(x.dtype).unsqueeze(-1)
        if self.mode == "all":
            return (x * m).flatten(1)
        if self.mode == "last":
            last = torch.where(real, pos, -1).amax(1).clamp(min=0)
            return x[rows, last]
        if has_cls:  # leave out the first real token
            first = torch.where(real, pos, x.shape[1]).amin(1, keepdim=True)
            m = m * (pos != first).unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1)


class Tap(nn.Module):
    """Identity that is a recording site (``nn.Identity`` is skipped by layer discovery)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
