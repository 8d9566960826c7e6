"""The torch device a run uses: one reading of ``device=`` for every entry point.

``"auto"`` is the device of the first tensor given (a metric on tensors already on a GPU stays
there), else the first CUDA GPU when there is one, else the CPU. A device this machine does not
have is refused here, before any data is read or any model moved, with the devices it does have.
"""

from __future__ import annotations

import torch

from brainalign.errors import DeviceUnavailableError

DeviceLike = str | torch.device | None
"""What ``device=`` takes everywhere: ``"auto"`` (or None), ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``,
``"mps"``, or a ``torch.device``; read by :func:`resolve_device`."""

DEVICE_CHOICES = "auto (CUDA when available, else CPU), cpu, cuda, cuda:<index> or mps"


def _named(text: str) -> torch.device:
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        hint = " (did you mean 'cuda'?)" if kind in ("gpu", "cuda0", "nvidia") else ""
        raise DeviceUnavailableError(f"{text!r} is not a device{hint}; use {DEVICE_CHOICES}")
    return torch.device("cpu" if kind == "cpu" else text)  # "cpu:0" is the one CPU device tensors report


def check_device(device: torch.device) -> torch.device:
    """``device`` when this machine has it (a bare ``cuda`` stays bare), else
    :class:`~brainalign.errors.DeviceUnavailableError` naming what is available."""
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceUnavailableError("'mps' is not available on this machine (Apple GPUs only); "
                                         "use 'cpu' or 'auto'")
    elif device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "torch finds no usable CUDA GPU here (driver, CUDA_VISIBLE_DEVICES?)")
            raise DeviceUnavailableError(f"{str(device)!r} asked for a GPU: {why}; use 'cpu' (or 'auto')")
        n = torch.cuda.device_count()
        if device.index is not None and device.index >= n:
            raise DeviceUnavailableError(f"{str(device)!r}: this machine has {n} CUDA device(s), "
                                         f"cuda:0…cuda:{n - 1}")
    elif device.type != "cpu":
        raise DeviceUnavailableError(f"{str(device)!r} is not a device brainalign runs on; use {DEVICE_CHOICES}")
    return device


def resolve_device(device: DeviceLike = "auto", *like: object) -> torch.device:
    """The ``torch.device`` for ``device``: ``"auto"`` (or None), ``"cpu"``, ``"cuda"``,
    ``"cuda:<i>"``, ``"mps"`` (any case) or a ``torch.device``.

    ``like``: arrays or tensors the run works on; with ``"auto"``, the first tensor's device wins.

    Raises
    ------
    DeviceUnavailableError
        A name that is no device, or a device this machine does not have (no GPU, an index past
        the last GPU, MPS off Apple hardware).
    """
    if isinstance(device, torch.device):
        return check_device(device)
    text = "auto" if device is None else str(device).strip().lower()
    if text == "auto":
        tensor = next((a for a in like if isinstance(a, torch.Tensor)), None)
        if tensor is not None:
            return tensor.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(_named(text))
