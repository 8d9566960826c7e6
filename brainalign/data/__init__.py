"""Data: manifests, file resolution, stimulus sets and readers."""

from brainalign.data.fetch import fetch_file, sha256_file
from brainalign.data.manifest import Manifest, list_datasets, load_manifest
from brainalign.data.stimuli import StimulusSet

__all__ = ["Manifest", "StimulusSet", "fetch_file", "list_datasets", "load_manifest", "sha256_file"]
