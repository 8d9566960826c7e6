"""The model as an experimental subject: a module, its preprocessing, its layers and provenance.

A layer is a module whose output is a tensor, or a tuple or list (or transformers ``ModelOutput``)
whose first element is one: that first tensor is recorded (an LSTM's or GRU's output sequence, a
MultiheadAttention's attention output), by one rule, :func:`layer_output`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from brainalign.errors import (
    EmptyLayerListError,
    ForwardError,
    NoLayersError,
    UnknownLayerError,
    UnrecordableLayerError,
)

MODES = ("eval", "train")

# Stimuli in the blank batch of layer discovery: with more than one, the axis that holds the
# batch can be found in each layer's output (a tokens-first transformer puts it second).
DISCOVERY_BATCH = 2

Preprocess = Callable[[np.ndarray], torch.Tensor]

# Containers and no-op modules are not recording sites; normalisation layers are recordable but
# not scored by default (their output is the previous layer's up to an affine map per channel).
_CONTAINERS: tuple[type[nn.Module], ...] = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_NO_OPS: tuple[type[nn.Module], ...] = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Flatten)
_NORMS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm,
                                       nn.GroupNorm, nn.LocalResponseNorm)


# Serialises seeded construction: building a network draws from torch's global RNG, so two
# threads (a threaded Dask worker, say) building models at once would interleave their draws.
_SEEDED_BUILD = threading.Lock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build under ``seed`` without touching the caller's RNG state, one thread at a time."""
    with _SEEDED_BUILD, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def kept_state(module: nn.Module, mode: str = "eval") -> Iterator[None]:
    """Run ``module`` in ``mode`` and give it back as it was: each submodule's train/eval flag,
    and (in train mode, where BatchNorm updates running statistics) every buffer's values."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    flags = [(m, m.training) for m in module.modules()]
    saved = ({n: b.detach().clone() for n, b in module.named_buffers()} if mode == "train" else None)
    module.train(mode == "train")
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        if saved:
            with torch.no_grad():
                for n, b in module.named_buffers():
                    if n in saved:
                        b.copy_(saved[n])


@contextmanager
def on_device(module: nn.Module, device: torch.device | str) -> Iterator[nn.Module]:
    """Run ``module`` on ``device`` and give it back where it was.

    Every parameter gets its own data tensor back and every buffer its own tensor object, so
    the module, its parameters (the same ``Parameter`` objects) and any reference the caller
    holds to them are as before, on the devices they were on, even when the run fails. Nothing
    moves when every tensor is already on ``device``.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())  # tensors say "cuda:0"
    # Per slot: the module, the name, the tensor and (parameters) its data. `Module.to` swaps
    # the data of a Parameter, or the Parameter itself (to "meta"), and replaces buffers.
    slots = [(m, k, t, t.data) for m in module.modules()
             for k, t in [*m._parameters.items(), *m._buffers.items()] if t is not None]
    if all(t.device == device for _, _, t, _ in slots):
        yield module
        return
    module.to(device)
    try:
        yield module
    finally:
        with torch.no_grad():
            for m, k, t, data in slots:
                if isinstance(t, nn.Parameter):
                    t.data = data
                    m._parameters[k] = t
                else:
                    m._buffers[k] = t


def layer_output(out: Any) -> torch.Tensor | None:
    """The tensor recorded from a module's output ``out``, or None (not recordable).

    A tensor is recorded as it is; a tuple or list (an LSTM's ``(output, (h, c))``, a GRU's
    ``(output, h)``, a MultiheadAttention's ``(attn_output, weights)``) or a transformers
    ``ModelOutput`` by its first element when that is a tensor: by convention the output the next
    layer reads, not the hidden states or attention weights beside it. Discovery and recording
    both read outputs through this function, so they cannot disagree on what a layer is.
    """
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list):
        first = out[0] if out else None
    elif callable(getattr(out, "to_tuple", None)):  # a ModelOutput: its fields that are not None
        fields = out.to_tuple()
        first = fields[0] if fields else None
    else:
        return None
    return first if isinstance(first, torch.Tensor) else None


def _what_it_returns(out: Any) -> str:
    """``out`` (no recordable tensor) in words, for the error that says why it is not a layer."""
    def a(x: Any) -> str:
        kind = type(x).__name__
        return "None" if x is None else f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind}"

    if isinstance(out, tuple | list):
        return f"{a(out)} whose first element is {a(out[0])}" if out else f"an empty {type(out).__name__}"
    return a(out)


def state_dict_hash(module: nn.Module) -> str:
    """sha256 over parameter and buffer names, dtypes, shapes and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass(frozen=True)
class LayerInfo:
    """Where a layer sits in the forward pass."""

    name: str
    order: int  # position of its first call in the forward pass
    calls: int  # how often it runs per forward pass (>1: recurrent / reused module)
    output_shape: tuple[int, ...]  # per stimulus
    kind: str  # module class name
    candidate: bool  # scored by default: a child of the root or of a container, not a norm
    time_step: int | None = None  # for ``<module>.t<k>``: the k-th call (0-based) of a reused module
    # Axis of the output that holds the stimuli (0 for nearly every layer; 1 for a tokens-first
    # transformer block); None: no axis could be told to be the batch, so it cannot be recorded.
    batch_axis: int | None = 0
    # Whether a later op of the forward pass changes the output in place (an in-place ReLU after
    # a BatchNorm, say): such outputs are copied when recorded, others may be kept by reference.
    mutated: bool = True

    @property
    def module_name(self) -> str:
        """The module recorded: ``name`` itself, or ``name`` without its ``.t<k>`` suffix."""
        return self.name if self.time_step is None else self.name[: -len(f".t{self.time_step}")]


@dataclass
class BrainModel:
    """A network wrapped for recording.

    Build one with :func:`brainalign.load_model` or :func:`brainalign.wrap`.

    Attributes
    ----------
    module
        The ``nn.Module``. Discovery and extraction never change it as the caller sees it
        (parameters, buffers, train/eval flags are as before).
    name
        Identifier, e.g. ``"torchvision:alexnet"``.
    preprocess
        Maps one image array (H, W[, C]) to a (C, H, W) float tensor the module takes.
    input_size
        Side of the square input in pixels.
    weights
        ``"random"``, ``"pretrained"`` or the checkpoint path the weights came from.
    visual_degrees
        The field of view the input spans, in degrees of visual angle (8° by default, as in
        Brain-Score), used to place stimuli of known size.
    seed
        The seed of random initialisation, when ``weights == "random"``.
    default_layers
        The layers scored by default, when the source knows better than the generic rule of
        :attr:`layers` (a recurrent net's time steps, a transformer's pooled tokens).
    example_input
        One blank input batch for layer discovery; by default (1, ``in_channels``,
        ``input_size``, ``input_size``) zeros. Sequence and text models give their own.
    mode
        ``"eval"`` (default: dropout off, BatchNorm on running statistics) or ``"train"``: the
        mode activations are recorded in; recorded in :meth:`provenance`.
    revision
        A declared version of the module's code, used in the activation-cache key when the
        source of its classes cannot be read (classes made in a notebook or by ``exec``).
    """

    module: nn.Module
    name: str
    preprocess: Preprocess
    input_size: int
    weights: str = "random"
    visual_degrees: float = 8.0
    seed: int | None = None
    source: str = "wrap"
    in_channels: int = 3
    extra: dict[str, Any] = field(default_factory=dict)
    default_layers: list[str] | None = None
    example_input: torch.Tensor | None = field(default=None, repr=False)
    mode: str = "eval"
    revision: str | None = None
    _layer_info: dict[str, LayerInfo] | None = field(default=None, repr=False)
    # Modules that ran at discovery but returned no recordable tensor: name -> what they returned.
    _unrecordable: dict[str, str] = field(default_factory=dict, repr=False)
    _forward_stopped: str | None = field(default=None, repr=False)
    _weights_hash: str | None = field(default=None, repr=False)
    # The recording (extract, or an open stream of layers) running the module now, if any; see
    # activations.extract._one_recording.
    _recording: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")

    @property
    def weights_hash(self) -> str:
        """sha256 of the state dict; identifies the weights whatever their name."""
        if self._weights_hash is None:
            self._weights_hash = state_dict_hash(self.module)
        return self._weights_hash

    @property
    def layer_info(self) -> dict[str, LayerInfo]:
        """Recording sites in forward order, found by one dry run on a blank input."""
        if self._layer_info is None:
            x = self.example_input
            if x is None:
                x = torch.zeros(1, self.in_channels, self.input_size, self.input_size)
            # Layers whose output has no batch axis (a broadcast position embedding) are kept
            # out of the defaults; extracting one is refused, naming it.
            stopped: list[str] = []
            self._unrecordable = {}
            self._layer_info = _discover_layers(self.module, x, self.name, stopped,
                                                self._unrecordable)
            self._forward_stopped = stopped[0] if stopped else None
        return self._layer_info

    @property
    def forward_stopped(self) -> str | None:
        """Why the model's forward pass stops before its end on the input it is given (the
        message of the failing module), so that only the layers before it can be recorded; None
        for a model that runs through."""
        _ = self.layer_info
        return self._forward_stopped

    @property
    def layers(self) -> list[str]:
        """The layers scored by default, in forward-pass order.

        These are the modules reached from the root through containers only (``nn.Sequential``,
        ``nn.ModuleList``): AlexNet's ``features.0`` … ``classifier.6``, ResNet's ``conv1``,
        ``layer1.0`` … ``fc``, a ViT's ``encoder.layers.encoder_layer_0`` …; normalisation and
        no-op modules are left out. Every other module that outputs a tensor (or a tuple whose
        first element is one: see :func:`layer_output`) is in :attr:`all_layers` and can be
        named explicitly. A module that runs several times per forward pass (a recurrent block,
        a reused ReLU) is recorded at its last call under its own name and at each call under
        ``<name>.t0``, ``<name>.t1``, …. Sources may set :attr:`default_layers` instead.
        """
        if self.default_layers is not None:
            return self.resolve_layers(list(self.default_layers))
        return [n for n, info in self.layer_info.items() if info.candidate]

    @property
    def all_layers(self) -> list[str]:
        """Every module whose output can be recorded, in forward-pass order."""
        return list(self.layer_info)

    def layers_of_type(self, *types: type[nn.Module]) -> list[str]:
        """Recordable layers whose module is an instance of one of ``types``."""
        mods = dict(self.module.named_modules())
        return [n for n, i in self.layer_info.items()
                if i.time_step is None and isinstance(mods[n], types)]

    def resolve_layers(self, layers: str | Sequence[str] | None) -> list[str]:
        """Expand names and glob patterns (``"features.*"``) into layer names in forward order.

        Raises
        ------
        UnknownLayerError
            A name or pattern that matches no layer.
        EmptyLayerListError
            An empty list (None means the default layers).
        UnrecordableLayerError
            The name of a module that runs but returns no tensor to record (a dict, say).
        """
        if layers is None:
            if not self.layers:  # nothing to record: say so here, before any stage counts layers
                raise NoLayersError(self.name, self.all_layers)
            return self.layers
        if isinstance(layers, str):
            layers = [layers]
        if not len(layers):  # an empty list asks for nothing: an empty table would say nothing either
            raise EmptyLayerListError(self.name)
        known = self.layer_info
        chosen: set[str] = set()
        for pat in layers:
            hits = [n for n in known if fnmatch.fnmatchcase(n, pat)] if _is_glob(pat) else (
                [pat] if pat in known else [])
            if not hits:
                if pat in self._unrecordable:
                    raise UnrecordableLayerError(pat, self.name, self._unrecordable[pat])
                raise UnknownLayerError(pat, self.name, known, model_id=self.extra.get("model_id"))
            chosen.update(hits)
        return [n for n in known if n in chosen]

    def depth(self, layer: str) -> float:
        """Relative depth of ``layer`` in 0..1 (first recordable layer 0, last 1)."""
        names = self.layers if layer in self.layers else self.all_layers
        return names.index(layer) / max(len(names) - 1, 1)

    @property
    def preprocessing(self) -> str:
        """The preprocessing in one line, as result rows record it, e.g. ``"resize=256
        bilinear crop=224 mean=0.485,0.456,0.406 std=0.229,0.224,0.225 channels=3
        input_size=224"``."""
        return describe_preprocessing(self.extra.get("preprocess"), self.preprocess, self.input_size)

    def provenance(self) -> dict[str, Any]:
        """What identifies this model's weights, inputs and recording, for result tables:
        ``model`` (its name, a label where one was given), ``model_id`` (the id it was loaded from,
        ``""`` for a wrapped module), ``source``, ``weights``, ``weights_hash``, ``input_size``,
        ``model_visual_degrees``, ``model_seed``, ``preprocessing`` (see
        :attr:`preprocessing`) and ``mode`` (``"eval"`` or ``"train"``)."""
        return {"model": self.name, "model_id": str(self.extra.get("model_id") or ""),
                "source": self.source, "weights": self.weights,
                "weights_hash": self.weights_hash, "input_size": self.input_size,
                "model_visual_degrees": self.visual_degrees, "model_seed": self.seed,
                "preprocessing": self.preprocessing, "mode": self.mode}


def describe_preprocessing(described: Any, preprocess: Any, input_size: int) -> str:
    """One line for a preprocessing: an image transform's resize, crop, mean, std; a tokenizer's
    settings; or the name of a custom callable."""
    def fmt(v: Any) -> str:
        if isinstance(v, list | tuple):
            return ",".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in v)
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    if isinstance(described, dict) and described:
        d = dict(described)
        parts = []
        if "resize_size" in d:
            parts.append(f"resize={d.pop('resize_size')} {d.pop('interpolation', '')}".rstrip())
        if "crop_size" in d:
            parts.append(f"crop={d.pop('crop_size')}")
        parts += [f"{k}={fmt(v)}" for k, v in d.items()]
        return " ".join([*parts, f"input_size={input_size}"])
    kind = getattr(preprocess, "__qualname__", None) or type(preprocess).__qualname__
    return f"custom {getattr(preprocess, '__module__', '')}.{kind} input_size={input_size}"


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _batch_axis(shape: tuple[int, ...], batch: int) -> int | None:
    """The axis of a layer output holding the ``batch`` stimuli: 0 when its size is the batch
    size, else the one other axis of that size; None when there is none or several."""
    if shape and shape[0] == batch:
        return 0
    hits = [i for i, n in enumerate(shape) if n == batch]
    return hits[0] if len(hits) == 1 else None


def _discover_layers(module: nn.Module, example: torch.Tensor, model_name: str = "model",
                     stopped: list[str] | None = None,
                     unrecordable: dict[str, str] | None = None) -> dict[str, LayerInfo]:
    """Recording sites of ``module``, found by one forward pass on ``example``; a pass that
    fails after some modules gives the layers before the failure, and its message (also warned)
    is appended to ``stopped``. A module ranks as a layer when its output gives a tensor to
    record (:func:`layer_output`); each one that ran and gave none is put in ``unrecordable``
    with what it returned, so that naming it can be answered with why.

    Raises
    ------
    ForwardError
        The pass failed before any module returned a tensor (the model cannot run on inputs of
        this shape): names the model, the input shape, the module it failed in and the error.
    """
    if example.shape[0] == 1:
        example = example.repeat(DISCOVERY_BATCH, *([1] * (example.ndim - 1)))
    batch = example.shape[0]
    mods = dict(module.named_modules())
    names = {m: n for n, m in mods.items() if n and not isinstance(m, _CONTAINERS + _NO_OPS)}
    done: dict[str, int] = {}
    calls: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    axes: dict[str, int | None] = {}
    # (module, call, per-stimulus shape, batch axis) in finish order
    steps: list[tuple[str, int, tuple[int, ...] | None, int | None]] = []
    # Each tensor output with its version counter when it was made: a later in-place op on it
    # (or on a tensor it is a view of) bumps the counter.
    outputs: dict[tuple[str, int], tuple[torch.Tensor, int]] = {}

    def split(out: torch.Tensor) -> tuple[tuple[int, ...], int | None]:
        full = tuple(out.shape)
        axis = _batch_axis(full, batch)
        return (full[:axis] + full[axis + 1:] if axis is not None else full[1:]), axis

    returned: dict[str, str] = {}  # modules whose output gave no tensor: what they returned

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        n = names[mod]
        calls[n] = calls.get(n, 0) + 1
        done[n] = len(done) if n not in done else done[n]
        t = layer_output(out)
        shape, axis = split(t) if t is not None else (None, None)
        steps.append((n, calls[n] - 1, shape, axis))
        if t is not None:
            shapes[n], axes[n] = shape, axis
            outputs[(n, calls[n] - 1)] = (t, t._version)
        elif n not in returned:
            returned[n] = _what_it_returns(out)

    running: list[str] = []  # modules entered and not yet finished, innermost last

    def enter(mod: nn.Module, _inp: Any) -> None:
        running.append(names[mod])

    def leave(mod: nn.Module, _inp: Any, _out: Any) -> None:
        if running and running[-1] == names[mod]:
            running.pop()

    handles = [m.register_forward_pre_hook(enter) for m in names]
    handles += [m.register_forward_hook(hook) for m in names]
    handles += [m.register_forward_hook(leave) for m in names]
    try:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        # no_grad, not inference_mode: inference tensors have no version counter to read.
        with kept_state(module, "eval"), torch.no_grad():
            module(example.to(device))
        complete = True
    except Exception as err:
        where = (f" in module {running[-1]!r} ({type(mods[running[-1]]).__name__})"
                 if running else "")
        what = (f"a blank input of shape {tuple(example.shape)} (stimuli x channels x height x "
                f"width)")
        if not shapes:  # nothing recordable before it failed: the model cannot run on images
            raise ForwardError(
                f"{model_name}: the forward pass failed on {what}{where}: {type(err).__name__}: {err}. "
                "This is the input the benchmark's stimuli are given in (after preprocessing), "
                "so no layer can be recorded. Check that the model takes images of that shape, "
                "or give the input it takes (input_size=, in_channels= or example_input= when "
                "wrapping it).") from err
        # A module that fails on a blank input: the layers before it can still be recorded.
        said = (f"layer discovery stopped by an error{where} of model {model_name!r} on "
                f"{what} after {len(done)} modules; only the layers before it can be "
                f"recorded: {type(err).__name__}: {err}")
        if stopped is not None:
            stopped.append(said)
        warnings.warn(said, stacklevel=3)
        complete = False
    finally:
        for h in handles:
            h.remove()
    # Changed in place later in the pass (or not known to be unchanged: the pass stopped).
    mutated = {key: not complete or t._version != v for key, (t, v) in outputs.items()}
    outputs.clear()  # the discovery pass's tensors are not kept
    if unrecordable is not None:
        unrecordable.update((n, what) for n, what in returned.items() if n not in shapes)

    def is_stack(m: nn.Module) -> bool:  # a container of blocks, like a ViT's encoder.layers
        kids = list(m.children())
        return isinstance(m, _CONTAINERS) and len(kids) >= 2 and all(
            any(True for _ in k.children()) for k in kids)

    def is_candidate(n: str) -> bool:
        # Reached from the root through containers only, or one block of a stack of blocks;
        # a block's inner parts (a ResNet block's downsample, say) are not candidates.
        if isinstance(mods[n], _NORMS) or axes[n] is None:
            return False
        parts = n.split(".")
        ancestors = [mods[".".join(parts[:i])] for i in range(1, len(parts))]
        return all(isinstance(a, _CONTAINERS) for a in ancestors) or (
            bool(ancestors) and is_stack(ancestors[-1]))

    # Forward hooks fire when a module finishes, so this is the order in which outputs exist;
    # only modules that ran and gave a tensor (layer_output) can be recorded.
    order = sorted((n for n in done if n in shapes), key=done.__getitem__)
    info = {n: LayerInfo(n, i, calls[n], shapes[n], type(mods[n]).__name__, is_candidate(n),
                         batch_axis=axes[n], mutated=mutated[(n, calls[n] - 1)])
            for i, n in enumerate(order)}
    # Each call of a reused module is a recording site of its own, ``<name>.t<k>``, placed where
    # its output exists in the forward pass; not scored by default (sources may choose them).
    at = {(n, k): i for i, (n, k, _, _) in enumerate(steps)}
    timed = [(at[(n, k)], n, k, shape, axis) for n, k, shape, axis in steps
             if calls[n] > 1 and shape is not None and n in info and f"{n}.t{k}" not in mods]
    if not timed:
        return info
    events = sorted([(at[(n, 0)], n, None, None, None) for n in order] + timed, key=lambda e: e[0])
    out: dict[str, LayerInfo] = {}
    for i, (_, n, k, shape, axis) in enumerate(events):
        if k is None:
            out[n] = LayerInfo(n, i, calls[n], shapes[n], info[n].kind, info[n].candidate,
                               batch_axis=axes[n], mutated=info[n].mutated)
        else:
            name = f"{n}.t{k}"
            out[name] = LayerInfo(name, i, 1, shape, info[n].kind, False, time_step=k,
                                  batch_axis=axis, mutated=mutated[(n, k)])
    return out
