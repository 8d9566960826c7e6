"""Content-addressed activation cache: keyed on what determines the numbers, never on names.

An entry is the (stimulus × feature) float32 array of one layer, stored as ``<key>.npy`` with a
``<key>.json`` sidecar (its sha256, shape, stimulus ids and the key's components). The key hashes
the weights (state-dict sha256), the architecture (the module's printed structure), the code of
every module class in the network (the source of each class, so a changed ``forward`` misses even
with identical weights and ``repr``; a declared ``revision`` where the source cannot be read), the
recording mode (eval / train), the preprocessing (its description and the bytes it makes of the
first stimulus), the stimulus set (ids and pixels), the layer, the reducer and the versions of
brainalign and torch. Renaming a model or a benchmark cannot return stale activations; changing
any of these misses. A model whose code can be neither read nor declared is not cached.

Files are written to a temporary name in the same folder and moved into place with
:func:`os.replace` (atomic on one file system), the array before its sidecar; an entry counts only
when its sidecar exists and the array's sha256 matches it, so an interrupted write or a corrupted
file is recomputed, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from brainalign.activations.reducers import describe_reducer
from brainalign.data.stimuli import StimulusSet
from brainalign.io import atomic_write_bytes
from brainalign.models.base import BrainModel
from brainalign.settings import PathLike, cache_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: PathLike) -> str:
    """sha256 of a file's bytes: how the code of the user's own files is identified (here, in the
    class code of :func:`code_fingerprint`, and by ``batch --resume`` for ``file:`` models)."""
    return _sha(Path(path).read_bytes())


def stimuli_hash(stimuli: StimulusSet | torch.Tensor, ids: Sequence[str] | None = None) -> str:
    """Content hash of a stimulus set, or of a preprocessed tensor and its ids."""
    if isinstance(stimuli, StimulusSet):
        return stimuli.content_hash()
    t = stimuli.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"tensor:{t.dtype}:{tuple(t.shape)}:{list(ids or [])}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class CodeUnavailable(Exception):
    """The source of a module class cannot be read and the model declares no ``revision``."""


def code_fingerprint(module: torch.nn.Module, revision: str | None = None) -> dict[str, str]:
    """sha256 of the source of each module class in ``module`` (by qualified name).

    The class source covers ``forward`` and every method it defines; for classes in the user's
    own files (not installed packages) the whole file is hashed too, so a helper function beside
    the class counts. torch, torchvision, timm and transformers classes are covered by their
    source and their versions. When a
    class's source cannot be read (defined in a REPL or by ``exec``), ``revision`` (declared by
    the user: ``wrap(..., revision="v2")``) stands for the code.

    Raises
    ------
    CodeUnavailable
        A class without readable source and no ``revision``.
    """
    out: dict[str, str] = {}
    for cls in {type(m) for m in module.modules()}:
        name = f"{cls.__module__}.{cls.__qualname__}"
        try:
            src = _class_code(cls)
        except (OSError, TypeError) as err:
            if revision is None:
                raise CodeUnavailable(f"source of {name} cannot be read ({err})") from err
            src = f"revision:{revision}"
        out[name] = _sha(src.encode())
    if revision is not None:
        out["<revision>"] = str(revision)
    return dict(sorted(out.items()))


def _class_code(cls: type) -> str:
    """The source of every function defined by ``cls`` and its bases up to ``nn.Module``, read
    through each function's own code object (its real file and line, even when two classes
    share a module name), with the class's other attributes' reprs."""
    parts = []
    files: set[str] = set()
    for klass in cls.__mro__:
        if klass in (torch.nn.Module, object):
            break
        for attr, val in sorted(vars(klass).items()):
            fn = getattr(val, "__func__", val)  # staticmethod / classmethod
            if inspect.isfunction(fn):
                parts.append(f"{klass.__qualname__}.{attr}:{inspect.getsource(fn)}")
                files.add(fn.__code__.co_filename)
            elif isinstance(val, int | float | str | bool | tuple) and not attr.startswith("__"):
                parts.append(f"{klass.__qualname__}.{attr}={val!r}")
    # The user's own files whole (helper functions beside the class); installed packages are
    # covered by their versions.
    for f in sorted(files):
        if not {"site-packages", "dist-packages"} & set(Path(f).parts) and Path(f).is_file():
            parts.append(f"file:{file_sha256(f)}")
    return "\n".join(parts)


def model_fingerprint(model: BrainModel, stimuli: StimulusSet | torch.Tensor) -> dict[str, Any] | None:
    """What identifies a model's computation on ``stimuli`` apart from the layer and reducer:
    weights hash, printed architecture, code of its module classes (:func:`code_fingerprint`),
    recording mode and preprocessing. None when the code cannot be identified (nothing is
    then cached for this model)."""
    try:
        code = code_fingerprint(model.module, model.revision)
    except CodeUnavailable as err:
        log.warning("%s: not caching activations: %s; pass revision= to wrap/load_model to "
                    "declare the code's version", model.name, err)
        return None
    pre: dict[str, Any] = {"input_size": model.input_size, "in_channels": model.in_channels,
                           "described": model.extra.get("preprocess")}
    if isinstance(stimuli, StimulusSet):
        # The bytes the preprocessing makes of one stimulus: catches a changed transform that
        # describes itself the same (or not at all).
        x = model.preprocess(stimuli.image(0))
        pre["first_stimulus"] = _sha(x.detach().to("cpu").contiguous().numpy().tobytes())
    return {"weights_hash": model.weights_hash,
            "architecture": _sha(repr(model.module).encode()),
            "code": _sha(json.dumps(code, sort_keys=True).encode()),
            "mode": model.mode,
            "preprocess": pre}


def _versions() -> dict[str, str]:
    import brainalign

    return {"brainalign": brainalign.__version__, "torch": torch.__version__, "format": str(FORMAT_VERSION)}


def activation_key(model_fp: dict[str, Any], stimuli_fp: str, layer: str, calls: int,
                   reducer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(sha256 key, its components) of one layer's activations."""
    parts = {"model": model_fp, "stimuli": stimuli_fp, "layer": layer, "layer_calls": calls,
             "reducer": reducer, "versions": _versions()}
    return _sha(json.dumps(parts, sort_keys=True, default=str).encode()), parts


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)  # the one atomic-write helper (brainalign.io)


_SHARD = re.compile(r"[0-9a-f]{2}")
_ENTRY = re.compile(r"\.?[0-9a-f]{64}\.(npy|json)(\.@.*)?")


class ActivationCache:
    """Layer activations on disk, content-addressed.

    Parameters
    ----------
    root
        Folder of the cache; default ``<BRAINALIGN_CACHE>/activations``.
    """

    def __init__(self, root: PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "activations"
        self.hits = self.misses = self.corrupt = 0

    def __repr__(self) -> str:
        return f"ActivationCache({str(self.root)!r})"

    def entries(self) -> list[Path]:
        """The files of the cache's entries (``<k>/<key>.npy`` and ``.json``, and temporary files
        of writes that did not finish); nothing else the folder may hold."""
        if not self.root.is_dir():
            return []
        return sorted(p for d in self.root.iterdir() if d.is_dir() and _SHARD.fullmatch(d.name)
                      for p in d.iterdir() if p.is_file() and _ENTRY.fullmatch(p.name))

    def _paths(self, key: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.npy", d / f"{key}.json"

    def get(self, key: str, ids: Sequence[str]) -> np.ndarray | None:
        """The cached array for ``key``, or None when absent, unreadable or not what the sidecar
        says (then the entry is removed, so it is recomputed)."""
        npy, meta = self._paths(key)
        if not meta.exists():
            self.misses += 1
            return None
        try:
            info = json.loads(meta.read_text())
            raw = npy.read_bytes()
            if _sha(raw) != info["sha256"]:
                raise ValueError("sha256 of the array does not match its sidecar")
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
            if list(arr.shape) != info["shape"] or arr.dtype != np.float32:
                raise ValueError(f"array of shape {arr.shape} {arr.dtype}, sidecar says {info['shape']}")
            if info["stimulus_ids_sha256"] != _sha(json.dumps(list(ids)).encode()):
                raise ValueError("stimulus ids differ from the sidecar's")
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            log.warning("activation cache entry %s is corrupt (%s); recomputing it", key, err)
            self.corrupt += 1
            self.misses += 1
            for p in (meta, npy):
                with contextlib.suppress(OSError):
                    p.unlink()
            return None
        self.hits += 1
        return arr

    def put(self, key: str, values: np.ndarray, ids: Sequence[str], parts: dict[str, Any]) -> None:
        """Store ``values`` (stimulus × feature) under ``key``: array first, then its sidecar."""
        npy, meta = self._paths(key)
        npy.parent.mkdir(parents=True, exist_ok=True)
        arr = np.ascontiguousarray(values, dtype=np.float32)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        raw = buf.getvalue()
        _atomic_write(npy, raw)
        info = {"sha256": _sha(raw), "shape": list(arr.shape), "dtype": "float32",
                "stimulus_ids_sha256": _sha(json.dumps(list(ids)).encode()), "key": parts}
        _atomic_write(meta, json.dumps(info, indent=1, default=str).encode())


def cached_layer(cache: ActivationCache | None, key: str | None, ids: Sequence[str], layer: str,
                 model: BrainModel, shape: tuple[int, ...], reducer: Any) -> xr.DataArray | None:
    """A cached layer as the DataArray :func:`brainalign.extract` returns, or None."""
    if cache is None or key is None:
        return None
    arr = cache.get(key, ids)
    if arr is None:
        return None
    return xr.DataArray(arr, dims=("stimulus", "unit"), coords={"stimulus_id": ("stimulus", list(ids))},
                        attrs={"layer": layer, "model": model.name, "shape": shape,
                               "reducer": json.dumps(describe_reducer(reducer)), "cached": True})
