"""What each metric means: its direction, range and how a ceiling normalises it.

Benchmarks read these declarations instead of hard-coding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricSpec:
    """Declared semantics of a metric.

    Attributes
    ----------
    name
        Identifier used in benchmark YAML files.
    higher_is_better
        True when larger values mean more brain-like.
    range
        (low, high) the raw value can take.
    normalisation
        ``"divide"``: normalised = raw / ceiling; ``"none"``: no ceiling applies.
    description
        One line for tables and reports.
    """

    name: str
    higher_is_better: bool
    range: tuple[float, float]
    normalisation: Literal["divide", "none"]
    description: str


METRICS: dict[str, MetricSpec] = {
    "rsa": MetricSpec("rsa", True, (-1.0, 1.0), "divide",
                      "similarity of model and brain RDMs, averaged over subjects"),
    "ridge": MetricSpec("ridge", True, (-1.0, 1.0), "divide",
                        "held-out Pearson r of ridge predictions (α per neuroid by inner CV), median over "
                        "neuroids; ceiling √(Spearman–Brown split-half reliability)"),
    "pls": MetricSpec("pls", True, (-1.0, 1.0), "divide",
                      "held-out Pearson r of 25-component PLS predictions, median over neuroids; "
                      "ceiling √(Spearman–Brown split-half reliability)"),
}


def metric_spec(name: str) -> MetricSpec:
    """The declaration of metric ``name``."""
    from brainalign.errors import BenchmarkDefinitionError

    try:
        return METRICS[name]
    except KeyError:
        raise BenchmarkDefinitionError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None
