"""A device this machine does not have is refused by every entry point with one named error,
before any data is read, any model moved or any file written (the CLI's check, from Python)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.device import resolve_device
from brainalign.errors import DeviceUnavailableError

# A GPU index no machine has; plain "cuda" too where torch finds no GPU.
MISSING = ["cuda:99", *([] if torch.cuda.is_available() else ["cuda"])]


@pytest.mark.parametrize("name, message", [
    ("gpu", "'gpu' is not a device (did you mean 'cuda'?)"),
    ("cuda:x", "'cuda:x' is not a device"),
    ("tpu", "'tpu' is not a device"),
    ("cuda:99", "cuda:99"),
])
def test_a_name_that_is_no_device_here_is_a_named_error(name, message):
    with pytest.raises(DeviceUnavailableError, match="device|GPU") as err:
        resolve_device(name)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_auto_follows_the_tensors_and_names_are_read_in_any_case():
    t = torch.zeros(2)
    assert resolve_device("auto", np.zeros(2), t) == t.device
    assert resolve_device(" CPU ") == torch.device("cpu") == resolve_device("cpu:0")
    assert resolve_device(None) == resolve_device("auto")  # None: the default, as Python callers mean it
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", np.zeros(2)).type == want


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    return ba.wrap(net, name="tiny", input_size=16)


def _unchanged(model, before):
    after = {k: v.clone() for k, v in model.module.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


@pytest.mark.parametrize("device", MISSING)
@pytest.mark.parametrize("entry", ["extract", "iter_extract", "score", "benchmark", "compare_models",
                                   "encoding_score", "RidgeCV", "PLS", "train", "score_checkpoints",
                                   "run_batch", "map_receptive_fields"])
def test_every_entry_point_refuses_a_missing_device_before_any_work(entry, device, tmp_path, hit_benchmark,
                                                                      monkeypatch):
    from brainalign import insilico
    from brainalign.metrics import encoding_score
    from brainalign.metrics.estimators import PLSRegression, RidgeCV

    model = _model()
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    images = torch.rand(6, 3, 16, 16)
    X, Y = np.random.default_rng(0).standard_normal((2, 30, 8))
    # Reading a benchmark is work the check must come before.
    monkeypatch.setattr("brainalign.benchmarks.base.Benchmark.recording",
                        lambda *a, **k: pytest.fail("stimuli read before the device was checked"))
    calls = {
        "extract": lambda: ba.extract(model, images, device=device),
        "iter_extract": lambda: next(ba.iter_extract(model, images, device=device)),
        # an id that does not exist: the device is checked before any benchmark is loaded
        "score": lambda: ba.score(model, "no.such-benchmark", device=device),
        "benchmark": lambda: hit_benchmark(model, device=device),
        "compare_models": lambda: ba.compare_models(model, stimuli=images, device=device),
        "encoding_score": lambda: encoding_score(X, Y, device=device),
        "RidgeCV": lambda: RidgeCV(device=device).fit(X, Y),
        "PLS": lambda: PLSRegression(n_components=2, device=device).fit(X, Y),
        "train": lambda: ba.train("lenet5", tmp_path / "run", epochs=1, device=device),
        "score_checkpoints": lambda: ba.score_checkpoints(tmp_path / "none.pt", "no.such-benchmark",
                                                          device=device),
        "run_batch": lambda: ba.run_batch(["zoo:lenet5"], ["no.such-benchmark"], tmp_path / "batch",
                                          device=device),
        "map_receptive_fields": lambda: insilico.map_receptive_fields(model, "0", n_frames=64, device=device),
    }
    with pytest.raises(DeviceUnavailableError, match=device.replace(":", ".")):
        calls[entry]()
    _unchanged(model, before)
    assert not any(tmp_path.iterdir())  # no run folder, no batch folder
