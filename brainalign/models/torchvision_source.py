"""Models from torchvision: random or pretrained weights, or a local checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch

from brainalign.errors import (
    DownloadError,
    UnknownModelError,
    WeightsUnavailableError,
)
from brainalign.models.base import BrainModel, seeded
from brainalign.models.build import from_module
from brainalign.models.checkpoint import apply_checkpoint, load_checkpoint


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


def _pretrained_state(name: str) -> dict[str, torch.Tensor]:
    from brainalign.data.fetch import download

    weights = _weights_enum(name)
    url = weights.url
    path = hub_checkpoint_path(url)
    if not path.is_file():
        # torchvision names its files <name>-<first hex digits of their sha256>.pth; as in
        # torch.hub, the digits are checked when the file is downloaded.
        prefix = Path(urlparse(url).path).stem.rsplit("-", 1)[-1]
        try:
            download(url, path, sha256_prefix=prefix)
        except DownloadError as err:
            raise WeightsUnavailableError(
                f"Pretrained weights for torchvision:{name} are not cached and could not be "
                f"downloaded.\n  file tried: {url}\n  expected in the torch hub cache at: {path}\n"
                f"  reason: {err}\nTo supply them, copy that file to {path} (set TORCH_HOME to move "
                f"the cache), or pass the checkpoint path: load_model('torchvision:{name}', "
                "weights='/path/to/checkpoint.pth')."
            ) from err
    return load_checkpoint(path)


def load_torchvision(name: str, weights: str = "random", seed: int = 0, mode: str = "eval") -> BrainModel:
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
    return from_module(module, f"torchvision:{name}", source="torchvision",
                       input_size=int(preset.crop_size[0]), resize_size=int(preset.resize_size[0]),
                       mean=tuple(preset.mean), std=tuple(preset.std),
                       interpolation=preset.interpolation.value, weights=str(weights),
                       seed=seed if weights == "random" else None, mode=mode)
