"""Activations: batched recording of layer outputs."""

from brainalign.activations.extract import Reducer, extract, resolve_device

__all__ = ["Reducer", "extract", "resolve_device"]
