"""Manifests, verified file resolution, downloads and the 92-image stimulus set."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from brainalign.data import fetch_file, list_datasets, load_manifest, sha256_file
from brainalign.data.fetch import download
from brainalign.data.manifest import FileEntry, parse_manifest
from brainalign.errors import (
    BenchmarkDefinitionError,
    ChecksumMismatchError,
    DataNotFoundError,
    UnknownDatasetError,
)
from tests.conftest import needs_data

MAT = "Kriegeskorte_Neuron2008_supplementalData.mat"


def test_manifest_lists_every_file_with_pinned_url_sha_licence_and_citation():
    m = load_manifest("kriegeskorte2008")
    assert "kriegeskorte2008" in list_datasets()
    assert set(m.files) == {MAT, "92_brainRDMs.mat", "92_behavRDMs.mat", "92_modelRDMs.mat",
                            "rdm92_V1model.mat"}
    for f in m.files.values():
        assert f.url.startswith("https://raw.githubusercontent.com/rsagroup/rsatoolbox/f1f83cadb72")
        assert len(f.sha256) == 64
    assert "MIT" in m.licence and any("Neuron 60" in c for c in m.citation)


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(UnknownDatasetError, match="kriegeskorte2008"):
        load_manifest("kriegeskorte2009")


def test_manifest_with_unknown_key_is_rejected(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("id: x\nlicence: MIT\ncitation: c\nfiles: {}\nlicense_typo: 1\n")
    with pytest.raises(BenchmarkDefinitionError, match="license_typo"):
        parse_manifest(p)


@needs_data
def test_local_copy_is_found_and_verified(data_dir):
    p = fetch_file("kriegeskorte2008", MAT, data_dir=data_dir, download_missing=False)
    assert p == data_dir / "kriegeskorte2008_92img" / MAT
    assert sha256_file(p) == load_manifest("kriegeskorte2008").files[MAT].sha256


@needs_data
def test_checksum_mismatch_is_a_named_error(tmp_path, data_dir):
    local = tmp_path / "kriegeskorte2008_92img"
    local.mkdir()
    data = bytearray((data_dir / "kriegeskorte2008_92img" / "92_brainRDMs.mat").read_bytes())
    data[-1] ^= 0xFF  # one flipped byte
    (local / "92_brainRDMs.mat").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="92_brainRDMs.mat"):
        fetch_file("kriegeskorte2008", "92_brainRDMs.mat", data_dir=tmp_path, download_missing=False)


def test_missing_file_offline_names_the_file_and_every_place_looked(tmp_path, monkeypatch):
    m = load_manifest("kriegeskorte2008")
    # A URL on a closed local port: the download fails as it would offline.
    entry = dataclasses.replace(m.files["92_brainRDMs.mat"], url="http://127.0.0.1:9/92_brainRDMs.mat")
    m = dataclasses.replace(m, files={**m.files, "92_brainRDMs.mat": entry})
    with pytest.raises(DataNotFoundError) as info:
        fetch_file(m, "92_brainRDMs.mat", data_dir=[tmp_path / "a", tmp_path / "b"],
                   cache=tmp_path / "cache", allow_insecure=True)  # a local mirror over http
    msg = str(info.value)
    assert "92_brainRDMs.mat" in msg and "127.0.0.1:9" in msg
    for place in (tmp_path / "a", tmp_path / "b", tmp_path / "cache"):
        assert str(place) in msg


@needs_data
def test_a_data_dir_that_is_the_dataset_folder_itself_is_named_with_its_parent(tmp_path, data_dir):
    """The README's warning: the data directory holds dataset folders. Pointed at the dataset
    folder, every file is found one level too high: say so and name the parent to use, before
    any download (the URL here would only fail)."""
    import brainalign as ba

    folder = data_dir / "kriegeskorte2008_92img"
    with pytest.raises(DataNotFoundError) as info:
        fetch_file("kriegeskorte2008", "92_brainRDMs.mat", data_dir=folder, cache=tmp_path / "cache")
    msg = str(info.value)
    assert f"{folder / '92_brainRDMs.mat'} exists, directly inside the data directory {folder}" in msg
    assert f"set it to the parent folder {data_dir}" in msg and "Download from" not in msg
    with pytest.raises(DataNotFoundError, match="parent folder"):  # the user's call, as reported
        _ = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=folder, cache=tmp_path / "cache").stimuli
    # A second, right data directory wins: nothing to complain about.
    assert fetch_file("kriegeskorte2008", "92_brainRDMs.mat", data_dir=[folder, data_dir],
                      cache=tmp_path / "cache").parent == folder


@needs_data
def test_download_from_http_into_cache_then_served_from_cache(mirror, tmp_path, data_dir):
    root, base = mirror
    shutil.copy(data_dir / "kriegeskorte2008_92img" / "92_brainRDMs.mat", root)
    m = load_manifest("kriegeskorte2008")
    entry = dataclasses.replace(m.files["92_brainRDMs.mat"], url=f"{base}/92_brainRDMs.mat")
    m = dataclasses.replace(m, files={**m.files, "92_brainRDMs.mat": entry})
    cache = tmp_path / "cache"
    p = fetch_file(m, "92_brainRDMs.mat", data_dir=[], cache=cache, progress=False, allow_insecure=True)
    assert p == cache / "kriegeskorte2008" / "92_brainRDMs.mat"
    assert sha256_file(p) == entry.sha256
    (root / "92_brainRDMs.mat").unlink()  # now only the cache has it
    assert fetch_file(m, "92_brainRDMs.mat", data_dir=[], cache=cache) == p


def test_download_with_wrong_checksum_leaves_nothing_behind(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"not the expected content")
    dest = tmp_path / "out" / "deeper" / "file.bin"
    with pytest.raises(ChecksumMismatchError):
        download(src.as_uri(), dest, "0" * 64, progress=False, allow_insecure=True)
    # Neither the file nor the folders made for it are left (issue 13: no empty folder behind).
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()  # a folder that was already there stays
    with pytest.raises(DataNotFoundError):
        fetch_file(dataclasses.replace(load_manifest("kriegeskorte2008"), id="x"), "92_brainRDMs.mat",
                   data_dir=[], cache=tmp_path / "out", download_missing=False)
    with pytest.raises(ChecksumMismatchError):
        download(src.as_uri(), tmp_path / "out" / "file.bin", "0" * 64, progress=False, allow_insecure=True)
    assert list((tmp_path / "out").iterdir()) == []


def test_file_url_download_verifies(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(np.arange(1000, dtype=np.int64).tobytes())
    dest = download(src.as_uri(), tmp_path / "dest.bin", sha256_file(src), progress=False,
                    allow_insecure=True)
    assert dest.read_bytes() == src.read_bytes()


def test_manifest_file_lookup_names_the_dataset():
    m = load_manifest("kriegeskorte2008")
    with pytest.raises(BenchmarkDefinitionError, match="kriegeskorte2008"):
        m.file("nope.mat")
    assert isinstance(m.files[MAT], FileEntry)


@needs_data
def test_stimulus_set_of_92_images_with_categories(hit_benchmark):
    stim = hit_benchmark.stimuli
    assert len(stim) == 92 and len(set(stim.ids)) == 92
    img = stim.image(0)
    assert img.shape == (175, 175, 3) and img.dtype == np.uint8
    counts = stim.metadata["category"].value_counts().to_dict()
    assert counts == {"human bodypart": 12, "human face": 12, "nonhuman bodypart": 12,
                      "nonhuman face": 12, "natural inanimate": 23, "artificial inanimate": 21}
    assert stim.metadata["animal"].sum() == 48 and stim.metadata["face"].sum() == 24
    sub = stim.subset([3, 1])
    assert sub.ids == (stim.ids[3], stim.ids[1])
    assert np.array_equal(sub.image(0), stim.image(3))
    assert sub.metadata.iloc[0]["category"] == stim.metadata.iloc[3]["category"]


def test_repo_holds_no_copy_of_shared_data():
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.split()
    data = [f for f in tracked if f.endswith((".mat", ".npy", ".npz", ".nc", ".zip"))]
    assert not data, f"dataset files belong in ../shared, not the repository: {data}"


def test_missing_file_names_a_data_directory_that_does_not_exist(tmp_path, monkeypatch):
    """A mistyped (or relative, from another folder) data directory is named as missing, and with
    downloads disabled the advice is to allow them, not to 'connect to the network'."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFoundError) as err:
        fetch_file("kriegeskorte2008", "92_brainRDMs.mat", data_dir="datasets", cache=tmp_path / "cache",
                   download_missing=False)
    text = str(err.value)
    assert "(no folder datasets)" in text
    assert "without --no-download" in text and "connect to the network" not in text
