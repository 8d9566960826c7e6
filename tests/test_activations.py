"""Recording activations: batching, copies, early stop, ids, globs, errors."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.errors import ForwardError, UnknownLayerError


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("this layer must never run")


def _tiny(inplace: bool = True, tail: nn.Module | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(8, 4, 3, padding=1),
              nn.ReLU(inplace=inplace), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)]
    if tail is not None:
        layers.append(tail)
    return nn.Sequential(*layers)


def _stimuli(n: int = 10, size: int = 16) -> ba.StimulusSet:
    rng = np.random.default_rng(0)
    imgs = [(rng.random((size, size, 3)) * 255).astype(np.uint8) for _ in range(n)]
    return ba.StimulusSet.from_arrays("noise", imgs)


def _reference(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out, h = [], x
    for mod in net:
        h = mod(h)
        out.append(h.clone())
    return out


def test_values_equal_a_manual_forward_despite_inplace_relu():
    net = _tiny(inplace=True)
    m = ba.wrap(net, name="tiny", input_size=16)
    stim = _stimuli()
    acts = ba.extract(m, stim, layers=["0", "2", "6"], batch_size=3, device="cpu")
    x = torch.stack([m.preprocess(stim.image(i)) for i in range(len(stim))])
    with torch.no_grad():
        ref = _reference(_tiny(inplace=False), x)
    # Conv outputs are recorded before the in-place ReLU overwrites them: negatives survive.
    assert (acts["0"].values < 0).any()
    for name, idx in (("0", 0), ("2", 2), ("6", 6)):
        np.testing.assert_allclose(acts[name].values, ref[idx].reshape(len(stim), -1).numpy(),
                                   rtol=1e-5, atol=1e-5)
    assert acts["0"].attrs["shape"] == (8, 16, 16)
    assert list(acts["6"]["stimulus_id"].values) == list(stim.ids)
    assert acts["6"].dims == ("stimulus", "unit")


def test_batch_size_does_not_change_values():
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    stim = _stimuli(7)
    a = ba.extract(m, stim, layers="*", batch_size=7)
    b = ba.extract(m, stim, layers="*", batch_size=2)
    for k in a:
        np.testing.assert_allclose(a[k].values, b[k].values, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:layer discovery stopped")
def test_forward_stops_after_the_last_requested_layer():
    m = ba.wrap(_tiny(tail=Boom()), name="tiny+boom", input_size=16)
    # Layer discovery runs the whole net once; Boom must not break it for recording earlier layers.
    acts = ba.extract(m, _stimuli(4), layers=["2"], batch_size=2)
    assert acts["2"].shape == (4, 4 * 16 * 16)


def test_globs_and_order():
    m = ba.load_model("torchvision:alexnet")
    stim = _stimuli(2, size=64)
    acts = ba.extract(m, stim, layers=["classifier.*", "features.1[0-2]"], batch_size=2)
    assert list(acts) == ["features.10", "features.11", "features.12", "classifier.1",
                          "classifier.2", "classifier.4", "classifier.5", "classifier.6"]
    assert acts["classifier.6"].shape == (2, 1000)


def test_unknown_layer_is_a_named_error_with_suggestions(tmp_path):
    m = ba.load_model("torchvision:alexnet")
    with pytest.raises(UnknownLayerError, match="features.1") as info:
        ba.extract(m, _stimuli(2), layers=["feature.1"])
    assert "`brainalign layers torchvision:alexnet` or `model.layers`" in str(info.value)
    # The command is offered only with an id it takes: a checkpoint's id (not its model name),
    # and for a wrapped module none (its name is no id; the command failed on it).
    ckpt = tmp_path / "lenet.pt"
    torch.save({"state_dict": ba.load_model("zoo:lenet5").module.state_dict(),
                "meta": {"arch": "zoo:lenet5", "name": "my-lenet"}}, ckpt)
    with pytest.raises(UnknownLayerError, match=rf"`brainalign layers file:{ckpt}` or") as info:
        ba.load_model(f"file:{ckpt}").resolve_layers(["nope"])
    assert "my-lenet" in str(info.value)
    wrapped = ba.wrap(_tiny(), name="tiny", input_size=8)
    with pytest.raises(UnknownLayerError, match=r"List the layers with `model.layers`\.") as info:
        wrapped.resolve_layers(["nope"])
    assert "brainalign layers" not in str(info.value)


def test_forward_failure_names_the_layer_and_input_shape():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    m = ba.BrainModel(module=net, name="broken", preprocess=lambda im: torch.zeros(3, 8, 8),
                      input_size=8)
    m._layer_info = {"2": ba.models.LayerInfo("2", 0, 1, (2,), "Linear", True)}
    with pytest.raises(ForwardError) as info:
        ba.extract(m, _stimuli(2), layers=["2"])
    assert "'2'" in str(info.value) and "(2, 3, 8, 8)" in str(info.value)


def test_tensor_input_with_ids():
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    x = torch.randn(5, 3, 16, 16)
    acts = ba.extract(m, x, layers=["6"], stimulus_ids=list("abcde"))
    assert list(acts["6"]["stimulus_id"].values) == list("abcde")


def test_reducer_is_applied_per_batch():
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    stim = _stimuli(6)
    full = ba.extract(m, stim, layers=["0"], batch_size=4)
    pooled = ba.extract(m, stim, layers=["0"], batch_size=4, reducers=lambda t: t.mean(dim=(2, 3)))
    ref = full["0"].values.reshape(6, 8, 16 * 16).mean(-1)
    np.testing.assert_allclose(pooled["0"].values, ref, rtol=1e-5, atol=1e-6)


def _pool(t: torch.Tensor) -> torch.Tensor:
    return t.mean(dim=(2, 3)) if t.ndim == 4 else t


def _first4(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)[:, :4]


def test_reducer_keys_are_layer_names_or_globs_and_a_layer_s_own_name_wins():
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    stim = _stimuli(6)
    full = ba.extract(m, stim, batch_size=4)
    layers = list(full)
    convs = [n for n in layers if full[n].attrs["shape"] and len(full[n].attrs["shape"]) == 3]
    assert len(convs) >= 2
    # a glob over the conv outputs, and one of them named on its own
    got = ba.extract(m, stim, batch_size=4, reducers={"*": _pool, convs[1]: _first4})
    for n in layers:
        want = full[n].values
        if n == convs[1]:
            want = want[:, :4]
        elif n in convs:
            want = want.reshape(6, full[n].attrs["shape"][0], -1).mean(-1)
        np.testing.assert_allclose(got[n].values, want, rtol=1e-5, atol=1e-6, err_msg=n)
    # the same mapping through the memory-bounded stream (a run over layer groups)
    from brainalign.activations import stream_layers

    for n, da in stream_layers(m, stim, layers, batch_size=4, reducers={"*": _pool, convs[1]: _first4}):
        np.testing.assert_allclose(da.values, got[n].values, rtol=1e-6, err_msg=n)


def test_a_reducer_without_describe_is_recorded_by_its_name_not_its_address():
    from brainalign.activations import stream_layers

    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    stream = stream_layers(m, _stimuli(6), ["0", "6"], reducers={"0": _first4, "6": lambda t: t})
    assert stream.reduction()["0"] == {"kind": "custom", "function": f"{__name__}._first4"}
    assert stream.reduction()["6"]["function"].endswith("<lambda>") and "0x" not in str(stream.reduction())


def test_patterns_that_disagree_are_settled_by_the_layer_s_own_name_or_an_equal_reducer():
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    stim = _stimuli(6)
    full = ba.extract(m, stim, layers=["0", "6"], batch_size=4)
    # the layer's own name chooses between two patterns
    got = ba.extract(m, stim, layers=["0"], reducers={"[0-1]": _pool, "?": _first4, "0": _first4})
    np.testing.assert_allclose(got["0"].values, full["0"].values[:, :4], rtol=1e-6)
    # two equal projections (other objects, same description) are one reducer
    from brainalign.activations import RandomProjection

    got = ba.extract(m, stim, layers=["0"], reducers={"[0-1]": RandomProjection(16), "?": RandomProjection(16)})
    assert got["0"].shape == (6, 16)
    # a disagreement on a layer this run does not record is not this run's
    got = ba.extract(m, stim, layers=["6"], reducers={"[0-1]": _pool, "?": _first4})
    np.testing.assert_allclose(got["6"].values, full["6"].values[:, :4], rtol=1e-6)


@pytest.mark.parametrize("reducers, error, message", [
    ({"O": _pool}, UnknownLayerError, "The reducers key 'O' matches no layer"),  # a typo of layer "0"
    ({"features.*": _pool}, UnknownLayerError, "The reducers key 'features.*'"),
    ({"[0-1]": _pool, "?": _first4}, ValueError,
     "layer '0' is matched by the reducers patterns '[0-1]' and '?' with different reducers; add '0' itself"),
    ({"0": "mean"}, ValueError, "reducers['0'] = 'mean' is not a function"),
])
def test_a_reducers_key_that_matches_no_layer_is_refused_before_recording(reducers, error, message):
    m = ba.wrap(_tiny(), name="tiny", input_size=16)
    with pytest.raises(error, match=re.escape(message)):
        ba.extract(m, _stimuli(6), reducers=reducers)
    with pytest.raises(error, match=re.escape(message)):
        next(ba.iter_extract(m, _stimuli(6), reducers=reducers))
    from brainalign.activations import stream_layers

    with pytest.raises(error, match=re.escape(message)):
        stream_layers(m, _stimuli(6), ["0"], reducers=reducers)


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 16 * 16, 3))


def _snapshot(net: nn.Module) -> dict[str, tuple[object, int, torch.device]]:
    """Per parameter / buffer: the object, the address of its data, its device."""
    return {n: (t, t.data_ptr(), t.device) for n, t in [*net.named_parameters(), *net.named_buffers()]}


def test_extract_and_discovery_leave_the_module_as_the_caller_sees_it():
    net = _bn_net()
    before = _snapshot(net)
    values = {n: t.detach().clone() for n, t in net.state_dict().items()}
    m = ba.wrap(net, name="bn", input_size=16)
    assert m.layer_info  # discovery
    acts = ba.extract(m, _stimuli(), layers=["1", "4"], device="cpu", mode="train")
    assert np.isfinite(acts["4"].values).all()
    after = _snapshot(net)
    assert after.keys() == before.keys()
    for n, (obj, ptr, dev) in before.items():
        assert after[n][0] is obj and after[n][1] == ptr and after[n][2] == dev, n
    for n, t in net.state_dict().items():  # train mode: BatchNorm statistics given back too
        assert torch.equal(t, values[n]), n


def test_on_device_moves_for_the_run_and_gives_every_tensor_back():
    from brainalign.models.base import on_device

    net = _bn_net()
    before = _snapshot(net)
    with on_device(net, "meta"):
        assert all(t.device.type == "meta" for t in [*net.parameters(), *net.buffers()])
    for n, t in [*net.named_parameters(), *net.named_buffers()]:
        obj, ptr, dev = before[n]
        assert t is obj and t.data_ptr() == ptr and t.device == dev, n
    with pytest.raises(RuntimeError, match="inside"), on_device(net, "meta"):
        raise RuntimeError("a failure inside the run")
    assert all(t.device.type == "cpu" for t in [*net.parameters(), *net.buffers()])


def test_a_failed_extraction_on_another_device_gives_the_module_back(monkeypatch):
    net = _bn_net()
    before = _snapshot(net)
    m = ba.wrap(net, name="bn", input_size=16)
    # "meta" is no device for users (refused at once); as the device a run resolved to, it moves
    # the module, and its tensors cannot be copied out: the run fails mid-way.
    module = sys.modules["brainalign.activations.extract"]  # the package's `extract` is the function
    monkeypatch.setattr(module, "resolve_device", lambda device: torch.device("meta"))
    with pytest.raises(ForwardError):
        ba.extract(m, _stimuli(), layers=["1"], device="cpu")
    for n, t in [*net.named_parameters(), *net.named_buffers()]:
        assert t is before[n][0] and t.data_ptr() == before[n][1] and t.device.type == "cpu", n


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_extract_on_cuda_equals_cpu_and_leaves_the_module_on_the_cpu():
    net = _bn_net()
    before = _snapshot(net)
    m = ba.wrap(net, name="bn", input_size=16)
    gpu = ba.extract(m, _stimuli(), layers=["1", "4"], device="cuda")
    cpu = ba.extract(m, _stimuli(), layers=["1", "4"], device="cpu")
    for n in ("1", "4"):
        np.testing.assert_allclose(gpu[n].values, cpu[n].values, rtol=1e-4, atol=1e-4)
    for n, t in [*net.named_parameters(), *net.named_buffers()]:
        assert t is before[n][0] and t.data_ptr() == before[n][1] and t.device.type == "cpu", n
