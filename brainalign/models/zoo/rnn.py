"""Recurrent networks that read an image row by row (or a (T, F) sequence step by step)."""

from __future__ import annotations

import torch
from torch import nn

from brainalign.models.zoo.taps import Tap


class RowRNN(nn.Module):
    """A GRU or LSTM over the rows of a (B, C, H, W) input: H steps of C·W features.

    Layers: ``cell`` (``cell="gru"``: a ``GRUCell`` run once per row, so each step is its own
    layer ``cell.t0`` … ``cell.t<H-1>``; the plain name is the last step), or ``lstm`` (the whole
    sequence, (T, hidden), with ``cell="lstm"``); ``last`` (the final hidden state), ``fc``.
    """

    def __init__(self, in_channels: int = 1, input_size: int = 32, hidden: int = 64,
                 num_classes: int = 10, cell: str = "gru", dropout: float = 0.0):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', not {cell!r}")
        self.kind, self.hidden = cell, hidden
        features = in_channels * input_size
        if cell == "gru":
            self.cell = nn.GRUCell(features, hidden)
        else:
            self.lstm = nn.LSTM(features, hidden, batch_first=True)
            self.sequence = Tap()
        self.last = Tap()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.permute(0, 2, 1, 3).flatten(2)  # (B, H, C·W): one row per step
        if self.kind == "gru":
            h = seq.new_zeros(seq.shape[0], self.hidden)
            for t in range(seq.shape[1]):
                h = self.cell(seq[:, t], h)
        else:
            out, _ = self.lstm(seq)
            h = self.sequence(out)[:, -1]
        return self.fc(self.dropout(self.last(h)))
