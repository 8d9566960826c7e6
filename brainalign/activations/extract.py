"""Record layer activations: batched forward passes with copying hooks that stop early."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from brainalign.data.stimuli import StimulusSet
from brainalign.errors import ForwardError, StimulusError
from brainalign.models.base import BrainModel

Reducer = Callable[[torch.Tensor], torch.Tensor]
"""Maps a batch of layer outputs (B, ...) to (B, k) features on the same device."""


class _StopForward(Exception):
    """Raised from the last hook of a batch: nothing after the last requested layer is needed."""


class _Prefaulter:
    """Touches the rows of later batches in the output buffers on a helper thread.

    Writing a layer's output into never-touched memory costs a page fault per page; on the
    2-core development VM that made the copy 2–5× slower than into touched memory (0.3–1.8 vs
    2.3–3.3 GB/s, ``perf/PROFILE.md``), and with 21 full-resolution layers of resnet18 it was
    most of extract's overhead over the bare forward pass. The helper faults in (zeroes) each
    buffer's rows of batch 1, 2, … while the forward pass runs, so the hook's copy lands in
    touched memory. A (layer, batch) chunk is zeroed at most once and never after the hook has
    claimed it: the hook either claims a chunk the helper has not started or waits for it.
    torch's ``zero_`` releases the GIL, so the helper needs a core the forward pass leaves idle
    (see :func:`_spare_core`); the recorded values are the same with or without it.
    """

    PENDING, CLAIMED, BUSY, DONE = range(4)
    BLOCK_BYTES = 16 << 20  # zeroed per step, so a hook that needs a busy chunk waits ~ms

    def __init__(self, n: int, batch_size: int):
        self.n, self.batch_size = n, batch_size
        self.cond = threading.Condition()
        self.state: dict[tuple[str, int], int] = {}
        self.wanted: set[tuple[str, int]] = set()  # busy chunks a hook is waiting for
        self.queue: list[tuple[str, int, torch.Tensor]] = []
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="brainalign-prefault", daemon=True)
        self.thread.start()

    def add(self, name: str, buf: torch.Tensor) -> None:
        """Queue the rows of every batch after the first of a new buffer."""
        with self.cond:
            for b in range(1, -(-self.n // self.batch_size)):
                self.state[(name, b)] = self.PENDING
                self.queue.append((name, b, buf))
            self.queue.sort(key=lambda c: c[1])  # earliest batch first, across layers
            self.cond.notify()

    def claim(self, name: str, batch: int) -> None:
        """Called by the hook before it writes rows of ``batch``: afterwards nobody else will."""
        key = (name, batch)
        with self.cond:
            if self.state.get(key) == self.PENDING:
                self.state[key] = self.CLAIMED
            if self.state.get(key) == self.BUSY:
                self.wanted.add(key)  # the helper stops after its current block
                while self.state.get(key) == self.BUSY:
                    self.cond.wait()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                name, b, buf = self.queue.pop(0)
                if self.state[(name, b)] != self.PENDING:
                    continue
                self.state[(name, b)] = self.BUSY
            try:
                rows = buf[b * self.batch_size:(b + 1) * self.batch_size]
                step = max(1, self.BLOCK_BYTES // max(1, rows.shape[1] * rows.element_size()))
                with torch.inference_mode():  # the buffers are inference tensors; the mode is per thread
                    for i in range(0, rows.shape[0], step):
                        if (name, b) in self.wanted:
                            break
                        rows[i:i + step].zero_()
            finally:
                with self.cond:
                    self.state[(name, b)] = self.DONE
                    self.wanted.discard((name, b))
                    self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.queue.clear()
            self.cond.notify_all()
        self.thread.join()


def _spare_core(device: torch.device, n_batches: int) -> bool:
    """Whether helper threads can pre-fault output rows and prefetch images without slowing the
    forward pass: a CPU run of more than one batch, with more cores than torch's intra-op threads
    and a load average (which counts this process) that leaves one of those cores idle. On a
    loaded machine the helpers would only compete for the same cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type != "cpu" or n_batches < 2 or cores <= torch.get_num_threads():
        return False
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return True
    return load < cores - torch.get_num_threads() + 0.5


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
            except StimulusError:
                raise
            except Exception as err:
                raise StimulusError(
                    f"stimulus {stimuli.ids[i]!r} of {stimuli.name!r} could not be preprocessed "
                    f"for {model.name}: {err}") from err
        yield start, stop, torch.stack(imgs)


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
    stimuli: StimulusSet | torch.Tensor,
    layers: str | Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    reducers: Reducer | Mapping[str, Reducer] | None = None,
    stimulus_ids: Sequence[str] | None = None,
    progress: bool = False,
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
        A :class:`~brainalign.models.BrainModel`.
    stimuli
        A :class:`~brainalign.data.StimulusSet` (preprocessed with ``model.preprocess``), or an
        already preprocessed (N, C, H, W) tensor.
    layers
        Layer names or glob patterns (``"features.*"``); ``None`` means ``model.layers``.
    batch_size
        Stimuli per forward pass.
    device
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``, …; the module is moved there.
    reducers
        One function, or one per layer name, applied to each batch's output on the device
        (e.g. pooling or a random projection) so memory stays bounded.
    stimulus_ids
        Ids for a tensor input (default ``"0"``, ``"1"``, …).
    keep_on_device
        Record into float32 tensors on ``device`` and return them (layer → (stimulus × unit)
        tensor) instead of host DataArrays: on a GPU nothing leaves it, so metrics that take
        tensors (:func:`~brainalign.metrics.rdm`, :func:`~brainalign.metrics.cka`,
        :func:`~brainalign.metrics.encoding_score`) run there (``perf/gpu_end_to_end.py``).

    Returns
    -------
    dict of str to xarray.DataArray
        One (stimulus × unit) array per layer, in forward order, with coordinate ``stimulus_id``
        and attributes ``layer``, ``model`` and ``shape`` (the per-stimulus output shape).
    """
    names = model.resolve_layers(layers)
    info = model.layer_info
    dev = resolve_device(device)
    module = model.module.to(dev).eval()
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

    prefault: _Prefaulter | None = None  # helper threads, started inside the try below
    prefetch: Any = None

    def record(name: str, out: torch.Tensor) -> None:
        reducer = reducers.get(name) if isinstance(reducers, Mapping) else reducers
        feats = reducer(out) if reducer is not None else out
        flat = feats.reshape(feats.shape[0], -1)
        buf = buffers.get(name)
        if buf is None:
            shapes[name] = tuple(feats.shape[1:])
            buf = buffers[name] = _new_buffer(n, flat.shape[1], dev if keep_on_device else None)
            if prefault is not None:
                prefault.add(name, buf)
        elif prefault is not None:
            prefault.claim(name, window[0] // batch_size)
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
                record(name, out)
            if finished[0] == len(names):
                raise _StopForward

        return hook

    handles = [mods[m].register_forward_hook(make_hook(m)) for m in wanted]
    try:
        if _spare_core(dev, -(-n // batch_size)):
            prefault = _Prefaulter(n, batch_size)
        with torch.inference_mode():
            batches = _batches(stimuli, model, batch_size)
            if not isinstance(stimuli, torch.Tensor) and (dev.type == "cuda" or prefault is not None):
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
        if prefault is not None:
            prefault.close()

    if keep_on_device:
        return _as_tensors(buffers, names)
    return {
        name: xr.DataArray(
            buffers[name].numpy(), dims=("stimulus", "unit"),
            coords={"stimulus_id": ("stimulus", ids)},
            attrs={"layer": name, "model": model.name, "shape": shapes[name]},
        )
        for name in names
    }
