"""Bounded memory: the random projection, the preflight estimate and plan, streaming in groups."""

from __future__ import annotations

import gc
import math
import weakref

import numpy as np
import pytest
import torch

from brainalign.activations import RandomProjection, extract, plan_memory, stream_layers
from brainalign.activations.budget import parse_bytes
from brainalign.data import StimulusSet
from brainalign.errors import MemoryBudgetError
from tests.batch_models import tiny_cnn

N = 12


@pytest.fixture
def stimuli() -> StimulusSet:
    rng = np.random.default_rng(1)
    return StimulusSet.from_arrays("noise", rng.integers(0, 256, (N, 40, 40, 3), dtype=np.uint8))


def test_projection_is_seeded_sparse_and_preserves_distances():
    x = torch.randn(30, 4000, generator=torch.Generator().manual_seed(0))
    a, b = RandomProjection(512, seed=3), RandomProjection(512, seed=3)
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    assert not torch.equal(ya, RandomProjection(512, seed=4)(x))
    m = a.matrix(4000)
    assert m.layout == torch.sparse_csr
    # ~k·sqrt(d) non-zeros, not k·d
    assert m.values().numel() < 2 * 512 * math.sqrt(4000)
    d_in = torch.cdist(x, x) ** 2
    d_out = torch.cdist(ya, ya) ** 2
    iu = torch.triu_indices(30, 30, 1)
    ratio = d_out[iu[0], iu[1]] / d_in[iu[0], iu[1]]
    assert abs(ratio.mean().item() - 1) < 0.03 and ratio.std().item() < 0.15  # Johnson–Lindenstrauss
    small = torch.randn(5, 100)
    torch.testing.assert_close(a(small), small)  # d ≤ k: left alone


def test_projection_applied_per_batch_equals_projecting_the_full_features(stimuli):
    proj = RandomProjection(40, seed=0)
    full = extract(tiny_cnn(), stimuli, ["0", "2"], batch_size=5)
    reduced = extract(tiny_cnn(), stimuli, ["0", "2"], batch_size=5, reducers=proj)
    for n in ("0", "2"):
        assert reduced[n].shape == (N, 40)
        expected = proj(torch.from_numpy(full[n].values)).numpy()
        np.testing.assert_allclose(reduced[n].values, expected, rtol=1e-5, atol=1e-5)


def test_preflight_estimate_equals_what_extraction_holds(stimuli):
    model = tiny_cnn()
    plan = plan_memory(model, None, N)
    acts = extract(model, stimuli, None)
    assert plan.layers == list(acts)
    for n, da in acts.items():
        assert plan.layer_bytes[n] == da.values.nbytes
    held = [da.values.nbytes for da in acts.values()]
    assert plan.full_bytes == sum(held)
    assert plan.peak_bytes == sum(held) + 4 * max(held)  # plus the scoring working set of one layer
    assert plan.groups == [model.layers] and plan.notes == []


def test_a_run_over_budget_adapts_projection_then_groups(stimuli):
    model = tiny_cnn()  # layers 0: 8x14x14=1568, 2: 16x6x6=576, 4 (pool): 64, 6: 10 features
    full = plan_memory(model, None, N).full_bytes
    # Room for every layer projected to 100 features (and scored: 5 × 100), not for all together
    said = (r"memory budget 28.8 kB: 4 of 6 layers do not fit it alone \(layer '0' needs 0.4 MB to record "
            r"and score\) and are recorded through a random projection to 100 features; their scores are of "
            r"the projected activations \(0, 1, 2, 3;")
    with pytest.warns(UserWarning, match=said):
        plan = plan_memory(model, None, N, budget=N * 4 * 600, adapt_features=100)
    assert isinstance(plan.reducers["0"], RandomProjection)
    assert plan.layer_bytes["0"] == N * 4 * 100 and plan.layer_bytes["6"] == N * 4 * 10
    assert len(plan.groups) > 1 and plan.peak_bytes <= N * 4 * 600 < full
    assert any("random projection" in s for s in plan.notes) and any("groups" in s for s in plan.notes)
    assert plan.layers == model.layers
    # a layer that fits alone keeps its full features, even where it is wider than the projection
    # (layer "4": 64 features, 5 × 64 < 600); it was projected with the others
    with pytest.warns(UserWarning, match="4 of 6 layers"):
        plan = plan_memory(model, None, N, budget=N * 4 * 600, adapt_features=50)
    assert plan.reducers["4"] is None and plan.layer_bytes["4"] == N * 4 * 64
    assert isinstance(plan.reducers["3"], RandomProjection)


def test_a_run_that_cannot_fit_is_refused_before_any_forward_pass(stimuli):
    model = tiny_cnn()
    assert model.layer_info  # the discovery dry run (one blank input) is how the estimate knows the shapes
    calls = []
    model.module.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(MemoryBudgetError, match="over the budget"):
        stream_layers(model, stimuli, None, memory_budget=100, adapt=False)
    with pytest.raises(MemoryBudgetError, match="layer '0' alone needs 24.0 kB.*over the budget of 2.4 kB"):
        plan_memory(model, None, N, budget=N * 4 * 50, adapt_features=100)
    assert calls == []
    assert parse_bytes("2.5GB") == 2_500_000_000 and parse_bytes("1 GiB") == 2**30


def test_streamed_groups_equal_one_pass_and_are_freed_as_the_caller_moves_on(stimuli):
    model = tiny_cnn()
    one_pass = extract(model, stimuli, None, batch_size=4)
    budget = 5 * max(da.values.nbytes for da in one_pass.values()) + 1  # the largest layer, scored
    stream = stream_layers(model, stimuli, None, batch_size=4, memory_budget=budget, adapt=False)
    assert stream.plan.groups == [["0"], ["1"], ["2", "3", "4", "6"]]  # "0" and "1": 1568 features
    assert stream.plan.peak_bytes <= budget
    refs, seen = [], []
    for layer, da in stream:
        gc.collect()
        alive = [r for r in refs if r() is not None]
        assert alive == []  # the previous layer's activations are gone
        np.testing.assert_array_equal(da.values, one_pass[layer].values)
        seen.append(layer)
        refs.append(weakref.ref(da))
        del da
    assert seen == list(one_pass)


def test_without_a_budget_the_plan_meets_the_memory_available_now(stimuli, monkeypatch):
    """No budget given (`score` without --memory-budget): a run larger than the memory available
    now is split into exact passes, and a layer that alone cannot fit is refused by name before
    any forward pass, never projected (projection changes the numbers: it needs a budget)."""
    import brainalign.activations.budget as budget

    model = tiny_cnn()
    whole = plan_memory(model, None, N)  # (layer discovery runs its one blank input here)
    calls = []
    model.module.register_forward_pre_hook(lambda *a: calls.append(1))
    assert whole.groups == [list(model.layers)] and whole.budget is None  # plenty of memory: one pass
    sizes = whole.layer_bytes
    # Just enough for the largest layer and its scoring, not for all layers at once: exact passes.
    monkeypatch.setattr(budget, "available_memory", lambda: int(max(sizes.values()) * 5.5))
    plan = plan_memory(model, None, N)
    assert len(plan.groups) > 1 and all(r is None for r in plan.reducers.values())
    assert any("available now" in n for n in plan.notes)
    monkeypatch.setattr(budget, "available_memory", lambda: int(min(sizes.values())))
    with pytest.raises(MemoryBudgetError, match=r"layer '0' alone needs .* available now.*--memory-budget"):
        stream_layers(model, stimuli, None)
    assert calls == []


def test_a_projection_first_built_during_a_recording_works_outside_it():
    """The matrix is built on first use, usually inside extract's inference_mode: it is a normal
    tensor, so the reducer still works where autograd records; applying it swaps no warning
    filters (that raced with the run's warning collectors on the recording thread)."""
    import warnings

    proj = RandomProjection(8, seed=0)
    x = torch.randn(3, 100)
    with torch.inference_mode():
        a = proj(x)
    assert not proj.matrix(100).is_inference()
    xg = x.clone().requires_grad_()
    b = proj(xg)
    b.sum().backward()
    assert torch.equal(a, b.detach()) and xg.grad is not None and xg.grad.shape == x.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(proj(x), a)
