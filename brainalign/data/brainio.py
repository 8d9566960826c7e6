"""Brain-Score's BrainIO format: a netCDF assembly plus a stimulus set (CSV + zip of images).

An assembly file holds one DataArray (variable ``data``, or xarray's default name) whose
multi-indexes were reset before writing, so each level is a plain coordinate along its dim:
``presentation`` (``stimulus_id`` or legacy ``image_id``, ``repetition``, …), ``neuroid``
(``neuroid_id``, ``region``, ``animal``, …) and optionally ``time_bin`` (``time_bin_start``,
``time_bin_end``). The stimulus CSV has one row per stimulus, with its id and the ``filename``
of its image inside the zip.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainalign.data.archives import check_members
from brainalign.data.arrays import ZipBytesImages, check_responses
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import BenchmarkDefinitionError, StimulusError

PathGetter = Callable[[str], Path]
_ID_COLUMNS = ("stimulus_id", "image_id")


def _id_column(columns: Sequence[str], where: str) -> str:
    for c in _ID_COLUMNS:
        if c in columns:
            return c
    raise BenchmarkDefinitionError(f"{where}: no stimulus id column (looked for {list(_ID_COLUMNS)})")


def open_assembly(path: Path) -> xr.DataArray:
    """The DataArray stored in a BrainIO netCDF file, with its coordinates as written."""
    try:
        ds = xr.open_dataset(path)
    except (OSError, ValueError) as err:
        raise BenchmarkDefinitionError(f"{path}: not a readable netCDF assembly: {err}") from err
    with ds:
        names = list(ds.data_vars)
        if not names:
            raise BenchmarkDefinitionError(f"{path}: no data variable in the netCDF file")
        name = "data" if "data" in names else names[0]
        return ds[name].load()


def read_brainio_stimuli(path_of: PathGetter, *, name: str, csv: str, zip: str,
                         visual_degrees: float | None = None, id_format: str = "{id}",
                         filename_column: str = "filename") -> StimulusSet:
    """A BrainIO stimulus set: the CSV's rows in order, images from the zip by ``filename``.

    Every CSV row must have its image in the zip; a missing one raises :class:`StimulusError`
    naming the stimulus id and the zip.
    """
    csv_path, zip_path = path_of(csv), path_of(zip)
    try:
        table = pd.read_csv(csv_path)
    except (OSError, ValueError) as err:
        raise BenchmarkDefinitionError(f"{csv_path}: not a readable CSV: {err}") from err
    col = _id_column(list(table.columns), str(csv_path))
    if filename_column not in table.columns:
        raise BenchmarkDefinitionError(f"{csv_path}: no {filename_column!r} column")
    with zipfile.ZipFile(zip_path) as zf:
        members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")}
    chosen = []
    sids, fnames = list(table[col].astype(str)), list(table[filename_column].astype(str))
    for sid, fname in map(tuple, np.stack([sids, fnames], 1)):  # `zip` is a parameter name here
        member = members.get(Path(fname).name)
        if member is None:
            raise StimulusError(f"{zip_path}: no image {fname!r} for stimulus {sid!r} of {csv_path.name}")
        chosen.append(member)
    check_members(zip_path, chosen)
    ids = [id_format.format(id=s, name=name) for s in table[col].astype(str)]
    meta = table.drop(columns=[col]).reset_index(drop=True)
    return StimulusSet(name, tuple(ids), ZipBytesImages(zip_path, tuple(chosen)), meta, visual_degrees)


def read_brainio_assembly(path_of: PathGetter, *, file: str, stimulus_ids: Sequence[str],
                          region: str | Sequence[str] | None = None, average_repetitions: bool = True,
                          id_format: str = "{id}", select: dict[str, Any] | None = None) -> xr.DataArray:
    """A BrainIO neural assembly as (stimulus, neuroid[, repetition][, time_bin]).

    Presentations are grouped by stimulus id and put in the order of ``stimulus_ids``; every
    stimulus must have at least one presentation. With ``average_repetitions`` the repetitions
    are averaged, else they form a NaN-padded ``repetition`` dim (for split-half ceilings).

    Parameters
    ----------
    region
        Keep neuroids whose ``region`` coordinate is this (or one of these).
    id_format
        Maps the file's stimulus id to the stimulus set's id (``"{id}"``).
    select
        Further neuroid coordinate values to keep, e.g. ``{animal: Chabo}``.
    """
    path = path_of(file)
    da = open_assembly(path)
    for d in ("presentation", "neuroid"):
        if d not in da.dims:
            raise BenchmarkDefinitionError(f"{path}: assembly dims {da.dims} lack {d!r}")
    # Drop index variables left by reset_index (``presentation_``) and dim coords themselves.
    da = da.drop_vars([c for c in da.coords if c in da.dims or c.endswith("_")], errors="ignore")
    keep = np.ones(da.sizes["neuroid"], bool)
    if region is not None:
        if "region" not in da.coords:
            raise BenchmarkDefinitionError(f"{path}: no 'region' coordinate to select {region!r}")
        regions = [region] if isinstance(region, str) else list(region)
        keep &= np.isin(da["region"].values.astype(str), regions)
    for k, v in (select or {}).items():
        if k not in da.coords:
            raise BenchmarkDefinitionError(f"{path}: no coordinate {k!r} to select on")
        keep &= np.isin(da[k].values.astype(str), [str(x) for x in np.atleast_1d(v)])
    if not keep.any():
        raise BenchmarkDefinitionError(f"{path}: no neuroid matches region={region!r} select={select!r}")
    da = da.isel(neuroid=np.flatnonzero(keep))
    col = _id_column([c for c in da.coords if da[c].dims == ("presentation",)], str(path))
    pres_ids = np.array([id_format.format(id=s) for s in da[col].values.astype(str)])
    where = {s: np.flatnonzero(pres_ids == s) for s in stimulus_ids}
    missing = [s for s, w in where.items() if w.size == 0]
    if missing:
        raise StimulusError(f"{path}: no presentation of stimulus {missing[0]!r} "
                            f"({len(missing)} of {len(stimulus_ids)} stimuli missing)")
    unknown = sorted(set(pres_ids) - set(stimulus_ids))
    if unknown:
        raise StimulusError(f"{path}: responses to stimulus {unknown[0]!r} that the stimulus set lacks "
                            f"({len(unknown)} unknown ids)")
    other = [d for d in da.dims if d not in ("presentation", "neuroid")]
    values = da.transpose("presentation", "neuroid", *other).values.astype(np.float64)
    n_rep = max(w.size for w in where.values())
    trials = np.full((len(stimulus_ids), n_rep, *values.shape[1:]), np.nan)
    for i, s in enumerate(stimulus_ids):
        w = where[s]
        trials[i, :w.size] = values[w]
    neuroid_coords = {c: ("neuroid", da[c].values) for c in da.coords if da[c].dims == ("neuroid",)}
    if "neuroid_id" not in neuroid_coords:
        neuroid_coords["neuroid_id"] = ("neuroid", [str(i) for i in range(da.sizes["neuroid"])])
    coords: dict[str, Any] = {"stimulus_id": ("stimulus", list(stimulus_ids)), **neuroid_coords}
    if "time_bin" in other:
        end = "time_bin_end" if "time_bin_end" in da.coords else "time_bin_stop"
        coords["time_bin_start"] = ("time_bin", da["time_bin_start"].values.astype(float))
        coords["time_bin_stop"] = ("time_bin", da[end].values.astype(float))
    if average_repetitions:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells are named just below
            data = np.nanmean(trials, axis=1)
        return check_responses(xr.DataArray(data, dims=("stimulus", "neuroid", *other), coords=coords,
                                            attrs={"source": str(path)}), path)
    data = np.moveaxis(trials, 1, 2)  # (stimulus, neuroid, repetition, ...)
    return check_responses(xr.DataArray(data, dims=("stimulus", "neuroid", "repetition", *other),
                                        coords=coords, attrs={"source": str(path)}), path)
