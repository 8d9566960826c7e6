"""Activations: batched recording of layer outputs."""

from brainalign.activations.budget import MemoryPlan, plan_memory
from brainalign.activations.cache import ActivationCache
from brainalign.activations.extract import Reducer, extract, iter_extract
from brainalign.activations.reducers import RandomProjection
from brainalign.activations.stream import LayerStream, stream_layers

__all__ = ["ActivationCache", "LayerStream", "MemoryPlan", "RandomProjection", "Reducer", "extract",
           "iter_extract", "plan_memory", "stream_layers"]
