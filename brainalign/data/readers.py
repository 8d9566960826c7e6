"""Readers that turn dataset files into stimulus sets, neural assemblies and RDM stacks.

A benchmark YAML names a reader and its parameters; readers are plain functions in one explicit
table (:data:`READERS`), so a new benchmark over a known file format needs no code.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from brainalign.data.stimuli import StimulusSet
from brainalign.errors import BenchmarkDefinitionError

PathGetter = Callable[[str], Path]


def _mat_variable(path: Path, variable: str) -> np.ndarray:
    from scipy.io import loadmat  # scipy.io is only needed by .mat readers: imported on use

    mat = loadmat(path)
    if variable not in mat:
        names = [k for k in mat if not k.startswith("__")]
        raise BenchmarkDefinitionError(f"{path}: no variable {variable!r}; it holds {names}")
    return mat[variable]


def _scalar(x: Any) -> Any:
    """Unwrap MATLAB's nested 1x1 cells and char arrays into a Python scalar or string."""
    x = np.asarray(x)
    while x.dtype == object and x.size == 1:
        x = np.asarray(x.item())
    if x.dtype.kind in "US":
        return str(x.item()) if x.size == 1 else "".join(map(str, x.ravel()))
    return x.item() if x.size == 1 else x


def _struct_field(arr: np.ndarray, field: str, where: str) -> np.ndarray:
    if arr.dtype.names is None or field not in arr.dtype.names:
        raise BenchmarkDefinitionError(f"{where}: struct has no field {field!r} (fields: {arr.dtype.names})")
    return arr[field]


def read_mat_images(path_of: PathGetter, *, name: str, file: str, variable: str, image_field: str,
                    metadata_fields: Sequence[str] = (), id_format: str = "{name}/{index:03d}",
                    visual_degrees: float | None = None) -> StimulusSet:
    """Images stored in a MATLAB struct array (one element per stimulus)."""
    path = path_of(file)
    structs = _mat_variable(path, variable).ravel()
    where = f"{path}:{variable}"
    images = [np.asarray(s) for s in _struct_field(structs, image_field, where)]
    meta = {f: [_scalar(v) for v in _struct_field(structs, f, where)] for f in metadata_fields}
    ids = [id_format.format(name=name, index=i) for i in range(len(images))]
    return StimulusSet(name, tuple(ids), images, pd.DataFrame(meta), visual_degrees)


def read_mat_rdms(path_of: PathGetter, *, file: str, variable: str, field: str = "RDM",
                  stimulus_ids: Sequence[str], dims: Sequence[str] = ("subject",),
                  select: Sequence[int] | None = None, labels: dict[str, Sequence[str]] | None = None,
                  condensed: bool = False) -> xr.DataArray:
    """RDMs stored in a MATLAB struct array, one RDM per element.

    The struct array's non-singleton axes become ``dims`` (e.g. subject × session); ``select``
    picks elements of a 1-D struct array (e.g. ``[0]``). Condensed (upper-triangle) RDMs are
    expanded with :func:`scipy.spatial.distance.squareform`.
    """
    path = path_of(file)
    structs = _mat_variable(path, variable)
    structs = structs.reshape([s for s in structs.shape if s != 1] or [1])
    if select is not None:
        structs = structs.ravel()[list(select)]
    where = f"{path}:{variable}"
    cells = _struct_field(structs, field, where)
    mats = [np.asarray(c, dtype=np.float64) for c in cells.ravel()]
    if condensed:
        from scipy.spatial.distance import squareform

        mats = [squareform(m.ravel(), checks=False) for m in mats]
    n = len(stimulus_ids)
    for m in mats:
        if m.shape != (n, n):
            raise BenchmarkDefinitionError(f"{where}: RDM of shape {m.shape}, expected ({n}, {n})")
    stack = np.stack(mats).reshape((*cells.shape, n, n))
    if stack.ndim - 2 != len(dims):
        raise BenchmarkDefinitionError(
            f"{where}: {stack.ndim - 2} struct axes {cells.shape} but dims {list(dims)}"
        )
    coords: dict[str, Any] = {d: list((labels or {}).get(d, range(stack.shape[i])))
                              for i, d in enumerate(dims)}
    check_rdms(stack, where, {d: coords[d] for d in dims})
    coords["stimulus_id"] = ("stimulus", list(stimulus_ids))
    coords["stimulus_id_col"] = ("stimulus_col", list(stimulus_ids))
    return xr.DataArray(stack, dims=(*dims, "stimulus", "stimulus_col"), coords=coords,
                        attrs={"source": str(path), "variable": variable})


def check_rdms(stack: np.ndarray, where: str, labels: dict[str, list[Any]]) -> None:
    """Refuse RDMs that cannot be dissimilarity matrices, naming the file and the RDM (its labels
    along ``labels``' dims, e.g. subject and session) and the first bad stimulus pair.

    An RDM must be finite and symmetric with a zero diagonal, up to a tolerance of 1e-6 of its
    largest off-diagonal value. A matrix whose diagonal is 1 everywhere is a similarity (e.g.
    correlation) matrix, not an RDM: it is named as such (convert it with 1 - r).

    Raises
    ------
    DataFaultError
    """
    from brainalign.errors import DataFaultError

    mats = stack.reshape(-1, *stack.shape[-2:])
    shape = stack.shape[:-2]
    for k, m in enumerate(mats):
        pos = np.unravel_index(k, shape) if shape else ()
        name = ", ".join(f"{d} {labels[d][i]}" for d, i in zip(labels, pos, strict=True)) or "the RDM"
        bad = ~np.isfinite(m)
        if bad.any():
            i, j = (int(x) for x in np.argwhere(bad)[0])
            raise DataFaultError(f"{where}: RDM of {name} has {int(bad.sum())} NaN/inf value(s); first at "
                                 f"stimulus pair ({i}, {j})")
        off = m[~np.eye(len(m), dtype=bool)]
        tol = 1e-8 + 1e-6 * (np.abs(off).max() if off.size else 0.0)
        diag = np.diag(m)
        if len(m) > 1 and np.allclose(diag, 1.0, atol=1e-6) and off.max() <= 1.0 + 1e-6:
            raise DataFaultError(f"{where}: the matrix of {name} has 1 on its diagonal: a similarity "
                                 "(correlation) matrix, not an RDM; give dissimilarities (e.g. 1 - r)")
        if np.abs(diag).max() > tol:
            i = int(np.argmax(np.abs(diag)))
            raise DataFaultError(f"{where}: RDM of {name} has a non-zero diagonal: {diag[i]:.4g} at stimulus "
                                 f"{i} (a dissimilarity of a stimulus with itself is 0)")
        asym = np.abs(m - m.T)
        if asym.max() > tol:
            i, j = (int(x) for x in np.unravel_index(int(np.argmax(asym)), m.shape))
            raise DataFaultError(f"{where}: RDM of {name} is not symmetric: [{i}, {j}] = {m[i, j]:.6g} but "
                                 f"[{j}, {i}] = {m[j, i]:.6g}")


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """A reader from another module, imported on first call (nilearn, netCDF stay unloaded)."""
    def reader(*args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    reader.__name__ = name
    reader.target = (module, name)  # type: ignore[attr-defined]
    return reader


READERS: dict[str, Callable[..., Any]] = {
    "mat_images": read_mat_images,
    "mat_rdms": read_mat_rdms,
    "npy_images": _lazy("brainalign.data.arrays", "read_npy_images"),
    "zip_images": _lazy("brainalign.data.arrays", "read_zip_images"),
    "npy_assembly": _lazy("brainalign.data.arrays", "read_npy_assembly"),
    "brainio_stimuli": _lazy("brainalign.data.brainio", "read_brainio_stimuli"),
    "brainio_assembly": _lazy("brainalign.data.brainio", "read_brainio_assembly"),
    "nifti_betas": _lazy("brainalign.data.nifti", "read_nifti_betas"),
}


# Parameters a benchmark kind passes itself; a YAML section never sets them.
INJECTED = frozenset({"path_of", "name", "stimulus_ids"})


def reader_parameters(reader: str) -> dict[str, inspect.Parameter] | None:
    """The YAML parameters of reader ``reader`` (from its signature, without the ones the kind
    passes: :data:`INJECTED`), or None for an unknown reader."""
    fn = READERS.get(reader)
    if fn is None:
        return None
    target = getattr(fn, "target", None)
    if target is not None:
        import importlib

        fn = getattr(importlib.import_module(target[0]), target[1])
    return {n: p for n, p in inspect.signature(fn).parameters.items()
            if n not in INJECTED and p.kind is p.KEYWORD_ONLY}


def check_section(section: dict[str, Any], where: str, *, complete: bool = True,
                  own: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Problems of a reader section (``where``: its key path): an unknown reader, keys the
    reader does not take, and (``complete``) parameters it needs but the section lacks.
    ``own`` names keys the benchmark kind reads itself (``average``, ``dataset``)."""
    own = {"reader", "dataset", *own}
    reader = section.get("reader")
    if reader is None:
        return [f"{where}.reader: missing field"] if complete else []
    params = reader_parameters(str(reader))
    if params is None:
        return [f"{where}.reader: unknown reader {reader!r}; known: {', '.join(sorted(READERS))}"]
    problems = []
    for key in section:
        if key not in params and key not in own:
            close = difflib.get_close_matches(str(key), list(params), n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}.{key}: unknown key for reader {reader!r}{hint}; "
                            f"allowed: {', '.join(sorted(set(params) | own))}")
    if complete:
        for key, p in params.items():
            if p.default is p.empty and key not in section:
                problems.append(f"{where}.{key}: missing field (reader {reader!r} needs it)")
    return problems


def read(reader: str, path_of: PathGetter, **params: Any) -> Any:
    """Run the reader named ``reader`` with ``params``; ``path_of`` resolves a file name."""
    try:
        fn = READERS[reader]
    except KeyError:
        raise BenchmarkDefinitionError(f"unknown reader {reader!r}; known: {sorted(READERS)}") from None
    try:
        return fn(path_of, **params)
    except TypeError as err:
        raise BenchmarkDefinitionError(f"reader {reader!r}: bad parameters {sorted(params)}: {err}") from err


# Macaque V1 property distributions (Marques et al. 2021 benchmarks).
from brainalign.data.v1_readers import V1_READERS  # noqa: E402

READERS.update(V1_READERS)
