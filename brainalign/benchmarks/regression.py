"""Neural regression benchmarks: predict each neuroid from a layer (cross-validated ridge or PLS).

A benchmark may hold several recording sessions, each with its own stimuli and neurons (Cowley
et al.'s V4 sessions, Antolik et al.'s imaging regions). Every session is scored on its own and
all sessions' neuroids are pooled into an aggregate row (``session == "all"``).

Per neuroid: the held-out Pearson r of :func:`brainalign.metrics.encoding_score` (mean over the
outer folds). Per session: the median (or mean, ``metric.aggregate``) over neuroids. Ceiling:
where raw repeats exist, each neuroid's ceiling is √(Spearman–Brown split-half reliability) of its
repeats (the r a noise-free model reaches against the repeat average,
:func:`brainalign.metrics.encoding_ceiling`), aggregated the same way; normalised = raw / ceiling.
A session without repeats has no ceiling: its row carries raw r only, says so in ``ceiling_note``,
and the aggregate is normalised only when every session has a ceiling.

CIs: a bootstrap over stimuli, resampled within each outer fold's test set (so the statistic
stays the mean over folds of the per-fold r), with the ceiling recomputed on the same resampled
stimuli. Honest layer choice: every fold's test stimuli are split into development and held-out
stimuli (one seeded split), and the per-fold r on each part gives ``dev_score`` / ``heldout_score``.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from brainalign.benchmarks.base import Benchmark, bootstrap_settings, no_ceiling_note, percentile_ci
from brainalign.benchmarks.ceiling_store import store_key, stored
from brainalign.benchmarks.features import SpatialPool
from brainalign.benchmarks.schemas import RegressionSchema
from brainalign.benchmarks.selection import dev_split, selection_settings
from brainalign.data.placement import Placement
from brainalign.data.stimuli import StimulusSet
from brainalign.data.timebins import match_bins, model_time_bins, select_window, window_bins
from brainalign.errors import BenchmarkDefinitionError
from brainalign.metrics import encoding, reliability, stats
from brainalign.metrics.encoding import EncodingScore, encoding_ceiling, encoding_score, make_splits
from brainalign.metrics.reliability import spearman_brown, split_half_halves
from brainalign.metrics.stats import aggregate, masked_pearson, pearson_last, resample_indices, weighted_pearson
from brainalign.models.base import BrainModel
from brainalign.results.table import LayerScore
from brainalign.settings import ceiling_cache_dir

NO_REPEATS = "no repeat trials in the data for this session: raw r only, no ceiling, not normalised"


@dataclass
class Session:
    """One recording session: its stimuli, repeat-averaged responses and (optional) raw trials."""

    name: str
    stimuli: StimulusSet
    responses: xr.DataArray  # (stimulus, neuroid[, time_bin])
    trials: np.ndarray | None  # (neuroid, stimulus, repetition), NaN-padded, or None


def _fill(section: Any, session: str) -> Any:
    """Replace the literal ``{session}`` in string values, nested ones too (other braces are left
    for the readers' own formats)."""
    if isinstance(section, str):
        return section.replace("{session}", session)
    if isinstance(section, dict):
        return {k: _fill(v, session) for k, v in section.items()}
    if isinstance(section, list):
        return [_fill(v, session) for v in section]
    return section


_agg = aggregate  # the one summary over neuroids (brainalign.metrics.stats)


def bootstrap_within_folds(splits: list[tuple[np.ndarray, np.ndarray]], n_boot: int,
                           seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Per outer fold, ``n_boot`` resamples (with replacement) of positions in its test set, from
    one seeded stream over the folds: the same index sets for every model and layer. Returns
    (per fold: (n_boot, n_test) positions in its test set, (n_boot, n) the stimuli drawn)."""
    rng = np.random.default_rng(seed)
    ks = [resample_indices(len(te), n_boot, rng) for _, te in splits]
    return ks, np.concatenate([te[k] for (_, te), k in zip(splits, ks, strict=True)], 1)


def bootstrap_fold_r(pred: np.ndarray, y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(B, neuroid) Pearson r of predictions and responses on every bootstrap index set at once.

    ``pred``, ``y``: (neuroid, n) one fold's test predictions and responses; ``index``: (B, n)
    positions drawn by each bootstrap sample. A sample is the fold's stimuli weighted by how often
    it drew each (w = counts, B × n), so every sum Pearson r needs is one matrix product
    (w @ x): no (B × n × neuroid) gather. The r is :func:`brainalign.metrics.stats.weighted_pearson`'s,
    the definition of the point estimate (its row of ones): a side that is constant within a
    sample gives NaN in both. Pass ``pred`` without the fold's intercept
    (:attr:`EncodingScore.centred_predictions`), as the point estimate uses it. Equal to the
    per-sample loop to ~1e-12 (tests/test_stats_bootstrap.py).
    """
    n_boot, n = index.shape
    w = np.bincount((np.arange(n_boot)[:, None] * n + index).ravel(), minlength=n_boot * n)
    w = w.reshape(n_boot, n).astype(np.float64)
    return weighted_pearson(w, pred.T, y.T)


class RegressionBenchmark(Benchmark):
    """Cross-validated encoding of recorded neuroids from model layers; see the module docstring.

    YAML: ``metric`` {``model``: ridge | pls, ``cv`` (folds, default 5), ``alphas``,
    ``aggregate``: median | mean, ``max_features`` (pooling bound, default 4096)}; ``ceiling``
    {``method``: split_half | none, ``convention``: sqrt | brainscore, ``n_splits``, ``seed``,
    ``trials`` (reader section of the raw repeats)}; ``sessions`` (list of {``name``,
    ``stimuli``, ``target``, ``trials``} overriding the top-level sections, ``{session}`` in a
    string replaced by the name); ``time_bin`` {start, stop} in ms for recordings with bins.
    """

    schema = RegressionSchema
    kind_label = "a regression benchmark"
    supports_max_stimuli = True  # sessions are subset as they are read (see ``sessions``)

    def __init__(self, spec, **kwargs: Any):
        super().__init__(spec, **kwargs)
        m = spec.metric
        self.model_kind = m.get("model", "ridge")
        self.cv = int(m.get("cv", 5))
        # Each of the cv folds needs ≥ 2 test stimuli (metrics.encoding.make_splits): refuse a
        # smaller subset now, not after the data and the model have loaded.
        if self.max_stimuli is not None and self.max_stimuli < 2 * self.cv:
            raise BenchmarkDefinitionError(
                f"{spec.id}: max_stimuli={self.max_stimuli} (--max-stimuli) is too few for its "
                f"{self.cv}-fold cross-validation, which needs at least 2 test stimuli in every fold: "
                f"use --max-stimuli {2 * self.cv} or more (max_stimuli={2 * self.cv} from Python).")
        self.alphas = np.asarray(m["alphas"], float) if "alphas" in m else None
        self.aggregate = m.get("aggregate", "median")
        self.max_features = int(m.get("max_features", 4096))
        self.ceiling_method = spec.ceiling.get("method", "split_half")
        self.convention = spec.ceiling.get("convention", "sqrt")
        self.window = spec.extra.get("time_bin")

    # ----- data -------------------------------------------------------------------------------
    @cached_property
    def sessions(self) -> list[Session]:
        """Every session's stimuli, responses (in the time window) and raw trials."""
        # Without `sessions:` the benchmark is one session, whose repeats are `ceiling.trials` itself
        # (ignored before: the ceiling declared there vanished, said as "no repeat trials").
        implicit = {"name": "all", **({"trials": {}} if self.spec.ceiling.get("trials") else {})}
        listed = self.spec.extra.get("sessions") or [implicit]
        out = []
        sizes: dict[str, int] = {}  # each session's stimuli before any limit
        for item in listed:
            name = str(item["name"])
            stim_sec = _fill({**self.spec.stimuli, **item.get("stimuli", {})}, name)
            stimuli = self.read(stim_sec, name=f"{self.spec.dataset}/{name}" if len(listed) > 1
                                else self.spec.dataset)
            tgt_sec = _fill({**self.spec.target, **item.get("target", {})}, name)
            resp = self.read(tgt_sec, stimulus_ids=stimuli.ids)
            self._check_assembly(resp, stimuli, f"target {tgt_sec.get('file')}")
            trials = None
            if "repetition" in resp.dims:
                trials = resp
                resp = resp.mean("repetition", skipna=True, keep_attrs=True)
            if "trials" in item:
                tri_sec = _fill({**(self.spec.ceiling.get("trials") or {}), **item["trials"]}, name)
                trials = self.read(tri_sec, stimulus_ids=stimuli.ids)
                self._check_assembly(trials, stimuli, f"trials {tri_sec.get('file')}")
            self._refuse_constant(resp, f"target {tgt_sec.get('file')}")
            sizes[name] = len(stimuli)
            if self.max_stimuli is not None and len(stimuli) > self.max_stimuli:
                keep = np.sort(np.random.default_rng(0).choice(len(stimuli), self.max_stimuli, replace=False))
                stimuli = stimuli.subset(keep)
                resp = resp.isel(stimulus=keep)
                trials = None if trials is None else trials.isel(stimulus=keep)
            if trials is not None:
                trials = select_window(trials, self.window).transpose("neuroid", "stimulus", "repetition").values
            out.append(Session(name, stimuli, resp, trials))
        self._full_sizes = sizes
        if self.max_stimuli is not None and self.max_stimuli >= max(sizes.values()):
            warnings.warn(f"{self.id}: max_stimuli={self.max_stimuli} (--max-stimuli) is at or above every "
                          f"session's number of stimuli ({', '.join(f'{k}: {v}' for k, v in sizes.items())}): "
                          "the full benchmark is scored and recorded as such", UserWarning, stacklevel=2)
        return out

    def subset_applied(self) -> bool:
        # A limit that cuts no session leaves the full data: labelled (and paired with full runs) so.
        return self.max_stimuli is not None and any(n > self.max_stimuli for n in self._session_sizes().values())

    def _session_sizes(self) -> dict[str, int]:
        _ = self.sessions  # read once (cached); records each session's size before the limit
        return self._full_sizes

    def _refuse_constant(self, resp: xr.DataArray, where: str) -> None:
        """Refuse responses that are the same for every stimulus in every neuroid: no model can
        be scored against them (each neuroid's r is undefined), which used to end in NaN rows."""
        values = resp.transpose("stimulus", ...).values.reshape(resp.sizes["stimulus"], -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            spread = np.nanmax(values, 0) - np.nanmin(values, 0)
        if not (spread > 0).any():
            from brainalign.errors import DataFaultError

            raise DataFaultError(f"{self.id}: {where}: every neuroid responds identically to every stimulus "
                                 f"({resp.sizes['neuroid']} neuroids, {resp.sizes['stimulus']} stimuli): "
                                 "nothing to predict (a constant or wrongly exported response file?)")

    def _check_assembly(self, da: xr.DataArray, stimuli: StimulusSet, where: str) -> None:
        if not isinstance(da, xr.DataArray) or "stimulus" not in da.dims or "neuroid" not in da.dims:
            raise BenchmarkDefinitionError(f"{self.spec.path}: {where} is not a (stimulus × neuroid) assembly")
        ids = [str(s) for s in da["stimulus_id"].values]
        if ids != list(stimuli.ids):
            bad = next(i for i, (a, b) in enumerate(zip(ids, stimuli.ids, strict=False)) if a != b) \
                if len(ids) == len(stimuli) else min(len(ids), len(stimuli))
            from brainalign.errors import StimulusError

            raise StimulusError(f"{self.id}: stimulus ids of {where} do not match the stimuli at position "
                                f"{bad} ({len(ids)} vs {len(stimuli)} stimuli)")

    @cached_property
    def stimuli(self) -> StimulusSet:  # type: ignore[override]
        """The stimuli of the first session (all sessions: :attr:`sessions`)."""
        return self.sessions[0].stimuli

    # ----- ceiling ------------------------------------------------------------------------------
    @cached_property
    def _halves_cache(self) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
        c = self.spec.ceiling
        return {s.name: None if self.ceiling_method == "none" or s.trials is None else
                split_half_halves(s.trials, int(c.get("n_splits", 10)), int(c.get("seed", 0)))
                for s in self.sessions}

    def _halves(self, s: Session) -> tuple[np.ndarray, np.ndarray] | None:
        """Half-averages (split, neuroid, stimulus) of the session's repeats, or None."""
        return self._halves_cache[s.name]

    def _ceiling_from(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Per-neuroid ceiling from half-averages (..., split, neuroid, stimulus)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rel = spearman_brown(np.nanmean(masked_pearson(A, B), axis=-2))
        return np.nan_to_num(encoding_ceiling(rel, self.convention), nan=0.0)

    # ----- scoring ------------------------------------------------------------------------------
    def _neural(self, s: Session, features: xr.DataArray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(X, Y) pairs to fit: one for a model without time steps (responses averaged over the
        window), else one per neural bin in the window with the model step that overlaps it most."""
        resp = s.responses
        if "time_bin" in features.dims:
            if "time_bin" not in resp.dims:
                raise BenchmarkDefinitionError(f"{self.id}: the model has time steps but the recording has none")
            bins = window_bins(resp, self.window)
            nb = np.stack([resp["time_bin_start"].values, resp["time_bin_stop"].values], 1)[bins]
            pick = match_bins(model_time_bins(features), nb)
            return [(features.isel(time_bin=int(m)).transpose("stimulus", ...).values,
                     resp.isel(time_bin=int(b)).transpose("stimulus", "neuroid").values)
                    for b, m in zip(bins, pick, strict=True)]
        resp = select_window(resp, self.window)
        return [(features.transpose("stimulus", ...).values.reshape(len(s.stimuli), -1),
                 resp.transpose("stimulus", "neuroid").values)]

    def _encode(self, X: np.ndarray, Y: np.ndarray) -> EncodingScore:
        m = self.spec.metric
        kw: dict[str, Any] = {"model": self.model_kind, "cv": self.cv, "seed": int(m.get("seed", 0))}
        if self.alphas is not None:
            kw["alphas"] = self.alphas
        if "n_components" in m:
            kw["n_components"] = int(m["n_components"])
        if "inner_cv" in m:
            kw["inner_cv"] = m["inner_cv"]
        if "dtype" in m:
            kw["dtype"] = m["dtype"]
        return encoding_score(X, Y, **kw)

    def score_session(self, s: Session, features: xr.DataArray) -> dict[str, Any]:
        """Per-neuroid r, bootstrap, dev / held-out r of one session for one layer's features.

        ``features``: (stimulus × unit) or (stimulus × unit × time_bin) with ``time_bin_start`` /
        ``time_bin_stop`` coordinates (a model with time steps).
        """
        n_boot, _, bseed = bootstrap_settings(self.spec, self.n_bootstrap)
        fraction, sseed = selection_settings(self.spec.statistics)
        split = dev_split(len(s.stimuli), fraction=fraction, seed=sseed)
        is_dev = np.zeros(len(s.stimuli), bool)
        is_dev[list(split.dev)] = True
        per_bin = []
        for X, Y in self._neural(s, features):
            enc = self._encode(X, Y)
            boot, dev, held = [], [], []
            ks, drawn = bootstrap_within_folds(enc.splits, n_boot, bseed)
            for (_, te), pred, k in zip(enc.splits, enc.centred_predictions, ks, strict=True):
                y = Y[te].T  # (neuroid, n_te)
                p = pred.T
                boot.append(bootstrap_fold_r(p, y, k))  # (B, neuroid)
                d = is_dev[te]
                dev.append(pearson_last(p[:, d], y[:, d]) if d.sum() >= 3 else np.full(len(y), np.nan))
                held.append(pearson_last(p[:, ~d], y[:, ~d]) if (~d).sum() >= 3 else np.full(len(y), np.nan))
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    per_bin.append({"enc": enc, "r": enc.r, "boot": np.nanmean(np.stack(boot), 0),
                                    "dev": np.nanmean(np.stack(dev), 0), "held": np.nanmean(np.stack(held), 0),
                                    "idx": drawn})
        out = {k: np.mean([b[k] for b in per_bin], 0) for k in ("r", "boot", "dev", "held")}
        out["excluded"] = np.any([b["enc"].excluded for b in per_bin], 0)
        for k in ("r", "boot", "dev", "held"):
            out[k] = np.where(out["excluded"], np.nan, out[k])
        out["encodings"] = [b["enc"] for b in per_bin]
        out["boot_idx"] = per_bin[0]["idx"]
        out["split"] = split
        out["is_dev"] = is_dev
        return out

    @cached_property
    def _ceilings(self) -> dict[str, dict[str, np.ndarray] | None]:
        """Per session: per-neuroid ceiling on all, dev and held-out stimuli (None: no repeats)."""
        out: dict[str, dict[str, np.ndarray] | None] = {}
        fraction, sseed = selection_settings(self.spec.statistics)
        for s in self.sessions:
            h = self._halves(s)
            if h is None:
                out[s.name] = None
                continue
            A, B = h
            split = dev_split(len(s.stimuli), fraction=fraction, seed=sseed)
            out[s.name] = {"all": self._ceiling_from(A, B),
                           "dev": self._ceiling_from(A[..., list(split.dev)], B[..., list(split.dev)]),
                           "held": self._ceiling_from(A[..., list(split.heldout)], B[..., list(split.heldout)])}
        return out

    @cached_property
    def _ceiling_boot_cache(self) -> dict[tuple[str, str], np.ndarray]:
        return {}

    def prepare(self) -> None:
        """Per session: the split-half ceilings and the ceilings on the bootstrap's resampled
        stimuli (the index sets depend only on the seeded folds, not on the model), so the first
        layer's scoring does not wait for them."""
        _ = self._ceilings
        n_boot, _, bseed = bootstrap_settings(self.spec, self.n_bootstrap)
        seed = int(self.spec.metric.get("seed", 0))
        for s in self.sessions:
            if self._halves(s) is None:
                continue
            splits, _ = make_splits(len(s.stimuli), self.cv, seed=seed)
            self._ceiling_boot(s, bootstrap_within_folds(splits, n_boot, bseed)[1])

    def _ceiling_boot(self, s: Session, idx: np.ndarray) -> np.ndarray | None:
        """(B, neuroid) ceilings on the bootstrap's resampled stimuli (same samples as the scores).

        The resampled index sets are the same for every layer (seeded, drawn within the same
        folds), so the ceilings are computed once per session and index set, not once per layer
        (they were 82 % of the metric time of a Cowley run, ``perf/PROFILE.md``)."""
        h = self._halves(s)
        if h is None:
            return None
        key = (s.name, hashlib.sha256(np.ascontiguousarray(idx)).hexdigest())
        if key not in self._ceiling_boot_cache:
            A, B = h

            def compute() -> dict[str, np.ndarray]:
                out = []
                for start in range(0, len(idx), 20):
                    ii = idx[start:start + 20]
                    out.append(self._ceiling_from(A[:, :, ii].transpose(2, 0, 1, 3),
                                                  B[:, :, ii].transpose(2, 0, 1, 3)))
                return {"ceilings": np.concatenate(out, 0)}

            # Across runs (any model): the ceiling store, keyed by the halves and index sets.
            skey = store_key("split_half_bootstrap", {"convention": self.convention},
                             {"halves_a": A, "halves_b": B, "idx": idx},
                             code=(sys.modules[__name__], encoding, reliability, stats))
            got = stored(ceiling_cache_dir(), skey, {"ceilings": (idx.shape[0], A.shape[-2])}, compute)
            self._ceiling_boot_cache[key] = got["ceilings"]
        return self._ceiling_boot_cache[key]

    def _row_stats(self, parts: list[tuple[Session, dict[str, Any], np.ndarray | None]]) -> dict[str, Any]:
        """Raw / ceiling / normalised with CIs over the pooled neuroids of ``parts``."""
        _, level, _ = bootstrap_settings(self.spec, self.n_bootstrap)
        agg = self.aggregate
        r = np.concatenate([p["r"] for _, p, _ in parts])
        boot = np.concatenate([p["boot"] for _, p, _ in parts], 1)
        raw = float(_agg(r, agg))
        out: dict[str, Any] = {"raw": raw, "n_neuroids": int(np.isfinite(r).sum())}
        out["bootstrap_raw"] = _agg(boot, agg)
        out["raw_ci_low"], out["raw_ci_high"] = percentile_ci(out["bootstrap_raw"], level)
        ceil = [self._ceilings[s.name] for s, _, _ in parts]
        dev = np.concatenate([p["dev"] for _, p, _ in parts])
        held = np.concatenate([p["held"] for _, p, _ in parts])
        if any(c is None for c in ceil):
            out.update(ceiling_upper=np.nan, ceiling_lower=np.nan, normalised=np.nan, normalised_ci_low=np.nan,
                       normalised_ci_high=np.nan, bootstrap_normalised=np.full(len(boot), np.nan),
                       dev_score=float(_agg(dev, agg)), heldout_score=float(_agg(held, agg)))
            missing = [s.name for (s, _, _), c in zip(parts, ceil, strict=True) if c is None]
            if self.ceiling_method == "none":  # the benchmark's choice, not the data's lack of repeats
                out["ceiling_note"] = no_ceiling_note(self.spec)
            elif len(parts) == 1:
                out["ceiling_note"] = NO_REPEATS
            else:
                out["ceiling_note"] = (
                    f"not normalised: sessions {', '.join(missing)} have no repeat trials in the data, so "
                    f"no ceiling; their rows are raw r only and the aggregate is the raw {agg} r over all "
                    "neuroids")
            return out
        mask = np.isfinite(r)
        c_all = np.concatenate([c["all"] for c in ceil])
        c_all = np.where(mask, c_all, np.nan)
        ceiling = float(_agg(c_all, agg))
        cb = np.concatenate([cb for _, _, cb in parts], 1)
        cb = np.where(mask[None], cb, np.nan)
        with np.errstate(all="ignore"):
            ratio = _agg(boot, agg) / _agg(cb, agg)
        out.update(ceiling_upper=ceiling, ceiling_lower=np.nan,
                   normalised=raw / ceiling if ceiling > 0 else np.nan)
        out["bootstrap_normalised"] = ratio
        out["normalised_ci_low"], out["normalised_ci_high"] = percentile_ci(ratio, level)
        c_dev = np.concatenate([c["dev"] for c in ceil])
        c_held = np.concatenate([c["held"] for c in ceil])
        with np.errstate(all="ignore"):
            out["dev_score"] = float(_agg(dev, agg) / _agg(np.where(mask, c_dev, np.nan), agg))
            out["heldout_score"] = float(_agg(held, agg) / _agg(np.where(mask, c_held, np.nan), agg))
        out["ceiling_note"] = ""
        return out

    def score_features(self, features: dict[str, xr.DataArray]) -> dict[str, dict[str, Any]]:
        """Rows' statistics for one layer: ``features`` maps session name → (stimulus × unit) array.

        Returns session name (and ``"all"`` for several sessions) → statistics.
        """
        parts = []
        for s in self.sessions:
            f = features[s.name]
            got = [str(x) for x in f["stimulus_id"].values]
            if got != list(s.stimuli.ids):
                from brainalign.errors import StimulusError

                raise StimulusError(f"{self.id}: features for session {s.name} are not in the order of its "
                                    f"stimuli (first: {got[:1]} vs {list(s.stimuli.ids[:1])})")
            p = self.score_session(s, f)
            parts.append((s, p, self._ceiling_boot(s, p["boot_idx"])))
        rows = {s.name: {**self._row_stats([(s, p, cb)]), "detail": p} for s, p, cb in parts}
        if len(parts) > 1:
            rows["all"] = {**self._row_stats(parts), "detail": None}
        return rows

    def _more_scores(self, layer: str, features: dict[str, xr.DataArray],
                     stats: dict[str, dict[str, Any]]) -> list[LayerScore]:
        """Rows a subclass adds per layer (the fMRI kind: per-ROI scores)."""
        return []

    # ----- the run (template: Benchmark.__call__) ---------------------------------------------
    @cached_property
    def _session_slices(self) -> dict[str, slice]:
        """Each session's positions in the union of the sessions' stimuli (see :meth:`recording`)."""
        out, start = {}, 0
        for s in self.sessions:
            out[s.name] = slice(start, start + len(s.stimuli))
            start += len(s.stimuli)
        return out

    def recording(self, model: BrainModel) -> tuple[StimulusSet, Placement]:
        """Every session's stimuli, each placed in the model's field of view, as ONE stimulus set
        (ids ``<session>/<stimulus id>`` when there are several sessions).

        One stream over the union rather than one per session: each layer's aggregate row
        pools every session's neuroids, so scoring a layer needs that layer's features for all
        sessions at once. With one stream the memory plan sees the true size (all stimuli ×
        features), the activation cache keys one entry per layer, there is one forward pass per
        layer group, and per-session streams would have to hold every layer of the earlier
        sessions until the last session arrived.
        """
        placed = [self.place(model, s.stimuli) for s in self.sessions]
        if len(placed) == 1:
            return placed[0]
        union = StimulusSet(f"{self.spec.dataset}:sessions", self._union_ids,
                            _Concat(tuple(st.images for st, _ in placed)),
                            visual_degrees=placed[0][0].visual_degrees)
        return union, placed[0][1]

    @cached_property
    def _union_ids(self) -> tuple[str, ...]:
        """The ids of :meth:`recording`'s stimuli: one session's own, else ``<session>/<id>``."""
        if len(self.sessions) == 1:
            return tuple(self.sessions[0].stimuli.ids)
        return tuple(f"{s.name}/{i}" for s in self.sessions for i in s.stimuli.ids)

    def stimulus_order(self, ids: Sequence[str] | None) -> Sequence[str]:
        """Every session's stimuli, in the order and with the ids of :meth:`recording`."""
        return self._union_ids

    def default_reducers(self, model: BrainModel) -> SpatialPool:
        """Spatial average pooling to the YAML's ``metric.max_features`` (default 4096)."""
        return SpatialPool(self.max_features)

    def score_layer(self, layer: str, activations: xr.DataArray) -> list[LayerScore]:
        """Encode every session's neuroids from the layer; one row per session, an aggregate row
        (``session == "all"``) over all sessions' neuroids when there are several."""
        features = {}
        for s in self.sessions:
            f = activations.isel(stimulus=self._session_slices[s.name])
            features[s.name] = f.assign_coords(stimulus_id=("stimulus", list(s.stimuli.ids)))
        stats = self.score_features(features)
        out = []
        for sess, st in stats.items():
            n_stim = sum(len(s.stimuli) for s in self.sessions) if sess == "all" else \
                len(next(s for s in self.sessions if s.name == sess).stimuli)
            det: dict[str, Any] = {"bootstrap_raw": st["bootstrap_raw"],
                                   "bootstrap_normalised": st["bootstrap_normalised"]}
            if st["detail"] is not None:
                d = st["detail"]
                sess_obj = next(x for x in self.sessions if x.name == sess)
                enc = d["encodings"][0]
                test_fold = np.full(len(sess_obj.stimuli), -1)
                for f, (_, te) in enumerate(enc.splits):
                    test_fold[te] = f
                det.update(r=d["r"], excluded=d["excluded"], alphas=[e.alphas for e in d["encodings"]],
                           splits=enc.splits, test_fold=test_fold,
                           r_folds=np.stack([e.r_folds for e in d["encodings"]]),
                           neuroid_id=np.asarray(sess_obj.responses["neuroid_id"].values).astype(str),
                           stimulus_id=np.asarray(sess_obj.stimuli.ids).astype(str))
                if self._ceilings[sess] is not None:
                    det["ceiling"] = self._ceilings[sess]["all"]
            out.append(LayerScore(
                metric=f"{self.model_kind}:pearson/{self.aggregate}", session=sess, n_stimuli=n_stim,
                **{k: st[k] for k in ("raw", "raw_ci_low", "raw_ci_high", "ceiling_upper", "ceiling_lower",
                                      "normalised", "normalised_ci_low", "normalised_ci_high",
                                      "dev_score", "heldout_score", "n_neuroids", "ceiling_note")},
                details=det))
        return out + self._more_scores(layer, features, stats)

    def run_meta(self) -> dict[str, Any]:
        fraction, sseed = selection_settings(self.spec.statistics)
        meta = {"regression": {"model": self.model_kind, "cv": self.cv, "aggregate": self.aggregate,
                               "alphas": None if self.alphas is None else self.alphas.tolist(),
                               "features": SpatialPool(self.max_features).describe()},
                "ceiling_method": self.ceiling_method, "ceiling_convention": self.convention,
                "sessions": {s.name: {"n_stimuli": len(s.stimuli), "n_neuroids": s.responses.sizes["neuroid"],
                                      "repeats": s.trials is not None} for s in self.sessions},
                "max_stimuli": self.max_stimuli, "time_bin": self.window,
                "layer_selection": {"unit": "stimulus, within each outer fold's test set",
                                    "dev_fraction": fraction, "seed": sseed},
                "normalised": "raw / ceiling; ceiling = aggregate over neuroids of "
                              f"{'sqrt(' if self.convention == 'sqrt' else '('}Spearman-Brown split-half "
                              "reliability of the raw repeats); sessions without repeats: not normalised"}
        meta.update(self._more_meta())
        return meta

    def _more_meta(self) -> dict[str, Any]:
        return {}


class _Concat:
    """Several image sources read as one sequence (the union of sessions' stimuli)."""

    def __init__(self, parts: tuple[Any, ...]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        return self.parts[k][i - int(self.starts[k])]
