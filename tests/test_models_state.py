"""Recording never changes the user's module; train mode on request; outputs whose batch axis is
not first; the cache key covers the module's code; checkpoint and file: errors; one default
normalisation recorded in provenance; `brainalign list sources` and model suggestions."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import brainalign as ba
from brainalign.activations import ActivationCache, stream_layers
from brainalign.activations.cache import model_fingerprint
from brainalign.cli import main
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import CheckpointError, ForwardError, ModelImportError, UnknownModelError

REPO = Path(__file__).resolve().parents[1]


def _bn_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                         nn.Flatten(), nn.Linear(4 * 14 * 14, 6))


def _images(n: int = 6) -> StimulusSet:
    rng = np.random.default_rng(3)
    return StimulusSet.from_arrays("s", [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(n)])


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# --- mode and state ------------------------------------------------------------------------

def test_discovery_and_extraction_leave_a_train_mode_module_as_it_was():
    net = _bn_net()
    net.train()
    before = _state(net)
    model = ba.wrap(net, "bn", input_size=16)
    assert model.layers  # discovery: a blank forward pass
    acts = ba.extract(model, _images(), layers=["1", "5"])
    assert net.training and all(m.training for m in net.modules())
    after = _state(net)
    for k in before:  # running_mean / running_var / num_batches_tracked, weights
        assert torch.equal(before[k], after[k]), k
    assert model.provenance()["mode"] == "eval" and acts["5"].attrs["mode"] == "eval"
    ref = copy.deepcopy(net).eval()
    x = torch.stack([model.preprocess(_images().image(i)) for i in range(6)])
    with torch.no_grad():
        np.testing.assert_allclose(acts["5"].values, ref(x).numpy(), atol=1e-5)


def test_train_mode_on_request_uses_batch_statistics_and_restores_buffers():
    net = _bn_net().eval()
    before = _state(net)
    model = ba.wrap(net, "bn", input_size=16, mode="train")
    acts = ba.extract(model, _images(), layers=["1"], batch_size=64)
    assert not net.training
    for k, v in _state(net).items():
        assert torch.equal(before[k], v), k
    x = torch.stack([model.preprocess(_images().image(i)) for i in range(6)])
    ref = copy.deepcopy(net).train()
    with torch.no_grad():
        expect = ref[1](ref[0](x))  # BatchNorm on this batch's statistics
    np.testing.assert_allclose(acts["1"].values, expect.reshape(6, -1).numpy(), atol=1e-5)
    assert model.provenance()["mode"] == "train" and acts["1"].attrs["mode"] == "train"
    eval_acts = ba.extract(model, _images(), layers=["1"], mode="eval")["1"].values
    assert not np.allclose(eval_acts, acts["1"].values)


# --- batch axis ----------------------------------------------------------------------------

class TokensFirst(nn.Module):
    """Images → 17 tokens, run through two tokens-first transformer blocks (T, B, D)."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.embed = nn.Conv2d(3, d, 4, stride=4)  # 16 px → 4×4 = 16 patches
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(d, 2, 16, dropout=0.0, batch_first=False)
                                      for _ in range(2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).permute(2, 0, 1)  # (16, B, D)
        t = torch.cat([self.cls.expand(1, t.shape[1], -1), t], 0)  # (17, B, D)
        return self.blocks(t)


def test_tokens_first_layers_are_recorded_per_stimulus():
    torch.manual_seed(0)
    net = TokensFirst()
    model = ba.wrap(net, "tf", input_size=16)
    info = model.layer_info["blocks.1"]
    assert info.batch_axis == 1 and info.output_shape == (17, 8)
    stim = _images(10)
    acts = ba.extract(model, stim, layers=["blocks.0", "blocks.1"], batch_size=4)
    assert acts["blocks.1"].shape == (10, 17 * 8) and acts["blocks.1"].attrs["batch_axis"] == 1
    x = torch.stack([model.preprocess(stim.image(i)) for i in range(10)])
    with torch.no_grad():
        net.eval()
        for i in range(10):  # one stimulus at a time: the reference rows
            ref = net(x[i:i + 1])[:, 0]  # (17, D)
            np.testing.assert_allclose(acts["blocks.1"].values[i], ref.reshape(-1).numpy(), atol=1e-4)


class Broadcast(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pos(torch.arange(5))  # (5, 3): no batch axis
        return self.head(x.mean((2, 3)) + p.mean(0))


def test_a_layer_without_batch_axis_is_refused_naming_it():
    model = ba.wrap(Broadcast(), "bc", input_size=8)
    assert "pos" not in model.layers and model.layer_info["pos"].batch_axis is None
    with pytest.raises(ForwardError, match="'pos'.*no axis of the batch size"):
        ba.extract(model, _images(3), layers=["pos"])
    assert ba.extract(model, _images(3), layers=["head"])["head"].shape == (3, 2)


# --- cache key covers the code -------------------------------------------------------------

_REV = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(torch.{act}(self.fc(x.flatten(1))))
"""


def _revision(tmp_path: Path, act: str) -> nn.Module:
    import importlib.util

    d = tmp_path / act
    d.mkdir()
    (d / "revnet.py").write_text(_REV.format(act=act))
    spec = importlib.util.spec_from_file_location("revnet", d / "revnet.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["revnet"] = mod
    try:
        spec.loader.exec_module(mod)
        return mod.Net()
    finally:
        sys.modules.pop("revnet", None)
        sys.modules["revnet"] = mod  # inspect.getsource finds the class through its module


def test_a_changed_forward_misses_the_cache(tmp_path):
    a = _revision(tmp_path, "relu")
    b = _revision(tmp_path, "nn.functional.gelu")
    b.load_state_dict(a.state_dict())
    assert repr(a) == repr(b) and type(a).__qualname__ == type(b).__qualname__
    ma = ba.wrap(a, "net", input_size=8)
    mb = ba.wrap(b, "net", input_size=8)
    assert ma.weights_hash == mb.weights_hash
    stim = _images(5)
    assert model_fingerprint(ma, stim) != model_fingerprint(mb, stim)
    cache = ActivationCache(tmp_path / "cache")
    first = dict(stream_layers(ma, stim, ["out"], cache=cache))["out"].values
    second = dict(stream_layers(mb, stim, ["out"], cache=cache))["out"].values
    assert cache.hits == 0
    fresh = ba.extract(mb, stim, layers=["out"])["out"].values
    np.testing.assert_allclose(second, fresh, atol=1e-6)
    assert not np.allclose(first, second)


def test_code_without_source_needs_a_declared_revision(tmp_path):
    ns: dict = {}
    exec(textwrap.dedent(_REV.format(act="relu")), ns)  # no source file: inspect cannot read it
    net = ns["Net"]()
    stim = _images(3)
    assert model_fingerprint(ba.wrap(net, "n", input_size=8), stim) is None  # never cached
    k1 = model_fingerprint(ba.wrap(net, "n", input_size=8, revision="v1"), stim)
    k2 = model_fingerprint(ba.wrap(net, "n", input_size=8, revision="v2"), stim)
    assert k1 is not None and k1 != k2
    cache = ActivationCache(tmp_path / "c")
    dict(stream_layers(ba.wrap(net, "n", input_size=8), stim, ["fc"], cache=cache))
    assert not any((tmp_path / "c").rglob("*.npy"))


# --- checkpoints ---------------------------------------------------------------------------

class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _bad_checkpoints(tmp_path: Path) -> dict[str, Path]:
    ok = tmp_path / "ok.pt"
    torch.save(ba.load_model("zoo:lenet5").module.state_dict(), ok)
    files = {"empty": tmp_path / "empty.pt", "truncated": tmp_path / "trunc.pt",
             "text": tmp_path / "text.pt", "code": tmp_path / "code.pt"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(ok.read_bytes()[: ok.stat().st_size // 2])
    files["text"].write_text("these are not weights\n")
    with open(files["code"], "wb") as f:
        pickle.dump({"w": _Payload(str(tmp_path / "ran"))}, f)
    return files


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "code"])
def test_unreadable_checkpoints_are_named_errors(tmp_path, kind):
    path = _bad_checkpoints(tmp_path)[kind]
    expect = {"empty": "empty", "truncated": "truncated", "text": "not a PyTorch checkpoint",
              "code": "beyond tensors"}[kind]
    for load in (lambda: ba.load_model("zoo:lenet5", weights=str(path)),
                 lambda: ba.load_model(f"file:{path}")):
        with pytest.raises(CheckpointError, match=expect) as err:
            load()
        assert "weights_only" not in str(err.value) and err.value.__cause__ is None
    assert not (tmp_path / "ran").exists()  # the pickle's code never ran
    res = CliRunner().invoke(main, ["layers", "zoo:lenet5", "--weights", str(path)])
    assert res.exit_code == 2 and "Aborted" not in res.output and expect in res.output


# --- file: models --------------------------------------------------------------------------

MYNET = """
from torch import nn


def build(width=4):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.Flatten(), nn.Linear(width * 14 * 14, 5))
"""


def test_file_model_from_the_working_directory_and_a_py_path(tmp_path, monkeypatch):
    (tmp_path / "mynet_wd.py").write_text(MYNET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    a = ba.load_model("file:mynet_wd:build", input_size=16)
    b = ba.load_model("file:./mynet_wd.py:build", input_size=16)
    c = ba.load_model(f"file:{tmp_path / 'mynet_wd.py'}:build", input_size=16, seed=0)
    assert a.layers == b.layers == c.layers and a.weights_hash == c.weights_hash
    with pytest.raises(ModelImportError, match="name the callable.*'build'"):
        ba.load_model("file:./mynet_wd.py")
    with pytest.raises(UnknownModelError, match="file:mynet_wd:build"):
        ba.load_model("file:mynet_wd:biuld")


def test_file_model_shows_the_real_import_error(tmp_path, monkeypatch):
    (tmp_path / "broken_net.py").write_text("import not_a_real_package_xyz\n\ndef build():\n    pass\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelImportError, match="No module named 'not_a_real_package_xyz'.*line 1"):
        ba.load_model("file:broken_net:build")
    with pytest.raises(ModelImportError, match="no module 'nowhere_net'.*working directory"):
        ba.load_model("file:nowhere_net:build")


def test_file_model_from_the_cli_in_its_folder(tmp_path):
    (tmp_path / "mynet.py").write_text(MYNET)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # -P: the working directory is not put on sys.path (as for the `brainalign` console script)
    out = subprocess.run([sys.executable, "-P", "-m", "brainalign.cli", "layers", "file:mynet:build"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "0" and "Unknown model" not in out.stderr


# --- one default normalisation, recorded -----------------------------------------------------

def test_wrap_and_file_share_the_default_normalisation(tmp_path, monkeypatch):
    (tmp_path / "mynet_norm.py").write_text(MYNET)
    monkeypatch.chdir(tmp_path)
    f = ba.load_model("file:mynet_norm:build", input_size=16)
    w = ba.wrap(f.module, "same", input_size=16)
    assert f.preprocessing == w.preprocessing
    assert "mean=0.485,0.456,0.406 std=0.229,0.224,0.225" in w.provenance()["preprocessing"]
    stim = _images(3)
    np.testing.assert_array_equal(ba.extract(f, stim, layers=["3"])["3"].values,
                                  ba.extract(w, stim, layers=["3"])["3"].values)
    tv = ba.load_model("torchvision:alexnet")
    assert tv.provenance()["preprocessing"].startswith("resize=256 bilinear crop=224")


def test_trained_checkpoint_keeps_its_training_normalisation(tmp_path):
    pytest.importorskip("sklearn")
    res = ba.train("mlp", tmp_path / "run", epochs=0, input_size=8)
    m = ba.load_model(f"file:{res.checkpoints[-1]}")
    assert "mean=0.5,0.5,0.5" in m.preprocessing or "mean=0.5 " in m.preprocessing


# --- listing and suggestions ---------------------------------------------------------------

def test_unknown_source_suggests_real_ids_once_and_lists_sources():
    res = CliRunner().invoke(main, ["layers", "foo:alexnet"])
    assert res.exit_code == 2
    first = res.output.splitlines()[0]
    assert "torchvision:alexnet, zoo:alexnet?" in first and "hf:alexnet" not in res.output
    assert first.count("zoo:alexnet") == 1
    for src in ("torchvision:<name>", "zoo:<name>", "file:", "timm:<name>", "hf:<hub id"):
        assert src in res.output


def test_list_sources_and_models():
    sources = CliRunner().invoke(main, ["list", "sources"])
    assert sources.exit_code == 0 and "file:./mynet.py:<callable>" in sources.output
    models = CliRunner().invoke(main, ["list", "models"])
    assert "torchvision:alexnet" in models.output and "hf:<hub id or folder>" in models.output
