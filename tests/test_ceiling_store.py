"""The ceiling store: bootstrap noise ceilings computed once, read by later runs, bit for bit."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.benchmarks.ceiling_store import store_key, stored
from brainalign.errors import MetricInputError
from brainalign.settings import ceiling_cache_dir


def _entries(root: Path) -> list[Path]:
    return sorted(root.glob("*.npz"))


# ----- the store on its own -------------------------------------------------------------------

def test_key_changes_with_every_input_and_only_with_them():
    a = np.arange(12.0).reshape(3, 4)
    k = store_key("kind", {"n_boot": 10, "seed": 0}, {"x": a})
    assert k == store_key("kind", {"seed": 0, "n_boot": 10}, {"x": a.copy()})
    b = a.copy()
    b[2, 3] += 1e-12
    others = [store_key("other", {"n_boot": 10, "seed": 0}, {"x": a}),
              store_key("kind", {"n_boot": 11, "seed": 0}, {"x": a}),
              store_key("kind", {"n_boot": 10, "seed": 1}, {"x": a}),
              store_key("kind", {"n_boot": 10, "seed": 0}, {"x": b}),
              store_key("kind", {"n_boot": 10, "seed": 0}, {"x": a.astype(np.float32)}),
              store_key("kind", {"n_boot": 10, "seed": 0}, {"x": a.reshape(4, 3)}),
              store_key("kind", {"n_boot": 10, "seed": 0}, {"y": a})]
    assert len({k, *others}) == 1 + len(others)


def test_key_changes_with_the_source_of_the_computing_code(tmp_path):
    """An edited computation (a development install: same versions) must not read old entries."""
    import importlib.util

    def module(text: str, name: str):
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("ceilmod", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    a = np.arange(4.0)
    k1 = store_key("kind", {}, {"x": a}, code=[module("def f(x):\n    return x\n", "v1")])
    k2 = store_key("kind", {}, {"x": a}, code=[module("def f(x):\n    return 2 * x\n", "v2")])
    k3 = store_key("kind", {}, {"x": a}, code=[module("def f(x):\n    return x\n", "v3")])
    assert k1 != k2 and k1 == k3


def test_stored_computes_once_then_reads(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"c": np.linspace(0, 1, 5, dtype=np.float32)}  # returned as float64, hit or miss

    first = stored(tmp_path, "k", {"c": (5,)}, compute)
    second = stored(tmp_path, "k", {"c": (5,)}, compute)
    assert len(calls) == 1 and len(_entries(tmp_path)) == 1
    assert first["c"].dtype == second["c"].dtype == np.float64
    np.testing.assert_array_equal(first["c"], second["c"])
    assert stored(None, "k", {"c": (5,)}, compute)["c"].shape == (5,) and len(calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong shape", "missing array"])
def test_a_damaged_entry_is_recomputed_with_a_warning(tmp_path, damage):
    good = {"c": np.arange(6.0)}
    stored(tmp_path, "k", {"c": (6,)}, lambda: good)
    path = tmp_path / "k.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "garbage":
        raw = bytearray(path.read_bytes())
        raw[raw.index(good["c"].tobytes()) + 20] ^= 0xFF  # one bit of the data: the zip's CRC fails
        path.write_bytes(bytes(raw))
    elif damage == "wrong shape":
        np.savez(path, c=np.arange(7.0))
    else:
        np.savez(path, d=np.arange(6.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = stored(tmp_path, "k", {"c": (6,)}, lambda: good)
    np.testing.assert_array_equal(got["c"], good["c"])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages  # no ResourceWarning of a file left open either
    assert "recomputing" in messages[0] and str(path) in messages[0]
    with np.load(path, allow_pickle=False) as z:  # rewritten whole
        np.testing.assert_array_equal(z["c"], good["c"])


@pytest.mark.parametrize("where", ["under a file", "a file"])
def test_an_unwritable_store_warns_and_returns_what_was_computed(tmp_path, where):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    root = blocker / "ceilings" if where == "under a file" else blocker
    with pytest.warns(UserWarning, match=r"could not store the ceilings in .*(Not a directory|is a file, "
                                         r"not a folder).*BRAINALIGN_CEILING_CACHE"):
        got = stored(root, "k", {"c": (3,)}, lambda: {"c": np.ones(3)})
    np.testing.assert_array_equal(got["c"], np.ones(3))
    assert blocker.read_text() == "not a folder"


def test_a_computation_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="do not match"):
        stored(tmp_path, "k", {"c": (3,)}, lambda: {"c": np.ones(4)})
    assert not _entries(tmp_path)


def test_where_the_store_is(tmp_path, monkeypatch):
    monkeypatch.delenv("BRAINALIGN_CEILING_CACHE")
    monkeypatch.setenv("BRAINALIGN_CACHE", str(tmp_path / "cache"))
    assert ceiling_cache_dir() == tmp_path / "cache" / "ceilings"
    assert ceiling_cache_dir(tmp_path / "mine") == tmp_path / "mine"
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(tmp_path / "env"))
    assert ceiling_cache_dir() == tmp_path / "env"
    for off in ("0", "off", "none"):
        monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", off)
        assert ceiling_cache_dir() is None


# ----- real benchmarks: a run that reads the store equals one that computes ---------------------

def _features(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 40))


def _rsa_stats(bench, feats) -> dict:
    s = bench.score_features(feats)
    return {k: s[k] for k in ("raw", "normalised", "raw_ci_low", "raw_ci_high", "normalised_ci_low",
                              "normalised_ci_high", "bootstrap", "bootstrap_normalised")}


def test_hit_rsa_reads_its_bootstrap_ceilings_from_the_store(data_dir, tmp_path, monkeypatch):
    """kriegeskorte2008.hIT-rsa (4 subjects, 1,000 samples): computed with no store, computed into
    the store, then read from it (the ceiling computation is made to fail, so it cannot run):
    every statistic equal bit for bit; another n_bootstrap is another entry."""
    import brainalign.metrics.rsa as rsa

    feats = _features(92)
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", "0")
    ref_bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir)
    ref = _rsa_stats(ref_bench, feats)
    root = tmp_path / "store"
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(root))
    miss = _rsa_stats(ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir), feats)
    assert len(_entries(root)) == 1

    def no_ceiling(*a, **k):
        raise AssertionError("the ceilings were recomputed")

    monkeypatch.setattr(rsa, "_pool_ranks", no_ceiling)
    hit_bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir)
    hit = _rsa_stats(hit_bench, feats)
    for got in (miss, hit):
        for k, v in ref.items():
            np.testing.assert_array_equal(v, got[k], err_msg=k)
    for name in ("ceiling_lower", "ceiling_upper"):
        np.testing.assert_array_equal(getattr(ref_bench._bootstrap, name), getattr(hit_bench._bootstrap, name))
    assert np.isfinite(hit["bootstrap_normalised"]).sum() > 900
    with pytest.raises(AssertionError, match="recomputed"):  # 200 samples: not in the store
        ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=200, data_dir=data_dir).prepare()


def test_stored_ceilings_of_other_rdms_are_refused_by_the_bootstrap(data_dir):
    from brainalign.metrics.rsa import RSABootstrap

    subj = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir).subject_rdms.values
    with pytest.raises(MetricInputError, match=r"\(50,\) float64"):
        RSABootstrap(subj, n_boot=50, ceilings=(np.zeros(40), np.zeros(40)))


def test_an_rsa_benchmark_without_a_ceiling_computes_no_bootstrap_ceilings(data_dir, tmp_path, monkeypatch):
    """hIT's four subjects under ``ceiling: none``: the pooled-rank ceilings of the bootstrap are
    neither computed nor stored, the raw statistics equal those of the ceilinged benchmark bit for
    bit, and the normalised ones are NaN."""
    import yaml

    import brainalign.metrics.rsa as rsa

    doc = yaml.safe_load(ba.benchmarks.spec.benchmark_paths()["kriegeskorte2008.hIT-rsa"].read_text())
    doc.update(id="kriegeskorte2008.hIT-rsa-noceiling", ceiling={"method": "none", "reason": "test"})
    path = tmp_path / "kriegeskorte2008.hIT-rsa-noceiling.yaml"
    path.write_text(yaml.safe_dump(doc))
    feats = _features(92)
    ref = _rsa_stats(ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=200, data_dir=data_dir), feats)
    root = tmp_path / "store"
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(root))

    def no_ceiling(*a, **k):
        raise AssertionError("bootstrap ceilings computed for a benchmark without a ceiling")

    monkeypatch.setattr(rsa, "_pool_ranks", no_ceiling)
    bench = ba.load_benchmark(str(path), n_bootstrap=200, data_dir=data_dir)
    got = _rsa_stats(bench, feats)
    assert bench._bootstrap.ceiling_upper is None and not root.exists()
    for k in ("raw", "raw_ci_low", "raw_ci_high", "bootstrap"):
        np.testing.assert_array_equal(ref[k], got[k], err_msg=k)
    assert np.isnan(got["normalised"]) and np.isnan(got["bootstrap_normalised"]).all()
    with pytest.raises(MetricInputError, match="noise_ceiling=False"):
        rsa.RSABootstrap(bench.subject_rdms.values, n_boot=5, noise_ceiling=False,
                         ceilings=(np.zeros(5), np.zeros(5)))


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())


def test_cowley_regression_reads_its_bootstrap_ceilings_from_the_store(data_dir, tmp_path, monkeypatch):
    """cowley2023.V4-ridge (split-half ceilings on every bootstrap sample of each session with
    repeats): a whole run with no store, one that fills it, one that reads it (the ceiling
    computation made to fail): the tables are equal bit for bit, one entry per session."""
    from brainalign.benchmarks.regression import RegressionBenchmark

    m = ba.wrap(_net(), name="net", input_size=16)
    cols = ["raw", "raw_ci_low", "raw_ci_high", "normalised", "normalised_ci_low", "normalised_ci_high",
            "ceiling_upper", "dev_score", "heldout_score"]

    def run():
        bench = ba.load_benchmark("cowley2023.V4-ridge", max_stimuli=40, n_bootstrap=50, data_dir=data_dir)
        return bench, bench(m, ["0"], device="cpu").table[cols].to_numpy(float)

    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", "0")
    _, ref = run()
    root = tmp_path / "store"
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(root))
    bench, miss = run()
    n_sessions = sum(bench._halves(s) is not None for s in bench.sessions)
    assert n_sessions >= 1 and len(_entries(root)) == n_sessions

    def no_ceiling(self, *a, **k):
        raise AssertionError("the ceilings were recomputed")

    monkeypatch.setattr(RegressionBenchmark, "_ceiling_from", no_ceiling)
    with pytest.raises(AssertionError, match="recomputed"):  # the point ceilings are not stored
        run()
    monkeypatch.undo()
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(root))
    bench = ba.load_benchmark("cowley2023.V4-ridge", max_stimuli=40, n_bootstrap=50, data_dir=data_dir)
    _ = bench._ceilings  # the per-neuroid ceilings (cheap, not stored); then only the bootstrap's may be read
    monkeypatch.setattr(RegressionBenchmark, "_ceiling_from", no_ceiling)
    hit = bench(m, ["0"], device="cpu").table[cols].to_numpy(float)
    np.testing.assert_array_equal(ref, miss)
    np.testing.assert_array_equal(ref, hit)
    assert np.isfinite(ref[:, cols.index("normalised_ci_low")]).any()
