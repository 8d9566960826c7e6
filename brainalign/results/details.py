"""Per-layer details of a score (per neuroid, per split, per subject, bootstrap samples) as netCDF.

``ScoreResult.details`` maps (model, benchmark, layer, session) to a dict of arrays. Each entry is
written as one netCDF file (``NNNN.nc`` in a ``<name>.details`` folder): every numeric array
becomes a variable with its own dims (``<name>_dim0``, …), the key goes into attributes, and what
is not a numeric array (a NIfTI image, a property table) is listed in the ``skipped`` attribute.
The folder is written under a temporary name and renamed into place, so it is whole or absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign.settings import PathLike

Key = tuple[str, ...]


def _as_array(v: Any) -> np.ndarray | None:
    if isinstance(v, list | tuple):
        try:
            v = np.asarray(v)
        except ValueError:  # ragged (e.g. per-fold index arrays of different lengths)
            return None
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.dtype != object:
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "US":
        return v.astype(str)
    if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool):
        return np.asarray(v)
    return None


def details_dataset(key: Key, entry: dict[str, Any]) -> xr.Dataset:
    """One details entry as an ``xarray.Dataset`` (numeric arrays only; see the module docstring)."""
    data, skipped = {}, []
    for name, v in entry.items():
        arr = _as_array(v)
        if arr is None:
            skipped.append(name)
            continue
        data[name] = ([f"{name}_dim{i}" for i in range(arr.ndim)], arr)
    return xr.Dataset(data, attrs={"key": json.dumps(list(key)), "skipped": json.dumps(skipped)})


def save_details(details: dict[Key, dict[str, Any]], folder: PathLike) -> Path | None:
    """Write every entry of ``details`` as netCDF into ``folder`` (replaced whole); None when empty."""
    folder = Path(folder)
    if not details:
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the details from the rest of a lab (as io.atomic_path)
    try:
        for i, (key, entry) in enumerate(details.items()):
            details_dataset(tuple(str(k) for k in key), entry).to_netcdf(tmp / f"{i:04d}.nc")
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return folder


def load_details(folder: PathLike) -> dict[Key, dict[str, Any]]:
    """Read what :func:`save_details` wrote: key → {name: numpy array}; {} when absent."""
    folder = Path(folder)
    out: dict[Key, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.nc")):
        with xr.open_dataset(f) as ds:
            key = tuple(json.loads(ds.attrs["key"]))
            out[key] = {name: ds[name].values.copy() for name in ds.data_vars}
    return out
