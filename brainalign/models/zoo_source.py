"""``zoo:`` models: the architectures of :mod:`brainalign.models.zoo`, random or from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brainalign.errors import UnknownModelError, WeightsUnavailableError
from brainalign.models.base import BrainModel, seeded
from brainalign.models.build import from_module
from brainalign.models.checkpoint import apply_checkpoint


def list_zoo_models() -> list[str]:
    from brainalign.models.zoo import ZOO

    return sorted(ZOO)


def load_zoo(name: str, weights: str = "random", seed: int = 0, **options: Any) -> BrainModel:
    """A zoo architecture by name (see :mod:`brainalign.models.zoo` for names and layers).

    Parameters
    ----------
    name
        e.g. ``"lenet5"``, ``"vit"``, ``"cornet_rt"``.
    weights
        ``"random"`` (initialised from ``seed``) or the path of a checkpoint (``weights_only``).
    seed
        Seed of the random initialisation; the global RNG is left untouched.
    options
        ``input_size`` (default 32), ``in_channels`` (default 3), ``mean``, ``std`` (default
        ImageNet's, as for every source), ``mode``, and the constructor's own options
        (``width``, ``dropout``, ``token``,
        ``times``, …).
    """
    from brainalign.models.zoo import ZOO, build

    if name not in ZOO:
        raise UnknownModelError(f"zoo:{name}", [f"zoo:{k}" for k in ZOO])
    input_size = int(options.pop("input_size", 32))
    in_channels = int(options.pop("in_channels", 3))
    mean, std = options.pop("mean", None), options.pop("std", None)
    mode = options.pop("mode", "eval")
    arch_opts = dict(options)
    if "input_size" in _accepted(name):
        arch_opts["input_size"] = input_size
    with seeded(seed):
        module = build(name, in_channels=in_channels, **arch_opts)
    if weights == "pretrained":
        raise WeightsUnavailableError(
            f"zoo:{name} has no published pretrained weights; train it with `brainalign train "
            f"--arch {name}` and pass a checkpoint: load_model('zoo:{name}', weights='epoch_010.pt')")
    if weights != "random":
        if not Path(weights).is_file():
            raise WeightsUnavailableError(
                f"weights={weights!r} for zoo:{name} is neither 'random' nor an existing checkpoint file")
        apply_checkpoint(module, weights, f"zoo:{name}")
    return from_module(module, f"zoo:{name}", source="zoo", weights=str(weights),
                       seed=seed if weights == "random" else None, input_size=input_size,
                       in_channels=in_channels, mean=mean, std=std, mode=mode,
                       default_layers=ZOO[name].default_layers,
                       extra={"arch": f"zoo:{name}", "arch_options": {"in_channels": in_channels,
                                                                      **arch_opts}})


def _accepted(name: str) -> list[str]:
    from brainalign.models.zoo import options_of

    return options_of(name)
