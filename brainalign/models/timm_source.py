"""``timm:`` models (needs the ``timm`` extra: ``pip install brainalign[timm]``).

Layer names are timm's module paths (``stem.0``, ``stages.2``, ``blocks.5``, ``head.fc``),
chosen by the generic rule of :attr:`BrainModel.layers`. Preprocessing follows the model's
``pretrained_cfg`` (input size, crop fraction, interpolation, mean, std).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from brainalign.errors import UnknownModelError, WeightsUnavailableError
from brainalign.models.base import BrainModel, seeded
from brainalign.models.build import from_module
from brainalign.models.checkpoint import apply_checkpoint


def _timm():
    try:
        import timm
    except ImportError as err:
        raise ImportError("timm models need the timm package: pip install 'brainalign[timm]'") from err
    return timm


def list_timm_models() -> list[str]:
    """timm's architectures (empty when timm is not installed)."""
    try:
        return sorted(_timm().list_models())
    except ImportError:
        return []


def load_timm(name: str, weights: str = "random", seed: int = 0, **options: Any) -> BrainModel:
    """A timm model by name.

    Parameters
    ----------
    name
        A timm architecture, e.g. ``"resnet18"``, ``"vit_tiny_patch16_224"``.
    weights
        ``"random"``, ``"pretrained"`` (timm's default tag, from the Hugging Face cache or
        downloaded) or a checkpoint path.
    options
        ``mode`` (``"eval"`` / ``"train"``); the rest is passed to ``timm.create_model``
        (``img_size``, ``num_classes``, ``drop_rate``, …).
    """
    timm = _timm()
    mode = options.pop("mode", "eval")
    if not timm.is_model(name):
        raise UnknownModelError(f"timm:{name}", [f"timm:{k}" for k in timm.list_models()])
    with seeded(seed):
        if weights == "pretrained":
            try:
                module = timm.create_model(name, pretrained=True, **options)
            except Exception as err:
                raise WeightsUnavailableError(
                    f"Pretrained weights for timm:{name} are not cached and could not be "
                    f"downloaded ({type(err).__name__}: {err}). Pass a checkpoint instead: "
                    f"load_model('timm:{name}', weights='/path/to/state_dict.pth').") from err
        else:
            module = timm.create_model(name, pretrained=False, **options)
    if weights not in ("random", "pretrained"):
        if not Path(weights).is_file():
            raise WeightsUnavailableError(
                f"weights={weights!r} for timm:{name} is neither 'random', 'pretrained' nor a file")
        apply_checkpoint(module, weights, f"timm:{name}")
    cfg = timm.data.resolve_data_config({}, model=module)
    chans, crop = int(cfg["input_size"][0]), int(cfg["input_size"][-1])
    return from_module(module, f"timm:{name}", source="timm", input_size=crop, in_channels=chans,
                       resize_size=math.floor(crop / cfg.get("crop_pct", 1.0)),
                       mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                       interpolation=cfg.get("interpolation", "bilinear"), weights=str(weights),
                       seed=seed if weights == "random" else None, mode=mode,
                       extra={"timm_options": options})
