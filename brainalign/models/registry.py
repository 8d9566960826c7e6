"""One factory for every model source: ``load_model("source:name", weights=…)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from brainalign.errors import UnknownModelError
from brainalign.models.base import BrainModel
from brainalign.models.build import from_module


def _torchvision(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.torchvision_source import load_torchvision

    extra = set(options) - {"mode"}
    if extra:
        raise TypeError(f"torchvision:{name} takes no options but mode, got {sorted(extra)}")
    return load_torchvision(name, weights=weights, seed=seed, **options)


def _list_torchvision() -> list[str]:
    from brainalign.models.torchvision_source import list_torchvision_models

    return list_torchvision_models()


def _zoo(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.zoo_source import load_zoo

    return load_zoo(name, weights, seed, **options)


def _list_zoo() -> list[str]:
    from brainalign.models.zoo_source import list_zoo_models

    return list_zoo_models()


def _file(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.file_source import load_file

    # The registry hands the file source its loader: the file source never imports the registry.
    return load_file(name, weights, seed, load=load_model, sources=tuple(SOURCES), **options)


def _timm(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.timm_source import load_timm

    return load_timm(name, weights, seed, **options)


def _list_timm() -> list[str]:
    from brainalign.models.timm_source import list_timm_models

    return list_timm_models()


def _hf(name: str, weights: str, seed: int, **options: Any) -> BrainModel:
    from brainalign.models.hf_source import load_hf

    return load_hf(name, weights, seed, **options)


def _list_hf() -> list[str]:
    from brainalign.models.hf_source import list_hf_models

    return list_hf_models()


# source prefix -> (loader, lister). An explicit table: no discovery by scanning.
# Layer names per source: torchvision / zoo / file = module paths (``features.0``, ``layer1.0``),
# recurrent calls ``<module>.t<k>``; timm = timm's module paths (``blocks.3``, ``stages.1``);
# hf = ``hidden.<i>`` (embeddings = 0, block i = i) pooled as asked, see hf_source.
SOURCES: dict[str, tuple[Callable[..., BrainModel], Callable[[], list[str]]]] = {
    "torchvision": (_torchvision, _list_torchvision),
    "zoo": (_zoo, _list_zoo),
    "file": (_file, list),
    "timm": (_timm, _list_timm),
    "hf": (_hf, _list_hf),
}


# One line per source on how to name a model, for `brainalign list models|sources`.
SOURCE_HELP: dict[str, str] = {
    "torchvision": "torchvision:<name>  torchvision's image classifiers (alexnet, resnet18, vit_b_16, …); "
                   "--weights random|pretrained|<checkpoint>",
    "zoo": "zoo:<name>  brainalign's own small architectures (lenet5, cornet_rt, vit, …); "
           "random or a checkpoint from `brainalign train`",
    "file": "file:<checkpoint.pt> (written by `brainalign train`), file:<source>:<name> with --weights "
            "<checkpoint>, or your own code: file:<module>:<callable> / file:./mynet.py:<callable> "
            "(the working directory is importable)",
    "timm": "timm:<name>  any timm architecture (needs `pip install brainalign[timm]`)",
    "hf": "hf:<hub id or folder>  Hugging Face transformers vision/text encoders (needs "
          "`pip install brainalign[hf]`); layers hidden.<i>",
}


def list_sources() -> list[str]:
    """One line per model source: how to name a model of it (sources that take any name too)."""
    return [SOURCE_HELP.get(s, f"{s}:<name>") for s in SOURCES]


def suggest_models(model_id: str) -> list[str]:
    """Real model ids close to ``model_id``, de-duplicated: the same name in other sources first
    (``foo:alexnet`` → ``torchvision:alexnet``, ``zoo:alexnet``), then close spellings. Sources
    whose listing is expensive (timm, hf) are not searched."""
    import difflib

    _, sep, name = model_id.partition(":")
    name = name if sep else model_id
    known = list_models("torchvision") + list_models("zoo") + list_models("hf")
    same = [k for k in known if k.partition(":")[2].lower() == name.lower()]
    names = sorted({k.partition(":")[2] for k in known})
    near = [k for n in difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            for k in known if k.partition(":")[2] == n]
    close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.6)
    return list(dict.fromkeys(same or near + close))[:6]


# Sources whose names are a fixed list, cheap to read: an id is checked against it before a run.
CATALOGUED = ("torchvision", "zoo")


def unknown_model(model_id: str) -> UnknownModelError | None:
    """The :class:`UnknownModelError` loading ``model_id`` would raise, found without loading
    anything: an unknown source, or a name missing from torchvision's or the zoo's list. None
    when the id may load (timm, hf and file names are checked by loading)."""
    source, sep, name = model_id.partition(":")
    if not sep or source not in SOURCES:
        note = "Model ids are <source>:<name>; the sources:\n" + "\n".join(
            f"  {line}" for line in list_sources())
        return UnknownModelError(model_id, suggestions=suggest_models(model_id), note=note)
    if source in CATALOGUED and name not in SOURCES[source][1]():
        return UnknownModelError(model_id, suggestions=suggest_models(model_id))
    return None


def list_models(source: str | None = None) -> list[str]:
    """Every model id ``"source:name"`` the installed sources offer."""
    out = []
    for prefix, (_, lister) in SOURCES.items():
        if source in (None, prefix):
            out += [f"{prefix}:{n}" for n in lister()]
    return out


def load_model(model_id: str, weights: str | None = None, seed: int = 0, **options: Any) -> BrainModel:
    """Load a model by id.

    Parameters
    ----------
    model_id
        ``"source:name"``: ``"torchvision:alexnet"``, ``"zoo:cornet_rt"``, ``"timm:resnet18"``,
        ``"hf:sentence-transformers/all-MiniLM-L6-v2"`` (or ``"hf:/local/dir"``),
        ``"file:runs/x/epoch_005.pt"`` or ``"file:zoo:lenet5"`` / ``"file:pkg.mod:build"`` with
        ``weights=<checkpoint>``.
    weights
        ``"random"`` (None: the default), ``"pretrained"`` or the path of a checkpoint (loaded with
        ``weights_only=True``). A checkpoint id (``file:<path>.pt``) carries its weights: it takes
        none.
    seed
        Seed of random initialisation.
    options
        Source-specific options: ``input_size``, ``in_channels``, architecture options
        (``zoo``, ``file``), ``pooling`` and ``max_length`` (``hf`` text), ….

    Raises
    ------
    UnknownModelError
        An unknown source or name, with close matches suggested.
    CheckpointError
        ``weights`` given for a checkpoint id (they would be ignored).
    """
    source, sep, name = model_id.partition(":")
    if not sep or source not in SOURCES:
        raise unknown_model(model_id)
    from brainalign.models.file_source import is_checkpoint_id

    if weights is not None and is_checkpoint_id(model_id):
        from brainalign.errors import CheckpointError

        raise CheckpointError(f"{model_id} is a checkpoint, which carries its own weights: "
                              f"weights={weights!r} would be ignored; leave weights out")
    weights = "random" if weights is None else weights
    loader, _ = SOURCES[source]
    model = loader(name, str(weights), seed, **options)
    model.extra["model_id"] = model_id  # what `brainalign layers` takes, for messages (the outer id wins)
    return model


def wrap(module: nn.Module, name: str, input_size: int = 224, *, in_channels: int = 3,
         mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
         preprocess: Callable[[np.ndarray], torch.Tensor] | None = None,
         weights: str = "custom", visual_degrees: float = 8.0, mode: str = "eval",
         revision: str | None = None) -> BrainModel:
    """Wrap any ``nn.Module`` that takes (N, C, H, W) images.

    The module is left as it is: layer discovery and extraction run it in ``mode`` and give it
    back with its parameters, buffers and train/eval flags unchanged.

    Parameters
    ----------
    module
        The network.
    name
        Name recorded in results.
    input_size
        Side of the square input in pixels; images are resized (short side) and centre-cropped.
    in_channels
        1 for grayscale networks, 3 for RGB.
    mean, std
        Per-channel normalisation; by default ImageNet's (the one default of every source, see
        :func:`brainalign.models.build.from_module`), its channel average for 1 channel.
    preprocess
        A full replacement for the default transform: one image array → (C, H, W) tensor.
    mode
        ``"eval"`` (default) or ``"train"``: the mode activations are recorded in.
    revision
        A version of the module's code, for the activation-cache key when its classes' source
        cannot be read (see :func:`brainalign.activations.cache.model_fingerprint`).
    """
    return from_module(module, name, source="wrap", input_size=input_size, in_channels=in_channels,
                       mean=mean, std=std, preprocess=preprocess, weights=weights,
                       visual_degrees=visual_degrees, mode=mode, revision=revision,
                       built_here=False)
