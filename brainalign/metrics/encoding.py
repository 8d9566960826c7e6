"""Encoding scores: cross-validated prediction of each neuroid from model features (ridge or PLS).

The score of a neuroid is the Pearson r between its held-out responses and the predictions of a
regression fitted on the training stimuli, averaged over folds. Neuroids whose responses do not
vary are excluded (counted and reported), never averaged in as NaN.

r is taken from the predictions *without* the fold's intercept (the training mean of the
responses; r is shift-invariant, so this is the same r), because under strong shrinkage the part
of a prediction that varies can lie below the rounding of that mean and would be lost by adding it
first. It is computed by :func:`brainalign.metrics.stats.weighted_pearson`, the function every
bootstrap sample of the score uses too, so the estimate and its resamples share one definition
(including NaN for a numerically constant side).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import MetricInputError
from brainalign.metrics.pls import pls_fit
from brainalign.metrics.ridge import (
    DEFAULT_ALPHAS,
    Design,
    as_tensor,
    check_alphas,
    predict_rows,
    solve_ridge_cv,
)
from brainalign.metrics.stats import weighted_pearson

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class EncodingScore:
    """Held-out encoding performance per neuroid, with everything needed to reproduce it.

    Attributes
    ----------
    r
        (neuroid,) Pearson r between held-out responses and predictions, mean over the folds in
        which it is defined; NaN only where ``excluded``.
    r_folds
        (fold, neuroid); NaN where a fold's test responses or predictions were (numerically)
        constant (the rule of :func:`brainalign.metrics.stats.weighted_pearson`).
    splits
        The (train_idx, test_idx) stimulus positions of every fold.
    alphas
        (fold, neuroid) chosen α (ridge), else None.
    alpha_grid
        The α grid searched (ridge), else None.
    centred_predictions
        Held-out predictions of each fold without its intercept, (n_test, neuroid) aligned with
        ``splits[i][1]``, NaN for neuroids with zero variance: what r, the bootstrap and the
        permutation statistics of :mod:`brainalign.metrics.stats` are computed from.
    intercepts
        (neuroid,) per fold: the intercept added to ``centred_predictions`` (the training mean of
        the responses); see :attr:`predictions`.
    excluded
        (neuroid,) True for neuroids left out of every summary.
    exclusion_reason
        Why each excluded neuroid was left out (``"zero variance"``, ``"no defined fold"``); "" else.
    model, seed, cv
        Regression model, seed of the splits, and a description of the splitter.
    settings
        Remaining parameters (inner cv, dtype, device, n_components …).
    """

    r: np.ndarray
    r_folds: np.ndarray
    splits: list[Split]
    alphas: np.ndarray | None
    alpha_grid: np.ndarray | None
    centred_predictions: list[np.ndarray]
    intercepts: list[np.ndarray]
    excluded: np.ndarray
    exclusion_reason: np.ndarray
    model: str
    seed: int | None
    cv: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def predictions(self) -> list[np.ndarray]:
        """Held-out predictions of each fold, (n_test, neuroid) aligned with ``splits[i][1]``:
        ``centred_predictions + intercepts``. Take r from :attr:`centred_predictions`: a variation
        below the rounding of the intercept is lost here."""
        return [c + o for c, o in zip(self.centred_predictions, self.intercepts, strict=True)]

    @property
    def n_excluded(self) -> int:
        """Number of excluded neuroids."""
        return int(self.excluded.sum())

    @property
    def n_neuroids(self) -> int:
        """Number of neuroids that enter the summaries."""
        return int((~self.excluded).sum())

    @property
    def median(self) -> float:
        """Median r over the neuroids that are not excluded (see :attr:`n_excluded`)."""
        return float(np.median(self.r[~self.excluded])) if self.n_neuroids else float("nan")

    @property
    def mean(self) -> float:
        """Mean r over the neuroids that are not excluded."""
        return float(np.mean(self.r[~self.excluded])) if self.n_neuroids else float("nan")

    def summary(self) -> str:
        """One line: median and mean r and how many neuroids were used and excluded."""
        return (f"{self.model}: median r = {self.median:.4f}, mean r = {self.mean:.4f} over "
                f"{self.n_neuroids} neuroids ({self.n_excluded} excluded), {self.cv}, seed {self.seed}")

    def normalised(self, ceiling: np.ndarray | float) -> np.ndarray:
        """Per-neuroid r divided by ``ceiling`` (see :func:`encoding_ceiling`); NaN where excluded."""
        return normalise(self.r, ceiling)


def _as_2d(a: np.ndarray | torch.Tensor, what: str) -> np.ndarray | torch.Tensor:
    shape = tuple(a.shape)
    if len(shape) == 1:
        a = a[:, None]
    elif len(shape) != 2:
        raise MetricInputError(f"{what}: expected a 2-D (stimulus × {'feature' if what == 'X' else 'neuroid'}) "
                               f"array, got shape {shape}")
    return a


def _check_stimulus_ids(X: object, Y: object) -> None:
    """When both inputs carry ``stimulus_id`` coordinates (xarray), they must list the same stimuli
    in the same order."""
    try:
        ix = np.asarray(X.coords["stimulus_id"].values)  # type: ignore[attr-defined]
        iy = np.asarray(Y.coords["stimulus_id"].values)  # type: ignore[attr-defined]
    except (AttributeError, KeyError):
        return
    if ix.shape == iy.shape and np.array_equal(ix, iy):
        return
    if ix.shape != iy.shape:
        raise MetricInputError(f"encoding_score: X has {ix.size} stimulus ids but Y has {iy.size}")
    i = int(np.flatnonzero(ix != iy)[0])
    raise MetricInputError(f"encoding_score: stimulus order differs between X and Y: position {i} is "
                           f"{str(ix[i])!r} in X but {str(iy[i])!r} in Y; align them first")


def _check_finite(a: torch.Tensor, what: str, col: str) -> None:
    bad = ~torch.isfinite(a)
    if bool(bad.any()):
        i, j = (int(v) for v in torch.nonzero(bad)[0])
        raise MetricInputError(f"{what}: {int(bad.sum())} NaN/inf values (first at stimulus row {i}, {col} {j})")


def make_splits(n: int, cv: int | object | Sequence[Split] = 5, *, groups: np.ndarray | None = None,
                stratify: np.ndarray | None = None, seed: int | None = 0) -> tuple[list[Split], str]:
    """Outer (train, test) stimulus splits and a description of them.

    Parameters
    ----------
    n
        Number of stimuli.
    cv
        int K: shuffled K-fold (``StratifiedKFold`` when ``stratify`` is given, ``GroupKFold`` with
        shuffled group order when ``groups`` is given); an sklearn splitter (its ``split(X, y,
        groups)`` receives ``stratify`` as y and ``groups``); or an explicit list of index pairs.
    groups
        (stimulus,) labels; stimuli of one group never straddle train and test (e.g. images of one
        object, or repeats of one image).
    stratify
        (stimulus,) labels whose proportions every fold keeps (e.g. object category).
    seed
        Seed of the shuffling.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    for lab, name in ((groups, "groups"), (stratify, "stratify")):
        if lab is not None and len(lab) != n:
            raise MetricInputError(f"{name}: {len(lab)} labels for {n} stimuli")
    if stratify is not None and not isinstance(cv, int | np.integer):
        if not hasattr(cv, "split"):
            raise MetricInputError("stratify= cannot be honoured with explicit (train, test) splits: make "
                                   "stratified splits yourself, or pass cv=K")
        if "Stratified" not in type(cv).__name__:
            raise MetricInputError(f"stratify= would be ignored by the splitter {cv!r} (it does not "
                                   f"stratify): use a Stratified* splitter or cv=K")
    if isinstance(cv, int | np.integer):
        k = int(cv)
        if k < 2:
            raise MetricInputError(f"cv={k}: need at least 2 folds")
        if k > n:
            raise MetricInputError(f"cv={k} folds but only {n} stimuli (fewer stimuli than folds)")
        if groups is not None:
            n_groups = len(np.unique(groups))
            if k > n_groups:
                raise MetricInputError(f"cv={k} folds but only {n_groups} distinct groups")
            if stratify is not None:
                splitter: Any = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
            else:
                splitter = GroupKFold(k, shuffle=True, random_state=seed)
        elif stratify is not None:
            splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
        else:
            splitter = KFold(k, shuffle=True, random_state=seed)
    else:
        splitter = cv
    if hasattr(splitter, "split"):
        try:
            splits = [(np.asarray(a), np.asarray(b))
                      for a, b in splitter.split(np.zeros((n, 1)), stratify, groups)]
        except ValueError as e:
            raise MetricInputError(f"cv splitter {splitter!r} failed on {n} stimuli: {e}") from e
        desc = repr(splitter)
    else:
        splits = [(np.asarray(a), np.asarray(b)) for a, b in splitter]
        desc = f"{len(splits)} explicit splits"
    for i, (tr, te) in enumerate(splits):
        if len(tr) < 2 or len(te) < 2:
            raise MetricInputError(f"split {i}: {len(tr)} train and {len(te)} test stimuli; need ≥ 2 each")
        if tr.max(initial=-1) >= n or te.max(initial=-1) >= n or min(tr.min(), te.min()) < 0:
            raise MetricInputError(f"split {i}: indices outside the {n} stimuli")
        both = np.intersect1d(tr, te)
        if both.size:
            raise MetricInputError(f"split {i}: {both.size} stimuli are in both train and test "
                                   f"(first: position {int(both[0])})")
    if groups is not None:
        check_groups(splits, np.asarray(groups), "cv")
    return splits, desc


def check_groups(splits: Sequence[Split], groups: np.ndarray, what: str) -> None:
    """Raise :class:`MetricInputError` when a group has stimuli on both sides of a split."""
    for i, (tr, te) in enumerate(splits):
        both = np.intersect1d(groups[np.asarray(tr)], groups[np.asarray(te)])
        if both.size:
            raise MetricInputError(
                f"{what} split {i}: {both.size} groups have stimuli in both train and test (first: "
                f"{both.tolist()[0]!r}); groups= requires that no group straddles a split. Pass cv=K to make "
                f"grouped folds, or leave groups= out if the splits are meant as given")


def _inner_group_splits(inner_cv: Any, groups: np.ndarray, seed: int | None) -> Any:
    """Inner (α-selection) splits of one training set that keep each group on one side."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    m = len(groups)
    if isinstance(inner_cv, str):  # "loo": leave one *group* out (plain LOO when groups are single)
        if len(np.unique(groups)) == m:
            return inner_cv
        splits = list(LeaveOneGroupOut().split(np.zeros((m, 1)), None, groups))
    elif isinstance(inner_cv, int | np.integer):
        n_groups = len(np.unique(groups))
        if inner_cv > n_groups:
            raise MetricInputError(f"inner_cv={inner_cv} folds but a training set holds only {n_groups} groups")
        splitter = GroupKFold(int(inner_cv), shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros((m, 1)), None, groups))
    elif hasattr(inner_cv, "split"):
        splits = list(inner_cv.split(np.zeros((m, 1)), None, groups))
    else:
        splits = [(np.asarray(a), np.asarray(b)) for a, b in inner_cv]
    check_groups(splits, groups, "inner_cv")
    return splits


def pearson_columns(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r between matching columns of ``a`` and ``b`` (samples × columns), float64 on
    ``a``'s device; NaN where either is (numerically) constant. The definition of
    :func:`brainalign.metrics.stats.weighted_pearson` (computed on the CPU)."""
    ones = np.ones((1, a.shape[0]))
    r = weighted_pearson(ones, a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy())[0]
    return torch.from_numpy(r).to(a.device)


def encoding_score(X: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor, *,
                   model: Literal["ridge", "pls"] = "ridge", alphas: np.ndarray | None = None,
                   cv: int | object | Sequence[Split] = 5, groups: np.ndarray | None = None,
                   stratify: np.ndarray | None = None, seed: int | None = 0,
                   inner_cv: str | int | object = "loo", n_components: int = 25,
                   n_targets_batch: int | None = None, device: DeviceLike = "auto",
                   dtype: Literal["float64", "float32"] = "float64") -> EncodingScore:
    """Cross-validated encoding score: held-out Pearson r per neuroid.

    Parameters
    ----------
    X
        (stimulus × feature) model activations: numpy, torch or an xarray DataArray (as returned
        by :func:`brainalign.extract`).
    Y
        (stimulus × neuroid) responses (e.g. repeat-averaged), same stimulus order as ``X``; when
        both carry ``stimulus_id`` coordinates their order is checked.
    model
        ``"ridge"``: ridge with α chosen per neuroid by ``inner_cv`` on each training set;
        ``"pls"``: PLS regression with ``n_components`` (25, Brain-Score's standard).
    alphas
        Ridge α grid; None: ``DEFAULT_ALPHAS`` = 10⁻²…10⁸ in decades (the scale of α follows the
        scale of the features, hence the wide grid; neuroids whose α is at an end of the grid are
        counted in ``settings["alpha_at_grid_edge"]`` and warned about).
    cv
        Outer splits: int K (shuffled K-fold with ``seed``), an sklearn splitter, or a list of
        (train_idx, test_idx). See :func:`make_splits`.
    groups, stratify
        (stimulus,) labels from the stimulus metadata for grouped / stratified K-fold. Every
        option is honoured or refused, never ignored: ``groups`` with an int ``cv`` makes grouped
        folds (``StratifiedGroupKFold`` with ``stratify`` too); with explicit splits or a splitter
        the splits are checked and a group that straddles train and test is a
        :class:`MetricInputError`. ``groups`` also applies to the ridge α selection inside each
        training set: ``inner_cv="loo"`` becomes leave-one-*group*-out (plain LOO when every group
        is one stimulus), an int K grouped K-fold. ``stratify`` with explicit splits or a
        splitter that does not stratify is refused.
    seed
        Seed of the outer shuffling (recorded in the result); also shuffles an int ``inner_cv``.
    inner_cv
        Ridge α selection on each training set: ``"loo"`` (exact leave-one-out, one decomposition
        per fold, fastest), an int K (shuffled K-fold with ``seed``, one decomposition per inner
        fold) or an sklearn splitter. Ridge only (refused with ``model="pls"``, as are ``alphas``
        and ``n_targets_batch``; ``n_components`` ≠ 25 is refused with ridge).
    n_targets_batch
        Neuroids processed at once (memory bound); None: all.
    device
        ``"auto"``: the device of a torch input, else CUDA when available, else CPU.
    dtype
        ``"float64"`` (default: matches scikit-learn to ~1e-8) or ``"float32"`` for the products
        with X and Y (faster on CPU; the Gram/covariance and its eigendecomposition stay float64).
        Measured 2026-11-30: held-out r within 1e-7 of float64 for ridge (also with columns
        scaled ×1e4; a fold whose float32 leave-one-out errors are not finite is redone in
        float64) and for PLS(25); near-tied α choices can differ.

    Returns
    -------
    EncodingScore

    Raises
    ------
    MetricInputError
        Mismatched stimulus counts, NaN/inf (says which array, row and column), fewer stimuli than
        folds, an unknown model.
    """
    if model not in ("ridge", "pls"):
        raise MetricInputError(f"encoding_score: unknown model {model!r}; use 'ridge' or 'pls'")
    if model == "pls":
        unused = [k for k, v in (("alphas", alphas is not None), ("inner_cv", not (isinstance(inner_cv, str)
                  and inner_cv == "loo")), ("n_targets_batch", n_targets_batch is not None)) if v]
        if unused:
            raise MetricInputError(f"encoding_score(model='pls'): {', '.join(unused)} appl"
                                   f"{'ies' if len(unused) == 1 else 'y'} to ridge only (PLS fits all "
                                   f"neuroids jointly with n_components)")
    elif n_components != 25:
        raise MetricInputError("encoding_score(model='ridge'): n_components applies to model='pls' only")
    _check_stimulus_ids(X, Y)
    if not isinstance(X, torch.Tensor):
        X = np.asarray(X)
    if not isinstance(Y, torch.Tensor):
        Y = np.asarray(Y)
    X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise MetricInputError(f"encoding_score: X has {X.shape[0]} stimuli (rows) but Y has {Y.shape[0]}")
    dev = resolve_device(device, X, Y)
    dt = {"float64": torch.float64, "float32": torch.float32}.get(dtype)
    if dt is None:
        raise MetricInputError(f"encoding_score: dtype {dtype!r}; use 'float64' or 'float32'")
    Xt, Yt = as_tensor(X, dev, dt), as_tensor(Y, dev, dt)
    _check_finite(Xt, "X", "feature")
    _check_finite(Yt, "Y", "neuroid")
    n, t = Yt.shape
    splits, desc = make_splits(n, cv, groups=groups, stratify=stratify, seed=seed)

    var = Yt.var(0)
    zero = (var <= torch.finfo(dt).eps * Yt.abs().amax(0).clamp_min(1.0) ** 2).cpu().numpy()
    keep = np.flatnonzero(~zero)
    Yk = Yt[:, torch.as_tensor(keep, device=dev)]

    r_folds = np.full((len(splits), t), np.nan)
    preds: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    Y64 = Yk.detach().cpu().double().numpy()

    def _fold_result(i: int, te: np.ndarray, centred: torch.Tensor, intercept: torch.Tensor) -> None:
        """Record fold ``i``: its predictions without the intercept (n_test × kept neuroids) and
        their r, from the one Pearson of the bootstrap (stats.weighted_pearson)."""
        c = centred.detach().cpu().double().numpy()
        r_folds[i, keep] = weighted_pearson(np.ones((1, len(te))), c, Y64[te])[0]
        full = np.full((len(te), t), np.nan)
        full[:, keep] = c
        preds.append(full)
        off = np.full(t, np.nan)
        off[keep] = intercept.detach().cpu().double().numpy()
        offsets.append(off)
    alpha_grid = None
    chosen = None
    settings: dict[str, Any] = {"dtype": dtype, "device": str(dev), "n_targets_batch": n_targets_batch}
    if model == "ridge":
        alpha_grid = check_alphas(alphas) if alphas is not None else DEFAULT_ALPHAS.copy()
        a = as_tensor(alpha_grid, dev, dt)
        design = Design(Xt)
        chosen = np.full((len(splits), t), np.nan)
        if isinstance(inner_cv, int | np.integer) and groups is None:
            from sklearn.model_selection import KFold

            # Shuffled, so that stimuli stored in blocks (e.g. by category) do not make blocked folds.
            inner_cv = KFold(int(inner_cv), shuffle=True, random_state=seed)
        settings["inner_cv"] = repr(inner_cv)
        g = None if groups is None else np.asarray(groups)
        settings["inner_groups"] = g is not None
        for i, (tr, te) in enumerate(splits):
            inner = inner_cv if g is None else _inner_group_splits(inner_cv, g[tr], seed)
            try:
                fit = solve_ridge_cv(design, tr, Yk, a, cv=inner, n_targets_batch=n_targets_batch,
                                     best_only=True)
            except MetricInputError as e:
                raise MetricInputError(f"encoding_score (ridge, split {i}): {e}") from e
            chosen[i, keep] = alpha_grid[fit.alpha_index.cpu().numpy()]  # exact grid values
            _fold_result(i, te, predict_rows(fit, te, add_mean=False), fit.y_mean)
        at_low, at_high = ((chosen[:, keep] == alpha_grid[j]).mean(0) for j in (0, -1))
        edge = at_low + at_high > 0.5
        high = int((edge & (at_high >= at_low)).sum())
        settings["alpha_at_grid_edge"] = int(edge.sum())
        if edge.any():
            # Which end it is says different things: the strongest shrinkage winning is what
            # targets the features barely predict do (pure noise runs there); the weakest winning
            # says the grid may stop short.
            warnings.warn(f"encoding_score: for {int(edge.sum())} of {len(keep)} neuroids the chosen α is "
                          f"mostly at an end of the grid [{alpha_grid[0]:g}, {alpha_grid[-1]:g}] "
                          f"({int(edge.sum()) - high} at the low end, {high} at the high end). At the high end "
                          "the strongest shrinkage won, as it does for neuroids the features barely predict "
                          "(for very wide layers a grid extended upwards may fit better); at the low end, "
                          "extend `alphas` downwards", stacklevel=2)
    else:
        settings["n_components"] = n_components
        for i, (tr, te) in enumerate(splits):
            tr_t = torch.as_tensor(tr, device=dev)
            te_t = torch.as_tensor(te, device=dev)
            try:
                coef, xm, ym = pls_fit(Xt[tr_t], Yk[tr_t], n_components)
            except ValueError as e:
                raise MetricInputError(f"encoding_score (pls, split {i}): {e}") from e
            _fold_result(i, te, (Xt[te_t] - xm) @ coef, ym)

    defined = np.isfinite(r_folds)
    none_defined = ~zero & ~defined.any(0)
    excluded = zero | none_defined
    reason = np.where(zero, "zero variance", np.where(none_defined, "no defined fold", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = np.nanmean(r_folds, axis=0)
    r[excluded] = np.nan
    if excluded.any():  # said, not only marked: a constant target reads as a NaN score otherwise
        warnings.warn(f"encoding_score: {int(excluded.sum())} of {t} neuroids have no score ("
                      f"{int(zero.sum())} with zero variance over the stimuli, {int(none_defined.sum())} whose "
                      "held-out r is undefined in every split: constant predictions or responses); they "
                      "are left out of the median (.excluded, .exclusion_reason)", stacklevel=2)
    settings["n_undefined_fold_scores"] = int((~defined[:, ~excluded]).sum())
    return EncodingScore(r=r, r_folds=r_folds, splits=splits, alphas=chosen, alpha_grid=alpha_grid,
                         centred_predictions=preds, intercepts=offsets, excluded=excluded,
                         exclusion_reason=reason, model=model, seed=seed, cv=desc, settings=settings)


def encoding_ceiling(reliability: np.ndarray | float,
                     convention: Literal["sqrt", "brainscore"] = "sqrt") -> np.ndarray | float:
    """Ceiling of a held-out Pearson r given the Spearman–Brown corrected split-half reliability.

    Conventions
    -----------
    ``"sqrt"`` (default): ceiling = √reliability. The reliability ρ (from
    :func:`brainalign.metrics.split_half_reliability`) estimates the squared correlation between
    the repeat-averaged response and its noise-free signal, so a perfect model — one that predicts
    the signal exactly — reaches r = √ρ against the averaged data. Dividing by √ρ therefore maps a
    perfect model to 1 (classical correction for attenuation).

    ``"brainscore"``: ceiling = ρ, Brain-Score's convention (the split-half consistency is used as
    the ceiling directly). It is smaller than √ρ, so normalised scores are larger and a perfect
    model exceeds 1; use it only to compare with published Brain-Score numbers.

    Negative reliabilities give a NaN ceiling (the neuroid carries no repeatable signal).
    """
    rel = np.asarray(reliability, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if convention == "sqrt":
            out = np.where(rel > 0, np.sqrt(np.clip(rel, 0, None)), np.nan)
        elif convention == "brainscore":
            out = np.where(rel > 0, rel, np.nan)
        else:
            raise MetricInputError(
                f"encoding_ceiling: unknown convention {convention!r}; use 'sqrt' or 'brainscore'")
    return float(out) if out.ndim == 0 else out


def normalise(r: np.ndarray | float, ceiling: np.ndarray | float) -> np.ndarray | float:
    """``r / ceiling`` (the ``"divide"`` normalisation of the metric registry); NaN where the
    ceiling is not positive."""
    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(ceiling, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(c > 0, r / np.where(c > 0, c, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out
