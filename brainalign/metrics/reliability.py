"""Split-half reliability of repeated responses, with the Spearman–Brown correction."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

from brainalign.errors import MetricInputError


def spearman_brown(r: np.ndarray | float, factor: float = 2.0) -> np.ndarray | float:
    """Reliability of a measurement ``factor`` times longer: ``k r / (1 + (k − 1) r)``."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = factor * r / (1.0 + (factor - 1.0) * r)
    return float(out) if out.ndim == 0 else out


def _masked_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r over the last axis between ``a`` and ``b``, ignoring positions where either is NaN."""
    ok = np.isfinite(a) & np.isfinite(b)
    cnt = ok.sum(-1)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(-1) / cnt
        mb = b0.sum(-1) / cnt
        da = np.where(ok, a0 - ma[..., None], 0.0)
        db = np.where(ok, b0 - mb[..., None], 0.0)
        num = (da * db).sum(-1)
        den = np.sqrt((da * da).sum(-1) * (db * db).sum(-1))
        r = num / den
    r[(den == 0) | (cnt < 3)] = np.nan
    return r


def _check_trials(trials: np.ndarray) -> np.ndarray:
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise MetricInputError(
            f"split_half_reliability: expected (neuroid, stimulus, repetition), got shape {t.shape}")
    if np.isinf(t).any():
        n, s, _ = np.argwhere(np.isinf(t))[0]
        raise MetricInputError(f"split_half_reliability: inf value at neuroid {n}, stimulus {s}")
    if t.shape[2] < 2:
        raise MetricInputError(f"split_half_reliability: {t.shape[2]} repetition(s); need at least 2")
    return t


def split_half_halves(trials: np.ndarray, n_splits: int = 10, seed: int | None = 0,
                      method: Literal["random", "even_odd"] = "random") -> tuple[np.ndarray, np.ndarray]:
    """The two half-averages of every split: (split, neuroid, stimulus) arrays ``A``, ``B``.

    Each stimulus' available (non-NaN) repeats are shuffled (``"random"``, one random order per
    split, shared by all neuroids) or taken in order (``"even_odd"``: repeats 0, 2, 4 … vs 1, 3, …;
    one split); the first ⌊c/2⌋ go to half A and the rest to half B (odd counts give B one more).
    Stimuli with fewer than 2 repeats are NaN in both halves.
    """
    t = _check_trials(trials)
    avail = np.isfinite(t)
    vals = np.where(avail, t, 0.0)
    cnt = avail.sum(-1)  # (neuroid, stimulus)
    if method == "even_odd":
        # Position of each slot among the available repeats of its (neuroid, stimulus).
        pos = np.cumsum(avail, -1) - 1
        in_a = avail & (pos % 2 == 0)
        in_b = avail & (pos % 2 == 1)
        halves = [(in_a, in_b)]
    elif method == "random":
        rng = np.random.default_rng(seed)
        halves = []
        for _ in range(n_splits):
            keys = rng.random(t.shape[1:])  # (stimulus, repetition) shared by neuroids
            keys = np.where(avail, keys[None], np.inf)
            rank = np.argsort(np.argsort(keys, -1), -1)
            in_a = avail & (rank < (cnt // 2)[..., None])
            halves.append((in_a, avail & ~in_a))
    else:
        raise MetricInputError(f"split_half_reliability: unknown method {method!r}; use 'random' or 'even_odd'")
    A, B = [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for in_a, in_b in halves:
            a = (vals * in_a).sum(-1) / in_a.sum(-1)
            b = (vals * in_b).sum(-1) / in_b.sum(-1)
            bad = cnt < 2
            a[bad] = np.nan
            b[bad] = np.nan
            A.append(a)
            B.append(b)
    return np.stack(A), np.stack(B)


def split_half_reliability(trials: np.ndarray, n_splits: int = 10, seed: int | None = 0,
                           method: Literal["random", "even_odd"] = "random",
                           corrected: bool = True) -> np.ndarray:
    """Per-neuroid split-half reliability, Spearman–Brown corrected to the full number of repeats.

    For each split the available repeats of every stimulus are divided into two halves
    (:func:`split_half_halves`), each half is averaged, and the Pearson r across stimuli between
    the two half-averages is computed per neuroid. The r's are averaged over splits and the mean is
    corrected with Spearman–Brown (factor 2), giving the reliability of the average of all repeats:
    the expected correlation between two independent full-size averages. (Averaging r before the
    non-linear correction keeps the estimate from being pulled up by noisy splits.)

    Parameters
    ----------
    trials
        (neuroid, stimulus, repetition); unequal repeat counts are stored as NaN padding.
    n_splits
        Random splits (ignored for ``method="even_odd"``).
    seed
        Seed of the random splits.
    method
        ``"random"`` halves or the deterministic ``"even_odd"`` split.
    corrected
        Apply Spearman–Brown (default); False returns the mean split-half r itself.

    Returns
    -------
    numpy.ndarray
        (neuroid,) reliabilities; NaN for neuroids with constant half-averages.
    """
    A, B = split_half_halves(trials, n_splits, seed, method)
    r = _masked_pearson(A, B)  # (split, neuroid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_r = np.nanmean(r, axis=0)
    return spearman_brown(mean_r) if corrected else mean_r
