"""Settings outside their range are refused by name at every entry point, before any work
(found by a fresh user: ZeroDivisionError, "generator raised StopIteration", empty tables,
all-zero receptive fields)."""

from __future__ import annotations

import numpy as np
import pytest

import brainalign as ba
from brainalign.errors import BatchSpecError, EmptyLayerListError, StimulusError
from brainalign.runner.batch import read_models
from tests.conftest import needs_data


@pytest.fixture(scope="module")
def lenet():
    return ba.load_model("zoo:lenet5")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((6, 32, 32, 3)).astype(np.float32)


BAD_SIZES = [0, -1, 2.5, True]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_a_batch_size_below_one_is_refused_by_every_entry_point(lenet, images, size):
    calls = {
        "extract": lambda: ba.extract(lenet, images, "conv1", batch_size=size),
        "iter_extract": lambda: list(ba.iter_extract(lenet, images, "conv1", batch_size=size)),
        "compare_models": lambda: ba.compare_models(lenet, lenet, images, layers_a="conv1", layers_b="conv1",
                                                    batch_size=size),
    }
    for call in calls.values():
        with pytest.raises(StimulusError, match=f"batch_size={size!r}: give a whole number"):
            call()


@needs_data
@pytest.mark.parametrize("size", [0, -1])
def test_score_refuses_a_bad_batch_size_before_reading_data(lenet, data_dir, size):
    with pytest.raises(StimulusError, match="batch_size"):
        ba.score(lenet, "kriegeskorte2008.hIT-rsa", data_dir=data_dir, batch_size=size)


def test_an_empty_layer_list_is_refused_everywhere(lenet, images, tmp_path):
    with pytest.raises(EmptyLayerListError, match=r"layers=\[\] selects no layer"):
        ba.extract(lenet, images, [])
    with pytest.raises(EmptyLayerListError):
        lenet.resolve_layers(())
    assert lenet.resolve_layers(None) == lenet.layers  # None is the default layers
    listed = tmp_path / "m.yaml"
    listed.write_text("models:\n  - {id: 'zoo:lenet5', layers: []}\n")
    with pytest.raises(BatchSpecError, match=r"'layers: \[\]' selects no layer"):
        read_models(listed)
    with pytest.raises(BatchSpecError, match=r"layers=\[\] selects no layer"):
        ba.run_batch(["zoo:lenet5"], ["kriegeskorte2008.hIT-rsa"], tmp_path / "b", layers=[])
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("frames", [0, -5])
def test_receptive_field_mapping_refuses_no_frames(lenet, frames):
    from brainalign.insilico import map_receptive_fields

    with pytest.raises(StimulusError, match=f"n_frames={frames}"):
        map_receptive_fields(lenet, "conv1", n_frames=frames)


def test_nan_pixels_are_said_as_nan_not_as_a_value_range():
    """"float pixel values lie in nan..nan … state value_range=(0, 255)" sent users the wrong way."""
    a = np.random.default_rng(0).random((4, 32, 32, 3)).astype(np.float32)
    a[2, 0, 0, 0] = np.nan
    with pytest.raises(StimulusError, match=r"stimulus 'stim_0002': pixel values include NaN or inf") as err:
        ba.as_stimulus_set(a)
    assert "value_range" not in str(err.value)


def test_a_local_only_file_is_not_advised_to_be_downloaded():
    from brainalign.errors import DataNotFoundError

    said = str(DataNotFoundError("x.npy", ["/a"], None, "no URL in the manifest"))
    assert "connect to the network" not in said and "holds a copy" in said
    assert "connect to the network" in str(DataNotFoundError("x.npy", ["/a"], "https://h/x.npy", "offline"))


@needs_data
def test_too_few_bootstrap_samples_are_refused_or_warned_of(data_dir):
    """--n-bootstrap 1 gave zero-width CIs that excluded every score; 2–39 give 95 % CIs set by
    the extreme samples."""
    import warnings

    from brainalign.errors import BenchmarkDefinitionError

    with pytest.raises(BenchmarkDefinitionError, match="at least 2"):
        ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir, n_bootstrap=1)
    with pytest.warns(UserWarning, match=r"n_bootstrap=20 is too few for a 95% CI \(at least 40"):
        ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir, n_bootstrap=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ba.load_benchmark("antolik2016.V1-ridge", data_dir=data_dir, n_bootstrap=40)


@needs_data
def test_score_layer_on_what_the_benchmark_shows_equals_ba_score(lenet, data_dir):
    """extract(bench.stimuli) + score_layer scored the unplaced images (0.0775 vs 0.0797 on hIT);
    bench.recording(model) gives the stimuli as shown, and its message points there."""
    from brainalign.errors import StimulusMismatchError

    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=50)
    shown, _ = bench.recording(lenet)
    acts = ba.extract(lenet, shown, layers=["conv2"])["conv2"]
    by_hand = bench.score_layer("conv2", acts)[0].raw
    assert by_hand == ba.score(lenet, bench, layers=["conv2"]).table["raw"].iloc[0]
    with pytest.raises(StimulusMismatchError, match=r"bench\.recording\(model\)"):
        bench.score_layer("conv2", acts.isel(stimulus=slice(0, 50)))


def test_weights_given_for_a_checkpoint_id_are_refused_in_python_and_in_batch_lists(tmp_path):
    """load_model('file:ck.pt', weights='random') returned the checkpoint's weights without a word,
    and a batch entry {id: file:ck.pt, weights: random} recorded weights the run never used."""
    from brainalign.errors import CheckpointError

    run = ba.train("lenet5", tmp_path / "run", epochs=1, seed=0, progress=False)
    ckpt = run.checkpoints[0]
    assert ba.load_model(f"file:{ckpt}").weights == str(ckpt)
    for w in ("random", "pretrained", str(ckpt)):
        with pytest.raises(CheckpointError, match="carries its own weights"):
            ba.load_model(f"file:{ckpt}", weights=w)
    listed = tmp_path / "m.yaml"
    listed.write_text(f"models:\n  - {{id: 'file:{ckpt}', weights: random}}\n")
    with pytest.raises(BatchSpecError, match="carries its own weights: leave 'weights' out"):
        read_models(listed)
    listed.write_text(f"models:\n  - {{id: 'file:{ckpt}'}}\n")
    assert read_models(listed)[0].load().weights == str(ckpt)  # the default: its own weights


def test_a_file_model_given_as_a_path_without_py_says_how_to_name_it(tmp_path, monkeypatch):
    """file:../tiny:build leaked importlib's "TypeError: the 'package' argument is required"."""
    from brainalign.errors import ModelImportError

    (tmp_path / "tiny.py").write_text("from torch import nn\n\ndef build():\n    return nn.ReLU()\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ModelImportError, match=r"is a path, not a module name: give the file, file:\.\./tiny\.py"):
        ba.load_model("file:../tiny:build")


def test_bootstrap_samples_of_different_lengths_say_how_to_pair_them():
    from brainalign.errors import UnpairedSamplesError
    from brainalign.results.compare import paired_difference

    with pytest.raises(UnpairedSamplesError, match="score both with the same --n-bootstrap"):
        paired_difference(0.2, 0.1, np.zeros(20), np.zeros(30))
