"""Readers of plain arrays and image archives: npy responses with declared dims, npy images,
zips of image files. Each is registered by name in :data:`brainalign.data.readers.READERS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainalign.data.stimuli import StimulusSet, decode_image
from brainalign.errors import BenchmarkDefinitionError, DataFaultError, StimulusError

PathGetter = Callable[[str], Path]
_KNOWN_DIMS = {"stimulus", "neuroid", "repetition", "time_bin"}


def load_npy(path: Path) -> np.ndarray:
    """``np.load`` without pickles; a file that is not a valid array raises a named error."""
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise BenchmarkDefinitionError(f"{path}: not a readable .npy array: {err}") from err


def check_responses(da: xr.DataArray, path: Path | str) -> xr.DataArray:
    """Refuse responses that cannot be right, naming the file and the first bad position.

    Every value must be finite, except that an array with a ``repetition`` dim may hold NaN in
    unused repetition slots (unequal repeat counts are stored NaN-padded) as long as every
    (stimulus, neuroid[, time bin]) keeps at least one finite repeat.

    Raises
    ------
    DataFaultError
        inf anywhere; NaN in repeat-averaged responses; a response with no finite repeat.
    """
    values = np.asarray(da.values)
    dims = list(da.dims)

    def where(index: tuple[int, ...], skip: str | None = None) -> str:
        names = [d for d in dims if d != skip]
        parts = []
        for d, i in zip(names, index, strict=True):
            coord = {"stimulus": "stimulus_id", "neuroid": "neuroid_id"}.get(d)
            label = da[coord].values[i] if coord in da.coords else None
            parts.append(f"{d} {i}" + (f" ({label})" if label is not None else ""))
        return ", ".join(parts)

    inf = np.isinf(values)
    if inf.any():
        first = tuple(int(i) for i in np.argwhere(inf)[0])
        raise DataFaultError(f"{path}: {int(inf.sum())} infinite response value(s); first at {where(first)}")
    nan = np.isnan(values)
    if "repetition" in dims:
        nan = nan.all(axis=dims.index("repetition"))
        if nan.any():
            first = tuple(int(i) for i in np.argwhere(nan)[0])
            raise DataFaultError(f"{path}: {int(nan.sum())} response(s) with no finite repeat (all NaN); "
                                 f"first at {where(first, skip='repetition')}")
    elif nan.any():
        first = tuple(int(i) for i in np.argwhere(nan)[0])
        raise DataFaultError(f"{path}: {int(nan.sum())} NaN response value(s); first at {where(first)}. "
                             "Repeat-averaged responses must be finite (drop or impute them first; NaN "
                             "is allowed only as padding of a repetition axis)")
    return da


def read_npy_images(path_of: PathGetter, *, name: str, file: str, shape: Sequence[int] | None = None,
                    scale: float = 1.0, value_range: Sequence[float] = (0.0, 1.0),
                    id_format: str = "{name}/{index:03d}",
                    visual_degrees: float | None = None) -> StimulusSet:
    """Images stored as one array, one stimulus per row (flattened or not).

    Parameters
    ----------
    shape
        Per-image shape (``[31, 31]`` for flattened 31×31 grayscale rows, row-major).
    scale
        Multiplies the stored values, to bring them to 0..1 (the Antolik 2016 inputs are stored
        as pixel/1e6 in 0..255 units: ``scale = 1e6 / 255``).
    value_range
        The range the scaled values must lie in; values outside it mean a wrong ``scale``, which
        would silently change what the model sees, so they raise :class:`StimulusError`.
    """
    path = path_of(file)
    arr = load_npy(path).astype(np.float32) * np.float32(scale)
    if shape is not None:
        try:
            arr = arr.reshape((arr.shape[0], *shape))
        except ValueError as err:
            raise BenchmarkDefinitionError(
                f"{path}: cannot reshape {arr.shape} to images of {list(shape)}") from err
    bad = ~np.isfinite(arr)
    if bad.any():  # NaN passes every range comparison: name it before the range check
        first = int(np.argwhere(bad.reshape(len(arr), -1).any(1))[0][0])
        raise StimulusError(f"{path}: {int(bad.sum())} NaN/inf pixel value(s); first in image {first}")
    lo, hi = value_range
    tol = 1e-4 * (hi - lo)
    if arr.min() < lo - tol or arr.max() > hi + tol:
        raise StimulusError(
            f"{path}: pixel values {arr.min():.4g}..{arr.max():.4g} after scale {scale:g} lie outside "
            f"{lo:g}..{hi:g}; check the stored pixel scale")
    arr = np.clip(arr, lo, hi)
    ids = [id_format.format(name=name, index=i) for i in range(arr.shape[0])]
    return StimulusSet(name, tuple(ids), list(arr), pd.DataFrame(), visual_degrees)


class ZipBytesImages:
    """Images of a zip, its members' bytes read once (one open of the archive), decoded on demand.

    Opening a zip of a thousand members costs as much as decoding a JPEG, so the compressed bytes
    are kept (a few MB) instead of reopening the archive for every image.
    """

    def __init__(self, path: Path, members: Sequence[str]):
        self.path, self.members = Path(path), tuple(members)
        self._data: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int) -> np.ndarray:
        import io
        import zipfile

        if self._data is None:
            with zipfile.ZipFile(self.path) as zf:
                self._data = [zf.read(m) for m in self.members]
        return decode_image(io.BytesIO(self._data[i]), f"{self.path}: image {self.members[i]!r}")


def read_zip_images(path_of: PathGetter, *, name: str, file: str, id_format: str = "{name}/{stem}",
                    visual_degrees: float | None = None, expected: int | None = None) -> StimulusSet:
    """Images in a zip file (any folder depth), in sorted member order.

    ``id_format`` may use ``name``, ``stem`` (file name without suffix) and ``index``.
    Images decode on demand; one that fails names the zip and the member.
    """
    path = path_of(file)
    base = StimulusSet.from_zip(name, path)
    members = base.images.members  # type: ignore[union-attr]
    if expected is not None and len(members) != expected:
        raise StimulusError(f"{path}: {len(members)} images, expected {expected}")
    ids = [id_format.format(name=name, stem=Path(m).stem, index=i) for i, m in enumerate(members)]
    meta = pd.DataFrame({"file": list(members)})
    return StimulusSet(name, tuple(ids), ZipBytesImages(path, members), meta, visual_degrees)


def read_npy_assembly(path_of: PathGetter, *, file: str, dims: Sequence[str], stimulus_ids: Sequence[str],
                      neuroid_format: str = "{index}", coords: Mapping[str, Any] | None = None,
                      scale: float = 1.0, time_bins: Sequence[Sequence[float]] | None = None,
                      ) -> xr.DataArray:
    """Responses stored as one npy array whose axes are declared in the YAML.

    Parameters
    ----------
    dims
        Names of the stored axes, from ``stimulus``, ``neuroid``, ``repetition``, ``time_bin``
        (e.g. Cowley's ``[neuroid, stimulus]``, Antolik's raw ``[repetition, stimulus, neuroid]``).
    stimulus_ids
        The stimulus set's ids; the stimulus axis must have the same length.
    neuroid_format
        Neuroid ids, formatted with ``index`` and every scalar in ``coords``.
    coords
        Constant neuroid coordinates (``region``, ``session``, ``subject``, …).
    time_bins
        ``[[start, stop], …]`` in ms for a ``time_bin`` axis.

    Returns
    -------
    xarray.DataArray
        Dims in the order (stimulus, neuroid[, repetition][, time_bin]), float64, with coords
        ``stimulus_id``, ``neuroid_id`` and those of ``coords``. Unused repetition slots stay NaN.
    """
    path = path_of(file)
    arr = load_npy(path).astype(np.float64) * scale
    dims = list(dims)
    if arr.ndim != len(dims) or set(dims) - _KNOWN_DIMS or len(set(dims)) != len(dims):
        raise BenchmarkDefinitionError(
            f"{path}: array of shape {arr.shape} does not fit dims {dims} (known: {sorted(_KNOWN_DIMS)})")
    if "stimulus" not in dims or "neuroid" not in dims:
        raise BenchmarkDefinitionError(f"{path}: dims {dims} need 'stimulus' and 'neuroid'")
    n_stim = arr.shape[dims.index("stimulus")]
    if n_stim != len(stimulus_ids):
        raise StimulusError(
            f"{path}: {n_stim} stimuli in the responses but {len(stimulus_ids)} in the stimulus set "
            f"(first id {stimulus_ids[0] if len(stimulus_ids) else None!r})")
    order = [d for d in ("stimulus", "neuroid", "repetition", "time_bin") if d in dims]
    da = xr.DataArray(arr, dims=dims).transpose(*order)
    consts = dict(coords or {})
    n_neur = da.sizes["neuroid"]
    ids = [neuroid_format.format(index=i, **{k: v for k, v in consts.items() if np.isscalar(v)})
           for i in range(n_neur)]
    out_coords: dict[str, Any] = {"stimulus_id": ("stimulus", list(stimulus_ids)),
                                  "neuroid_id": ("neuroid", ids)}
    for k, v in consts.items():
        out_coords[k] = ("neuroid", [v] * n_neur if np.isscalar(v) else list(v))
    if "time_bin" in dims:
        if time_bins is None or len(time_bins) != da.sizes["time_bin"]:
            raise BenchmarkDefinitionError(f"{path}: a time_bin axis of {da.sizes['time_bin']} needs as many "
                                           f"time_bins [[start, stop], …] in ms")
        out_coords["time_bin_start"] = ("time_bin", [float(t[0]) for t in time_bins])
        out_coords["time_bin_stop"] = ("time_bin", [float(t[1]) for t in time_bins])
    return check_responses(da.assign_coords(out_coords).assign_attrs(source=str(path)), path)
