"""Which model is better: paired bootstrap differences between models at their chosen layers.

For every benchmark (and session) in a :class:`~brainalign.results.ScoreResult`, each model is
represented by its chosen layer (the one best-layer rule, :func:`chosen_rows`), and every pair of
models gets

- ``difference`` = score(model_a) − score(model_b) of the table's point estimates (normalised
  where every model has a ceiling-normalised score, else raw; column ``score``),
- a paired bootstrap CI of that difference, and
- a two-sided bootstrap p-value, corrected for the number of pairs (Holm by default).

**Paired.** A benchmark draws its bootstrap index sets from its own seed, the same for every model
(the table's ``seed`` / ``n_bootstrap`` columns, ``ScoreResult.details[...]["bootstrap_raw"]`` /
``["bootstrap_normalised"]``), so sample *b* of model A and sample *b* of model B were computed on
the same resampled stimuli and the difference distribution is taken sample by sample:
``δ_b = s_A,b − s_B,b``. Pairing is checked (same seed, number of samples drawn, stimuli, data
hash, benchmark version, and the index sets themselves where a detail keeps them); a pair that
violates it is not compared and the reason is listed (``.attrs["not_paired"]``), while the
benchmark's other pairs and the other benchmarks are. A benchmark that generates its stimuli per
model (the V1 property benchmarks draw gratings in each model's own field of view) pairs only
models shown the same stimuli (the same input size and degrees).

**Over what.** RSA benchmarks resample stimuli (Nili et al. 2014; rsatoolbox's
``bootstrap_sample_pattern``); ``method`` says, in plain words, what was tested on which score,
what was resampled and which correction was applied. Such a bootstrap
counts the RDM's pair-level noise three times (a stimulus drawn twice duplicates all its pairs),
which overestimates the variance of an RSA score about twofold and made the test reject 0.5–1 %
of null simulations at alpha = 5 % (Schütt et al. 2023, eLife 12:e82566, report uncorrected
bootstraps as conservative). :func:`pair_noise_correction` removes the pair-by-pair part of that
excess by regressing the differences on the resampling counts (the index sets are redrawn by the
one resampler, ``metrics.stats.resample_indices``, from the rows' seed and stimulus count, or
read from a ``bootstrap_index`` detail); measured: 2.5–3.5 % false positives, with about twice
the power. Regression benchmarks whose details keep the per-neuroid r of every stimulus-bootstrap
sample (``bootstrap_raw_neuroid``, (bootstrap × neuroid); with ``bootstrap_ceiling_neuroid`` for
the normalised score) are resampled over neuroids too: sample *b* also draws a neuroid index set
*J_b* (seeded, the same for every model) and ``s_b = agg(r[b, J_b])`` (``/ agg(ceiling[b, J_b])``
normalised), so the CI covers a new sample of both stimuli and neuroids (the two-factor bootstrap
of Schütt et al. 2023, uncorrected: it adds the neuroid term on top of the stimulus term and is
therefore conservative). The regression kind does not keep those arrays today (B × neuroid floats
per layer and session); without them, regression resamples stimuli only and ``method`` says so.

**Test and CI.** The bootstrap distribution of δ is shifted to obey the null (Efron & Tibshirani
1993, §16.4): ``p = (1 + #{|δ_b − mean(δ)| ≥ |Δ|}) / (B + 1)`` for the observed difference Δ,
and the CI is that spread re-centred on Δ (:func:`paired_difference`). The plain percentile
test (``2·min(P(δ ≤ 0), P(δ ≥ 0))``, rsatoolbox's ``bootstrap_pair_tests``) was measured too: a
median over neuroids is shrunk towards zero in resamples, which made it reject 0.5 % of null
simulations at alpha = 5 %, against 3.5 % for the shifted test. ``p_corrected``: Holm's step-down
(Holm 1979, controls the family-wise error; computed here in a few lines) over the pairs of one
benchmark and session, or Benjamini–Hochberg (``scipy.stats.false_discovery_control``).
``within_noise``: ``p_corrected ≥ alpha``, i.e. the data do not tell the two models apart.

Caveat: the chosen layer is picked on the development stimuli while the difference is on all
stimuli, which favours models with many candidate layers a little.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from brainalign.errors import MissingBootstrapError, ResultsTableError, UnpairedSamplesError
from brainalign.results.provenance import GENERATED_PER_MODEL

if TYPE_CHECKING:
    from brainalign.results.result import ScoreResult

COMPARE_FILE = "compare.csv"
"""Name of the table ``brainalign compare`` writes into a results folder (the report reads it)."""


def remove_stale_comparison(folder: Path, note: Callable[[str], None]) -> bool:
    """Remove ``folder``'s :data:`COMPARE_FILE` after the scores in ``folder`` changed (``brainalign
    batch`` or ``brainalign score --out`` scored into it): it compared the scores before, and the
    report would show it as current. ``note`` gets the line that says so. Returns whether one was
    removed."""
    stale = Path(folder) / COMPARE_FILE
    if not stale.is_file():
        return False
    stale.unlink(missing_ok=True)
    note(f"removed {stale}: it compared the scores before this run; run `brainalign compare {folder}` again")
    return True


COMPARE_COLUMNS = ["benchmark", "session", "model_a", "layer_a", "model_b", "layer_b", "difference",
                   "ci_low", "ci_high", "p", "p_corrected", "within_noise", "n_bootstrap", "method",
                   "score"]

Correction = Literal["holm", "bh", "none"]
Score = Literal["auto", "normalised", "raw"]

# Row settings that must agree for two models' bootstrap samples to be paired. (Not n_bootstrap:
# it counts a row's finite samples, which may differ; the number drawn is the samples' length.)
_PAIRING = ("seed", "n_stimuli", "benchmark_version", "data_sha256")


@dataclass(frozen=True)
class PairedDifference:
    """One pair's difference, CI and uncorrected two-sided p (see :func:`paired_difference`)."""

    difference: float
    ci_low: float
    ci_high: float
    p: float
    n_bootstrap: int
    variance_factor: float | None = None  # pair-noise correction applied (see pair_noise_correction)


def bootstrap_p_value(deltas: np.ndarray, difference: float) -> float:
    """Two-sided p-value of ``H0: difference = 0`` from paired bootstrap differences.

    The bootstrap distribution is shifted to obey the null (mean 0; Efron & Tibshirani 1993,
    *An Introduction to the Bootstrap*, §16.4) and the observed difference is compared with it:
    ``p = (1 + #{|δ_b − mean(δ)| ≥ |difference|}) / (B + 1)`` over the finite samples. Shifting
    by the samples' own mean rather than by ``difference`` keeps the test valid where the
    bootstrap distribution's centre is biased (a median over neuroids is shrunk towards zero in
    resamples). Identical samples and difference 0 (a model against itself) give 1; NaN with no
    finite sample.
    """
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.isfinite(difference):
        return float("nan")
    # Round-off guard: a centred sample equal to |difference| up to rounding counts as reaching it.
    tol = 1e-12 * max(1.0, abs(difference))
    return float((1 + np.sum(np.abs(d - d.mean()) >= abs(difference) - tol)) / (d.size + 1))


def pair_noise_correction(deltas: np.ndarray, index: np.ndarray) -> float | None:
    """Factor that removes from bootstrap-over-stimuli variance what resampling adds to an RDM score.

    An RSA score is (to first order) a mean over stimulus *pairs*, so it is a U-statistic of
    degree 2: its sampling variance is ``V₁ + σ²/P`` (V₁: the per-stimulus part; σ²: pair-level
    noise, P pairs; Hoeffding decomposition). A bootstrap sample weights pair (i, j) by
    ``m_i·m_j`` (m: how often each stimulus was drawn), which turns the pair-level term into
    ``3σ²/P``: twice through the per-stimulus means it perturbs, once as a pair-by-pair term.
    Regressing the samples on the counts ``m`` separates the part linear in the counts
    (``L = V₁ + 2σ²/P``) from the rest (``R = σ²/P``, from the residuals). ``L`` still exceeds the
    sampling variance by ``σ²/P`` — so the corrected test stays conservative — but no longer by
    ``2σ²/P``; it leaves out the pair-by-pair term. (Subtracting ``R`` once more, ``L − R``,
    would be unbiased in theory but rejected 8–13 % of null simulations at alpha = 5 % in
    ours: the variance estimate is too noisy to be trusted to the last term.)

    Parameters
    ----------
    deltas
        (bootstrap,) paired differences of two models' scores (non-finite ones are dropped).
    index
        (bootstrap, stimulus) the stimulus index sets the samples were drawn with.

    Returns
    -------
    ``L / V`` (≤ 1) to multiply the samples' variance with, or None where it does not apply:
    fewer than max(2n, n + 50) finite samples for n stimuli (the regression needs them), or
    ``L < 2R``, which a degree-2 U-statistic cannot give (e.g. index sets that are not the ones
    the samples were drawn with).
    """
    d = np.asarray(deltas, dtype=np.float64)
    idx = np.asarray(index)
    if idx.ndim != 2 or idx.shape[0] != d.shape[0]:
        return None
    ok = np.isfinite(d)
    d, idx = d[ok], idx[ok]
    b, n = idx.shape
    if b < max(2 * n, n + 50):
        return None
    counts = np.zeros((b, n))
    np.add.at(counts, (np.arange(b)[:, None], idx), 1.0)
    X = np.column_stack([np.ones(b), counts[:, :-1] - 1.0])  # counts sum to n: one column is implied
    coef, *_ = np.linalg.lstsq(X, d, rcond=None)
    resid = d - X @ coef
    total = d.var(ddof=1)
    if not total > 0:
        return None
    quadratic = float(resid @ resid) / (b - n)
    linear = total - quadratic
    if linear < 2 * quadratic:
        return None
    return float(linear / total)


def paired_difference(estimate_a: float, estimate_b: float, samples_a: np.ndarray,
                      samples_b: np.ndarray, *, ci: float = 0.95,
                      pair_index: np.ndarray | None = None) -> PairedDifference:
    """Difference ``estimate_a − estimate_b`` with a paired bootstrap CI and p-value.

    The CI is the paired bootstrap distribution of the difference re-centred on the observed
    difference Δ: ``[Δ + q_(1−ci)/2, Δ + q_(1+ci)/2]`` with ``q`` the quantiles of
    ``mean(δ) − δ_b`` (the basic bootstrap interval, centred with the samples' own mean). It
    always contains Δ and, for a symmetric bootstrap distribution, excludes 0 exactly when the
    shifted test of :func:`bootstrap_p_value` rejects at level ``1 − ci``.

    Parameters
    ----------
    estimate_a, estimate_b
        The two models' scores on all the data.
    samples_a, samples_b
        (bootstrap,) the two models' scores in the same bootstrap samples (sample *b* of both drawn
        with the same index set). Samples that are NaN in either are dropped.
    ci
        Level of the two-sided interval, in (0, 1).
    pair_index
        For an RDM comparison: the (bootstrap, stimulus) index sets the samples were drawn with;
        the differences' spread around their mean is then scaled by the square root of
        :func:`pair_noise_correction` (when it applies; ``variance_factor`` says).

    Raises
    ------
    UnpairedSamplesError
        The two sample vectors differ in length.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci}: must lie in (0, 1)")
    a, b = np.asarray(samples_a, np.float64).ravel(), np.asarray(samples_b, np.float64).ravel()
    if a.shape != b.shape:
        raise UnpairedSamplesError(f"bootstrap samples of different lengths ({a.size} vs {b.size}) "
                                   "cannot be paired: score both with the same --n-bootstrap")
    diff = float(estimate_a - estimate_b)
    d = a - b
    factor = None if pair_index is None else pair_noise_correction(d, pair_index)
    d = d[np.isfinite(d)]
    if factor is not None:
        d = d.mean() + (d - d.mean()) * np.sqrt(factor)
    if d.size:
        lo, hi = diff + np.percentile(d.mean() - d, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
    else:
        lo = hi = np.nan
    return PairedDifference(diff, float(lo), float(hi), bootstrap_p_value(d, diff), int(d.size), factor)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), family-wise error control.

    Sorted ascending, ``p_(i)`` becomes ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``. NaN entries
    stay NaN and do not count in ``m``.
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[ok][order])
    adj = np.empty(m)
    adj[order] = np.maximum.accumulate(scaled)
    out[ok] = adj
    return out


def adjust_p(p: Sequence[float] | np.ndarray, method: Correction = "holm") -> np.ndarray:
    """Correct p-values for the number of comparisons: ``holm`` (family-wise error, default),
    ``bh`` (Benjamini–Hochberg false discovery rate, ``scipy.stats.false_discovery_control``) or
    ``none``. NaN entries stay NaN and do not count."""
    p = np.asarray(p, dtype=np.float64)
    if method == "holm":
        return holm(p)
    if method == "none":
        return p.copy()
    if method == "bh":
        from scipy.stats import false_discovery_control

        out = np.full(p.shape, np.nan)
        ok = np.isfinite(p)
        if ok.any():
            out[ok] = false_discovery_control(p[ok], method="bh")
        return out
    raise ValueError(f"correction {method!r}: use 'holm', 'bh' or 'none'")


def _aggregate(values: np.ndarray, how: str) -> np.ndarray:
    """NaN-ignoring median or mean over the last axis (excluded neuroids are NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=-1) if how == "median" else np.nanmean(values, axis=-1)


def neuroid_index_sets(n_bootstrap: int, n_neuroids: int, seed: int) -> np.ndarray:
    """(bootstrap, neuroid) neuroid indices drawn with replacement, the same for every model of a
    benchmark: seeded from the benchmark's bootstrap ``seed`` and a fixed offset, so they differ
    from (and do not correlate with) the stimulus draws of the same seed."""
    rng = np.random.default_rng([int(seed), 0x6E6575])  # "neu"
    return rng.integers(0, n_neuroids, size=(n_bootstrap, n_neuroids))


def neuroid_stimulus_samples(r: np.ndarray, index: np.ndarray, ceiling: np.ndarray | None = None,
                             *, aggregate: str = "median") -> np.ndarray:
    """Scores in a bootstrap over neuroids and stimuli.

    Parameters
    ----------
    r
        (bootstrap, neuroid) per-neuroid r in each stimulus-bootstrap sample (NaN: excluded).
    index
        (bootstrap, neuroid) neuroid index sets (:func:`neuroid_index_sets`), one per sample.
    ceiling
        (bootstrap, neuroid) per-neuroid ceiling in the same stimulus samples, for the normalised
        score (``agg(r) / agg(ceiling)`` over the drawn neuroids with finite r); None: raw.
    aggregate
        ``median`` or ``mean`` over neuroids, as the benchmark aggregates.

    Returns
    -------
    (bootstrap,) scores.
    """
    r = np.asarray(r, dtype=np.float64)
    rows = np.arange(r.shape[0])[:, None]
    rj = r[rows, index]
    score = _aggregate(rj, aggregate)
    if ceiling is None:
        return score
    c = np.asarray(ceiling, dtype=np.float64)[rows, index]
    c = np.where(np.isfinite(rj), c, np.nan)
    with np.errstate(all="ignore"):
        return score / _aggregate(c, aggregate)


# ----- which layer represents a model ---------------------------------------------------------
def chosen_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The chosen layer's row per (model, benchmark): the one best-layer rule,
    :func:`brainalign.results.choose_best` (development stimuli where the benchmark splits them)."""
    from brainalign.results.table import choose_best

    return choose_best(table)


def _sessions(t: pd.DataFrame) -> pd.Series:
    """Session per row; tables without a session column (or NaN) mean one session: ``all``."""
    if "session" not in t:
        return pd.Series("all", index=t.index)
    return t["session"].where(t["session"].notna(), "all").astype(str)


# ----- details --------------------------------------------------------------------------------
def _detail(result: ScoreResult, model: str, benchmark: str, layer: str, session: str) -> dict[str, Any]:
    """The details entry of one (model, benchmark, layer, session): the 4-tuple key of the table
    schema, else the older 3-tuple keys (``layer`` for one session, ``layer@session``)."""
    keys = [(model, benchmark, layer, session)]
    keys.append((model, benchmark, layer) if session == "all" else (model, benchmark, f"{layer}@{session}"))
    for k in keys:
        if k in result.details:
            return result.details[k]
    raise MissingBootstrapError(
        f"no details for model {model!r}, benchmark {benchmark!r}, layer {layer!r}, session "
        f"{session!r} (looked for keys {keys}): the result keeps no bootstrap samples for its chosen "
        "layer, so it cannot be compared with statistics. Re-score with this version (results saved "
        "with their details), or compare the point scores only.")


def _samples(d: dict[str, Any], score: str, where: str) -> np.ndarray:
    names = ["bootstrap_normalised"] if score == "normalised" else ["bootstrap_raw", "bootstrap"]
    for n in names:
        v = d.get(n)
        if v is not None:
            v = np.asarray(v, dtype=np.float64).ravel()
            if v.size and np.isfinite(v).any():
                return v
    raise MissingBootstrapError(f"{where}: details keep no {score} bootstrap samples (key "
                                f"{names[0]!r}; present: {sorted(d)})")


def _aggregate_of(row: pd.Series, d: dict[str, Any]) -> str:
    how = d.get("aggregate")
    if how is None:
        metric = str(row.get("metric", ""))
        how = metric.rsplit("/", 1)[-1] if "/" in metric else "median"
    return how if how in ("median", "mean") else "median"


def _check_paired(ra: pd.Series, rb: pd.Series, da: dict[str, Any], db: dict[str, Any], where: str) -> None:
    """Raise :class:`UnpairedSamplesError`, saying why, where two models' bootstrap samples were not
    drawn on the same stimuli with the same index sets."""
    pa, pb = (str(r.get("placement") or "") for r in (ra, rb))
    if pa != pb and (pa.startswith(GENERATED_PER_MODEL) or pb.startswith(GENERATED_PER_MODEL)):
        # Not a settings mismatch the user could undo: the stimuli follow each model's input.
        raise UnpairedSamplesError(
            f"{where}: {ra['model']!r} and {rb['model']!r} not compared: the benchmark generates its stimuli "
            f"per model and these two were shown different ones ({ra['model']!r}: {ra.get('n_stimuli')} stimuli, "
            f"{pa}; {rb['model']!r}: {rb.get('n_stimuli')} stimuli, {pb}), so their bootstrap samples share no "
            "stimuli and cannot be paired (models with the same input size and degrees can be compared)")
    for col in _PAIRING:
        va, vb = ra.get(col), rb.get(col)
        if va is None or vb is None or pd.isna(va) or pd.isna(vb):
            continue
        same = math.isclose(float(va), float(vb)) if isinstance(va, (int, float, np.number)) and \
            isinstance(vb, (int, float, np.number)) else str(va) == str(vb)
        if not same:
            raise UnpairedSamplesError(f"{where}: {ra['model']!r} and {rb['model']!r} not compared: they differ "
                                       f"in {col} ({va!r} vs {vb!r}), so their bootstrap samples are not "
                                       "paired; score both with the same benchmark settings and data")
    ia, ib = da.get("bootstrap_index"), db.get("bootstrap_index")
    if ia is not None and ib is not None and not np.array_equal(np.asarray(ia), np.asarray(ib)):
        raise UnpairedSamplesError(f"{where}: {ra['model']!r} and {rb['model']!r} not compared: they were "
                                   "resampled with different stimulus index sets (details 'bootstrap_index')")


# ----- the comparison -------------------------------------------------------------------------
def compare_scores(result: ScoreResult, *, score: Score = "auto", ci: float = 0.95, alpha: float = 0.05,
                   correction: Correction = "holm", models: Sequence[str] | None = None,
                   benchmarks: Sequence[str] | None = None, neuroids: bool = True) -> pd.DataFrame:
    """Every pair of models on every benchmark (and session), at their chosen layers.

    Parameters
    ----------
    result
        Scores of two or more models, with their details (bootstrap samples).
    score
        ``normalised`` (score / ceiling), ``raw``, or ``auto``: normalised where every model of the
        benchmark has a normalised score, else raw.
    ci
        Level of the CIs of the differences.
    alpha
        Level at which a corrected p marks a pair as told apart (``within_noise`` False).
    correction
        ``holm`` (default), ``bh`` or ``none``, over the pairs of one benchmark and session.
    models, benchmarks
        Restrict to these (default: all in the table).
    neuroids
        Resample neuroids too where the details keep per-neuroid samples (regression).

    Returns
    -------
    One row per pair and benchmark/session, columns :data:`COMPARE_COLUMNS`; within a benchmark the
    models are ordered by score, best first, so ``difference`` ≥ 0 reads "model_a beats model_b by".
    ``.attrs["not_compared"]`` lists the benchmarks (sessions) with a single model;
    ``.attrs["too_few_samples"]`` those whose bootstrap is too small for any corrected p to fall
    below ``alpha`` (at least ``pairs / (B + 1)`` with B samples); ``.attrs["not_paired"]`` the
    pairs (or whole benchmarks) left out because their bootstrap samples are not paired, each
    with its reason (stimuli generated per model, or different settings or data); the other
    pairs of that benchmark are compared and corrected among themselves.

    Raises
    ------
    MissingBootstrapError
        A chosen layer without bootstrap samples in ``result.details``.
    UnpairedSamplesError
        No pair of any benchmark could be paired (the message lists every reason).
    ResultsTableError
        No benchmark with at least two models.
    """
    table = result.table
    if models is not None:
        table = table[table["model"].isin(list(models))]
    if benchmarks is not None:
        table = table[table["benchmark"].isin(list(benchmarks))]
    # A benchmark at two versions (a --max-stimuli subset beside the full one) is two families,
    # each named by its version; details stay keyed on the benchmark's id.
    from brainalign.results.table import versions_apart

    table = table.assign(_label=versions_apart(table)["benchmark"])
    chosen = chosen_rows(table)
    chosen = chosen.assign(_session=_sessions(chosen))
    out: list[dict[str, Any]] = []
    alone: list[str] = []
    powerless: list[str] = []
    unpaired: list[str] = []
    for (bench, sess), fam in chosen.groupby(["_label", "_session"], sort=False):
        if fam["model"].nunique() < 2:
            alone.append(f"{bench}" + ("" if sess == "all" else f" (session {sess})")
                         + f": only {fam['model'].iloc[0]}")
            continue
        if fam["model"].duplicated().any():
            dup = sorted(set(fam.loc[fam["model"].duplicated(), "model"]))
            raise ResultsTableError(f"benchmark {bench!r}, session {sess!r}: more than one chosen row for "
                                    f"model(s) {dup}; give each scored model a distinct name")
        try:
            rows, skipped = _compare_family(result, fam, str(fam["benchmark"].iloc[0]), str(sess), score, ci,
                                            alpha, correction, neuroids)
        except UnpairedSamplesError as err:  # the family as a whole (per-neuroid samples of other shapes)
            rows, skipped = [], [str(err)]
        unpaired += skipped
        if not rows:
            continue
        out += [{**r, "benchmark": str(bench)} for r in rows]
        # The bootstrap p is at least 1/(B + 1), and Holm or BH multiply the smallest by the number of
        # pairs: with too few samples no pair can ever differ, whatever the models.
        n_boot, m = min(int(r["n_bootstrap"]) for r in rows), (len(rows) if correction != "none" else 1)
        if m / (n_boot + 1) >= alpha:
            where = f"{bench}" + ("" if sess == "all" else f" (session {sess})")
            powerless.append(f"{where}: with {n_boot} bootstrap samples and {len(rows)} pair(s) the smallest "
                             f"{'corrected ' if m > 1 else ''}p is {m / (n_boot + 1):.3g}, not below α = {alpha}: "
                             f"no pair can be told apart; score with at least {math.floor(m / alpha)} bootstrap "
                             "samples (--n-bootstrap) to test the differences")
    if not out and not len(chosen):
        raise ResultsTableError("nothing to compare: the table has no scored rows")
    if not out and unpaired:
        raise UnpairedSamplesError("no pair of models could be compared:\n  " + "\n  ".join(unpaired))
    if not out:
        per = chosen.groupby("_label")["model"].nunique().to_dict()
        raise ResultsTableError(f"nothing to compare: no benchmark has two or more models "
                                f"(models per benchmark: {per})")
    table = pd.DataFrame(out, columns=COMPARE_COLUMNS)
    table.attrs["not_compared"] = alone  # benchmarks (sessions) with one model: nothing to pair
    table.attrs["too_few_samples"] = powerless  # families whose p cannot reach α
    table.attrs["not_paired"] = unpaired  # pairs left out, each with its reason
    return table


def _compare_family(result: ScoreResult, fam: pd.DataFrame, bench: str, sess: str, score: Score, ci: float,
                    alpha: float, correction: Correction,
                    neuroids: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """The compared pairs' rows of one benchmark and session, and the reasons of the pairs left out.

    Raises
    ------
    UnpairedSamplesError
        Per-neuroid samples of different shapes: no pair of the family can be resampled alike.
    """
    details = {r["model"]: _detail(result, r["model"], bench, str(r["layer"]), sess) for _, r in fam.iterrows()}
    norm = pd.to_numeric(fam.get("normalised", pd.Series(np.nan, index=fam.index)), errors="coerce")
    use = score
    if score == "auto":  # normalised only where every model has the score and its samples
        has_samples = all(np.isfinite(np.asarray(d.get("bootstrap_normalised", np.nan), dtype=np.float64)).any()
                          for d in details.values())
        use = "normalised" if norm.notna().all() and has_samples else "raw"
    value = norm if use == "normalised" else pd.to_numeric(fam["raw"], errors="coerce")
    fam = fam.assign(_value=value.to_numpy()).sort_values("_value", ascending=False, kind="stable")

    # Regression with per-neuroid samples: one neuroid index set per sample, shared by all models.
    kept = [k for k in ("bootstrap_raw_neuroid", "bootstrap_ceiling_neuroid")[: 1 + (use == "normalised")]]
    per_neuroid = neuroids and all(d.get(k) is not None for d in details.values() for k in kept)
    samples: dict[str, np.ndarray] = {}
    units = False  # V1 properties: each model's own units resampled, not shared stimuli
    if per_neuroid:
        first = next(iter(details.values()))
        nb, nn = np.asarray(first["bootstrap_raw_neuroid"]).shape
        row0 = fam.iloc[0]
        seed = int(row0["seed"]) if "seed" in row0 and pd.notna(row0["seed"]) else 0
        index = neuroid_index_sets(nb, nn, seed)
        for _, r in fam.iterrows():
            d = details[r["model"]]
            rn = np.asarray(d["bootstrap_raw_neuroid"], dtype=np.float64)
            if rn.shape != (nb, nn):
                raise UnpairedSamplesError(f"{bench} ({sess}): not compared: per-neuroid samples of "
                                           f"{r['model']!r} have shape {rn.shape}, of {fam.iloc[0]['model']!r} "
                                           f"{(nb, nn)}")
            ceil = d["bootstrap_ceiling_neuroid"] if use == "normalised" else None
            samples[r["model"]] = neuroid_stimulus_samples(rn, index, ceil, aggregate=_aggregate_of(r, d))
        over, note = "the stimuli and of the neuroids (cells, voxels or sites)", ""
    else:
        for _, r in fam.iterrows():
            samples[r["model"]] = _samples(details[r["model"]], use,
                                           f"{r['model']!r} on {bench} ({sess}), layer {r['layer']!r}")
        regression = any(str(m).split(":")[0] in ("ridge", "pls", "regression") for m in fam.get("metric", [])) \
            or any("bootstrap_raw_neuroid" in d for d in details.values())
        over, note = "the stimuli", ""
        units = bool("placement" in fam and fam["placement"].astype(str).str.startswith(GENERATED_PER_MODEL).all())
        if units:  # V1 properties: no stimulus is resampled; each model's own units are
            over = "each model's own units (drawn apart for each model, so the pairing is by sample number only)"
        if regression:  # say why the neuroids were not resampled, in words
            note = ("the neuroids were not resampled: these results do not keep each neuroid's score in "
                    "every resample, so the CI leaves out how much the difference depends on which were "
                    "recorded" if neuroids else "the neuroids were not resampled (neuroids=False, --no-neuroids)")

    index = None if per_neuroid else _rdm_index_sets(fam, details, samples)
    rows = list(fam.iterrows())
    pairs = []
    skipped: list[str] = []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            (_, ra), (_, rb) = rows[i], rows[j]
            where = f"{bench} ({sess})"
            try:  # one unpaired pair leaves out that pair, not the benchmark's others
                _check_paired(ra, rb, details[ra["model"]], details[rb["model"]], where)
            except UnpairedSamplesError as err:
                skipped.append(str(err))
                continue
            try:
                diff = paired_difference(ra["_value"], rb["_value"], samples[ra["model"]], samples[rb["model"]],
                                         ci=ci, pair_index=index)
            except UnpairedSamplesError as err:
                skipped.append(f"{where}: {ra['model']!r} and {rb['model']!r} not compared: {err}")
                continue
            pairs.append((ra, rb, diff))
    if not pairs:
        return [], skipped
    p_adj = adjust_p([p.p for _, _, p in pairs], correction)
    k = len(pairs)
    corrected = {"holm": f"Holm correction for the {k} model pair(s) of this benchmark (keeps the chance of "
                         "any false 'differs' below alpha)",
                 "bh": f"Benjamini–Hochberg correction for the {k} model pair(s) of this benchmark (keeps "
                       "the expected share of false 'differs' below alpha)",
                 "none": f"no correction for the {k} model pair(s) of this benchmark"}[correction]
    what = "normalised score (score / noise ceiling)" if use == "normalised" else "raw score"

    def method(p: PairedDifference) -> str:
        # Plain words: what was tested, on which score, how, and which correction.
        how = (f"bootstrap: {p.n_bootstrap} resamples of {over}" if units else
               f"paired bootstrap: both models re-scored on the same {p.n_bootstrap} resamples of {over}")
        text = (f"tested whether the two models' {what} at their chosen layers differ; {how}"
                + (f"; {note}" if note else ""))
        if p.variance_factor is not None:
            text += (f"; spread scaled by {p.variance_factor:.2f} to remove the extra noise that resampling "
                     "stimuli adds to RDM comparisons")
        return f"{text}; {ci:.0%} CI of the difference; two-sided p-value; {corrected}"

    return [{"benchmark": bench, "session": sess, "model_a": ra["model"], "layer_a": ra["layer"],
             "model_b": rb["model"], "layer_b": rb["layer"], "difference": p.difference,
             "ci_low": p.ci_low, "ci_high": p.ci_high, "p": p.p, "p_corrected": float(pc),
             "within_noise": bool(not pc < alpha), "n_bootstrap": p.n_bootstrap, "method": method(p),
             "score": use}
            for (ra, rb, p), pc in zip(pairs, p_adj, strict=True)], skipped


def _rdm_index_sets(fam: pd.DataFrame, details: dict[str, dict[str, Any]],
                    samples: dict[str, np.ndarray]) -> np.ndarray | None:
    """The stimulus index sets of an RSA benchmark's bootstrap, for :func:`pair_noise_correction`:
    the details' ``bootstrap_index`` where kept, else redrawn by the one resampler
    (:func:`brainalign.metrics.stats.resample_indices`) from the rows' ``n_stimuli`` and ``seed``
    and the number of samples. None for other kinds (no pair structure) or missing settings."""
    if not all(str(m).startswith("rsa") for m in fam.get("metric", pd.Series([""]))):
        return None
    kept = [d.get("bootstrap_index") for d in details.values()]
    if all(k is not None for k in kept):
        return np.asarray(kept[0])
    row = fam.iloc[0]
    n, seed = row.get("n_stimuli"), row.get("seed")
    if n is None or seed is None or pd.isna(n) or pd.isna(seed):
        return None
    from brainalign.metrics.stats import resample_indices

    return resample_indices(int(n), len(next(iter(samples.values()))), int(seed))


# ----- a results folder -----------------------------------------------------------------------
def load_results(results_dir: str | Path) -> ScoreResult:
    """Every scored result in a results folder (tables and details), as one :class:`ScoreResult`.

    Each ``<name>.csv`` under the folder (recursively) with a results table's columns is read with
    ``ScoreResult.load`` (its ``<name>.details`` netCDF beside it); ``compare.csv`` and other CSVs
    are left alone.

    Raises
    ------
    ResultsTableError
        The folder does not exist or holds no results table.
    """
    from brainalign.results.result import ScoreResult

    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsTableError(f"results folder {root} does not exist (or is not a folder); pass the "
                                "--out folder of `brainalign score` / `brainalign batch`")
    found = []
    for csv in sorted(root.rglob("*.csv")):
        if csv.name == COMPARE_FILE or any(p.name.endswith(".details") for p in csv.parents):
            continue
        head = pd.read_csv(csv, nrows=0).columns
        if not {"model", "benchmark", "layer", "raw"} <= set(head):
            continue
        loader = getattr(ScoreResult, "load", None)  # the results package's reader (details too)
        found.append(loader(csv.parent, csv.stem) if loader is not None else ScoreResult(pd.read_csv(csv)))
    if not found:
        raise ResultsTableError(f"{root}: no results table (scores.csv from ScoreResult.save / brainalign batch)")
    return found[0] if len(found) == 1 else ScoreResult.concat(found)
