"""Per-batch feature reducers that cap the features recorded per layer.

A reducer maps a batch of layer outputs (B, ...) to (B, k) on the device the batch lives on, so
the full-resolution features of a layer never exist for more than one batch. Each reducer has a
``describe()`` that names what it computes (kind, size, seed): the activation cache keys on it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from brainalign.models.base import BrainModel


class RandomProjection:
    """Seeded very sparse random projection (Li, Hastie & Church 2006) to ``n_components``.

    Entries are ±sqrt(s / k) with probability 1 / (2s) each and 0 otherwise, with s = sqrt(d),
    so squared distances are preserved in expectation (Johnson–Lindenstrauss) while the matrix
    holds about k·sqrt(d) non-zeros: 0.9 M for ResNet's conv1 (d = 802,816, k = 1024) where a
    dense Gaussian matrix would need 3.3 GB. The matrix depends only on (seed, d, k), is built
    once per input size and device, and is applied batch by batch as a sparse product on the
    batch's device. Layers with ``d <= n_components`` are passed through unchanged.

    Parameters
    ----------
    n_components
        Features kept per layer (k).
    seed
        Seed of the projection matrix.
    """

    def __init__(self, n_components: int = 1024, *, seed: int = 0):
        if n_components < 1:
            raise ValueError(f"RandomProjection: n_components must be ≥ 1, got {n_components}")
        self.n_components, self.seed = int(n_components), int(seed)
        self._matrices: dict[tuple[int, str], torch.Tensor] = {}

    def __repr__(self) -> str:
        return f"RandomProjection(n_components={self.n_components}, seed={self.seed})"

    def describe(self) -> dict[str, Any]:
        """What this reducer computes, for cache keys and result provenance."""
        return {"kind": "sparse_random_projection", "n_components": self.n_components,
                "seed": self.seed, "density": "1/sqrt(d)", "identity_if_d_le_k": True}

    def n_features(self, d: int) -> int:
        """Features out for ``d`` features in."""
        return min(d, self.n_components)

    def matrix(self, d: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The sparse (k × d) projection matrix for ``d`` input features (CSR on ``device``)."""
        key = (d, str(device))
        if key not in self._matrices:
            self._matrices[key] = self._build(d, device)
        return self._matrices[key]

    # Built as a normal tensor even when first asked for inside extract's inference_mode: an
    # inference tensor could not be used later where autograd records (proj(x) on a tensor that
    # requires grad).
    @torch.inference_mode(False)
    def _build(self, d: int, device: torch.device | str) -> torch.Tensor:
        k = self.n_components
        s = math.sqrt(d)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + d)
        nnz = max(1, round(k * d / s))
        rows = torch.randint(0, k, (nnz,), generator=gen)
        cols = torch.randint(0, d, (nnz,), generator=gen)
        signs = torch.randint(0, 2, (nnz,), generator=gen, dtype=torch.float32) * 2 - 1
        vals = signs * math.sqrt(s / k)
        m = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (k, d),
                                    check_invariants=False).coalesce()
        with warnings.catch_warnings():  # "sparse CSR support is in beta", said on conversion
            warnings.simplefilter("ignore", UserWarning)
            return m.to_sparse_csr().to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        d = flat.shape[1]
        if d <= self.n_components:
            return flat
        # No warnings.catch_warnings here: the product says nothing, and swapping the process's
        # warning filters per batch, on the recording thread, raced with the run's collectors.
        return (self.matrix(d, flat.device) @ flat.float().T).T

    def __getstate__(self) -> dict[str, Any]:  # matrices are rebuilt where they are used
        return {"n_components": self.n_components, "seed": self.seed, "_matrices": {}}


def reducer_per_layer(model: BrainModel, reducers: Any, names: Sequence[str]) -> dict[str, Any]:
    """The reducer of each layer in ``names`` (None: recorded in full).

    ``reducers`` is None, one reducer for every layer, or a mapping whose keys are layer names or
    glob patterns (``"features.*"``), as ``layers=`` takes them; a layer's own name wins over a
    pattern. A mapping may name layers of the model that this run does not record (one mapping
    for several runs).

    Raises
    ------
    UnknownLayerError
        A key that names or matches no layer of the model (a typo would otherwise leave its layer
        unreduced without a word), with the close names.
    ValueError
        A reducer that is not callable; a recorded layer that two patterns give different
        reducers (and its own name does not choose), naming both keys.
    """
    from brainalign.errors import UnknownLayerError, UnrecordableLayerError

    if not isinstance(reducers, Mapping):
        if reducers is not None and not callable(reducers):
            raise ValueError(f"reducers={reducers!r} is not a function of a batch of layer outputs")
        return dict.fromkeys(names, reducers)
    exact: dict[str, Any] = {}
    matched: dict[str, list[tuple[str, Any]]] = {}
    for key, reducer in reducers.items():
        if reducer is not None and not callable(reducer):
            raise ValueError(f"reducers[{key!r}] = {reducer!r} is not a function of a batch of layer outputs")
        try:
            hits = model.resolve_layers(str(key))
        except UnrecordableLayerError as err:  # said as the reducers key, with why
            raise UnrecordableLayerError(str(key), model.name, err.returns, where="reducers key") from err
        except UnknownLayerError as err:  # said as the reducers key it is, not as a layer= pattern
            raise UnknownLayerError(str(key), model.name, model.layer_info, model.extra.get("model_id"),
                                    where="reducers key") from err
        for name in hits:
            if name == key:
                exact[name] = reducer
            else:
                matched.setdefault(name, []).append((str(key), reducer))
    out = {}
    for n in names:
        if n in exact or n not in matched:
            out[n] = exact.get(n)
            continue
        (k0, r0), *others = matched[n]
        for k, r in others:
            if not _same_reducer(r0, r):
                raise ValueError(f"{model.name}: layer {n!r} is matched by the reducers patterns {k0!r} and "
                                 f"{k!r} with different reducers; add {n!r} itself as a key to choose")
        out[n] = r0
    return out


def custom_reducer(reducer: Any) -> dict[str, str]:
    """What a reducer without ``describe()`` is, for the rows: its module and qualified name
    (``{"kind": "custom", "function": "mylab.pool.<lambda>"}``), never a memory address that
    changes from run to run."""
    fn = reducer if hasattr(reducer, "__qualname__") else type(reducer)
    return {"kind": "custom", "function": f"{getattr(fn, '__module__', '?')}.{fn.__qualname__}"}


def _same_reducer(a: Any, b: Any) -> bool:
    """One reducer, or two that say they compute the same (equal :func:`describe_reducer`)."""
    if a is b:
        return True
    da, db = describe_reducer(a), describe_reducer(b)
    return da is not None and da == db


def describe_reducer(reducer: Any) -> dict[str, Any] | None:
    """``reducer.describe()``, ``{"kind": "none"}`` for no reducer, ``None`` when it cannot say
    what it computes (then nothing it produced may be cached)."""
    if reducer is None:
        return {"kind": "none"}
    describe = getattr(reducer, "describe", None)
    return describe() if callable(describe) else None
