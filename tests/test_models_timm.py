"""``timm:`` models: layers, preprocessing from pretrained_cfg, checkpoints, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import brainalign as ba
from brainalign.errors import CheckpointMismatchError, UnknownModelError
from tests.conftest import needs_data
from tests.models_helpers import few_bootstraps, one_thread

timm = pytest.importorskip("timm")


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


def test_timm_model_layers_and_preprocessing():
    m = ba.load_model("timm:test_vit", seed=0)
    cfg = timm.data.resolve_data_config({}, model=m.module)
    assert m.input_size == cfg["input_size"][-1] == 160
    assert m.extra["preprocess"]["interpolation"] == cfg["interpolation"]
    assert m.extra["preprocess"]["resize_size"] == int(160 / cfg["crop_pct"])
    assert [n for n in m.layers if n.startswith("blocks.")] == [f"blocks.{i}" for i in range(len(m.module.blocks))]
    # Same transform as timm's own eval pipeline (up to uint8 rounding of PIL's resize).
    from PIL import Image

    yy, xx = np.mgrid[0:200, 0:240] / 40.0  # a smooth image: resampling filters agree on it
    img = (127.5 * (1 + np.stack([np.sin(xx), np.cos(yy), np.sin(xx + yy)], -1))).astype(np.uint8)
    ref = timm.data.create_transform(**cfg)(Image.fromarray(img))
    ours = m.preprocess(img)
    assert ours.shape == ref.shape == (3, 160, 160)
    assert (ours - ref).abs().mean() < 0.02
    assert ba.load_model("timm:test_vit", seed=0).all_layers == m.all_layers


def test_timm_checkpoint_round_trip_and_mismatch(tmp_path):
    src = ba.load_model("timm:test_resnet", seed=3)
    path = tmp_path / "r.pth"
    torch.save(src.module.state_dict(), path)
    assert ba.load_model("timm:test_resnet", weights=str(path)).weights_hash == src.weights_hash
    assert ba.load_model("timm:test_resnet", seed=4).weights_hash != src.weights_hash
    with pytest.raises(CheckpointMismatchError) as info:
        ba.load_model("timm:test_vit", weights=str(path))
    assert info.value.missing and info.value.unexpected


def test_timm_unknown_name_suggests():
    with pytest.raises(UnknownModelError, match="timm:resnet18"):
        ba.load_model("timm:resnet18x")


@needs_data
def test_timm_model_scores_on_hit(hit_benchmark):
    m = ba.load_model("timm:test_resnet")
    res = ba.score(m, few_bootstraps(hit_benchmark), layers=["layer2.0", "layer4.0"], batch_size=46)
    assert list(res.table["layer"]) == ["layer2.0", "layer4.0"] and res.table["raw"].between(-1, 1).all()
