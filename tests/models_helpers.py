"""Helpers shared by the tests of models, zoo, text and training."""

from __future__ import annotations

import copy
import dataclasses

import torch


def few_bootstraps(bench, n: int = 50):
    """The same real benchmark (data, stimuli, ceiling) with ``n`` bootstrap samples, for speed."""
    b = copy.copy(bench)
    b.__dict__.pop("_bootstrap", None)
    b.spec = dataclasses.replace(bench.spec, statistics={"bootstrap": {"n": n, "ci": 0.95, "seed": 0}})
    return b


class one_thread:
    """Tiny ops on an oversubscribed machine run far faster on one intra-op thread."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)
