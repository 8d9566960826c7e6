"""The content-addressed activation cache: keys follow content, corrupt entries are recomputed."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from brainalign.activations import ActivationCache, RandomProjection, extract, stream_layers
from brainalign.data import StimulusSet
from brainalign.models.preprocess import ImageTransform
from tests.batch_models import tiny_cnn

LAYERS = ["0", "2", "6"]


@pytest.fixture
def stimuli() -> StimulusSet:
    rng = np.random.default_rng(0)
    return StimulusSet.from_arrays("noise", rng.integers(0, 256, (10, 40, 40, 3), dtype=np.uint8))


def _run(model, stimuli, cache, **kw):
    return {n: da for n, da in stream_layers(model, stimuli, LAYERS, cache=cache, batch_size=4, **kw)}


def _entries(cache: ActivationCache) -> list:
    return sorted(cache.root.rglob("*.npy"))


def test_second_run_reads_the_cache_and_equals_a_fresh_extraction(tmp_path, stimuli):
    cache = ActivationCache(tmp_path)
    first = _run(tiny_cnn(), stimuli, cache)
    assert (cache.hits, cache.misses) == (0, 3) and len(_entries(cache)) == 3
    again = ActivationCache(tmp_path)
    second = _run(tiny_cnn(), stimuli, again)
    assert (again.hits, again.misses) == (3, 0)
    fresh = extract(tiny_cnn(), stimuli, LAYERS, batch_size=4)
    for n in LAYERS:
        np.testing.assert_array_equal(second[n].values, fresh[n].values)
        np.testing.assert_array_equal(first[n].values, fresh[n].values)
        assert list(second[n]["stimulus_id"].values) == list(stimuli.ids)
        assert second[n].attrs["shape"] == fresh[n].attrs["shape"]


def test_renaming_hits_but_any_change_of_content_misses(tmp_path, stimuli):
    cache = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, cache)

    renamed = tiny_cnn()
    renamed.name = "a-completely-different-name"
    c = ActivationCache(tmp_path)
    _run(renamed, stimuli, c)
    assert c.hits == 3  # the name is not content

    other_weights = tiny_cnn(seed=1)  # same name, same architecture, other weights
    other_weights.name = tiny_cnn().name
    c = ActivationCache(tmp_path)
    out = _run(other_weights, stimuli, c)
    assert c.hits == 0
    np.testing.assert_array_equal(out["6"].values, extract(other_weights, stimuli, "6", batch_size=4)["6"].values)

    changed_pre = tiny_cnn()
    changed_pre.preprocess = ImageTransform(32, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    c = ActivationCache(tmp_path)
    _run(changed_pre, stimuli, c)
    assert c.hits == 0

    in_place = tiny_cnn()  # weights edited after load: the hash is of the state dict itself
    with torch.no_grad():
        in_place.module[0].weight.mul_(2)
    in_place._weights_hash = None
    c = ActivationCache(tmp_path)
    _run(in_place, stimuli, c)
    assert c.hits == 0

    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli.subset([1, 0, *range(2, 10)]), c)  # same images, other order
    assert c.hits == 0

    pixels = np.stack([stimuli.image(i) for i in range(10)])
    pixels[3, 0, 0, 0] ^= 1  # one pixel of one image
    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), StimulusSet.from_arrays("noise", pixels), c)
    assert c.hits == 0

    # A reducer is part of the key; layer "6" (10 features) passes a 16-wide projection unchanged,
    # so it is its full-feature entry.
    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, c, reducers=RandomProjection(16, seed=0))
    assert c.hits == 1
    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, c, reducers=RandomProjection(16, seed=0))
    assert c.hits == 3
    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, c, reducers=RandomProjection(16, seed=1))
    assert c.hits == 1  # another seed is another projection (of the two projected layers)


def test_corrupt_entries_are_recomputed_not_trusted(tmp_path, stimuli, caplog):
    cache = ActivationCache(tmp_path)
    good = _run(tiny_cnn(), stimuli, cache)
    npys = _entries(cache)
    # 1: a flipped byte in the array's data
    raw = bytearray(npys[0].read_bytes())
    raw[-5] ^= 0xFF
    npys[0].write_bytes(bytes(raw))
    # 2: a truncated array
    npys[1].write_bytes(npys[1].read_bytes()[:100])
    # 3: a sidecar that is not JSON (a write cut short)
    side = npys[2].with_suffix(".json")
    side.write_text(side.read_text()[:20])
    c = ActivationCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="brainalign.activations.cache"):
        again = _run(tiny_cnn(), stimuli, c)
    assert c.corrupt == 3 and c.hits == 0
    assert sum("corrupt" in r.message for r in caplog.records) == 3
    for n in LAYERS:
        np.testing.assert_array_equal(again[n].values, good[n].values)
    c = ActivationCache(tmp_path)  # recomputed entries were written back, whole
    _run(tiny_cnn(), stimuli, c)
    assert (c.hits, c.corrupt) == (3, 0)


def test_an_array_without_its_sidecar_is_a_miss_and_no_temp_file_is_read(tmp_path, stimuli):
    cache = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, cache)
    for side in tmp_path.rglob("*.json"):
        info = json.loads(side.read_text())
        assert set(info) >= {"sha256", "shape", "stimulus_ids_sha256", "key"}
        assert info["key"]["model"]["weights_hash"] == tiny_cnn().weights_hash
        side.unlink()  # as if killed between the array's and the sidecar's rename
    (next(iter(tmp_path.iterdir())) / ".x.npy.123.tmp").write_bytes(b"half")
    c = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, c)
    assert (c.hits, c.misses, c.corrupt) == (0, 3, 0)


def test_a_reducer_that_cannot_describe_itself_is_never_cached(tmp_path, stimuli):
    cache = ActivationCache(tmp_path)
    _run(tiny_cnn(), stimuli, cache, reducers=lambda t: t.reshape(t.shape[0], -1)[:, :5])
    assert _entries(cache) == [] and cache.hits == 0
