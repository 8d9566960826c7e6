"""The architectures of the field at a size a CPU trains: one table, name → constructor.

=================  ===========================================  ===================================
name               architecture                                 default layers
=================  ===========================================  ===================================
mlp                multilayer perceptron                        ``fc*``, ``relu*``
lenet5             LeNet-5                                      ``conv1`` … ``fc3``
alexnet            AlexNet (compact)                            ``features.*``, ``classifier.*``
vgg11, vgg16       VGG with batch norm (compact)                ``features.*``, ``classifier.*``
resnet             ResNet of basic blocks (CIFAR style)         ``conv1``, ``layer<i>.<j>``, ``fc``
gru_rows           GRU over image rows, one layer per step      ``cell.t<k>``, ``last``, ``fc``
lstm_rows          LSTM over image rows                         ``sequence``, ``last``, ``fc``
vit                Vision Transformer, token choice per block   ``tokens.<i>``, ``head``
conv_autoencoder   convolutional autoencoder                    ``encoder.*``
cornet_rt          CORnet-RT-like recurrent CNN                 ``V1.t<k>`` … ``IT.t<k>``, ``decoder.2``
=================  ===========================================  ===================================

Every constructor takes ``in_channels`` and ``num_classes``; options such as ``width``,
``dropout``, ``token`` or ``times`` are passed through ``load_model("zoo:vit", token="mean")``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from brainalign.models.zoo.alexnet import AlexNet
from brainalign.models.zoo.autoencoder import ConvAutoencoder
from brainalign.models.zoo.cornet import CORnetRT
from brainalign.models.zoo.lenet import lenet5
from brainalign.models.zoo.mlp import mlp
from brainalign.models.zoo.resnet import ResNet
from brainalign.models.zoo.rnn import RowRNN
from brainalign.models.zoo.vgg import VGG
from brainalign.models.zoo.vit import ViT


@dataclass(frozen=True)
class ZooEntry:
    """How to build one architecture and which of its layers to score by default."""

    factory: Callable[..., nn.Module]
    defaults: dict[str, Any]
    default_layers: tuple[str, ...] | None = None  # names or globs; None: the generic rule


ZOO: dict[str, ZooEntry] = {
    "mlp": ZooEntry(mlp, {}, ("fc*", "relu*")),
    "lenet5": ZooEntry(lenet5, {}),
    "alexnet": ZooEntry(AlexNet, {}),
    "vgg11": ZooEntry(VGG, {"config": "vgg11"}),
    "vgg16": ZooEntry(VGG, {"config": "vgg16"}),
    "resnet": ZooEntry(ResNet, {}),
    "gru_rows": ZooEntry(RowRNN, {"cell": "gru"}, ("cell.t*", "last", "fc")),
    # Pinned: `lstm` (recordable as its output sequence) would repeat `sequence`, the same tensor.
    "lstm_rows": ZooEntry(RowRNN, {"cell": "lstm"}, ("sequence", "last", "fc")),
    "vit": ZooEntry(ViT, {}, ("tokens.*", "head")),
    "conv_autoencoder": ZooEntry(ConvAutoencoder, {}, ("encoder.*",)),
    "cornet_rt": ZooEntry(CORnetRT, {}, ("V1.t*", "V2.t*", "V4.t*", "IT.t*", "decoder.2")),
}


def options_of(name: str) -> list[str]:
    """The keyword options the constructor of ``name`` accepts."""
    return list(inspect.signature(ZOO[name].factory).parameters)


def build(name: str, **options: Any) -> nn.Module:
    """Construct ``name`` with its defaults updated by ``options`` (unknown ones are an error)."""
    entry = ZOO[name]
    accepted = options_of(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"zoo:{name} has no option(s) {unknown}; it accepts {accepted}")
    return entry.factory(**{**entry.defaults, **options})


__all__ = ["ZOO", "ZooEntry", "build", "options_of"]
