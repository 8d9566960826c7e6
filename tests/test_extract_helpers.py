"""extract's helper thread (reading the next batch ahead, used on a GPU) changes no value and
leaves no thread behind, also when a stimulus or the forward pass fails."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.errors import ForwardError, StimulusError

# The package exports the function `extract`, which hides the module of the same name.
extract_mod = importlib.import_module("brainalign.activations.extract")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 3, padding=1),
                         nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))


def _images(n: int = 23) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(rng.random((16, 16, 3)) * 255).astype(np.uint8) for _ in range(n)]


def _helpers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("brainalign-")]


@pytest.fixture(params=[True, False], ids=["helpers", "no-helpers"])
def helpers(request, monkeypatch):
    monkeypatch.setattr(extract_mod, "_prefetch_on", lambda device: request.param)
    return request.param


def _manual(net: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    out, h = {}, x
    with torch.no_grad():
        for i, mod in enumerate(net):
            h = mod(h.clone())
            out[str(i)] = h.reshape(len(x), -1).numpy().copy()
    return out


def test_values_equal_with_and_without_helpers(helpers):
    m = ba.wrap(_net(), name="tiny", input_size=16)
    stim = ba.StimulusSet.from_arrays("noise", _images())
    acts = ba.extract(m, stim, ["0", "1", "2", "6"], batch_size=5, device="cpu")  # 5 batches, last short
    x = torch.stack([m.preprocess(stim.image(i)) for i in range(len(stim))])
    parts = [_manual(_net(), xb) for xb in x.split(5)]  # same batches: same float32 round-off
    ref = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    assert (acts["0"].values < 0).any()  # recorded before the in-place ReLU
    for k in ("0", "1", "2", "6"):
        np.testing.assert_array_equal(acts[k].values, ref[k])
    assert not _helpers()


def test_a_bad_stimulus_is_named_and_threads_stop(helpers):
    imgs = _images()
    imgs[17] = np.zeros((16, 16, 3, 2), np.uint8)  # not an image: fails in preprocessing
    m = ba.wrap(_net(), name="tiny", input_size=16)
    stim = ba.StimulusSet.from_arrays("noise", imgs)
    with pytest.raises(StimulusError, match=repr(stim.ids[17])):
        ba.extract(m, stim, ["0", "6"], batch_size=5, device="cpu")
    assert not _helpers()


def test_a_failing_forward_pass_stops_the_helpers(helpers):
    class FailOnBatch3(nn.Module):
        calls = 0

        def forward(self, x):
            FailOnBatch3.calls += 1
            if FailOnBatch3.calls == 3:
                raise RuntimeError("broken on the third batch")
            return x

    net = nn.Sequential(_net()[:2], FailOnBatch3(), nn.Conv2d(8, 2, 1))
    m = ba.wrap(net, name="tiny", input_size=16)
    stim = ba.StimulusSet.from_arrays("noise", _images())
    with pytest.raises(ForwardError, match="third batch"):
        ba.extract(m, stim, ["0.0", "2"], batch_size=5, device="cpu")
    assert not _helpers()
