"""The zoo's architectures: layers, time steps, copies, and each scored end to end on hIT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

import brainalign as ba
from brainalign.errors import CheckpointMismatchError, UnknownModelError
from tests.conftest import needs_data
from tests.models_helpers import few_bootstraps, one_thread


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def hit_fast(hit_benchmark):
    return few_bootstraps(hit_benchmark)

# (zoo name, options, layers scored): a few layers each and small inputs keep this fast.
ARCHS = [
    ("mlp", {}, ["fc1", "fc3"]),
    ("lenet5", {}, ["conv2", "fc2"]),
    ("alexnet", {}, ["features.10", "classifier.5"]),
    ("vgg11", {}, ["features.14", "classifier.1"]),
    ("resnet", {}, ["layer2.0", "fc"]),
    ("gru_rows", {"input_size": 16}, ["cell.t7", "cell.t15"]),  # rows 0-5 are the placement background
    ("lstm_rows", {"input_size": 16}, ["last"]),
    ("vit", {"token": "mean", "depth": 2}, ["tokens.0", "tokens.1"]),
    ("conv_autoencoder", {}, ["encoder.4", "encoder.8"]),
    ("cornet_rt", {"times": 2}, ["IT.t0", "IT.t1"]),
]


@needs_data
@pytest.mark.parametrize(("name", "options", "layers"), ARCHS, ids=[a[0] for a in ARCHS])
def test_each_architecture_scores_on_hit(hit_fast, name, options, layers):
    model = ba.load_model(f"zoo:{name}", seed=0, **options)
    result = ba.score(model, hit_fast, layers=layers)
    t = result.table
    assert list(t["layer"]) == layers
    assert t["raw"].between(-1, 1).all() and np.isfinite(t["normalised"]).all()
    assert (t["weights_hash"] == model.weights_hash).all() and (t["n_stimuli"] == 92).all()
    # n_bootstrap counts the finite samples actually used (a constant-RDM sample is dropped)
    assert t["n_bootstrap"].between(40, 50).all() and t["normalised_ci_low"].lt(t["normalised_ci_high"]).all()


@needs_data
def test_a_time_step_scores_as_its_own_rdm_against_scipy(hit_fast):
    hit_benchmark = hit_fast
    model = ba.load_model("zoo:cornet_rt", times=3, seed=1)
    placed, _ = hit_benchmark.place(model)  # the stimuli as the benchmark shows them
    acts = ba.extract(model, placed, layers=["V4.t0", "V4.t2"])
    subj = hit_benchmark.subject_rdms.values
    iu = np.triu_indices(92, 1)
    for layer in ("V4.t0", "V4.t2"):
        ref = np.mean([spearmanr(pdist(acts[layer].values, "correlation"), s[iu]).statistic
                       for s in subj])
        got = ba.score(model, hit_benchmark, layers=[layer]).table["raw"].iloc[0]
        assert got == pytest.approx(ref, abs=1e-9)
    # Recurrence changes the representation: step 2 is not step 0.
    assert not np.allclose(acts["V4.t0"].values, acts["V4.t2"].values)


def _manual_cornet_states(net, x):
    """Every area's output at every step, by a loop written here, not by hooks."""
    out, states = {}, dict.fromkeys(net.AREAS)
    for t in range(net.times):
        inp = x
        for a in net.AREAS:
            states[a] = getattr(net, a)(inp, states[a])
            out[f"{a}.t{t}"] = states[a].clone()
            inp = states[a]
    return out


def test_recurrent_time_steps_equal_a_manual_unroll():
    model = ba.load_model("zoo:cornet_rt", times=3, width=8)
    info = model.layer_info
    assert info["V1"].calls == 3
    assert [info[f"V2.t{k}"].time_step for k in range(3)] == [0, 1, 2]
    # Default layers are the areas' steps in the order their outputs exist.
    assert model.layers[:5] == ["V1.t0", "V2.t0", "V4.t0", "IT.t0", "V1.t1"]
    x = torch.randn(5, 3, 32, 32)
    acts = ba.extract(model, x, layers=["V1.t0", "V1.t1", "IT.t2", "V1"], batch_size=2)
    with torch.inference_mode():
        ref = _manual_cornet_states(model.module, x)
    for name in ("V1.t0", "V1.t1", "IT.t2"):
        np.testing.assert_allclose(acts[name].values, ref[name].reshape(5, -1).numpy(), atol=1e-5)
    # The plain name is the last call, as before.
    np.testing.assert_allclose(acts["V1"].values, ref["V1.t2"].reshape(5, -1).numpy(), atol=1e-5)


def test_gru_steps_over_rows_equal_manual_cell_loop():
    model = ba.load_model("zoo:gru_rows", input_size=8, in_channels=1, hidden=6)
    x = torch.randn(3, 1, 8, 8)
    acts = ba.extract(model, x, layers=["cell.t0", "cell.t7"])
    cell = model.module.cell
    h = torch.zeros(3, 6)
    steps = []
    with torch.inference_mode():
        for r in range(8):
            h = cell(x[:, 0, r], h)
            steps.append(h.clone())
    np.testing.assert_allclose(acts["cell.t0"].values, steps[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(acts["cell.t7"].values, steps[7].numpy(), atol=1e-6)


def test_vit_token_choice():
    x = torch.randn(4, 3, 16, 16)
    kw = {"input_size": 16, "patch": 4, "dim": 8, "heads": 2, "depth": 2, "seed": 3}
    full = ba.extract(ba.load_model("zoo:vit", token="all", **kw), x, layers=["blocks.1", "tokens.1"])
    tokens = full["blocks.1"].values.reshape(4, 17, 8)  # CLS + 16 patches
    np.testing.assert_allclose(full["tokens.1"].values, tokens.reshape(4, -1), atol=1e-6)
    cls = ba.extract(ba.load_model("zoo:vit", token="cls", **kw), x, layers=["tokens.1"])["tokens.1"]
    mean = ba.extract(ba.load_model("zoo:vit", token="mean", **kw), x, layers=["tokens.1"])["tokens.1"]
    np.testing.assert_allclose(cls.values, tokens[:, 0], atol=1e-6)
    np.testing.assert_allclose(mean.values, tokens[:, 1:].mean(1), atol=1e-5)
    with pytest.raises(ValueError, match="token mode"):
        ba.load_model("zoo:vit", token="max")


def test_zoo_inplace_relu_does_not_corrupt_recorded_conv_output():
    model = ba.load_model("zoo:lenet5", in_channels=1)  # relu1 is in place, right after conv1
    x = torch.randn(4, 1, 32, 32)
    acts = ba.extract(model, x, layers=["conv1", "relu1"])
    with torch.inference_mode():
        ref = model.module.conv1(x)
    assert (acts["conv1"].values < 0).any()
    np.testing.assert_allclose(acts["conv1"].values, ref.reshape(4, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(acts["relu1"].values, ref.clamp(min=0).reshape(4, -1).numpy(), atol=1e-6)


def test_layer_names_are_stable_across_loads_and_seeds():
    for name in ("resnet", "vit", "cornet_rt", "gru_rows"):
        a, b = ba.load_model(f"zoo:{name}", seed=0), ba.load_model(f"zoo:{name}", seed=9)
        assert a.all_layers == b.all_layers and a.layers == b.layers
        assert a.weights_hash != b.weights_hash


def test_zoo_checkpoint_round_trip_and_mismatch(tmp_path):
    src = ba.load_model("zoo:lenet5", seed=4)
    good = tmp_path / "lenet.pt"
    torch.save({"state_dict": src.module.state_dict(), "meta": {"epoch": 1}}, good)
    assert ba.load_model("zoo:lenet5", weights=str(good)).weights_hash == src.weights_hash
    assert ba.load_model("file:zoo:lenet5", weights=str(good)).weights_hash == src.weights_hash
    with pytest.raises(CheckpointMismatchError) as info:
        ba.load_model("zoo:alexnet", weights=str(good))
    assert "conv1.weight" in info.value.unexpected and "features.0.weight" in info.value.missing


def build_tiny_net(width: int = 4):
    """An entry point for the ``file:module:callable`` form."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.ReLU(), torch.nn.Flatten())


def test_file_entry_point_with_checkpoint(tmp_path):
    m = ba.load_model("file:tests.test_models_zoo:build_tiny_net", input_size=8, width=2, seed=1)
    assert m.layers == ["0", "1"] and m.layer_info["0"].output_shape == (2, 6, 6)
    path = tmp_path / "tiny.pt"
    torch.save(m.module.state_dict(), path)
    again = ba.load_model("file:tests.test_models_zoo:build_tiny_net", weights=str(path),
                          input_size=8, width=2, seed=2)
    assert again.weights_hash == m.weights_hash
    with pytest.raises(CheckpointMismatchError):
        ba.load_model("file:tests.test_models_zoo:build_tiny_net", weights=str(path), width=3)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownModelError, match="zoo:lenet5"):
        ba.load_model("zoo:lenet")
    with pytest.raises(UnknownModelError, match="zoo:"):
        ba.load_model("zo:lenet5")
    with pytest.raises(UnknownModelError):
        ba.load_model("file:tests.test_models_zoo:no_such_function")
    with pytest.raises(TypeError, match="accepts"):
        ba.load_model("zoo:lenet5", widht=3)


def test_forward_failure_on_stimuli_names_layer_and_shape():
    from brainalign.errors import ForwardError

    model = ba.load_model("zoo:mlp", input_size=16)
    with pytest.raises(ForwardError) as info:
        ba.extract(model, torch.zeros(2, 3, 32, 32), layers=["fc3"])  # 32 px into a 16 px MLP
    assert "'fc1'" in str(info.value) and "(2, 3, 32, 32)" in str(info.value)


def test_reused_inplace_relu_each_call_is_its_own_layer():
    model = ba.load_model("zoo:resnet", width=4, seed=2)
    info = model.layer_info
    assert info["layer1.0.relu"].calls == 2 and not info["layer1.0.relu.t0"].candidate
    assert "layer1.0.relu.t0" not in model.layers  # steps of inner modules are not scored by default
    x = torch.randn(3, 3, 32, 32)
    acts = ba.extract(model, x, layers=["layer1.0.relu.t0", "layer1.0.relu.t1", "layer1.0"])
    blk = model.module.layer1[0]
    with torch.inference_mode():
        stem = model.module.relu(model.module.bn1(model.module.conv1(x)))
        first = torch.relu(blk.bn1(blk.conv1(stem)))
        out = blk(stem)
    np.testing.assert_allclose(acts["layer1.0.relu.t0"].values, first.reshape(3, -1).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["layer1.0.relu.t1"].values, out.reshape(3, -1).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["layer1.0"].values, out.reshape(3, -1).numpy(), atol=1e-5)
