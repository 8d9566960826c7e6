"""Memory-bounded recording: layers extracted (or read from the cache) group by group, handed
to the caller one at a time and freed once the caller moves on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import xarray as xr

from brainalign.activations.budget import MemoryPlan, one_batch, plan_memory
from brainalign.activations.cache import (
    ActivationCache,
    activation_key,
    cached_layer,
    model_fingerprint,
    stimuli_hash,
)
from brainalign.activations.extract import check_batch_size, iter_extract
from brainalign.activations.reducers import custom_reducer, describe_reducer
from brainalign.data.stimuli import StimulusSet, as_stimulus_set
from brainalign.device import DeviceLike, resolve_device
from brainalign.models.base import BrainModel

LayerCallback = Callable[[str, int, int], None]
"""Called as ``(layer, done, total)`` after the caller has finished with a layer."""


class LayerStream:
    """Iterator of ``(layer, DataArray)`` in forward order; see :func:`stream_layers`.

    Attributes
    ----------
    plan
        The :class:`~brainalign.activations.budget.MemoryPlan` the stream follows.
    """

    def __init__(self, model: BrainModel, stimuli: StimulusSet | torch.Tensor, plan: MemoryPlan, *,
                 batch_size: int, device: DeviceLike, progress: bool,
                 cache: ActivationCache | None, stimulus_ids: Sequence[str] | None,
                 on_layer: LayerCallback | None):
        self.model, self.stimuli, self.plan = model, stimuli, plan
        self.batch_size, self.device, self.progress = batch_size, device, progress
        self.cache, self.on_layer = cache, on_layer
        if isinstance(stimuli, StimulusSet):
            self.ids = list(stimuli.ids)
        else:
            self.ids = list(stimulus_ids) if stimulus_ids is not None else [str(i) for i in range(len(stimuli))]
        self.stimulus_ids = stimulus_ids

    def reduction(self) -> dict[str, Any]:
        """Per layer, what reduced its features (``{"kind": "none"}`` for full features)."""
        return {n: describe_reducer(self.plan.reducers[n]) or custom_reducer(self.plan.reducers[n])
                for n in self.plan.layers}

    def _keys(self) -> dict[str, tuple[str, dict[str, Any]] | None]:
        if self.cache is None:
            return dict.fromkeys(self.plan.layers)
        model_fp = model_fingerprint(self.model, self.stimuli)
        if model_fp is None:  # the model's code cannot be identified: never cached
            return dict.fromkeys(self.plan.layers)
        stim_fp = stimuli_hash(self.stimuli, self.ids)
        info = self.model.layer_info
        out: dict[str, tuple[str, dict[str, Any]] | None] = {}
        for n in self.plan.layers:
            desc = describe_reducer(self.plan.reducers[n])
            # A reducer that cannot describe itself cannot be keyed on content: never cached.
            out[n] = None if desc is None else activation_key(model_fp, stim_fp, n, info[n].calls, desc)
        return out

    def __iter__(self) -> Iterator[tuple[str, xr.DataArray]]:
        keys = self._keys()
        total = len(self.plan.layers)
        done = 0
        info = self.model.layer_info
        for group in self.plan.groups:
            acts: dict[str, xr.DataArray] = {}
            for n in group:
                key = keys[n]
                red = self.plan.reducers[n]
                shape = info[n].output_shape
                hit = cached_layer(self.cache, key[0] if key else None, self.ids, n, self.model, shape, red)
                if hit is not None:
                    if red is not None:
                        hit.attrs["shape"] = (hit.shape[1],)
                    acts[n] = hit
            missing = [n for n in group if n not in acts]
            fresh = None
            if missing:
                reducers = {n: self.plan.reducers[n] for n in missing if self.plan.reducers[n] is not None}
                # Layers are handed over as they are recorded (scored while the forward pass goes
                # on); in one batch, from inside the pass, so only one or two are held at a time.
                fresh = iter_extract(self.model, self.stimuli, missing, batch_size=self.batch_size,
                                     device=self.device, reducers=reducers or None,
                                     stimulus_ids=self.stimulus_ids, progress=self.progress)
            early: dict[str, xr.DataArray] = {}
            try:
                for n in group:
                    if n in acts:
                        da = acts.pop(n)
                    else:
                        while n not in early:  # layers come in the order their hooks finish
                            name, got = next(fresh)
                            early[name] = got
                        da = early.pop(n)
                        da.attrs["reducer"] = json.dumps(describe_reducer(self.plan.reducers[n]))
                        key = keys[n]
                        if self.cache is not None and key is not None:
                            self.cache.put(key[0], da.values, self.ids, key[1])
                    yield n, da  # the caller holds the only reference from here on
                    del da
                    done += 1
                    if self.on_layer is not None:
                        self.on_layer(n, done, total)
            finally:
                if fresh is not None:
                    fresh.close()  # stops the recording thread when the caller stopped early


def stream_layers(model: BrainModel, stimuli: StimulusSet | torch.Tensor,
                  layers: str | Sequence[str] | None = None, *, batch_size: int = 64,
                  device: DeviceLike = "auto", progress: bool = False,
                  reducers: Any = None, max_features: int | None = None,
                  memory_budget: int | str | None = None, adapt: bool = True,
                  cache: ActivationCache | None = None, stimulus_ids: Sequence[str] | None = None,
                  on_layer: LayerCallback | None = None) -> LayerStream:
    """Record layers in memory-bounded groups and hand them over one at a time.

    The memory plan (see :func:`~brainalign.activations.budget.plan_memory`) is made here, before
    anything runs, so a run that cannot fit is refused at once. Iterating then records one group
    of layers per forward pass over the stimuli (reading layers the cache already holds) and
    yields each layer's (stimulus × unit) DataArray in forward order as soon as it is recorded
    (:func:`~brainalign.activations.extract.iter_extract`: the pass goes on on a helper thread
    while the caller scores), dropping it once the caller asks for the next one. When every
    stimulus fits one batch and that holds less memory
    (:func:`~brainalign.activations.budget.one_batch`), the stimuli are recorded in one batch and
    about two layers are held at a time instead of a whole group (CPU only: on a GPU the batch
    size is kept); arrays kept by reference are then read-only (``.copy()`` one to change it).
    Convolutions, pooling and element-wise layers give the same values either way; a Linear
    layer's float32 outputs depend on the batch's size by rounding (~1e-7 relative, as for any
    change of ``batch_size``). ``.plan.notes`` says how the run was batched.

    Parameters
    ----------
    model, stimuli, layers, batch_size, device, progress, stimulus_ids
        As for :func:`brainalign.extract`.
    reducers
        One reducer, or a mapping of layer names or globs to reducers (see
        :func:`brainalign.activations.reducers.reducer_per_layer`).
    max_features
        Cap features per layer with a seeded random projection (instead of ``reducers``).
    memory_budget
        Bytes (or ``"2.5GB"``) the recorded activations may take at once.
    adapt
        Whether a run over budget may switch on projection and split layers into groups, or is
        refused (:class:`~brainalign.errors.MemoryBudgetError`).
    cache
        An :class:`~brainalign.activations.cache.ActivationCache`, or None.
    on_layer
        Called ``(layer, done, total)`` after the caller has finished with each layer.

    Returns
    -------
    LayerStream
        Iterable of ``(layer, DataArray)``; ``.plan`` tells how the run was planned.
    """
    batch_size = check_batch_size(batch_size)
    if not isinstance(stimuli, StimulusSet | torch.Tensor):
        stimuli = as_stimulus_set(stimuli)
    plan = plan_memory(model, layers, len(stimuli), budget=memory_budget, reducers=reducers,
                       max_features=max_features, adapt=adapt)
    # On a GPU the batch size bounds device memory, which the caller chose it for: kept there.
    if resolve_device(device).type == "cpu" and one_batch(model, plan, len(stimuli), batch_size):
        plan.notes.append(f"all {len(stimuli)} stimuli in one batch (asked: {batch_size}): each layer "
                          "is scored as it is recorded, so about two layers are held instead of all")
        batch_size = len(stimuli)
    else:
        plan.notes.append(f"recorded in batches of {batch_size}")
    return LayerStream(model, stimuli, plan, batch_size=batch_size, device=device, progress=progress,
                       cache=cache, stimulus_ids=stimulus_ids, on_layer=on_layer)
