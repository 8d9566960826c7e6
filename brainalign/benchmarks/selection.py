"""An honest best layer: choose it on development stimuli, report it on held-out stimuli.

Picking the best of many layers on the same stimuli that score it inflates the score (the
maximum of noisy estimates is biased upwards). Each benchmark therefore also scores every layer
on two disjoint parts of its stimuli: ``dev_score`` (used only to choose) and ``heldout_score``
(reported for the chosen layer). :attr:`ScoreResult.best` uses them when they are present.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DevSplit:
    """A split of stimulus positions into a development and a held-out part."""

    dev: tuple[int, ...]
    heldout: tuple[int, ...]
    seed: int
    fraction: float
    unit: str = "stimulus"  # "stimulus" positions, or cross-validation "fold" indices

    def describe(self, ids: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        out = asdict(self)
        if ids is not None and self.unit == "stimulus":
            out["dev_ids"] = [ids[i] for i in self.dev]
            out["heldout_ids"] = [ids[i] for i in self.heldout]
        return out


def dev_split(n: int, *, fraction: float = 0.5, seed: int = 0, unit: str = "stimulus") -> DevSplit:
    """A seeded random split of ``n`` items: ``round(fraction * n)`` for development."""
    if n < 2:
        raise ValueError(f"a development split needs at least 2 items, got {n}")
    k = min(max(1, round(fraction * n)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return DevSplit(tuple(sorted(int(i) for i in perm[:k])), tuple(sorted(int(i) for i in perm[k:])),
                    seed, fraction, unit)


def selection_settings(statistics: dict[str, Any]) -> tuple[float, int]:
    """(fraction, seed) of the development split from a benchmark's ``statistics.layer_selection``."""
    s = statistics.get("layer_selection", {})
    return float(s.get("dev_fraction", 0.5)), int(s.get("seed", 0))
