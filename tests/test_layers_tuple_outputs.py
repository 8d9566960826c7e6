"""Modules that return a tuple (LSTM, GRU, MultiheadAttention, a transformers ModelOutput) are
layers recorded as their first tensor; a module with no tensor to record is named with why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import brainalign as ba
from brainalign.errors import UnknownLayerError, UnrecordableLayerError
from brainalign.models.base import layer_output
from tests.conftest import needs_data
from tests.models_helpers import one_thread

HIT = "kriegeskorte2008.hIT-rsa"
TUPLE_LAYERS = ["attn", "lstm", "gru"]

# The network of the user's report, with a tokens-first GRU added: each tuple-returning kind.
NET_SOURCE = '''
import torch
from torch import nn


class Seq(nn.Module):
    """stem -> MultiheadAttention -> LSTM -> GRU (tokens first) -> fc."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 8, 8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.gru = nn.GRU(16, 12)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        h = self.stem(x).flatten(2).transpose(1, 2)  # (B, tokens, 8)
        h, _ = self.attn(h, h, h)
        h, _ = self.lstm(h)
        h, _ = self.gru(h.transpose(0, 1))  # (tokens, B, 12): the batch is axis 1
        return self.fc(h[-1])


def build():
    torch.manual_seed(0)
    return Seq()
'''


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def net_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("net") / "seqnet.py"
    path.write_text(NET_SOURCE)
    return path


@pytest.fixture()
def model(net_file: Path) -> ba.BrainModel:
    ns: dict = {}
    exec(compile(NET_SOURCE, str(net_file), "exec"), ns)
    return ba.wrap(ns["build"](), name="seq", input_size=32)


def hooked(module: nn.Module, x: torch.Tensor, layers: list[str], batch_size: int,
           axes: dict[str, int]) -> dict[str, np.ndarray]:
    """The reference: a plain forward hook keeping ``output[0]``, batch by batch as extract runs
    them, stimuli moved to the first axis and flattened."""
    mods = dict(module.named_modules())
    got: dict[str, list[torch.Tensor]] = {n: [] for n in layers}

    def keep(name: str):
        def hook(_m: nn.Module, _i: object, out: tuple) -> None:
            got[name].append(out[0].movedim(axes[name], 0).flatten(1).clone())
        return hook

    handles = [mods[n].register_forward_hook(keep(n)) for n in layers]
    module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                module(x[start:start + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(v).numpy() for n, v in got.items()}


def test_tuple_returning_modules_are_layers(model):
    assert model.all_layers == ["stem", *TUPLE_LAYERS, "fc"]
    assert model.layers == model.all_layers  # children of the root: scored by default
    info = model.layer_info
    assert [info[n].kind for n in TUPLE_LAYERS] == ["MultiheadAttention", "LSTM", "GRU"]
    # The output sequence / attention output, per stimulus, not hidden states or weights.
    assert info["attn"].output_shape == (16, 8) and info["lstm"].output_shape == (16, 16)
    assert info["gru"].output_shape == (16, 12) and info["gru"].batch_axis == 1


@pytest.mark.parametrize("batch_size", [6, 4], ids=["one-batch", "batches"])
def test_extract_equals_a_plain_hook_on_the_first_element(model, batch_size):
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    acts = ba.extract(model, x, TUPLE_LAYERS, batch_size=batch_size, device="cpu")
    axes = {n: model.layer_info[n].batch_axis for n in TUPLE_LAYERS}
    ref = hooked(model.module, x, TUPLE_LAYERS, batch_size, axes)
    for n in TUPLE_LAYERS:
        assert acts[n].shape == ref[n].shape
        assert np.array_equal(acts[n].values, ref[n]), n  # bit for bit
        assert acts[n].attrs["shape"] == model.layer_info[n].output_shape


def test_a_first_element_changed_in_place_later_is_recorded_as_it_was():
    class Doubled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(16, 8, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            h, _ = self.lstm(x.flatten(2))  # (B, 3 rows, 16)
            return self.fc(h.mul_(2)[:, -1])  # an in-place op on the recorded tensor

    torch.manual_seed(0)
    m = ba.wrap(Doubled(), name="doubled", input_size=4, in_channels=3)
    assert m.layer_info["lstm"].mutated
    x = torch.randn(5, 3, 4, 4)
    for batch_size in (5, 2):
        got = ba.extract(m, x, "lstm", batch_size=batch_size, device="cpu")["lstm"].values
        assert np.array_equal(got, hooked(m.module, x, ["lstm"], batch_size, {"lstm": 0})["lstm"])


def test_layer_output_rule():
    t = torch.ones(2, 3)
    assert layer_output(t) is t
    assert layer_output((t, None)) is t and layer_output([t, t + 1]) is t
    for none in (None, (), [None, t], ((t,), t), {"x": t}, "text"):
        assert layer_output(none) is None


def test_a_model_output_is_recorded_as_its_first_field():
    outputs = pytest.importorskip("transformers.modeling_outputs")

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(12, 6)

        def forward(self, x):
            h = self.proj(x.flatten(2).transpose(1, 2))  # (B, 16 tokens, 6)
            return outputs.BaseModelOutput(last_hidden_state=h, hidden_states=None, attentions=(h.sum(-1),))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()

        def forward(self, x):
            return self.encoder(x).last_hidden_state.mean(1)

    torch.manual_seed(0)
    m = ba.wrap(Net(), name="mo", input_size=4, in_channels=12)
    assert m.all_layers == ["encoder.proj", "encoder"]
    x = torch.randn(3, 12, 4, 4)
    got = ba.extract(m, x, "encoder", device="cpu")["encoder"].values
    ref = m.module.encoder.proj(x.flatten(2).transpose(1, 2)).detach().flatten(1).numpy()
    assert np.array_equal(got, ref)


class _NoTensor(nn.Module):
    """Sites with nothing to record: a dict, a tuple led by None, and None."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.as_dict = _Returns(lambda h: {"h": h})
        self.led_by_none = _Returns(lambda h: (None, h))
        self.nothing = _Returns(lambda h: None)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.conv(x)
        self.nothing(h)
        h = self.led_by_none(self.as_dict(h)["h"])[1]
        return self.fc(h.mean((2, 3)))


class _Returns(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, h):
        return self.fn(h)


@pytest.mark.parametrize(("layer", "returns"), [
    ("as_dict", "a dict"), ("led_by_none", "a tuple whose first element is None"), ("nothing", "None")])
def test_naming_a_module_with_no_tensor_to_record_says_why(layer, returns):
    m = ba.wrap(_NoTensor(), name="nt", input_size=8)
    assert m.all_layers == ["conv", "fc"]  # as before: not recordable
    said = (f"Layer {layer!r} of model 'nt' returns {returns}, not a tensor: brainalign records a "
            "module's tensor output, or the first element of a tuple or list when that is a tensor.")
    with pytest.raises(UnrecordableLayerError) as err:
        m.resolve_layers([layer])
    assert str(err.value) == said
    assert isinstance(err.value, UnknownLayerError)  # caught wherever an unknown layer is
    with pytest.raises(UnrecordableLayerError, match="not a tensor"):
        ba.extract(m, torch.zeros(2, 3, 8, 8), layer, device="cpu")
    with pytest.raises(UnrecordableLayerError, match=f"The reducers key {layer!r} of model 'nt' returns"):
        ba.extract(m, torch.zeros(2, 3, 8, 8), "conv", reducers={layer: lambda t: t}, device="cpu")
    # A name of no module at all is still "matches no layer".
    with pytest.raises(UnknownLayerError, match="'nope' matches no layer"):
        m.resolve_layers(["nope"])


def test_cli_layers_all_lists_tuple_layers(net_file):
    from brainalign.cli import main

    r = CliRunner().invoke(main, ["layers", "--all", f"file:{net_file}:build"])
    assert r.exit_code == 0, r.output
    rows = [ln.split("\t") for ln in r.output.splitlines()]
    assert [row[:3] for row in rows] == [["stem", "Conv2d", "8x28x28"], ["attn", "MultiheadAttention", "784x8"],
                                         ["lstm", "LSTM", "784x16"], ["gru", "GRU", "784x12"],
                                         ["fc", "Linear", "10"]]


@needs_data
@pytest.mark.parametrize("batch_size", [128, 16], ids=["one-batch", "batches"])  # 92 stimuli
def test_hit_scores_of_tuple_layers_equal_a_plain_hook(data_dir, model, batch_size):
    """Through ``ba.score`` (the stream, on a helper thread): the activations the benchmark
    scores are the plain hook's ``output[0]``, bit for bit, and so are the scores."""
    bench = ba.load_benchmark(HIT, n_bootstrap=20, data_dir=data_dir)
    seen: dict[str, np.ndarray] = {}
    score_layer = bench.score_layer

    def spy(layer: str, activations):
        seen[layer] = np.array(activations.values)
        return score_layer(layer, activations)

    bench.score_layer = spy
    res = ba.score(model, bench, layers=TUPLE_LAYERS, batch_size=batch_size, device="cpu")
    stim, _ = bench.recording(model)
    x = torch.stack([model.preprocess(stim.image(i)) for i in range(len(stim))])
    axes = {n: model.layer_info[n].batch_axis for n in TUPLE_LAYERS}
    ref = hooked(model.module, x, TUPLE_LAYERS, batch_size, axes)
    plain = ba.load_benchmark(HIT, n_bootstrap=20, data_dir=data_dir)
    table = res.table.set_index("layer")
    assert list(table.index) == TUPLE_LAYERS
    for n in TUPLE_LAYERS:
        assert np.array_equal(seen[n], ref[n]), n
        assert table.loc[n, "raw"] == plain.score_features(ref[n])["raw"]


NO_TENSOR_SOURCE = '''
from torch import nn


class Dict(nn.Module):
    def forward(self, h):
        return {"h": h}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 8, 8)
        self.as_dict = Dict()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.as_dict(self.conv(x))["h"].mean((2, 3)))


def build():
    return Net()
'''


@needs_data
def test_cli_score_of_a_module_with_no_tensor_says_why(tmp_path, data_dir):
    from brainalign.cli import main

    path = tmp_path / "dictnet.py"
    path.write_text(NO_TENSOR_SOURCE)
    r = CliRunner().invoke(main, ["score", "--model", f"file:{path}:build", "--layers", "as_dict",
                                  "--benchmark", HIT, "--n-bootstrap", "10", "--data-dir", str(data_dir),
                                  "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output  # every model failed
    assert "Layer 'as_dict' of model" in r.output and "returns a dict, not a tensor" in r.output, r.output


def test_zoo_lstm_rows_keeps_its_default_layers_and_records_lstm_as_its_sequence():
    m = ba.load_model("zoo:lstm_rows", input_size=16, seed=0)
    assert m.layers == ["sequence", "last", "fc"]  # as before: `lstm` would repeat `sequence`
    assert m.all_layers == ["lstm", "sequence", "last", "fc"]
    acts = ba.extract(m, torch.randn(3, 3, 16, 16), ["lstm", "sequence"], device="cpu")
    assert np.array_equal(acts["lstm"].values, acts["sequence"].values)
