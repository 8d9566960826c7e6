"""Record layer activations: batched forward passes with copying hooks that stop early."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from brainalign.activations.budget import BYTES_PER_VALUE, layer_features, usable_cores
from brainalign.activations.reducers import reducer_per_layer
from brainalign.data.stimuli import StimulusSet, as_stimulus_set
from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import ForwardError, StimulusError
from brainalign.models.base import BrainModel, kept_state, layer_output, on_device

HOLD_FACTOR = 1.25
"""Default hand-over limit of :func:`iter_extract`, in units of the largest layer's bytes: the
helper runs ahead through small layers while the caller scores a large one, but a second large
layer waits (twice the largest: +0.15 GB peak on the hIT score, ``perf/PROFILE.md``)."""
Reducer = Callable[[torch.Tensor], torch.Tensor]
"""Maps a batch of layer outputs (B, ...) to (B, k) features on the same device."""


class _StopForward(Exception):
    """Raised from the last hook of a batch: nothing after the last requested layer is needed."""


class _Cancelled(Exception):
    """Raised on the recording thread of :func:`iter_extract` when its caller has stopped."""


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


class _Copier:
    """Copies recorded outputs into their buffers on a helper thread, in submission order.

    On the CPU with a core that torch's intra-op threads leave idle, copying a batch's outputs
    (and first touching the fresh buffer's pages) then overlaps the rest of the forward pass
    instead of adding to it (``perf/PROFILE.md``). Only outputs that nothing later in the pass
    changes in place are handed here (:attr:`~brainalign.models.base.LayerInfo.mutated`); the
    pending ones are kept alive by the queue, and at most ``limit_bytes`` of them wait (one
    always may), so the pass never runs far ahead of its copies. Tasks run in order, so a
    layer's completion, queued after its last copy, sees the copy done.
    """

    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="brainalign-copy")
        self.pending: deque[tuple[Future, int]] = deque()
        self.bytes = 0

    def submit(self, nbytes: int, fn: Callable[[], None]) -> None:
        while self.pending and self.bytes + nbytes > self.limit:
            self._wait_oldest()
        self.pending.append((self.pool.submit(fn), nbytes))
        self.bytes += nbytes

    def _wait_oldest(self) -> None:
        fut, nbytes = self.pending.popleft()
        self.bytes -= nbytes
        fut.result()  # the task's error, raised on the recording thread

    def drain(self) -> None:
        while self.pending:
            self._wait_oldest()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _copy_helper_on(device: torch.device, n_batches: int) -> bool:
    """Whether outputs are copied on a helper thread: a CPU run of several batches, with more
    cores than torch's intra-op threads use (else the helper competes with them)."""
    return device.type == "cpu" and n_batches > 1 and usable_cores() > torch.get_num_threads()


def _preprocess_workers() -> int:
    """Threads for preprocessing a batch's images: the cores torch's own threads leave idle
    (the transforms are torch ops that release the GIL); 1 when torch uses every core."""
    return max(1, min(4, usable_cores() // max(1, torch.get_num_threads())))


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` when it is a whole number ≥ 1 (stimuli per forward pass), read at every
    entry point that takes one, before any work.

    Raises
    ------
    StimulusError
        Anything else (0 divided by zero deep in the loop; a negative size ended the recording
        with "generator raised StopIteration").
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise StimulusError(f"batch_size={batch_size!r}: give a whole number of stimuli per forward pass, ≥ 1")
    return int(batch_size)


def _batches(stimuli: StimulusSet | torch.Tensor, model: BrainModel, batch_size: int):
    n = len(stimuli)
    workers = 1 if isinstance(stimuli, torch.Tensor) else _preprocess_workers()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="brainalign-preprocess") if workers > 1 else None

    def prepared(i: int, image: Any) -> torch.Tensor:
        try:
            return model.preprocess(image)
        except Exception as err:
            named = _stimulus_error(stimuli, i, model, err)
            if named is err:
                raise
            raise named from err

    try:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            if isinstance(stimuli, torch.Tensor):
                yield start, stop, stimuli[start:stop]
                continue
            # Images are read here, in order (sources need not be thread-safe); only the
            # transforms run on the pool.
            raw = [(i, _read_image(stimuli, i, model)) for i in range(start, stop)]
            imgs = list(pool.map(lambda a: prepared(*a), raw)) if pool else [prepared(*a) for a in raw]
            del raw
            x = torch.stack(imgs)
            del imgs  # not held while the batch runs
            yield start, stop, x
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _read_image(stimuli: StimulusSet, i: int, model: BrainModel) -> Any:
    try:
        return stimuli.image(i)
    except Exception as err:
        named = _stimulus_error(stimuli, i, model, err)
        if named is err:
            raise
        raise named from err


def _stimulus_error(stimuli: StimulusSet, i: int, model: BrainModel, err: Exception) -> StimulusError:
    """``err`` (reading or preprocessing stimulus ``i``) as a StimulusError naming the stimulus."""
    if isinstance(err, StimulusError) and repr(stimuli.ids[i]) in str(err):
        return err
    return StimulusError(f"stimulus {stimuli.ids[i]!r} of {stimuli.name!r} could not be preprocessed "
                         f"for {model.name}: {err}")


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


@dataclass(frozen=True)
class _Job:
    """What one recording run records: checked before anything runs (errors raised at once)."""

    stimuli: StimulusSet | torch.Tensor
    names: list[str]
    ids: list[str]
    mode: str
    reducers: dict[str, Reducer | None]


def _job(model: BrainModel, stimuli: Any, layers: str | Sequence[str] | None,
         stimulus_ids: Sequence[str] | None, mode: str | None,
         reducers: Reducer | Mapping[str, Reducer] | None) -> _Job:
    if not isinstance(stimuli, StimulusSet | torch.Tensor):
        stimuli = as_stimulus_set(stimuli)
    names = model.resolve_layers(layers)
    info = model.layer_info
    no_batch = [m for m in names if info[m].batch_axis is None]
    if no_batch:
        raise ForwardError(
            f"{model.name}: layer {no_batch[0]!r} gives outputs of shape {info[no_batch[0]].output_shape} "
            "with no axis of the batch size, so its rows cannot be matched to stimuli; record "
            "another layer")
    n = len(stimuli)
    if n == 0:
        raise StimulusError("no stimuli to extract activations for")
    if isinstance(stimuli, torch.Tensor):
        ids = list(stimulus_ids) if stimulus_ids is not None else [str(i) for i in range(n)]
    else:
        ids = list(stimuli.ids)
    return _Job(stimuli, names, ids, mode or model.mode, reducer_per_layer(model, reducers, names))


def _record(model: BrainModel, job: _Job,
            on_complete: Callable[[str, torch.Tensor, tuple[int, ...], bool], None],
            *, batch_size: int, device: DeviceLike,
            progress: bool, keep_on_device: bool, cancelled: Callable[[], bool] = lambda: False) -> None:
    """Run the batches of ``job``; ``on_complete(layer, buffer, shape, shared)`` gets each
    layer's (stimulus × unit) buffer as soon as its last batch is recorded (during the last
    batch's forward pass), after which nothing here holds it. ``shared``: the buffer is the
    layer's output tensor itself, which the rest of the pass may still read (never write).
    ``cancelled()`` is checked at every recorded layer and batch: True stops the pass. The
    hooks act only on forward passes run by the calling thread.
    """
    owner = threading.get_ident()
    stimuli, names, ids, mode = job.stimuli, job.names, job.ids, job.mode
    info = model.layer_info
    dev = resolve_device(device)
    module = model.module
    n = len(stimuli)

    mods = dict(module.named_modules())
    buffers: dict[str, torch.Tensor] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    seen: dict[str, int] = {}
    window = [0, 0]  # rows of the current batch
    finished = [0]  # requested layers recorded in the current batch

    kept: set[str] = set()  # layers held by reference (see by_reference)
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
        reducer = job.reducers[name]
        feats = reducer(out) if reducer is not None else out
        flat = feats.reshape(feats.shape[0], -1)
        if window[1] - window[0] == n and by_reference(name, out, flat):
            # One batch of every stimulus, and no later op of the pass changes this output
            # (layer discovery checked): keep it as it is, as torch made it, instead of a copy.
            shapes[name] = tuple(feats.shape[1:])
            buffers[name] = flat
            kept.add(name)
        else:
            buf = buffers.get(name)
            if buf is None:
                shapes[name] = tuple(feats.shape[1:])
                buf = buffers[name] = _new_buffer(n, flat.shape[1], dev if keep_on_device else None)
            rows = buf[window[0]:window[1]]
            if copier is not None and not changed_later(name, out, flat):
                copier.submit(flat.numel() * flat.element_size(), _task(name, rows.copy_, flat))
            else:  # now, before a later in-place op of the pass can touch `out`
                rows.copy_(flat)
        seen[name] += 1
        finished[0] += 1
        if window[1] == n:  # recorded for every stimulus: hand it over now
            done = (name, buffers.pop(name), shapes[name], name in kept)
            if copier is not None:  # after the layer's copies, in forward order
                copier.submit(0, _task(name, on_complete, *done))
            else:
                on_complete(*done)

    def changed_later(name: str, out: torch.Tensor, flat: torch.Tensor) -> bool:
        """Whether ``flat`` may change after this hook: it shares memory with a layer output
        that a later op of the pass changes in place (layer discovery found which)."""
        return info[name].mutated and flat.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()

    def by_reference(name: str, out: torch.Tensor, flat: torch.Tensor) -> bool:
        return (not info[name].mutated and flat.dtype == torch.float32 and flat.device == out.device
                and (keep_on_device or flat.device.type == "cpu"))

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

        def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
            if threading.get_ident() != owner:  # another recording's pass through this module
                return
            if cancelled():
                raise _LayerFailed(mod_name, _Cancelled())
            k = calls_seen[mod_name]
            calls_seen[mod_name] = k + 1
            todo = at_call.get(k, ())
            t = layer_output(out) if todo else None  # what discovery found: the same rule
            for name in todo:
                try:
                    if t is None:
                        raise ForwardError(f"{model.name}: layer {name!r} returned {type(out).__name__} "
                                           "with no tensor to record here, though it gave one at "
                                           "layer discovery")
                    record(name, t)
                except _LayerFailed:  # a helper's copy or hand-over of an earlier layer
                    raise
                except Exception as err:
                    raise _LayerFailed(name, err) from err
            if finished[0] == len(names):
                raise _StopForward

        return hook

    n_batches = -(-n // batch_size)
    copier = None
    if _copy_helper_on(dev, n_batches):
        widest = max(layer_features(model, name) for name in names)
        copier = _Copier(2 * min(batch_size, n) * widest * BYTES_PER_VALUE)
    handles = [mods[m].register_forward_hook(make_hook(m)) for m in wanted]
    try:
        with kept_state(module, mode), on_device(module, dev), torch.inference_mode():
            batches = _batches(stimuli, model, batch_size)
            if not isinstance(stimuli, torch.Tensor) and _prefetch_on(dev):
                batches = prefetch = _prefetched(batches)
            for start, stop, x in tqdm(batches, total=-(-n // batch_size), disable=not progress,
                                       desc=f"{model.name}", unit="batch", leave=False):
                if cancelled():
                    raise _Cancelled
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
                    _raise_named(model, err, ids[start], ids[stop - 1])
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
            if copier is not None:
                try:
                    copier.drain()
                except _LayerFailed as err:
                    _raise_named(model, err, ids[0], ids[-1])
    finally:
        for h in handles:
            h.remove()
        if copier is not None:
            copier.close()  # drops queued copies after an error; waits for the running one
        if prefetch is not None:
            prefetch.close()  # stops the helper thread at once, also after an error


def _task(layer: str, fn: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """``fn(*args)`` for the copy helper: in inference mode (the recording's buffers are
    inference tensors and the mode is per thread), failures tagged with the layer."""
    def run() -> None:
        try:
            with torch.inference_mode():
                fn(*args)
        except Exception as err:
            raise _LayerFailed(layer, err) from err
    return run


def _raise_named(model: BrainModel, err: _LayerFailed, first: str, last: str) -> NoReturn:
    """Raise the error of a failed recording of ``err.layer`` on stimuli ``first…last``."""
    if isinstance(err.err, _Cancelled | ForwardError):
        raise err.err from None
    raise ForwardError(f"{model.name}: recording layer {err.layer!r} failed on stimuli "
                       f"{first!r}…{last!r}: {err.err}") from err.err


@dataclass
class _Recording:
    """Who records a model now: the thread that started it and, for an open stream, how to stop
    it (``None`` for :func:`extract`, which runs to its end once started)."""

    thread: int
    stop: Callable[[], None] | None = None


@contextmanager
def _one_recording(model: BrainModel, stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Mark ``model`` as being recorded, one recording at a time.

    A recording sets the module's mode and device and hooks its layers until it ends; an open
    stream of layers (:func:`iter_extract`, ``Benchmark.layer_activations``) keeps its recording
    running until it is exhausted or closed, so two at once would disturb each other. A new
    recording on the thread that holds an open stream stops that stream first (it is suspended
    there: nothing reads it meanwhile; if it is resumed it raises :class:`ForwardError`), so a
    stream abandoned inside its loop (an error kept alive by a notebook's traceback) never
    blocks the model. One running on another thread is refused with :class:`ForwardError`.
    """
    here = threading.get_ident()
    current = model._recording
    if current:
        if not isinstance(current, _Recording) or current.stop is None or current.thread != here:
            raise ForwardError(
                f"{model.name} is already being recorded "
                + ("by another thread" if getattr(current, "thread", here) != here
                   else "(a recording in progress)")
                + ": one recording of a model at a time (they would share its hooks, mode and "
                "device); wait for it to finish, or record a copy of the model")
        current.stop()
    token = _Recording(here, stop)
    model._recording = token
    try:
        yield
    finally:
        if model._recording is token:
            model._recording = None


def _as_array(model: BrainModel, job: _Job, name: str, buf: torch.Tensor, shape: tuple[int, ...],
              keep_on_device: bool, read_only: bool = False) -> xr.DataArray | torch.Tensor:
    """A recorded buffer as :func:`extract` returns it (``read_only``: its numpy array refuses
    writes, for a buffer the still running forward pass may read)."""
    if keep_on_device:
        return buf
    values = buf.numpy()
    if read_only:
        values.flags.writeable = False
    return xr.DataArray(
        values, dims=("stimulus", "unit"), coords={"stimulus_id": ("stimulus", job.ids)},
        attrs={"layer": name, "model": model.name, "shape": shape, "mode": job.mode,
               "batch_axis": model.layer_info[name].batch_axis})


def extract(
    model: BrainModel,
    stimuli: StimulusSet | torch.Tensor | Any,
    layers: str | Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: DeviceLike = "auto",
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
    soon as the last requested layer has run. When all stimuli are in one batch, an output that
    no later op of the pass changes in place (found at layer discovery from torch's version
    counters, :attr:`~brainalign.models.base.LayerInfo.mutated`) is kept as it is instead of
    copied. A module that runs several times per pass (a reused ReLU, a recurrent cell) is
    recorded at its last call.

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
        One function, or a mapping of layer names or glob patterns (``"features.*"``; a layer's
        own name wins) to functions, applied to each batch's output on the device (e.g. pooling
        or a random projection) so memory stays bounded. A key that matches no layer of the model
        is an :class:`~brainalign.errors.UnknownLayerError`. A reducer must return a
        new tensor and never change its input in place: the rest of the forward pass reads it.
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
    DeviceUnavailableError
        A ``device`` this machine does not have, before anything is recorded.
    """
    device = resolve_device(device)
    batch_size = check_batch_size(batch_size)
    job = _job(model, stimuli, layers, stimulus_ids, mode, reducers)
    done: dict[str, tuple[torch.Tensor, tuple[int, ...]]] = {}
    with _one_recording(model):
        _record(model, job, lambda name, buf, shape, _shared: done.__setitem__(name, (buf, shape)),
                batch_size=batch_size, device=device, progress=progress,
                keep_on_device=keep_on_device)
    return {name: _as_array(model, job, name, *done[name], keep_on_device) for name in job.names}


def iter_extract(
    model: BrainModel,
    stimuli: StimulusSet | torch.Tensor | Any,
    layers: str | Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: DeviceLike = "auto",
    reducers: Reducer | Mapping[str, Reducer] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    progress: bool = False,
    mode: str | None = None,
    keep_on_device: bool = False,
    hold_bytes: int | None = None,
) -> Iterator[tuple[str, xr.DataArray | torch.Tensor]]:
    """:func:`extract`, handing each layer over as soon as it is complete.

    The forward passes run on a helper thread; a layer is yielded (``(name, array)``, in forward
    order, the values :func:`extract` returns) as soon as its last batch has been recorded,
    so the caller scores layer k while the last batch's forward pass goes on to layer k + 1. The
    helper hands a finished layer over only while the layers the caller has not finished with
    (not yet asked past) take at most ``hold_bytes`` (default: :data:`HOLD_FACTOR` × the largest
    layer's bytes; a layer alone is always handed over), else it waits: it runs ahead through small layers
    while the caller scores a large one. When every stimulus fits in one batch, each layer is
    handed over from inside the single forward pass: a run then holds about two of the largest
    layers at a time instead of all of them (see :func:`brainalign.activations.stream_layers`).

    In one batch, a layer that no later op of the pass changes is handed over by reference as a
    **read-only** array (the pass may still read it): ``.copy()`` it to change it. A model is
    recorded once at a time: a recording of it started on this thread while this stream is open
    stops this stream (resuming it then raises :class:`ForwardError`); one started on another
    thread is refused.

    A ``device`` this machine does not have raises :class:`DeviceUnavailableError` at once.
    Errors of the forward pass are raised here unchanged (:class:`ForwardError`,
    :class:`StimulusError`); closing the generator early (or Ctrl-C in the caller) stops the
    forward pass at its next recorded layer or batch and waits for the helper to finish.
    """
    device = resolve_device(device)  # bad input is refused here, at once
    batch_size = check_batch_size(batch_size)
    job = _job(model, stimuli, layers, stimulus_ids, mode, reducers)
    q: queue.Queue = queue.Queue()
    stop = threading.Event()
    # Bytes of layers handed over that the caller has not finished with, and how many may be:
    # the helper runs ahead through small layers while the caller scores a large one, but never
    # holds more than HOLD_FACTOR of the largest layers' worth (always at least one layer).
    held = [0]
    room = threading.Condition()
    limit = hold_bytes if hold_bytes is not None else int(HOLD_FACTOR * max(
        (len(job.ids) * layer_features(model, n) * BYTES_PER_VALUE for n in job.names), default=0))
    end = object()

    def hand_over(name: str, buf: torch.Tensor, shape: tuple[int, ...], shared: bool) -> None:
        size = buf.numel() * buf.element_size()
        with room:
            while held[0] > 0 and held[0] + size > limit:
                if stop.is_set():
                    raise _Cancelled
                room.wait(timeout=0.05)
            if stop.is_set():
                raise _Cancelled
            held[0] += size
        q.put((name, buf, shape, shared, size))

    def produce() -> None:
        try:
            _record(model, job, hand_over, batch_size=batch_size, device=device,
                    progress=progress, keep_on_device=keep_on_device, cancelled=stop.is_set)
            q.put((end, None, (), False, 0))
        except _Cancelled:
            return
        except BaseException as err:  # handed to the caller, raised there
            q.put((None, err, (), False, 0))

    thread = threading.Thread(target=produce, name="brainalign-record", daemon=True)

    def superseded() -> None:
        """Another recording of the model starts on this (the caller's) thread: stop the pass
        and leave an error for the caller, should it resume this stream."""
        stop.set()
        while thread.is_alive():
            thread.join(timeout=0.05)
        q.put((None, ForwardError(
            f"this stream of {model.name}'s layers was stopped: another recording of the model "
            "started while it was open (two at once would share the model's hooks, mode and "
            "device); start the stream again"), (), False, 0))

    # One recording of a model at a time; the thread stops at its next recorded layer or batch
    # however the caller leaves (exhausted, closed, an error, Ctrl-C).
    with _one_recording(model, stop=superseded):
        thread.start()
        try:
            while True:
                name, buf, shape, shared, size = q.get()
                if name is end:
                    return
                if name is None:
                    raise buf
                # A shared buffer may still be read by the pass: the caller may not write to it.
                yield name, _as_array(model, job, name, buf, shape, keep_on_device, read_only=shared)
                del buf
                with room:  # the caller asked for the next layer: it is done with this one
                    held[0] -= size
                    room.notify()
        finally:
            stop.set()
            while thread.is_alive():
                thread.join(timeout=0.05)
