"""Benchmarks as data: every bundled definition parses; bad input gives named errors; placement."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
import yaml

import brainalign as ba
from brainalign.benchmarks.spec import list_benchmarks, parse_benchmark
from brainalign.data.manifest import list_datasets, load_manifest
from brainalign.data.placement import place_image, place_stimuli, placement
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import BenchmarkDefinitionError, ChecksumMismatchError, StimulusError
from tests.conftest import needs_data


def test_every_bundled_benchmark_and_manifest_parses():
    ids = list_benchmarks()
    for bid in ["kriegeskorte2008.hIT-rsa", "kriegeskorte2008.mIT-rsa", "kriegeskorte2008.behavior-rsa",
                "cowley2023.V4-ridge", "antolik2016.V1-ridge", "majajhong2015.IT-ridge"]:
        assert bid in ids
    for bid in ids:
        spec = parse_benchmark(ba.benchmarks.spec.benchmark_paths()[bid])
        # Every benchmark of recorded stimuli states their size; in-silico property benchmarks
        # draw their gratings in degrees of the model's own field of view instead.
        assert spec.visual_degrees is not None or spec.kind == "v1_properties", bid
        # Generated data (the simulated V1 population) have no files, hence no manifest.
        assert spec.dataset in list_datasets() or spec.kind == "simulated_v1", bid
    for d in ["majajhong2015", "freemanziemba2013", "algonauts2019", "things_fmri", "nsd"]:
        m = load_manifest(d)
        for f in m.files.values():
            # Checksums copied from elsewhere (or none known) are marked unverified.
            assert f.verified is False and f.sha256 is None, (d, f.name)
    assert "agreement" in load_manifest("nsd").extra["access"].lower()
    assert load_manifest("majajhong2015").files["assy_dicarlo_MajajHong2015_public.nc"].sha1 == \
        "13d28ca0ce88ee550b54db3004374ae19096e9b9"


def _yaml(tmp_path, **changes):
    raw = yaml.safe_load(open(ba.benchmarks.spec.benchmark_paths()["antolik2016.V1-ridge"]).read())
    raw.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del raw[k]
    p = tmp_path / "antolik2016.V1-ridge.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_yaml_with_unknown_key_or_missing_field_names_the_file(tmp_path):
    with pytest.raises(BenchmarkDefinitionError,
                       match=r"antolik2016\.V1-ridge\.yaml: ceilng: unknown key \(did you mean 'ceiling'\?\)"):
        parse_benchmark(_yaml(tmp_path, ceilng={}))
    with pytest.raises(BenchmarkDefinitionError, match=r"antolik2016\.V1-ridge\.yaml: metric: missing field"):
        parse_benchmark(_yaml(tmp_path, metric=None))
    with pytest.raises(BenchmarkDefinitionError, match=r"antolik2016\.V1-ridge\.yaml: metric\.alpha: unknown key"):
        ba.load_benchmark(_yaml(tmp_path, metric={"alpha": 1}))


@needs_data
def test_checksum_mismatch_names_the_file_and_keeps_earlier_results(tmp_path, data_dir):
    good = ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir)
    stim_before = good.sessions[0].stimuli
    copy = tmp_path / "antolik2016_mouse_v1"
    shutil.copytree(data_dir / "antolik2016_mouse_v1", copy)
    with open(copy / "region2" / "validation_set.npy", "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01")
    bad = ba.load_benchmark("antolik2016.V1-ridge", data_dir=tmp_path)
    with pytest.raises(ChecksumMismatchError, match=r"region2/validation_set\.npy"):
        bad.sessions  # noqa: B018
    assert good.sessions[0].stimuli is stim_before  # nothing computed before is lost


@needs_data
def test_responses_that_do_not_match_the_stimuli_name_the_file(tmp_path, data_dir):
    p = _yaml(tmp_path, target={"reader": "npy_assembly", "file": "{session}/raw_validation_set.npy",
                                "dims": ["stimulus", "neuroid"]})
    with pytest.raises(BenchmarkDefinitionError, match=r"region1/raw_validation_set\.npy: array of shape"):
        ba.load_benchmark(p, data_dir=data_dir).sessions  # noqa: B018
    # 50 images, but the responses of another array with a different stimulus count:
    arr = np.load(data_dir / "antolik2016_mouse_v1" / "region1" / "validation_set.npy")[:40]
    d = tmp_path / "data" / "antolik2016_mouse_v1"
    shutil.copytree(data_dir / "antolik2016_mouse_v1", d)
    np.save(d / "region1" / "validation_set.npy", arr)
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    raw = yaml.safe_load(open(load_manifest("antolik2016").path).read())
    entry = raw["files"]["region1/validation_set.npy"]
    entry["sha256"] = ba.data.sha256_file(d / "region1" / "validation_set.npy")
    (mdir / "antolik2016.yaml").write_text(yaml.safe_dump(raw))
    bench = ba.load_benchmark("antolik2016.V1-ridge", data_dir=tmp_path / "data", manifest_dirs=[mdir])
    with pytest.raises(StimulusError, match=r"validation_set\.npy: 40 stimuli in the responses but 50"):
        bench.sessions  # noqa: B018


def test_image_that_fails_to_decode_names_zip_and_member(tmp_path):
    from brainalign.data.arrays import read_zip_images

    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("image0001.jpg", b"\xff\xd8 not a jpeg")
    stim = read_zip_images(lambda n: tmp_path / n, name="x", file="imgs.zip")
    assert stim.ids == ("x/image0001",)
    with pytest.raises(StimulusError, match=r"imgs\.zip: image 'image0001\.jpg' failed to decode"):
        stim.image(0)


def test_wrong_pixel_scale_is_refused(tmp_path):
    from brainalign.data.arrays import read_npy_images

    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 255, (3, 961)))
    with pytest.raises(StimulusError, match="outside 0..1; check the stored pixel scale"):
        read_npy_images(lambda n: tmp_path / n, name="x", file="x.npy", shape=[31, 31])


def test_placement_pads_smaller_stimuli_with_grey_and_crops_larger_ones():
    img = np.full((40, 40, 3), 255, np.uint8)
    small = place_image(img, placement(4.0, 8.0))  # a 4° stimulus in an 8° field: the centre half
    assert small.shape == (80, 80, 3)
    assert (small[20:60, 20:60] == 255).all() and (small[:20] == 128).all() and (small[:, 60:] == 128).all()
    big_img = np.arange(100 * 100, dtype=np.float32).reshape(100, 100) / 1e4
    big = place_image(big_img, placement(16.0, 8.0))  # only the central half is inside the field
    np.testing.assert_array_equal(big, big_img[25:75, 25:75])
    same = place_image(img, placement(8.0, 8.0))
    assert same is img
    stim = StimulusSet.from_arrays("s", [img, img], visual_degrees=2.0)
    placed, how = place_stimuli(stim, 8.0)
    assert placed.ids == stim.ids and placed.image(1).shape == (160, 160, 3)
    assert how.as_dict() == {"stimulus_degrees": 2.0, "model_degrees": 8.0, "fraction": 0.25, "mode": "pad",
                             "background": 0.5}
    with pytest.raises(StimulusError, match="positive"):
        placement(-1.0, 8.0)


def test_model_field_of_view_changes_what_the_model_sees():
    import torch
    from torch import nn

    img = np.full((32, 32, 3), 255, np.uint8)
    stim = StimulusSet.from_arrays("s", [img], visual_degrees=4.0)
    model = ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d(1)), name="mean", input_size=32,
                    mean=(0, 0, 0), std=(1, 1, 1))
    narrow = ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d(1)), name="mean4", input_size=32,
                     mean=(0, 0, 0), std=(1, 1, 1), visual_degrees=4.0)
    wide = ba.extract(model, place_stimuli(stim, model.visual_degrees)[0], ["0"])["0"].values.mean()
    full = ba.extract(narrow, place_stimuli(stim, narrow.visual_degrees)[0], ["0"])["0"].values.mean()
    assert full == pytest.approx(1.0, abs=1e-6)
    assert wide == pytest.approx(0.25 * 1.0 + 0.75 * 128 / 255, abs=0.01)  # a white quarter on grey
    torch.manual_seed(0)
