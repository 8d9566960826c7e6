"""Streamed recording and scoring (issue 15): layers handed over as they are recorded, one batch
for small stimulus sets, outputs kept by reference only where no later op changes them, and a
kind's model-independent state prepared on a helper thread. Values never change."""

from __future__ import annotations

import importlib
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.activations.budget import one_batch, plan_memory
from brainalign.activations.extract import iter_extract
from brainalign.errors import ForwardError, StimulusError
from brainalign.metrics.rsa import _weighted_ranks


def _net(inplace: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace),
                         nn.Conv2d(8, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def _deep() -> nn.Sequential:
    """Twelve equal conv layers: holding all of them costs more than one batch of every stimulus."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), *[nn.Conv2d(4, 4, 3, padding=1) for _ in range(11)])


def _stimuli(n: int = 10, size: int = 16) -> ba.StimulusSet:
    rng = np.random.default_rng(0)
    return ba.StimulusSet.from_arrays("noise", [(rng.random((size, size, 3)) * 255).astype(np.uint8)
                                                for _ in range(n)])


def _manual(net: nn.Module, model, stim) -> list[np.ndarray]:
    """Every module's output for every stimulus, by an independent forward pass that clones."""
    x = torch.stack([model.preprocess(stim.image(i)) for i in range(len(stim))])
    out, h = [], x
    with torch.no_grad():
        for mod in _net(inplace=False).eval():
            h = mod(h)
            out.append(h.clone().reshape(len(stim), -1).numpy())
    return out


def test_discovery_marks_outputs_changed_in_place_later():
    m = ba.wrap(_net(), name="net", input_size=16)
    info = m.layer_info
    # The conv before an in-place ReLU is overwritten by it; the ReLU's own output is not changed.
    assert info["0"].mutated and not info["1"].mutated
    assert info["3"].mutated and not info["4"].mutated  # BatchNorm → in-place ReLU
    assert not info["2"].mutated and not info["7"].mutated


@pytest.mark.parametrize("batch_size", [3, 10, 64])  # several batches / exactly one / one, larger
def test_iter_extract_equals_extract_and_a_manual_forward(batch_size):
    m = ba.wrap(_net(), name="net", input_size=16)
    stim = _stimuli()
    names = ["0", "1", "2", "3", "4", "7"]
    ref = _manual(_net(), m, stim)
    got = list(iter_extract(m, stim, names, batch_size=batch_size, device="cpu"))
    assert [n for n, _ in got] == names  # forward order
    whole = ba.extract(m, stim, names, batch_size=batch_size, device="cpu")
    for name, da in got:
        np.testing.assert_array_equal(da.values, whole[name].values)
        np.testing.assert_allclose(da.values, ref[int(name)], rtol=1e-5, atol=1e-6)
        assert list(da["stimulus_id"].values) == list(stim.ids)
    # Pre-ReLU values survive the in-place ReLU (recorded by copy), whatever the batching.
    assert (dict(got)["0"].values < 0).any()


def test_by_reference_only_in_one_batch_and_read_only_while_the_pass_runs():
    m = ba.wrap(_net(), name="net", input_size=16)
    stim = _stimuli()
    got = dict(iter_extract(m, stim, ["0", "1", "2"], batch_size=len(stim), device="cpu"))
    assert got["0"].values.flags.writeable  # changed later by the in-place ReLU: a copy
    assert not got["1"].values.flags.writeable and not got["2"].values.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        got["2"].values[0, 0] = 1.0
    several = dict(iter_extract(m, stim, ["1"], batch_size=3, device="cpu"))
    assert several["1"].values.flags.writeable  # batches: copied into one buffer


def test_handover_waits_for_the_caller_beyond_the_byte_limit(monkeypatch):
    """With ``hold_bytes`` below one layer, layer k + 1 is handed over only after the caller has
    asked past layer k (at most one layer held); with room for all, the thread runs ahead."""
    import importlib

    ex = importlib.import_module("brainalign.activations.extract")

    def run(hold_bytes):
        log: list[tuple[str, str]] = []
        real = ex._record

        def record(model, job, on_complete, **kw):
            def wrapped(name, *a):
                on_complete(name, *a)  # returns once the layer is queued for the caller
                log.append(("handed", name))
            return real(model, job, wrapped, **kw)

        monkeypatch.setattr(ex, "_record", record)
        m = ba.wrap(_net(), name="net", input_size=16)
        for name, _ in iter_extract(m, _stimuli(), ["0", "1", "2", "4"], batch_size=10, device="cpu",
                                    hold_bytes=hold_bytes):
            time.sleep(0.1)  # a slow caller
            log.append(("done", name))
        return log

    strict = run(1)
    for k, name in enumerate(["1", "2", "4"]):
        prev = ["0", "1", "2"][k]
        assert strict.index(("handed", name)) > strict.index(("done", prev))
    ahead = run(1 << 30)
    assert ahead.index(("handed", "4")) < ahead.index(("done", "0"))


def test_closing_early_stops_the_recording_thread():
    m = ba.wrap(_net(), name="net", input_size=16)
    before = {t.name for t in threading.enumerate()}
    it = iter_extract(m, _stimuli(), ["0", "1", "2"], batch_size=10, device="cpu")
    next(it)
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "brainalign-record" and t.name not in before]


def test_errors_of_the_pass_are_raised_unchanged():
    class FailsOnData(nn.Module):  # runs at layer discovery (no_grad), fails when recording
        def forward(self, x):
            if torch.is_inference_mode_enabled():
                raise RuntimeError("broken layer")
            return x + 1

    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(), FailsOnData(), nn.Flatten())
    m = ba.wrap(net, name="fails", input_size=16)
    got = []
    with pytest.raises(ForwardError, match="'2'.*broken layer"):
        for name, _ in iter_extract(m, _stimuli(), ["1", "2"], batch_size=10, device="cpu"):
            got.append(name)
    assert got == ["1"]  # the layer before the failure was handed over first


def test_a_bad_image_is_named_through_the_stream():
    m = ba.wrap(_net(), name="net", input_size=16)
    imgs = [np.zeros((16, 16, 3), np.uint8)] * 4 + [np.full((16, 16, 3), np.nan)]
    stim = ba.StimulusSet.from_arrays("bad", imgs)
    with pytest.raises(StimulusError, match="'4'|4"):
        list(iter_extract(m, stim, ["1"], batch_size=5, device="cpu"))


def test_one_batch_rule():
    deep = _deep()
    m = ba.wrap(deep, name="deep", input_size=16)
    layers = [str(i) for i in range(12)]
    plan = plan_memory(m, layers, 40)
    assert one_batch(m, plan, 40, batch_size=16)  # every layer held in batches > two in one
    assert not one_batch(m, plan, 10, batch_size=16)  # already one batch
    assert not one_batch(m, plan, 200, batch_size=16)  # more than 4 × the batch size
    assert not one_batch(m, plan_memory(m, ["11"], 40), 40, batch_size=16)  # one layer: batches
    trained = ba.wrap(deep, name="deep", input_size=16, mode="train")
    assert not one_batch(trained, plan_memory(trained, layers, 40), 40, batch_size=16)


def test_streamed_benchmark_equals_the_layer_by_layer_computation(data_dir):
    """The hIT score through the stream (one batch, by reference, prepared on a thread) equals
    extract + rdm + the benchmark's own per-layer scoring, value for value."""
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=100, data_dir=data_dir)
    m = ba.wrap(_deep(), name="deep", input_size=16)
    layers = [str(i) for i in range(12)]
    res = bench(m, layers, batch_size=32, device="cpu")  # 92 stimuli: one batch
    assert any("one batch" in n for n in res.meta["memory_plan"]["deep"])
    stim, _ = bench.recording(m)
    acts = ba.extract(m, stim, layers, batch_size=32, device="cpu")
    ref = ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=100, data_dir=data_dir)
    for layer, da in acts.items():
        row = res.table.set_index("layer").loc[layer]
        s = ref.score_features(da.values)
        assert row["raw"] == s["raw"]
        assert row["raw_ci_low"] == s["raw_ci_low"] and row["normalised_ci_high"] == s["normalised_ci_high"]


def test_prepare_runs_once_and_its_error_stops_the_run(data_dir):
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=20, data_dir=data_dir)
    calls = []

    def failing():
        calls.append(1)
        raise RuntimeError("ceiling could not be built")

    bench.prepare = failing
    m = ba.wrap(_net(), name="net", input_size=16)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="ceiling could not be built"):
            bench(m, ["7"], device="cpu")
    assert calls == [1]


def test_weighted_ranks_float32_weights_equal_float64():
    rng = np.random.default_rng(0)
    v = np.round(rng.random(300) * 40) / 40  # many ties
    W = (rng.integers(0, 3, (50, 300)) * rng.integers(0, 3, (50, 300))).astype(np.float64)
    at = np.sort(rng.integers(0, 300, (50, 120)), axis=1)
    for pos, w_at in ((None, None), (at, np.take_along_axis(W, at, 1))):
        a = _weighted_ranks(v, W, pos, w_at)
        b = _weighted_ranks(v, W.astype(np.float32), pos, None if w_at is None else w_at.astype(np.float32))
        np.testing.assert_array_equal(a, b.astype(np.float64))
    u = rng.random(300)  # no ties: the fast path at the slots equals the full ranking's
    full = _weighted_ranks(u, W)
    np.testing.assert_array_equal(_weighted_ranks(u, W, at, np.take_along_axis(W, at, 1)),
                                  np.take_along_axis(full, at, 1))


def test_regression_prepare_builds_the_bootstrap_ceilings_the_scoring_uses(data_dir, monkeypatch):
    """prepare() draws the same seeded index sets as the scoring: after it, scoring a layer adds
    no bootstrap ceiling (they are read, not recomputed), and the table equals a run without
    prepare (a benchmark that builds them on the first layer)."""
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", "0")  # both compute theirs (the store: test_ceiling_store)
    m = ba.wrap(_net(), name="net", input_size=16)
    bench = ba.load_benchmark("cowley2023.V4-ridge", max_stimuli=40, n_bootstrap=50, data_dir=data_dir)
    bench.prepare()
    cached = dict(bench._ceiling_boot_cache)
    assert len(cached) == sum(bench._halves(s) is not None for s in bench.sessions) > 0
    res = bench(m, ["7"], device="cpu")
    assert bench._ceiling_boot_cache.keys() == cached.keys()
    lazy = ba.load_benchmark("cowley2023.V4-ridge", max_stimuli=40, n_bootstrap=50, data_dir=data_dir)
    lazy.prepare = lambda: None  # the ceilings are built while scoring the first layer instead
    ref = lazy(m, ["7"], device="cpu")
    cols = ["raw", "normalised", "normalised_ci_low", "normalised_ci_high", "ceiling_upper"]
    np.testing.assert_array_equal(res.table[cols].to_numpy(float), ref.table[cols].to_numpy(float))


def test_a_second_recording_on_the_streams_thread_stops_the_stream():
    """Two recordings of one model at once would share its hooks, mode and device. A recording
    started on the thread that holds an open (suspended) stream stops that stream, which names
    the reason if resumed, and records the same values as on its own: a stream abandoned inside
    its loop (e.g. an error whose traceback a notebook keeps) never blocks the model."""
    m = ba.wrap(_net(), name="net", input_size=16)
    stim = _stimuli()
    ref = ba.extract(m, stim, ["1", "4"], batch_size=4, device="cpu")
    it = iter_extract(m, stim, ["1", "4"], batch_size=4, device="cpu")
    first = next(it)
    np.testing.assert_array_equal(first[1].values, ref["1"].values)
    again = ba.extract(m, stim, ["1", "4"], batch_size=4, device="cpu")
    for name in ("1", "4"):
        np.testing.assert_array_equal(again[name].values, ref[name].values)
    with pytest.raises(ForwardError, match="stream of net's layers was stopped"):
        list(it)
    assert not any(t.name == "brainalign-record" for t in threading.enumerate())

    def abandoned():
        for _name, _acts in iter_extract(m, stim, ["1", "4"], batch_size=4, device="cpu"):
            raise KeyError("an error inside the loop")

    try:
        abandoned()
    except KeyError as err:
        kept = err  # the traceback keeps the suspended stream alive, as a notebook would
    again = ba.extract(m, stim, ["4"], batch_size=4, device="cpu")
    np.testing.assert_array_equal(again["4"].values, ref["4"].values)
    del kept


def test_a_recording_while_another_thread_records_the_model_is_refused_by_name():
    m = ba.wrap(_net(), name="net", input_size=16)
    stim = _stimuli()
    started, release = threading.Event(), threading.Event()

    def other():
        it = iter_extract(m, stim, ["1", "4"], batch_size=4, device="cpu")
        next(it)
        started.set()
        release.wait(10)
        it.close()

    t = threading.Thread(target=other)
    t.start()
    try:
        assert started.wait(10)
        with pytest.raises(ForwardError, match="already being recorded by another thread"):
            ba.extract(m, stim, ["1"], batch_size=4, device="cpu")
    finally:
        release.set()
        t.join()
    assert m._recording is None
    ba.extract(m, stim, ["1"], batch_size=4, device="cpu")


def test_a_cancelled_recording_stops_at_the_next_batch():
    """What closing a stream (or Ctrl-C in its caller) sets: the recording thread stops at its
    next recorded layer or batch instead of running every remaining batch."""
    import importlib

    ex = importlib.import_module("brainalign.activations.extract")
    calls = []

    class Count(nn.Module):
        def forward(self, x):
            calls.append(len(x))
            return x

    m = ba.wrap(nn.Sequential(nn.Conv2d(3, 4, 3), Count(), nn.ReLU(), nn.Flatten()), name="count",
                input_size=16)
    job = ex._job(m, _stimuli(40), ["0", "2"], None, None, None)
    calls.clear()
    with pytest.raises(ex._Cancelled):
        ex._record(m, job, lambda *a: None, batch_size=2, device="cpu", progress=False,
                   keep_on_device=False, cancelled=lambda: len(calls) >= 3)  # 20 batches asked
    assert len(calls) == 3


@pytest.mark.parametrize("helper", [True, False])
def test_copies_on_a_helper_thread_give_the_same_values(monkeypatch, helper):
    """Multi-batch CPU recordings copy outputs on a helper thread where a core is idle; the
    values are those of copying in the hook, and an output a later in-place op changes (the
    conv before ReLU(inplace)) is still copied before that op runs."""
    ext = importlib.import_module("brainalign.activations.extract")
    copied_on: set[str] = set()
    real_task = ext._task

    def spy(layer, fn, *args):
        run = real_task(layer, fn, *args)

        def wrapped():
            copied_on.add(threading.current_thread().name)
            run()
        return wrapped

    monkeypatch.setattr(ext, "_copy_helper_on", lambda *_: helper)
    monkeypatch.setattr(ext, "_task", spy)
    m = ba.wrap(_net(), name="net", input_size=16)
    stim = _stimuli(11)
    names = ["0", "1", "2", "3", "4", "7"]
    ref = _manual(_net(), m, stim)
    got = ba.extract(m, stim, names, batch_size=3, device="cpu")
    streamed = dict(iter_extract(m, stim, names, batch_size=3, device="cpu"))
    for name in names:
        np.testing.assert_allclose(got[name].values, ref[int(name)], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(streamed[name].values, got[name].values)
    assert (got["0"].values < 0).any()  # recorded before the in-place ReLU
    assert bool(copied_on) == helper and all(t.startswith("brainalign-copy") for t in copied_on)


def test_a_failing_helper_copy_is_named_and_stops_the_run(monkeypatch):
    ext = importlib.import_module("brainalign.activations.extract")
    monkeypatch.setattr(ext, "_copy_helper_on", lambda *_: True)
    real_task = ext._task

    def failing(layer, fn, *args):
        if layer == "2":
            def boom(*_):
                raise RuntimeError("disk on fire")
            return real_task(layer, boom, *args)
        return real_task(layer, fn, *args)

    monkeypatch.setattr(ext, "_task", failing)
    m = ba.wrap(_net(), name="net", input_size=16)
    with pytest.raises(ForwardError, match=r"recording layer '2' failed.*disk on fire"):
        ba.extract(m, _stimuli(11), ["1", "2", "4"], batch_size=3, device="cpu")
    assert not any(t.name.startswith("brainalign-copy") for t in threading.enumerate())
    assert not m._recording
    monkeypatch.setattr(ext, "_task", real_task)
    ba.extract(m, _stimuli(4), ["2"], batch_size=3, device="cpu")  # the model records again
