"""Models: one factory for every source, and ``wrap`` for any ``nn.Module``."""

from brainalign.models.base import BrainModel, LayerInfo, state_dict_hash
from brainalign.models.registry import list_models, list_sources, load_model, wrap

__all__ = ["BrainModel", "LayerInfo", "list_models", "list_sources", "load_model", "state_dict_hash",
           "wrap"]
