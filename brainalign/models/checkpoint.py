"""Checkpoint files, for every model source: read without running code, checked against the
architecture, with brainalign's own errors.

Every checkpoint is read with ``torch.load(..., weights_only=True)``: only tensors and plain
containers are rebuilt, and a pickle that would import or call anything is refused. A file that
cannot be read (empty, truncated, text, a pickle carrying code) raises
:class:`~brainalign.errors.CheckpointError` saying which and how to write a usable one.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brainalign.errors import CheckpointError, CheckpointMismatchError

_HOW = "save the weights as a state dict: torch.save(model.state_dict(), path)"


def read_checkpoint(path: str | os.PathLike[str], *, mmap: bool = False) -> Any:
    """The object stored in ``path``, rebuilt from tensors and plain containers only; ``mmap``:
    its tensors mapped from the file, not read (a legacy, non-zip file is read whole).

    Raises
    ------
    CheckpointError
        An empty, truncated or non-checkpoint file, or one that carries code.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as err:
        raise CheckpointError(f"checkpoint {p} cannot be read: {err.strerror or err}") from None
    if size == 0:
        raise CheckpointError(f"checkpoint {p} is empty (0 bytes); {_HOW}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol chatter from torch's safe unpickler
            return torch.load(p, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        if mmap:  # torch maps only its zip format: read the file whole (and say what is wrong)
            return read_checkpoint(p)
        raise CheckpointError(f"checkpoint {p} ({size} bytes) {_why(err)}; {_HOW}") from None


def _why(err: Exception) -> str:
    # torch's own messages suggest unsafe loading; say what is wrong in our words instead.
    text = str(err)
    if isinstance(err, EOFError):
        return "ends early: it is truncated"
    if "zip archive" in text or "central directory" in text:
        return "is truncated or corrupt (not a complete PyTorch zip archive)"
    if "Weights only load failed" in text or "Unsupported global" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        what = f" (it refers to {found.group(1)})" if found else ""
        return (f"holds Python objects beyond tensors{what}; brainalign never runs code from a "
                "checkpoint")
    return f"is not a PyTorch checkpoint (reading it failed with {type(err).__name__})"


def checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``"meta"`` dict of a brainalign checkpoint (empty for a bare state dict); the tensors
    are mapped, not read, so asking a list of large checkpoints for their names is cheap."""
    obj = read_checkpoint(path, mmap=True)
    meta = obj.get("meta") if isinstance(obj, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file (see :func:`read_checkpoint`).

    Accepts a bare state dict or one under ``"state_dict"`` / ``"model"`` /
    ``"model_state_dict"`` (the usual training checkpoints) and strips a ``"module."`` prefix
    left by ``DataParallel``.
    """
    obj = read_checkpoint(path)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict of "
                              f"tensors; {_HOW}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def apply_checkpoint(module: nn.Module, path: str | os.PathLike[str], arch: str) -> None:
    """Load ``path`` into ``module`` strictly; a mismatch lists the missing and unexpected keys
    and the keys of other shapes, all at once."""
    state = load_checkpoint(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
              for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(str(path), arch, missing, unexpected, shapes)
    module.load_state_dict(state)
