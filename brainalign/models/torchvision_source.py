"""Models from torchvision: random or pretrained weights, or a local checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from brainalign.errors import (
    CheckpointMismatchError,
    ChecksumMismatchError,
    DownloadError,
    UnknownModelError,
    WeightsUnavailableError,
)
from brainalign.models.base import BrainModel, seeded
from brainalign.models.preprocess import ImageTransform


def list_torchvision_models() -> list[str]:
    """Names of torchvision's image classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _weights_enum(name: str):
    import torchvision

    return torchvision.models.get_model_weights(name).DEFAULT


def hub_checkpoint_path(url: str) -> Path:
    """Where torch hub keeps the file of ``url`` (``$TORCH_HOME/hub/checkpoints/<file>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file, loaded with ``weights_only=True`` (no unpickling).

    Accepts a bare state dict or one under ``"state_dict"`` / ``"model"`` (the usual training
    checkpoints) and strips a ``"module."`` prefix left by ``DataParallel``.
    """
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise CheckpointMismatchError(str(path), "?", [], [f"<a {type(obj).__name__}, not a state dict>"])
    return {k.removeprefix("module."): v for k, v in obj.items()}


def apply_checkpoint(module: nn.Module, path: str | os.PathLike[str], arch: str) -> None:
    """Load ``path`` into ``module`` strictly; a key mismatch lists missing and unexpected keys."""
    state = load_checkpoint(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointMismatchError(str(path), arch, missing, unexpected)
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        raise CheckpointMismatchError(
            str(path), arch, [], [f"{k} (shape {tuple(state[k].shape)} vs {tuple(own[k].shape)})" for k in bad])
    module.load_state_dict(state)


def _pretrained_state(name: str) -> dict[str, torch.Tensor]:
    from brainalign.data.fetch import download, sha256_file

    weights = _weights_enum(name)
    url = weights.url
    path = hub_checkpoint_path(url)
    if not path.is_file():
        # torchvision names its files <name>-<first hex digits of their sha256>.pth; as in
        # torch.hub, the digits are checked when the file is downloaded.
        prefix = Path(urlparse(url).path).stem.rsplit("-", 1)[-1]
        tmp = path.with_name(path.name + ".download")
        try:
            download(url, tmp)
        except DownloadError as err:
            raise WeightsUnavailableError(
                f"Pretrained weights for torchvision:{name} are not cached and could not be "
                f"downloaded.\n  file tried: {url}\n  expected in the torch hub cache at: {path}\n"
                f"  reason: {err}\nTo supply them, copy that file to {path} (set TORCH_HOME to move "
                f"the cache), or pass the checkpoint path: load_model('torchvision:{name}', "
                "weights='/path/to/checkpoint.pth')."
            ) from err
        actual = sha256_file(tmp)
        if not actual.startswith(prefix):
            tmp.unlink()
            raise ChecksumMismatchError(url, prefix + "…", actual)
        tmp.replace(path)
    return load_checkpoint(path)


def load_torchvision(name: str, weights: str = "random", seed: int = 0) -> BrainModel:
    """A torchvision model by name.

    Parameters
    ----------
    name
        A torchvision model name, e.g. ``"alexnet"``, ``"resnet18"``, ``"vit_b_16"``.
    weights
        ``"random"`` (initialised from ``seed``), ``"pretrained"`` (the default ImageNet weights,
        from the torch hub cache or downloaded there), or a path to a checkpoint.
    seed
        Seed of the random initialisation; the global RNG is left untouched.
    """
    import torchvision

    known = list_torchvision_models()
    if name not in known:
        raise UnknownModelError(f"torchvision:{name}", [f"torchvision:{k}" for k in known])
    with seeded(seed):
        module = torchvision.models.get_model(name, weights=None)
    if weights == "pretrained":
        module.load_state_dict(_pretrained_state(name))
    elif weights != "random":
        if not Path(weights).is_file():
            raise WeightsUnavailableError(
                f"weights={weights!r} for torchvision:{name} is neither 'random', 'pretrained' "
                "nor an existing checkpoint file")
        apply_checkpoint(module, weights, f"torchvision:{name}")
    preset = _weights_enum(name).transforms()
    crop = int(preset.crop_size[0])
    transform = ImageTransform(
        resize_size=int(preset.resize_size[0]), crop_size=crop, mean=tuple(preset.mean),
        std=tuple(preset.std), interpolation=preset.interpolation.value)
    return BrainModel(module=module, name=f"torchvision:{name}", preprocess=transform,
                      input_size=crop, weights=str(weights), seed=seed if weights == "random" else None,
                      source="torchvision", extra={"preprocess": transform.describe()})
