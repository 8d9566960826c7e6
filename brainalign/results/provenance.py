"""What a score needs to be reproduced: versions of everything that computed it."""

from __future__ import annotations

import platform
from importlib import metadata


def versions() -> dict[str, str]:
    """Versions of brainalign, Python and the numerical stack."""
    out = {"python": platform.python_version()}
    for pkg in ("brainalign", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def versions_string() -> str:
    """Versions as one ``name=version`` string for a table column."""
    return ";".join(f"{k}={v}" for k, v in versions().items())
