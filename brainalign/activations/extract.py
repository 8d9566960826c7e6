"""Record layer activations: batched forward passes with copying hooks that stop early."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from brainalign.data.stimuli import StimulusSet, as_stimulus_set
from brainalign.errors import ForwardError, StimulusError
from brainalign.models.base import BrainModel, kept_state, on_device

Reducer = Callable[[torch.Tensor], torch.Tensor]
"""Maps a batch of layer outputs (B, ...) to (B, k) features on the same device."""


class _StopForward(Exception):
    """Raised from the last hook of a batch: nothing after the last requested layer is needed."""


class _LayerFailed(Exception):
    """Raised from a hook whose recording failed, carrying the layer's name."""

    def __init__(self, layer: str, err: Exception):
        super().__init__(layer, err)
        self.layer, self.err = layer, err


def _new_buffer(n: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """An uninitialised (n, width) float32 buffer: in host memory, or on ``device``."""
    if device is not None:
        return torch.empty((n, width), dtype=torch.float32, device=device)
    # numpy asks the kernel for huge pages on large arrays, which cuts the cost of first
    # touching the buffer; torch shares the memory.
    return torch.from_numpy(np.empty((n, width), np.float32))


def _as_tensors(buffers: dict[str, torch.Tensor], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """``keep_on_device`` output: the recorded (stimulus × unit) tensors, in forward order."""
    return {name: buffers[name] for name in names}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → the first CUDA device if there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _batches(stimuli: StimulusSet | torch.Tensor, model: BrainModel, batch_size: int):
    n = len(stimuli)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if isinstance(stimuli, torch.Tensor):
            yield start, stop, stimuli[start:stop]
            continue
        imgs = []
        for i in range(start, stop):
            try:
                imgs.append(model.preprocess(stimuli.image(i)))
            except Exception as err:
                if isinstance(err, StimulusError) and repr(stimuli.ids[i]) in str(err):
                    raise
                raise StimulusError(
                    f"stimulus {stimuli.ids[i]!r} of {stimuli.name!r} could not be preprocessed "
                    f"for {model.name}: {err}") from err
        yield start, stop, torch.stack(imgs)


def _prefetch_on(device: torch.device) -> bool:
    """Whether batches are read ahead on a helper thread: on a GPU, where the CPU is otherwise
    idle while the device runs a batch. On the CPU the helper would compete with torch's own
    threads for the same cores (measured no faster on the 2-core machine, ``perf/PROFILE.md``)."""
    return device.type == "cuda"


def _prefetched(batches: Iterator[Any]) -> Iterator[Any]:
    """``batches``, produced one ahead on a helper thread.

    Reading and preprocessing a batch of images (PIL decoding, antialiased resizing: both release
    the GIL) then overlaps the previous batch's forward pass instead of adding to it; on the
    Cowley V4 stimuli it was 5–8 % of extraction (``perf/PROFILE.md``). An error raised while
    producing a batch is raised here, unchanged, when that batch is reached.
    """
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as err:  # handed to the consumer, raised there
            q.put((None, err))

    thread = threading.Thread(target=produce, name="brainalign-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to put
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)


def _locate_failure(module: nn.Module, x: torch.Tensor) -> str:
    """Run ``x`` again with a hook on every module to name the one whose forward failed."""
    stack: list[str] = []
    names = {m: n or "<root>" for n, m in module.named_modules()}

    def pre(mod: nn.Module, _inp: Any) -> None:
        stack.append(names[mod])

    def post(mod: nn.Module, _inp: Any, _out: Any) -> None:
        stack.pop()

    handles = [m.register_forward_pre_hook(pre) for m in names]
    handles += [m.register_forward_hook(post) for m in names]
    try:
        with torch.inference_mode():
            module(x)
    except Exception:
        return stack[-1] if stack else "<root>"
    finally:
        for h in handles:
            h.remove()
    return "<unknown>"


def extract(
    model: BrainModel,
    stimuli: StimulusSet | torch.Tensor | Any,
    layers: str | Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    reducers: Reducer | Mapping[str, Reducer] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    progress: bool = False,
    mode: str | None = None,
    keep_on_device: bool = False,
) -> dict[str, xr.DataArray] | dict[str, torch.Tensor]:
    """Layer activations of ``model`` to ``stimuli``.

    Each batch runs once under :func:`torch.inference_mode`; a forward hook on every requested
    layer copies its output (flattened, or reduced by ``reducers``) straight into a preallocated
    array, so later in-place operations cannot change what was recorded, and the pass stops as
    soon as the last requested layer has run. A module that runs several times per pass
    (a reused ReLU, a recurrent cell) is recorded at its last call.

    Parameters
    ----------
    model
        A :class:`~brainalign.models.BrainModel`. Its module is given back as it was
        (parameters, buffers, train/eval flags).
    stimuli
        A :class:`~brainalign.data.StimulusSet`, or anything
        :func:`~brainalign.data.stimuli.as_stimulus_set` takes (a folder of images, a list of
        paths, PIL images or arrays, an N×H×W×C or N×C×H×W array), preprocessed with
        ``model.preprocess``; or an already preprocessed (N, C, H, W) torch tensor.
    layers
        Layer names or glob patterns (``"features.*"``); ``None`` means ``model.layers``.
    batch_size
        Stimuli per forward pass.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``, …; the module runs there
        and is moved back to where it was afterwards (see :func:`brainalign.models.base.on_device`).
    reducers
        One function, or one per layer name, applied to each batch's output on the device
        (e.g. pooling or a random projection) so memory stays bounded.
    stimulus_ids
        Ids for a tensor input (default ``"0"``, ``"1"``, …).
    mode
        ``"eval"`` or ``"train"`` (dropout on, BatchNorm on batch statistics, its running
        statistics restored afterwards); default ``model.mode``.
    keep_on_device
        Record into float32 tensors on ``device`` and return them (layer → (stimulus × unit)
        tensor) instead of host DataArrays: on a GPU nothing leaves it, so metrics that take
        tensors (:func:`~brainalign.metrics.rdm`, :func:`~brainalign.metrics.cka`,
        :func:`~brainalign.metrics.encoding_score`) run there (``perf/gpu_end_to_end.py``).

    Returns
    -------
    dict of str to xarray.DataArray
        One (stimulus × unit) array per layer, in forward order, with coordinate ``stimulus_id``
        and attributes ``layer``, ``model``, ``shape`` (the per-stimulus output shape), ``mode``
        and ``batch_axis`` (the output axis that held the stimuli, moved first when not 0).

    Raises
    ------
    ForwardError
        A forward pass that fails, naming the layer; a layer whose output has no axis of the
        batch size (it cannot be told apart per stimulus).
    StimulusError
        An image the pixel rule refuses, naming the stimulus.
    """
    if not isinstance(stimuli, StimulusSet | torch.Tensor):
        stimuli = as_stimulus_set(stimuli)
    mode = mode or model.mode
    names = model.resolve_layers(layers)
    info = model.layer_info
    no_batch = [m for m in names if info[m].batch_axis is None]
    if no_batch:
        raise ForwardError(
            f"{model.name}: layer {no_batch[0]!r} gives outputs of shape {info[no_batch[0]].output_shape} "
            "with no axis of the batch size, so its rows cannot be matched to stimuli; record "
            "another layer")
    dev = resolve_device(device)
    module = model.module
    n = len(stimuli)
    if isinstance(stimuli, torch.Tensor):
        ids = list(stimulus_ids) if stimulus_ids is not None else [str(i) for i in range(n)]
    else:
        ids = list(stimuli.ids)
    if n == 0:
        raise StimulusError("no stimuli to extract activations for")

    mods = dict(module.named_modules())
    buffers: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    seen: dict[str, int] = {}
    window = [0, 0]  # rows of the current batch
    finished = [0]  # requested layers recorded in the current batch

    prefetch: Any = None  # the image-reading helper thread (GPU runs), started inside the try below

    def record(name: str, out: torch.Tensor) -> None:
        axis = info[name].batch_axis
        if axis:  # a tokens-first layer: the stimuli are on another axis; put them first
            out = out.movedim(axis, 0)
        if out.shape[0] != window[1] - window[0]:
            raise ForwardError(
                f"{model.name}: layer {name!r} gave an output of shape {tuple(out.shape)} for "
                f"{window[1] - window[0]} stimuli (batch axis {axis}, found at discovery); its "
                "rows cannot be matched to stimuli")
        reducer = reducers.get(name) if isinstance(reducers, Mapping) else reducers
        feats = reducer(out) if reducer is not None else out
        flat = feats.reshape(feats.shape[0], -1)
        buf = buffers.get(name)
        if buf is None:
            shapes[name] = tuple(feats.shape[1:])
            buf = buffers[name] = _new_buffer(n, flat.shape[1], dev if keep_on_device else None)
        # The copy happens here, before any later in-place op can touch `out`.
        buf[window[0]:window[1]].copy_(flat)
        seen[name] += 1
        finished[0] += 1

    # One hook per module; a recurrent module's hook records the calls that were asked for:
    # ``<module>.t<k>`` at its k-th call, the plain name at its last.
    wanted: dict[str, dict[int, list[str]]] = {}
    for name in names:
        li = info[name]
        call = li.time_step if li.time_step is not None else li.calls - 1
        wanted.setdefault(li.module_name, {}).setdefault(call, []).append(name)
    calls_seen: dict[str, int] = {}

    def make_hook(mod_name: str) -> Callable[..., None]:
        at_call = wanted[mod_name]

        def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            k = calls_seen[mod_name]
            calls_seen[mod_name] = k + 1
            for name in at_call.get(k, ()):
                try:
                    record(name, out)
                except Exception as err:
                    raise _LayerFailed(name, err) from err
            if finished[0] == len(names):
                raise _StopForward

        return hook

    handles = [mods[m].register_forward_hook(make_hook(m)) for m in wanted]
    try:
        with kept_state(module, mode), on_device(module, dev), torch.inference_mode():
            batches = _batches(stimuli, model, batch_size)
            if not isinstance(stimuli, torch.Tensor) and _prefetch_on(dev):
                batches = prefetch = _prefetched(batches)
            for start, stop, x in tqdm(batches, total=-(-n // batch_size), disable=not progress,
                                       desc=f"{model.name}", unit="batch", leave=False):
                window[0], window[1] = start, stop
                seen.update(dict.fromkeys(names, 0))
                calls_seen.update(dict.fromkeys(wanted, 0))
                finished[0] = 0
                x = x.to(dev, non_blocking=True)
                try:
                    module(x)
                except _StopForward:
                    pass
                except _LayerFailed as err:
                    if isinstance(err.err, ForwardError):
                        raise err.err from None
                    raise ForwardError(
                        f"{model.name}: recording layer {err.layer!r} failed on stimuli "
                        f"{ids[start]!r}…{ids[stop - 1]!r}: {err.err}") from err.err
                except Exception as err:
                    where = _locate_failure(module, x)
                    raise ForwardError(
                        f"{model.name}: forward pass failed in layer {where!r} on input of shape "
                        f"{tuple(x.shape)} (stimuli {ids[start]!r}…{ids[stop - 1]!r}): {err}"
                    ) from err
                missing = [m for m in names if seen[m] < 1]
                if missing:
                    raise ForwardError(f"{model.name}: layers {missing} did not run on stimuli "
                                       f"{ids[start]!r}…{ids[stop - 1]!r}")
    finally:
        for h in handles:
            h.remove()
        if prefetch is not None:
            prefetch.close()  # stops the helper thread at once, also after an error

    if keep_on_device:
        return _as_tensors(buffers, names)
    return {
        name: xr.DataArray(
            buffers[name].numpy(), dims=("stimulus", "unit"),
            coords={"stimulus_id": ("stimulus", ids)},
            attrs={"layer": name, "model": model.name, "shape": shapes[name], "mode": mode,
                   "batch_axis": info[name].batch_axis},
        )
        for name in names
    }
