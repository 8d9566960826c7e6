"""Small helpers that let metric functions take numpy arrays or torch tensors.

Torch is never imported here: a tensor can only exist when the caller has imported torch already,
so :func:`is_torch` looks it up in ``sys.modules`` (keeps ``brainalign --help`` and numpy-only use
free of the torch import).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from brainalign.errors import MetricInputError


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def as_torch(a: Any, **kwargs: Any) -> Any:
    """``torch.as_tensor(a, **kwargs)`` for an input a metric only reads. A read-only numpy array
    (a layer handed over by reference while the forward pass still runs) is wrapped without
    torch's warning about writing to it: no metric writes to its inputs."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(a, **kwargs)


def as_float64(x: Any, what: str) -> Any:
    """``x`` as a float64 numpy array, or a float64 tensor on the device it is on."""
    if is_torch(x):
        import torch

        if x.is_complex():
            raise MetricInputError(f"{what}: complex values are not supported")
        return x.detach().to(torch.float64)
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MetricInputError(f"{what}: cannot read as a float array ({e})") from None


def to_numpy(x: Any) -> np.ndarray:
    """A float64 numpy copy (or view) of an array or tensor, on the CPU."""
    if is_torch(x):
        return x.detach().to("cpu").double().numpy()
    return np.asarray(x, dtype=np.float64)


def first_nonfinite(x: Any) -> tuple[int, ...] | None:
    """Index of the first NaN/inf entry, or None when every entry is finite."""
    if is_torch(x):
        import torch

        bad = ~torch.isfinite(x)
        if not bool(bad.any()):
            return None
        return tuple(int(i) for i in torch.nonzero(bad)[0])
    bad = ~np.isfinite(x)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.argwhere(bad)[0])


def check_finite(x: Any, what: str, unit: str = "entry") -> None:
    """Raise :class:`MetricInputError` naming the first NaN/inf entry of ``x``."""
    idx = first_nonfinite(x)
    if idx is not None:
        n_bad = int((~np.isfinite(x)).sum()) if not is_torch(x) else int((~x.isfinite()).sum())
        raise MetricInputError(f"{what}: {n_bad} NaN/inf values (first at {unit} {list(idx)})")
