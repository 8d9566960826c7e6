"""Loading models: torchvision random/pretrained/checkpoint weights, wrap, layers, preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import brainalign as ba
from brainalign.errors import CheckpointError, CheckpointMismatchError, UnknownModelError, WeightsUnavailableError
from brainalign.models.torchvision_source import hub_checkpoint_path


@pytest.mark.parametrize(
    ("name", "first", "last", "n_layers"),
    [("alexnet", "features.0", "classifier.6", 19),
     ("vgg11", "features.0", "classifier.6", 27),
     ("resnet18", "conv1", "fc", 13),
     ("vit_b_16", "conv_proj", "heads.head", 15)],
)
def test_torchvision_models_load_with_layers_in_forward_order(name, first, last, n_layers):
    m = ba.load_model(f"torchvision:{name}", weights="random")
    assert m.layers[0] == first and m.layers[-1] == last
    assert len(m.layers) == n_layers
    assert m.layer_info[last].output_shape == (1000,)
    assert m.input_size == 224


def test_resnet18_has_21_conv_and_linear_layers():
    m = ba.load_model("torchvision:resnet18")
    assert len(m.layers_of_type(nn.Conv2d, nn.Linear)) == 21
    # The block-level ReLU runs twice per block: recorded at its last call.
    assert m.layer_info["layer1.0.relu"].calls == 2


def test_random_weights_are_reproducible_from_the_seed_and_leave_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = ba.load_model("torchvision:alexnet", seed=1)
    after = torch.rand(1)
    b = ba.load_model("torchvision:alexnet", seed=1)
    c = ba.load_model("torchvision:alexnet", seed=2)
    assert torch.equal(before, after)
    assert a.weights_hash == b.weights_hash != c.weights_hash


def test_preprocessing_follows_the_weights_transforms():
    import torchvision

    m = ba.load_model("torchvision:resnet18")
    preset = torchvision.models.ResNet18_Weights.DEFAULT.transforms()
    img = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    ours = m.preprocess(img)
    ref = preset(torch.from_numpy(img).permute(2, 0, 1))
    assert ours.shape == ref.shape == (3, 224, 224)
    assert torch.allclose(ours, ref, atol=0.05)  # uint8 rounding inside torchvision's resize
    assert m.extra["preprocess"]["resize_size"] == 256


def test_checkpoint_round_trip_and_weights_only(tmp_path):
    src = ba.load_model("torchvision:resnet18", seed=7)
    path = tmp_path / "resnet18.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.module.state_dict().items()},
                "epoch": 3}, path)
    m = ba.load_model("torchvision:resnet18", weights=str(path))
    assert m.weights_hash == src.weights_hash
    assert m.weights == str(path)


class Custom:
    """An arbitrary class: loading with weights_only must refuse to instantiate it."""


def test_checkpoint_that_needs_unpickling_is_refused(tmp_path):
    torch.save({"payload": Custom()}, tmp_path / "custom.pt")
    with pytest.raises(CheckpointError, match="Python objects beyond tensors") as err:
        ba.load_model("torchvision:alexnet", weights=str(tmp_path / "custom.pt"))
    assert "weights_only" not in str(err.value)


def test_checkpoint_with_wrong_keys_lists_missing_unexpected_and_other_shapes(tmp_path):
    """Every kind of mismatch is named at once, each under its own name (a shape mismatch was
    listed as an "unexpected key", and not at all when keys were missing too)."""
    state = ba.load_model("torchvision:alexnet").module.state_dict()
    state.pop("features.0.weight")
    state["extra.weight"] = torch.zeros(1)
    state["features.3.weight"] = torch.zeros(96, 64, 5, 5)  # the model's: (192, 64, 5, 5)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as info:
        ba.load_model("torchvision:alexnet", weights=str(path))
    assert info.value.missing == ["features.0.weight"] and info.value.unexpected == ["extra.weight"]
    assert info.value.shapes == ["features.3.weight (checkpoint (96, 64, 5, 5) vs model (192, 64, 5, 5))"]
    msg = str(info.value)
    assert ("missing keys [features.0.weight]; unexpected keys [extra.weight]; other shapes "
            "[features.3.weight (checkpoint (96, 64, 5, 5) vs model (192, 64, 5, 5))]") in msg
    # Only shapes wrong: no empty "missing" / "unexpected" lists.
    good = ba.load_model("torchvision:alexnet").module.state_dict()
    good["features.3.weight"] = torch.zeros(96, 64, 5, 5)
    torch.save(good, path)
    with pytest.raises(CheckpointMismatchError, match=r"alexnet'?: other shapes \[features.3.weight") as info:
        ba.load_model("torchvision:alexnet", weights=str(path))
    assert not info.value.missing and not info.value.unexpected


def test_pretrained_without_network_names_the_file_and_how_to_supply_it(monkeypatch):
    # Route every request through a closed local port: the download fails as it does offline.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailableError) as info:
        ba.load_model("torchvision:alexnet", weights="pretrained")
    msg = str(info.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "hub/checkpoints" in msg and "weights=" in msg


def test_pretrained_from_the_torch_hub_cache():
    import torchvision

    url = torchvision.models.AlexNet_Weights.DEFAULT.url
    path = hub_checkpoint_path(url)  # under the test's TORCH_HOME
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = ba.load_model("torchvision:alexnet", seed=5)
    torch.save(ref.module.state_dict(), path)
    m = ba.load_model("torchvision:alexnet", weights="pretrained")
    assert m.weights == "pretrained" and m.weights_hash == ref.weights_hash


def test_unknown_model_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="torchvision:alexnet"):
        ba.load_model("torchvision:alexnett")
    with pytest.raises(UnknownModelError):
        ba.load_model("nosuchsource:x")


def test_wrap_any_module_grayscale():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 30 * 30, 5))
    m = ba.wrap(net, name="tiny", input_size=32, in_channels=1)
    assert m.layers == ["0", "1", "3"]  # Flatten is a no-op view, not a recording site
    x = m.preprocess(np.zeros((64, 64), dtype=np.uint8))
    assert x.shape == (1, 32, 32)
    assert m.provenance()["model"] == "tiny"
