"""Layer-by-layer representational similarity between two networks, or within one.

The classic figure of Kornblith et al. (2019, Fig. 2-4) and Raghu et al. (2017): a layers × layers
matrix of CKA (linear or RBF) or of RSA between the layers of model A and model B on the same
stimuli.

>>> import brainalign as ba
>>> a = ba.load_model("torchvision:resnet18", weights="random", seed=0)
>>> b = ba.load_model("torchvision:resnet18", weights="random", seed=1)
>>> sim = ba.compare_models(a, b, stimuli, metric="cka")      # DataArray (layer_a × layer_b)

Memory and time: every layer of each model is recorded once. Each layer is reduced, as soon as
it is recorded, to one stimulus × stimulus matrix (its centred, unit-norm Gram matrix for CKA, its
ranked RDM for RSA) and its activations are freed; all of side B's matrices are kept (L_B × n²
values) and each layer of A is compared with all of them at once (one matrix-vector product). The
n × n matrices are computed on ``device`` (a GPU when there is one) in float64, feature block by
feature block, after centring, so no float64 copy of a whole layer is made and centring does not
cancel digits.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import xarray as xr

from brainalign.activations.budget import available_memory, parse_bytes, plan_memory
from brainalign.activations.extract import check_batch_size
from brainalign.activations.stream import LayerStream
from brainalign.data.placement import place_stimuli
from brainalign.data.stimuli import StimulusSet, as_stimulus_set
from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import MemoryBudgetError, MetricInputError, StimulusError
from brainalign.metrics._backend import as_torch
from brainalign.metrics.cka import center_gram
from brainalign.metrics.rsa import rank_rows
from brainalign.models.base import BrainModel
from brainalign.settings import PathLike

if TYPE_CHECKING:
    import pandas as pd


Metric = Literal["cka", "cka_rbf", "rsa"]
METRICS = ("cka", "cka_rbf", "rsa")
RDM_DISTANCES = ("correlation", "cosine", "euclidean")
RSA_COMPARATORS = ("spearman", "pearson", "cosine")
GRAM_SCORING_FACTOR = 0.5  # working set of one layer's Gram beyond its activations (feature blocks)
_BLOCK_BYTES = 256 * 2**20  # float64 feature block moved to the device at a time


# ----------------------------------------------------------------------------------------------
# Gram-based summaries: one (stimulus × stimulus) matrix per layer
# ----------------------------------------------------------------------------------------------

def gram_matrix(X: np.ndarray | torch.Tensor, *, centre: Literal["stimuli", "features", "none"] = "none",
                device: DeviceLike = "cpu", block_bytes: int = _BLOCK_BYTES,
                precision: Literal["float64", "float32"] = "float64") -> torch.Tensor:
    """The float64 (stimulus × stimulus) Gram matrix X Xᵀ, accumulated over feature blocks.

    Parameters
    ----------
    X
        (stimulus × feature) activations (float32 numpy array or tensor on any device).
    centre
        ``"stimuli"``: subtract each feature's mean over stimuli first (gives H X Xᵀ H, the
        centred Gram of linear CKA, without the cancellation of centring X Xᵀ afterwards);
        ``"features"``: subtract each stimulus's mean over features (the centring of the
        correlation distance); ``"none"``.
    device
        Where the products run.
    block_bytes
        Size of the feature block copied to ``device`` at a time.
    precision
        Dtype of each block's product (the centring shifts are float64 either way and blocks
        are summed in float64). The float32 product is ~5× faster on a CPU (0.5 s vs 2.9 s for
        200 stimuli × 200,704 features) at a relative error of ~1e-6 on the Gram matrix; end to
        end the gain is small, as the float64 copy and centring of each block dominate
        (perf/similarity_cost.md).

    Returns
    -------
    torch.Tensor
        (n, n) float64 on ``device``, exactly symmetric.
    """
    dev = resolve_device(device)
    Xt = as_torch(X)
    if Xt.ndim != 2:
        raise MetricInputError(f"gram_matrix: expected (stimulus × feature), got shape {tuple(Xt.shape)}")
    n, d = Xt.shape
    if centre == "stimuli":
        shift_cols = Xt.to(torch.float64).mean(0) if Xt.numel() * 8 <= block_bytes else _col_means(Xt, block_bytes)
        shift_rows = None
    elif centre == "features":
        shift_cols, shift_rows = None, Xt.to(torch.float64).mean(1) if Xt.numel() * 8 <= block_bytes \
            else _row_means(Xt, block_bytes)
    elif centre == "none":
        shift_cols = shift_rows = None
    else:
        raise MetricInputError(f"gram_matrix: unknown centre {centre!r}")
    if precision not in ("float64", "float32"):
        raise MetricInputError(f"gram_matrix: precision must be 'float64' or 'float32', got {precision!r}")
    dtype = torch.float64 if precision == "float64" else torch.float32
    K = torch.zeros(n, n, dtype=torch.float64, device=dev)
    step = max(1, block_bytes // (dtype.itemsize * max(n, 1)))
    for c0 in range(0, d, step):
        B = Xt[:, c0:c0 + step].to(dev, torch.float64)
        if shift_cols is not None:
            B -= shift_cols[c0:c0 + step].to(dev)[None, :]
        if shift_rows is not None:
            B -= shift_rows.to(dev)[:, None]
        if dtype == torch.float64:
            K.addmm_(B, B.T)
        else:
            B = B.to(dtype)
            K += (B @ B.T).to(torch.float64)
    if not torch.isfinite(K).all():
        raise MetricInputError("gram_matrix: activations contain NaN or inf")
    return (K + K.T) / 2


def _col_means(X: torch.Tensor, block_bytes: int) -> torch.Tensor:
    step = max(1, block_bytes // (8 * X.shape[0]))
    return torch.cat([X[:, c:c + step].to(torch.float64).mean(0) for c in range(0, X.shape[1], step)])


def _row_means(X: torch.Tensor, block_bytes: int) -> torch.Tensor:
    step = max(1, block_bytes // (8 * X.shape[0]))
    total = sum(X[:, c:c + step].to(torch.float64).sum(1) for c in range(0, X.shape[1], step))
    return total / X.shape[1]


def rbf_from_gram(K: torch.Tensor, sigma: float | None = None, sigma_scale: float = 1.0) -> torch.Tensor:
    """RBF kernel exp(−‖xᵢ − xⱼ‖² / 2σ²) from a linear Gram matrix (the same kernel and median
    heuristic as :func:`brainalign.metrics.cka.gram_rbf`: σ² = sigma_scale² × the median of all
    squared distances, diagonal included)."""
    sq = torch.diagonal(K)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * K).clamp_(min=0.0)
    d2.fill_diagonal_(0.0)
    if sigma is None:
        flat = d2.reshape(-1)
        m = flat.numel()
        med = (flat.kthvalue((m + 1) // 2).values + flat.kthvalue(m // 2 + 1).values) / 2
        s2 = sigma_scale**2 * float(med)
        if not s2 > 0:
            raise MetricInputError("cka_rbf: median squared distance between stimuli is 0 (most "
                                   "stimuli identical); pass sigma= explicitly")
    else:
        s2 = float(sigma) ** 2
    return torch.exp(d2 / (-2.0 * s2))


def rdm_from_gram(K: torch.Tensor, n_features: int, distance: str = "correlation") -> torch.Tensor:
    """RDM from a Gram matrix, as :func:`brainalign.metrics.rdm`: ``K`` is the Gram of the
    feature-centred activations for ``"correlation"``, of the raw ones otherwise."""
    if distance in ("correlation", "cosine"):
        norms = torch.sqrt(torch.diagonal(K))
        if not (norms > 0).all():
            i = int(torch.nonzero(norms <= 0)[0, 0])
            raise MetricInputError(f"rsa: stimulus row {i} has zero variance; {distance} distance undefined")
        D = 1.0 - K / norms[:, None] / norms[None, :]
    elif distance == "euclidean":
        sq = torch.diagonal(K)
        D = ((sq[:, None] + sq[None, :] - 2.0 * K) / n_features).clamp_(min=0.0)
    else:
        raise MetricInputError(f"rsa: unknown RDM distance {distance!r}; use one of {RDM_DISTANCES}")
    D = (D + D.T) / 2
    return D.fill_diagonal_(0.0)


class _Summariser:
    """Turns one layer's activations into the unit vector whose dot products are the metric."""

    def __init__(self, metric: str, *, debiased: bool, distance: str, comparator: str,
                 sigma: float | None, sigma_scale: float, device: torch.device, precision: str = "float64"):
        if metric not in METRICS:
            raise MetricInputError(f"compare_models: unknown metric {metric!r}; use one of {METRICS}")
        if metric == "rsa" and comparator not in RSA_COMPARATORS:
            raise MetricInputError(f"compare_models: RSA comparator {comparator!r} cannot be streamed; "
                                   f"use one of {RSA_COMPARATORS}")
        if metric == "rsa" and distance not in RDM_DISTANCES:
            raise MetricInputError(f"compare_models: unknown RDM distance {distance!r}; "
                                   f"use one of {RDM_DISTANCES}")
        if debiased and metric == "rsa":
            raise MetricInputError("compare_models: debiased applies to CKA only")
        self.metric, self.debiased, self.distance, self.comparator = metric, debiased, distance, comparator
        self.sigma, self.sigma_scale, self.device = sigma, sigma_scale, device
        if precision not in ("float64", "float32"):
            raise MetricInputError(f"compare_models: precision must be 'float64' or 'float32', got {precision!r}")
        self.precision = precision

    def gram(self, X: np.ndarray, centre: str) -> torch.Tensor:
        return gram_matrix(X, centre=centre, device=self.device, precision=self.precision)  # type: ignore[arg-type]

    def __call__(self, X: np.ndarray, where: str) -> torch.Tensor:
        n = X.shape[0]
        if n < (4 if self.debiased else 3):
            raise MetricInputError(f"compare_models: {where}: needs at least {4 if self.debiased else 3} "
                                   f"stimuli, got {n}")
        try:
            if self.metric == "rsa":
                centre = "features" if self.distance == "correlation" else "none"
                D = rdm_from_gram(self.gram(X, centre), X.shape[1], self.distance)
                iu = torch.triu_indices(n, n, offset=1, device=D.device)
                v = D[iu[0], iu[1]]
                if self.comparator == "spearman":
                    v = rank_rows(v[None])[0]
                if self.comparator != "cosine":
                    v = v - v.mean()
                return _unit(v, where, "the RDM is constant")
            K = self.gram(X, "stimuli")
            if self.metric == "cka_rbf":
                K = rbf_from_gram(K, self.sigma, self.sigma_scale)
            Kc = center_gram(K, unbiased=self.debiased)  # U-statistic centring (Song et al. 2012)
            return _unit(Kc.reshape(-1), where, "the representation does not vary across stimuli")
        except MetricInputError as err:
            if where in str(err):
                raise
            raise MetricInputError(f"compare_models: {where}: {err}") from err


def _unit(v: torch.Tensor, where: str, why: str) -> torch.Tensor:
    norm = torch.linalg.vector_norm(v)
    if not float(norm) > 0:
        raise MetricInputError(f"compare_models: {where}: {why}; the similarity is undefined")
    return v / norm


# ----------------------------------------------------------------------------------------------
# Stimuli and recording
# ----------------------------------------------------------------------------------------------

def folder_stimuli(path: PathLike) -> StimulusSet:
    """The image files under ``path``, read as :func:`brainalign.as_stimulus_set` reads a folder
    (the same file types, ids and checks: one reader for every command).

    Raises
    ------
    StimulusError
        ``path`` is not a folder, holds no image file, or two files share an id.
    """
    root = Path(path)
    if not root.is_dir():
        raise StimulusError(f"{root}: not a folder of images")
    return as_stimulus_set(root)


def _stimuli_for(model: BrainModel, stimuli: Any, data_dir: Any) -> tuple[StimulusSet | torch.Tensor, str]:
    """The stimuli as ``model`` is shown them, and how they were given (for provenance). A
    stimulus set that knows its size in degrees (a benchmark's ``.stimuli``) is placed in the
    model's field of view as the benchmark places it, so it gives what its benchmark id gives."""
    if isinstance(stimuli, StimulusSet) and stimuli.visual_degrees is not None:
        placed, how = place_stimuli(stimuli, model.visual_degrees)
        return placed, f"given, {stimuli.visual_degrees:g}° wide (placed in the model's field of view: {how.mode})"
    if isinstance(stimuli, StimulusSet | torch.Tensor):
        return stimuli, "given"
    if isinstance(stimuli, str | Path) and Path(stimuli).is_dir():
        return folder_stimuli(stimuli), f"folder {Path(stimuli)}"
    if isinstance(stimuli, str):
        from brainalign.benchmarks import load_benchmark

        bench = load_benchmark(stimuli, data_dir=data_dir)
        placed, _ = bench.place(model)
        sessions = getattr(bench, "sessions", None)
        if sessions is not None and len(sessions) > 1:
            # A multi-session benchmark's stimuli are its first session's (sessions may show
            # different images): said, never silently taken for all of them.
            first = sessions[0]
            warnings.warn(f"{stimuli}: its {len(sessions)} sessions show different stimuli; the similarity "
                          f"uses session {first.name!r} ({len(first.stimuli)} stimuli) only. For another "
                          f"session, pass its StimulusSet (load_benchmark({stimuli!r}).sessions[i].stimuli)",
                          UserWarning, stacklevel=3)
            return placed, (f"benchmark {stimuli}, session {first.name} of {len(sessions)} "
                            "(placed in the model's field of view)")
        return placed, f"benchmark {stimuli} (placed in the model's field of view)"
    raise StimulusError(f"compare_models: stimuli must be a StimulusSet, a tensor, a folder of images or "
                        f"a benchmark id; got {type(stimuli).__name__}")


def _stimuli_hash(stimuli: StimulusSet | torch.Tensor) -> str:
    if isinstance(stimuli, StimulusSet):
        return stimuli.content_hash()
    t = stimuli.detach().cpu().contiguous()
    return hashlib.sha256(str((tuple(t.shape), str(t.dtype))).encode() + t.numpy().tobytes()).hexdigest()


def _ids(stimuli: StimulusSet | torch.Tensor) -> list[str]:
    return list(stimuli.ids) if isinstance(stimuli, StimulusSet) else [str(i) for i in range(len(stimuli))]


def _budget(memory_budget: int | str | None, reserved: int) -> int | None:
    if memory_budget is None:
        return None
    if memory_budget == "auto":
        avail = available_memory()
        if avail is None:
            return None
        total = avail // 2
    else:
        total = parse_bytes(memory_budget)
    left = total - reserved
    if left <= 0:
        raise MemoryBudgetError(f"compare_models: the stimulus × stimulus matrices alone need "
                                f"{reserved / 1e9:.2f} GB, over the memory budget of {total / 1e9:.2f} GB; "
                                f"use fewer stimuli or layers, or raise the budget")
    return left


def _summary_or_nan(summarise: _Summariser, X: np.ndarray, where: str, notes: list[str]) -> torch.Tensor:
    """The layer's summary; for a layer whose similarity is undefined (e.g. a constant, dead
    layer) a NaN vector, so the rest of the matrix is kept, with the reason in ``notes`` and a
    warning."""
    try:
        return summarise(X, where)
    except MetricInputError as err:
        warnings.warn(f"{err} (its row/column is NaN)", stacklevel=3)
        notes.append(str(err))
        n = X.shape[0]
        m = n * (n - 1) // 2 if summarise.metric == "rsa" else n * n
        return torch.full((m,), float("nan"), dtype=torch.float64, device=summarise.device)


def _record(model: BrainModel, stimuli: StimulusSet | torch.Tensor, layers: list[str], summarise: _Summariser,
            *, batch_size: int, device: DeviceLike, budget: int | None, progress: bool
            ) -> tuple[dict[str, torch.Tensor], list[str], dict[str, Any]]:
    """Stream ``layers`` once and reduce each to its summary vector; returns the vectors, the
    plan's notes (and undefined layers) and the per-layer reduction."""
    plan = plan_memory(model, layers, len(stimuli), budget=budget, scoring_factor=GRAM_SCORING_FACTOR)
    stream = LayerStream(model, stimuli, plan, batch_size=batch_size, device=device, progress=progress,
                         cache=None, stimulus_ids=None, on_layer=None)
    notes = list(plan.notes)
    out: dict[str, torch.Tensor] = {}
    for layer, acts in stream:
        out[layer] = _summary_or_nan(summarise, acts.values, f"{model.name} layer {layer!r}", notes)
        del acts
    return out, notes, stream.reduction()


def compare_models(model_a: BrainModel, model_b: BrainModel | None = None,
                   stimuli: StimulusSet | torch.Tensor | PathLike | str | None = None, *,
                   metric: Metric = "cka", layers_a: str | Sequence[str] | None = None,
                   layers_b: str | Sequence[str] | None = None, batch_size: int = 64,
                   device: DeviceLike = "auto", memory_budget: int | str | None = "auto",
                   debiased: bool = False, rdm_distance: str = "correlation",
                   rsa_comparator: str = "spearman", sigma: float | None = None,
                   sigma_scale: float = 1.0, precision: Literal["float64", "float32"] = "float64",
                   data_dir: Any = None, progress: bool = False) -> xr.DataArray:
    """Layer-by-layer similarity of two models (or of one model's layers with each other).

    Parameters
    ----------
    model_a, model_b
        :class:`~brainalign.models.BrainModel` s; ``model_b=None`` compares A's layers with each
        other (each recorded once).
    stimuli
        A :class:`~brainalign.data.StimulusSet`, a preprocessed (N, C, H, W) tensor, a folder of
        images (sorted by path), or a benchmark id (its stimuli, placed in each model's field of
        view by their size in degrees). A StimulusSet with ``visual_degrees`` (a benchmark's
        ``.stimuli``) is placed the same way, so it gives what the benchmark id gives; one
        without fills each model's field of view.
    metric
        ``"cka"``: linear CKA (Kornblith et al. 2019); ``"cka_rbf"``: CKA with an RBF kernel,
        σ² = ``sigma_scale``² × the median squared distance per layer unless ``sigma`` is given;
        ``"rsa"``: the ``rsa_comparator`` (``"spearman"``, ``"pearson"``, ``"cosine"``) of the
        layers' ``rdm_distance`` RDMs (``"correlation"``, ``"cosine"``, ``"euclidean"``;
        Kriegeskorte et al. 2008). Values equal :func:`brainalign.metrics.cka` and
        :func:`brainalign.metrics.compare_rdms` applied pair by pair.
    layers_a, layers_b
        Layer names or globs (default: each model's ``layers``).
    batch_size, device, progress
        As for :func:`brainalign.extract`; the similarity matrices are computed on ``device`` too.
    memory_budget
        Bytes (or ``"2.5GB"``) for the stimulus × stimulus matrices of side B plus the recorded
        activations of A or B at a time; ``"auto"``: half the memory available now; None: no
        limit. Layers are recorded in groups that fit (one forward pass per group, each layer
        recorded once); a layer that alone does not fit is randomly projected (the notes say so).
    debiased
        The unbiased HSIC estimator (Song et al. 2012) for CKA.
    precision
        ``"float64"`` (default; equal to the pairwise metrics to ~1e-12) or ``"float32"`` for
        the Gram products (faster products, ~1e-6 relative error); see :func:`gram_matrix`.

    Returns
    -------
    xarray.DataArray
        (layer_a × layer_b) similarities, layers in forward order, coords ``depth_a``/``depth_b``,
        attrs with the provenance (models, weights hashes, stimulus hash, metric, versions) as
        strings and numbers so the array writes to netCDF.

    Raises
    ------
    MetricInputError
        Unknown metric or options. A layer whose similarity is undefined (its representation
        does not vary across stimuli) does not stop the run: its row/column is NaN, with a
        warning and the reason in ``attrs["notes"]``.
    MemoryBudgetError
        The stimulus × stimulus matrices alone exceed the budget (checked before recording).
    StimulusError
        Stimuli not given or unreadable; A and B shown different numbers of stimuli.
    """
    if stimuli is None:
        raise StimulusError("compare_models: stimuli are required (a StimulusSet, tensor, folder or benchmark id)")
    dev = resolve_device(device)
    check_batch_size(batch_size)
    summarise = _Summariser(metric, debiased=debiased, distance=rdm_distance, comparator=rsa_comparator,
                            sigma=sigma, sigma_scale=sigma_scale, device=dev, precision=precision)
    within = model_b is None
    model_b = model_a if within else model_b
    names_a = model_a.resolve_layers(layers_a)
    names_b = names_a if within and layers_b is None else model_b.resolve_layers(layers_b)
    stim_a, how_a = _stimuli_for(model_a, stimuli, data_dir)
    stim_b, how_b = (stim_a, how_a) if model_b is model_a else _stimuli_for(model_b, stimuli, data_dir)
    n = len(stim_a)
    if len(stim_b) != n:
        raise StimulusError(f"compare_models: {model_a.name} is shown {n} stimuli but {model_b.name} "
                            f"{len(stim_b)}")
    both_sets = isinstance(stim_a, StimulusSet) and isinstance(stim_b, StimulusSet)
    if both_sets and list(stim_a.ids) != list(stim_b.ids):
        raise StimulusError("compare_models: the two models' stimuli differ in ids or order")
    # One side's summaries are kept (one n² float64 vector per layer) plus one in flight.
    per = (n * (n - 1) // 2 if metric == "rsa" else n * n) * 8
    same_side = model_b is model_a
    kept_layers = list(dict.fromkeys(names_a + names_b)) if same_side else names_b
    budget = _budget(memory_budget, per * (len(kept_layers) + 2))

    notes: list[str] = []
    if same_side:  # one model: every layer either side asks for is recorded once
        vecs, nts, red = _record(model_a, stim_a, kept_layers, summarise, batch_size=batch_size, device=dev,
                                 budget=budget, progress=progress)
        notes += nts
        red_a = red_b = red
        S_b = torch.stack([vecs[k] for k in names_b])
        M = torch.stack([S_b @ vecs[k] for k in names_a])
    else:
        vecs_b, nts, red_b = _record(model_b, stim_b, names_b, summarise, batch_size=batch_size, device=dev,
                                     budget=budget, progress=progress)
        notes += [f"B: {s}" for s in nts]
        S_b = torch.stack([vecs_b[k] for k in names_b])
        del vecs_b
        plan = plan_memory(model_a, names_a, n, budget=budget, scoring_factor=GRAM_SCORING_FACTOR)
        notes += [f"A: {s}" for s in plan.notes]
        stream = LayerStream(model_a, stim_a, plan, batch_size=batch_size, device=dev, progress=progress,
                             cache=None, stimulus_ids=None, on_layer=None)
        rows = {}
        for layer, acts in stream:  # A streams against B's kept matrices
            v = _summary_or_nan(summarise, acts.values, f"{model_a.name} layer {layer!r}", notes)
            del acts
            rows[layer] = S_b @ v
            del v
        red_a = stream.reduction()
        M = torch.stack([rows[k] for k in names_a])
    values = M.clamp(-1.0, 1.0).cpu().numpy()  # unit vectors: |dot| ≤ 1 up to rounding
    if same_side and names_a == names_b:
        values = (values + values.T) / 2  # exactly symmetric (the products are equal up to rounding)
    return _as_dataarray(values, model_a, model_b, names_a, names_b, stim_a, how_a, how_b, metric=metric,
                         debiased=debiased, distance=rdm_distance, comparator=rsa_comparator, sigma=sigma,
                         sigma_scale=sigma_scale, notes=notes, reduction_a=red_a, reduction_b=red_b,
                         device=str(dev), batch_size=batch_size, precision=precision)


def _metric_label(metric: str, debiased: bool, distance: str, comparator: str) -> str:
    if metric == "rsa":
        return f"RSA ({comparator} of {distance} RDMs)"
    return ("debiased " if debiased else "") + ("linear CKA" if metric == "cka" else "RBF CKA")


def _as_dataarray(values: np.ndarray, model_a: BrainModel, model_b: BrainModel, names_a: list[str],
                  names_b: list[str], stim: StimulusSet | torch.Tensor, how_a: str, how_b: str, *,
                  metric: str, debiased: bool, distance: str, comparator: str, sigma: float | None,
                  sigma_scale: float, notes: list[str], reduction_a: dict, reduction_b: dict,
                  device: str, batch_size: int, precision: str) -> xr.DataArray:
    from brainalign import __version__
    from brainalign.results.provenance import versions_string

    label = _metric_label(metric, debiased, distance, comparator)
    pa, pb = model_a.provenance(), model_b.provenance()

    def used(red: dict, names: list[str]) -> str:
        return json.dumps({k: red.get(k, {"kind": "none"}) for k in names}, default=str)

    attrs = {
        "metric": metric, "metric_label": label, "debiased": int(debiased),
        "rdm_distance": distance if metric == "rsa" else "",
        "rsa_comparator": comparator if metric == "rsa" else "",
        # The RBF kernel's width: no meaning for linear CKA or RSA, so not written for them.
        **({"sigma": "median heuristic" if sigma is None else float(sigma), "sigma_scale": float(sigma_scale)}
           if metric == "cka_rbf" else {}),
        "model_a": model_a.name, "model_b": model_b.name,
        "weights_a": str(pa["weights"]), "weights_b": str(pb["weights"]),
        "weights_hash_a": model_a.weights_hash, "weights_hash_b": model_b.weights_hash,
        "seed_a": -1 if pa["model_seed"] is None else int(pa["model_seed"]),
        "seed_b": -1 if pb["model_seed"] is None else int(pb["model_seed"]),
        "within_model": int(model_a is model_b),
        "stimuli": getattr(stim, "name", "tensor"), "stimuli_a": how_a, "stimuli_b": how_b,
        "stimuli_sha256": _stimuli_hash(stim), "n_stimuli": len(stim),
        "reduction_a": used(reduction_a, names_a), "reduction_b": used(reduction_b, names_b),
        "notes": "; ".join(notes), "device": device, "batch_size": batch_size, "precision": precision,
        "brainalign_version": __version__, "versions": versions_string(),
        "reference": "Kornblith S, Norouzi M, Lee H, Hinton G (2019). Similarity of neural network "
                     "representations revisited. ICML." if metric != "rsa" else
                     "Kriegeskorte N, Mur M, Bandettini P (2008). Representational similarity analysis. "
                     "Front Syst Neurosci 2:4.",
    }
    return xr.DataArray(
        values, dims=("layer_a", "layer_b"),
        coords={"layer_a": names_a, "layer_b": names_b,
                "depth_a": ("layer_a", [model_a.depth(k) for k in names_a]),
                "depth_b": ("layer_b", [model_b.depth(k) for k in names_b])},
        name=metric, attrs=attrs)


def diagonal_strength(sim: xr.DataArray) -> float:
    """Mean of the diagonal minus the mean off the diagonal of a square layer × layer matrix: how
    much more each layer resembles its counterpart than other layers (0 for no correspondence)."""
    v = np.asarray(sim.values, float)
    if v.shape[0] != v.shape[1]:
        raise MetricInputError(f"diagonal_strength: needs a square matrix, got {v.shape}")
    off = ~np.eye(len(v), dtype=bool)
    return float(np.diag(v).mean() - v[off].mean())


_FLAG_ATTRS = ("debiased", "within_model")
"""Attrs that are yes/no flags (stored as 0/1 in netCDF)."""


# The CSV's first header cell names both dimensions: rows are layer_a, columns layer_b (a plain
# "layer_a" left a reader of the CSV alone to guess what the columns were).
CSV_CORNER = "layer_a \\ layer_b"


def save_similarity(sim: xr.DataArray, out_dir: PathLike, *, stem: str = "similarity",
                    plot: bool = True) -> dict[str, Path]:
    """Write ``sim`` as netCDF (with its provenance attrs), a CSV (rows layer_a, columns layer_b;
    its first header cell :data:`CSV_CORNER` says so), the provenance in a JSON sidecar and, if
    ``plot``, a PNG heatmap. Returns the paths by kind (netcdf, csv, json, png).
    :func:`read_similarity_csv` reads the CSV back with both dimensions named."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"netcdf": out / f"{stem}.nc", "csv": out / f"{stem}.csv", "json": out / f"{stem}.json"}
    sim.to_netcdf(paths["netcdf"])
    df = sim.to_pandas()
    df.index.name, df.columns.name = CSV_CORNER, None
    df.to_csv(paths["csv"])
    # netCDF attrs cannot hold booleans (stored 0/1); the JSON sidecar says true/false.
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in sim.attrs.items()}
    attrs.update({k: bool(attrs[k]) for k in _FLAG_ATTRS if k in attrs})
    attrs["csv_layout"] = {"rows": "layer_a", "columns": "layer_b"}
    paths["json"].write_text(json.dumps(attrs, indent=1, default=str))
    if plot:
        from brainalign.plots.similarity import plot_similarity

        paths["png"] = out / f"{stem}.png"
        plot_similarity(sim, paths["png"])
    return paths


def read_similarity_csv(path: PathLike) -> pd.DataFrame:
    """Read a CSV :func:`save_similarity` wrote (or an older one whose first header cell is
    ``layer_a``). Returns the matrix as a DataFrame of floats whose index is named ``layer_a`` and
    whose columns are named ``layer_b``, layer names kept as text (a layer ``"1"`` stays ``"1"``).

    Raises
    ------
    ResultsTableError
        The file is missing, unreadable, or not a layer × layer similarity matrix.
    """
    import pandas as pd

    from brainalign.errors import ResultsTableError

    path = Path(path)
    try:
        corner = next(iter(pd.read_csv(path, nrows=0).columns), None)
    except (OSError, ValueError, pd.errors.ParserError) as err:  # EmptyDataError is a ValueError
        raise ResultsTableError(f"{path}: unreadable similarity matrix ({err})") from err
    if corner not in (CSV_CORNER, "layer_a"):
        raise ResultsTableError(f"{path}: not a similarity matrix (its first header cell is {corner!r}; "
                                f"brainalign similarity writes {CSV_CORNER!r})")
    df = pd.read_csv(path, index_col=0, dtype={corner: str})
    try:
        df = df.astype(float)
    except ValueError as err:
        raise ResultsTableError(f"{path}: a similarity value is not a number ({err})") from err
    df.index.name, df.columns.name = "layer_a", "layer_b"
    return df
