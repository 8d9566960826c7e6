"""Every registered benchmark kind × every way of running it gives the same table.

Paths: ``score``; ``batch``; ``batch`` killed after its first pair and ``--resume``d; a second run
served from the activation cache; a memory budget that forces more than one forward pass. Plus a
kind defined only here (the README recipe: one ``score_layer``, one line in ``KINDS``).
"""

from __future__ import annotations

import shutil
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

import brainalign as ba
from brainalign.benchmarks import KINDS
from brainalign.benchmarks.base import Benchmark
from brainalign.benchmarks.schemas import RSASchema
from brainalign.errors import BenchmarkDefinitionError
from brainalign.results import COLUMNS, LayerScore
from brainalign.runner.batch import ModelEntry, run_batch
from tests.conftest import needs_data

pytestmark = [needs_data, pytest.mark.usefixtures("one_torch_thread")]

MODELS = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=("0", "2"))
          for s in (0, 1)]
# Columns that legitimately differ between runs: none of the scores; only timing-free provenance.
SAME = [c for c in COLUMNS if c != "versions"]


class MeanActivationSchema(RSASchema):
    """Its YAML has the RSA kind's sections (the subjects' RDMs as target), under its own kind."""

    kind: Literal["mean_activation"]


class MeanActivationBenchmark(Benchmark):
    """The README recipe: a kind scoring how well a layer's mean activation per stimulus follows
    the subjects' mean dissimilarity of that stimulus (a toy comparison; one row per layer)."""

    schema = MeanActivationSchema

    @cached_property
    def target(self) -> np.ndarray:
        """Per stimulus: its mean dissimilarity to the others, averaged over subjects."""
        return KINDS["rsa"](self.spec, data_dir=self.data_dir).subject_rdms.values.mean(axis=(0, 2))

    def score_layer(self, layer: str, activations: xr.DataArray) -> list[LayerScore]:
        from brainalign.metrics.stats import percentile_ci, resample_indices

        x, y = activations.values.mean(axis=1), self.target
        idx = resample_indices(len(x), 20, seed=0)
        boot = np.array([np.corrcoef(x[i], y[i])[0, 1] for i in idx])
        lo, hi = percentile_ci(boot, 0.95)
        return [LayerScore(raw=float(np.corrcoef(x, y)[0, 1]), metric="mean-activation r",
                           raw_ci_low=lo, raw_ci_high=hi, n_stimuli=len(x),
                           selection="all stimuli (in-sample): a toy kind",
                           details={"bootstrap_raw": boot})]


@pytest.fixture(scope="module")
def kinds_setup(tmp_path_factory, data_dir):
    """(benchmark ref, load options, data dirs) per kind, small settings."""
    tmp = tmp_path_factory.mktemp("matrix")
    bdir = tmp / "benchmarks"
    bdir.mkdir()
    hit = yaml.safe_load((ba.benchmarks.spec.benchmark_paths()["kriegeskorte2008.hIT-rsa"]).read_text())
    hit.update(id="toy.hIT-mean", kind="mean_activation")
    (bdir / "toy.hIT-mean.yaml").write_text(yaml.safe_dump(hit))
    sim = yaml.safe_load((ba.benchmarks.spec.benchmark_paths()["simulated.V1-ridge"]).read_text())
    sim["stimuli"].update(n_cells=6, n_stimuli=40, n_repeats=4, input_size=32)
    sim["id"] = "simulated.V1small-ridge"
    (bdir / "simulated.V1small-ridge.yaml").write_text(yaml.safe_dump(sim))
    from tests.test_benchmarks_fmri import _write_dataset

    acts = np.random.default_rng(0).normal(size=(92, 5))
    (tmp / "fmri").mkdir()
    (mdir, fdir), _ = _write_dataset(tmp / "fmri", acts)
    opts = {"n_bootstrap": 20}
    return {
        "rsa": ("kriegeskorte2008.hIT-rsa", opts, [data_dir]),
        "regression": ("antolik2016.V1-ridge", {**opts, "max_stimuli": 40}, [data_dir]),
        "fmri": (str(fdir / "synthfmri.ROI-fmri.yaml"), {**opts, "manifest_dirs": [str(mdir)]},
                 [tmp / "fmri", data_dir]),
        "v1_properties": ("marques2020.V1-peak_sf", opts, [data_dir]),
        "simulated_v1": (str(bdir / "simulated.V1small-ridge.yaml"), opts, [data_dir]),
        "mean_activation": (str(bdir / "toy.hIT-mean.yaml"), opts, [data_dir]),
    }


@pytest.fixture(autouse=True)
def _register_toy_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "mean_activation", MeanActivationBenchmark)


def _norm(t: pd.DataFrame) -> pd.DataFrame:
    t = t[SAME].sort_values(["model", "layer", "session", "metric"]).reset_index(drop=True)
    return t.astype({c: str for c in ("benchmark_version", "reduction", "placement", "ceiling_note")})


def _batch(ref, opts, dirs, out, **kw):
    return run_batch(MODELS, [ref], out, data_dir=dirs, benchmark_options=opts, progress=_Quiet(), **kw)


class _Quiet:
    def note(self, *a): ...
    def start(self, *a): ...
    def pair_started(self, *a): ...
    def layer_done(self, *a): ...
    def pair_done(self, *a): ...
    def close(self, kept=0): return ""


@pytest.mark.parametrize("kind", ["rsa", "regression", "fmri", "v1_properties", "simulated_v1", "mean_activation"])
def test_every_path_gives_the_same_table(kind, kinds_setup, tmp_path):
    ref, opts, dirs = kinds_setup[kind]
    bench = ba.load_benchmark(ref, data_dir=dirs, **opts)
    assert type(bench) is KINDS[kind]
    direct = ScoreTable = pd.concat(
        [ba.score(m.load(), bench, layers=list(m.layers)).table for m in MODELS], ignore_index=True)
    assert list(ScoreTable.columns) == COLUMNS and ScoreTable["raw"].notna().all()
    assert ScoreTable.groupby("model")["selected"].sum().eq(1).all()
    want = _norm(direct)

    rep = _batch(ref, opts, dirs, tmp_path / "batch")
    assert rep.ok, rep.failures
    pd.testing.assert_frame_equal(_norm(rep.table), want)

    # killed after the first pair: its pair file survives, the second pair's does not
    out = tmp_path / "batch"
    pairs = sorted((out / "pairs").glob("*.parquet"))
    pairs[-1].unlink()
    resumed = _batch(ref, opts, dirs, out, resume=True)
    assert len(resumed.skipped) == 1 and len(resumed.scored) == 1
    pd.testing.assert_frame_equal(_norm(resumed.table), want)

    cache = tmp_path / "cache"
    first = _batch(ref, opts, dirs, tmp_path / "c1", cache_dir=cache)
    written = {f: f.stat().st_mtime_ns for f in cache.rglob("*.json")}
    # every kind records through the cached stream: one entry per (model, layer)
    assert len(written) == len(MODELS) * len(MODELS[0].layers), sorted(written)
    second = _batch(ref, opts, dirs, tmp_path / "c2", cache_dir=cache)
    assert {f: f.stat().st_mtime_ns for f in cache.rglob("*.json")} == written  # served, not rewritten
    pd.testing.assert_frame_equal(_norm(first.table), want)
    pd.testing.assert_frame_equal(_norm(second.table), want)

    budget = _batch(ref, opts, dirs, tmp_path / "budget", memory_budget=_one_layer_budget(bench, ref, dirs))
    pd.testing.assert_frame_equal(_norm(budget.table), want)
    shutil.rmtree(tmp_path, ignore_errors=True)


def _one_layer_budget(bench, ref, dirs) -> int:
    """A budget that fits the largest layer alone but not both: more than one forward pass."""
    from brainalign.activations.budget import plan_memory

    model = MODELS[0].load()
    stimuli, _ = bench.recording(model)
    red = bench.default_reducers(model)
    plan = plan_memory(model, list(MODELS[0].layers), len(stimuli), reducers=red)
    sizes = plan.layer_bytes.values()
    budget = 5 * max(sizes) + min(sizes) // 2  # the largest layer and its scoring fit, both do not
    assert len(plan_memory(model, list(MODELS[0].layers), len(stimuli), reducers=red,
                           budget=budget).groups) > 1
    return budget


@pytest.mark.parametrize("kind", ["rsa", "regression", "fmri", "v1_properties", "simulated_v1", "mean_activation"])
def test_a_stimulus_limit_is_honoured_or_refused_never_ignored(kind, kinds_setup):
    """From Python as on the command line: a kind that cannot limit its stimuli refuses
    ``max_stimuli`` by name; one that can records it in the version of every row."""
    ref, opts, dirs = kinds_setup[kind]
    opts = {k: v for k, v in opts.items() if k != "max_stimuli"}
    if KINDS[kind].supports_max_stimuli:
        bench = ba.load_benchmark(ref, data_dir=dirs, max_stimuli=10, **opts)
        assert bench.version_label.endswith("+max_stimuli=10")
    else:
        with pytest.raises(BenchmarkDefinitionError, match=r"max_stimuli=10 .*only honoured by regression") as err:
            ba.load_benchmark(ref, data_dir=dirs, max_stimuli=10, **opts)
        # Said in the user's words, with the way to go on; never a Python class name.
        msg = str(err.value)
        assert f"this one is {KINDS[kind].kind_label}" in msg and KINDS[kind].__name__ not in msg
        assert "Benchmark" not in msg and "in a separate run without --max-stimuli" in msg
    for bad in (0, -3, 2.5, True):  # never "0 stimuli", whatever the kind
        with pytest.raises(BenchmarkDefinitionError, match=r"must be a whole number of stimuli, at least 1"):
            ba.load_benchmark(ref, data_dir=dirs, max_stimuli=bad, **opts)
        # nor 0 bootstrap samples: refused at load by the user's name for it, not by a metric's
        # internal class mid-run (RSABootstrap: n_boot must be ≥ 1)
        with pytest.raises(BenchmarkDefinitionError, match=r"n_bootstrap=.* must be a whole number of bootstrap"):
            ba.load_benchmark(ref, data_dir=dirs, **{**opts, "n_bootstrap": bad})
    assert ba.load_benchmark(ref, data_dir=dirs, **opts).max_stimuli is None


@pytest.mark.parametrize("kind", ["rsa", "fmri", "v1_properties", "simulated_v1"])
def test_every_built_in_kind_has_a_user_word_for_itself(kind):
    label = KINDS[kind].kind_label
    assert label.startswith(("a ", "an ")) and label.endswith("benchmark") and "Benchmark" not in label


def _blas_threads() -> list[int]:
    """Thread counts of the BLAS libraries with their own pool (numpy's OpenBLAS here)."""
    from threadpoolctl import ThreadpoolController

    return [lib.num_threads for lib in ThreadpoolController().lib_controllers
            if lib.internal_api in ("openblas", "blis")]


@pytest.mark.parametrize("kind", ["rsa", "regression", "fmri", "v1_properties", "simulated_v1", "mean_activation"])
def test_numpy_blas_runs_one_thread_while_a_cpu_run_scores(kind, kinds_setup, monkeypatch):
    """Every kind: while a run on the CPU prepares and scores, numpy's own BLAS runs one thread
    (a second pool beside torch's took the cores from it: activations.blas); the setting is
    restored after the run, and the table is the same as without the limit, to the last bit."""
    import contextlib

    from threadpoolctl import threadpool_limits

    import brainalign.benchmarks.base as base

    ref, opts, dirs = kinds_setup[kind]
    seen: dict[str, list[list[int]]] = {"prepare": [], "score_layer": []}
    cls = KINDS[kind]
    score_layer, prepare = cls.score_layer, cls._prepare_then_trim

    def spy_score(self, *a, **k):
        seen["score_layer"].append(_blas_threads())
        return score_layer(self, *a, **k)

    def spy_prepare(self):
        seen["prepare"].append(_blas_threads())
        return prepare(self)

    monkeypatch.setattr(cls, "score_layer", spy_score)
    monkeypatch.setattr(cls, "_prepare_then_trim", spy_prepare)
    model = MODELS[0].load()
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() and set(_blas_threads()) == {2}
        bench = ba.load_benchmark(ref, data_dir=dirs, **opts)
        limited = ba.score(model, bench, layers=list(MODELS[0].layers), device="cpu").table
        assert set(_blas_threads()) == {2}  # restored
    assert seen["score_layer"] and all(set(t) == {1} for t in seen["score_layer"])
    assert len(seen["prepare"]) == 1 and set(seen["prepare"][0]) == {1}
    monkeypatch.setattr(base, "numpy_blas_one_thread", lambda device="cpu": contextlib.nullcontext())
    with threadpool_limits(2, user_api="blas"):
        free = ba.score(model, ba.load_benchmark(ref, data_dir=dirs, **opts), layers=list(MODELS[0].layers),
                        device="cpu").table
    assert set(seen["score_layer"][-1]) == {2}  # the comparison run did use two threads
    pd.testing.assert_frame_equal(_norm(limited), _norm(free), check_exact=True)


_OVERLAP = """
import threading
from threadpoolctl import ThreadpoolController
from brainalign.activations.blas import numpy_blas_one_thread

def blas():
    return sorted({lib.num_threads for lib in ThreadpoolController().lib_controllers
                   if lib.internal_api in ("openblas", "blis")})

first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
seen = {"before": blas()}

def first():
    with numpy_blas_one_thread():
        first_in.set()
        second_in.wait(5)
    first_out.set()

def second():
    first_in.wait(5)
    with numpy_blas_one_thread():
        second_in.set()
        first_out.wait(5)
        seen["after the first pair ended"] = blas()

with numpy_blas_one_thread():  # run_batch, on the caller's thread
    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    seen["after both pairs"] = blas()
seen["after the run"] = blas()
import torch
torch.cuda.is_available = lambda: True  # as on a GPU machine (the device is checked before the block)
with numpy_blas_one_thread("cuda"):  # a run on a GPU: no limit
    seen["inactive"] = blas()
print(seen)
"""


def test_the_blas_limit_is_lifted_when_the_last_overlapping_run_ends():
    """A batch run: its pairs on two worker threads, overlapping, inside the run's own limit on
    the caller's thread. The pair that ends first must not give numpy two threads under the
    other; the run's end restores them. In a fresh process with two BLAS threads (the test
    process's earlier settings would leak in)."""
    import ast
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", _OVERLAP], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    seen = ast.literal_eval(out.strip().splitlines()[-1])
    assert seen == {"before": [2], "after the first pair ended": [1], "after both pairs": [1],
                    "after the run": [2], "inactive": [2]}


def _numbers(scores: list[LayerScore]) -> list[np.ndarray]:
    """Every number of a layer's rows: the statistics and the bootstrap samples."""
    out = []
    for s in scores:
        out.append(np.array([getattr(s, k) for k in ("raw", "raw_ci_low", "raw_ci_high", "ceiling_upper",
                                                      "normalised", "dev_score", "heldout_score")], float))
        out += [np.asarray(s.details.get(k, np.nan), float) for k in ("bootstrap_raw", "bootstrap_normalised")]
    return out


@pytest.mark.parametrize("kind", ["rsa", "regression", "fmri", "v1_properties", "simulated_v1", "mean_activation"])
def test_score_layer_reads_the_stimulus_ids_of_the_activations_it_is_given(kind, kinds_setup):
    """``bench.score_layer(layer, acts)`` took the activations in whatever order they came: shuffled
    stimuli gave a wrong score silently (RSA: raw 0.0004 for 0.119) and 50 of 92 stimuli an error
    about RDM sizes. Every kind now receives them aligned to its stimuli by ``stimulus_id``: shuffled
    gives the same numbers, a subset or an array without ids of another length a named error."""
    from brainalign.errors import StimulusMismatchError

    ref, opts, dirs = kinds_setup[kind]
    bench = ba.load_benchmark(ref, data_dir=dirs, **opts)
    model = MODELS[0].load()
    stimuli, _ = bench.recording(model)
    stream = bench.layer_activations(model, ["2"], stimuli=stimuli, device="cpu",
                                     reducers=bench.default_reducers(model))
    (layer, acts), = list(stream)
    n = acts.sizes["stimulus"]
    want = _numbers(bench.score_layer(layer, acts))

    perm = np.random.default_rng(0).permutation(n)
    shuffled = acts.isel(stimulus=perm)
    assert list(shuffled["stimulus_id"].values) != list(acts["stimulus_id"].values)
    for got, ref_ in zip(_numbers(bench.score_layer(layer, shuffled)), want, strict=True):
        np.testing.assert_allclose(got, ref_, rtol=0, atol=1e-12, equal_nan=True)
    bare = _numbers(bench.score_layer(layer, acts.values))  # no ids, the benchmark's order: the same
    for got, ref_ in zip(bare, want, strict=True):
        np.testing.assert_allclose(got, ref_, rtol=0, atol=1e-12, equal_nan=True)

    subset = shuffled.isel(stimulus=slice(0, n - 7))
    with pytest.raises(StimulusMismatchError, match=rf"{n - 7} given, {n} expected; stimulus ids 7 missing \('"):
        bench.score_layer(layer, subset)
    ids = ["elsewhere/1", *map(str, acts["stimulus_id"].values[1:])]
    renamed = acts.assign_coords(stimulus_id=("stimulus", ids))
    with pytest.raises(StimulusMismatchError, match=r"1 missing .* 1 not among its stimuli \('elsewhere/1'\)"):
        bench.score_layer(layer, renamed)
    short = rf"carry no stimulus ids and hold {n - 1} stimuli .* scores {n}"
    with pytest.raises(StimulusMismatchError, match=short):
        bench.score_layer(layer, acts.values[: n - 1])
