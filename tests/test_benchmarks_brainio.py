"""BrainIO files (netCDF assembly with reset multi-indexes, CSV, zip) written here, read back and
scored in a time window; a model with time steps matched to the bins; sha1 verification."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from PIL import Image
from torch import nn

import brainalign as ba
from brainalign.data.brainio import read_brainio_assembly, read_brainio_stimuli
from brainalign.data.fetch import fetch_file
from brainalign.data.manifest import parse_manifest
from brainalign.data.timebins import match_bins
from brainalign.errors import ChecksumMismatchError, StimulusError

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:encoding_score.*end of the grid:UserWarning")]


N_STIM, N_REP, N_NEUR = 60, 4, 12
BINS = [(0, 70), (70, 120), (120, 170), (170, 270)]


def _images(rng):
    return rng.integers(0, 256, size=(N_STIM, 16, 16, 3), dtype=np.uint8)


def _write_brainio(d, rng, *, shuffle_presentations=True):
    """A BrainIO stimulus set and assembly. Signal in the 70-170 ms bins only: bin 70-120 follows
    the mean grey level of the left half of each image, bin 120-170 that of the right half."""
    imgs = _images(rng)
    ids = [f"im{i:03d}" for i in range(N_STIM)]
    with zipfile.ZipFile(d / "stimuli.zip", "w") as zf:
        for sid, im in zip(ids, imgs, strict=True):
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format="PNG")
            zf.writestr(f"{sid}.png", buf.getvalue())
    pd.DataFrame({"stimulus_id": ids, "filename": [f"{s}.png" for s in ids],
                  "object_name": [f"obj{i % 5}" for i in range(N_STIM)]}).to_csv(d / "stimuli.csv", index=False)
    left = imgs[:, :, :8].mean((1, 2, 3))
    right = imgs[:, :, 8:].mean((1, 2, 3))
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    w = rng.uniform(0.5, 1.5, N_NEUR)
    signal = np.zeros((N_STIM, N_NEUR, len(BINS)))
    signal[:, :, 1] = z(left)[:, None] * w
    signal[:, :, 2] = z(right)[:, None] * w
    trials = signal[:, None] + 0.7 * rng.standard_normal((N_STIM, N_REP, N_NEUR, len(BINS)))
    pres = [(s, r) for s in range(N_STIM) for r in range(N_REP)]
    if shuffle_presentations:
        pres = [pres[i] for i in rng.permutation(len(pres))]
    data = np.stack([trials[s, r] for s, r in pres])
    idx = pd.MultiIndex.from_arrays([[ids[s] for s, _ in pres], [r for _, r in pres],
                                     [f"obj{s % 5}" for s, _ in pres]],
                                    names=["stimulus_id", "repetition", "object_name"])
    nidx = pd.MultiIndex.from_arrays([[f"n{i}" for i in range(N_NEUR)],
                                      ["IT"] * (N_NEUR - 4) + ["V4"] * 4, ["Chabo"] * N_NEUR],
                                     names=["neuroid_id", "region", "animal"])
    tidx = pd.MultiIndex.from_arrays([[b[0] for b in BINS], [b[1] for b in BINS]],
                                     names=["time_bin_start", "time_bin_end"])
    coords = xr.Coordinates.from_pandas_multiindex(idx, "presentation")
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(nidx, "neuroid"))
    coords = coords.merge(xr.Coordinates.from_pandas_multiindex(tidx, "time_bin")).coords
    assy = xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords=coords)
    # As brainio.packaging.write_netcdf: reset the multi-indexes, write as variable "data", compressed.
    ds = assy.reset_index(list(assy.indexes)).to_dataset(name="data")
    ds.to_netcdf(d / "assy.nc", encoding={v: {"zlib": True, "complevel": 1} for v in ds.variables})
    return imgs, trials, ids


def _sha1(p):
    return hashlib.sha1(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def brainio_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("brainio") / "fakebrainio"
    d.mkdir()
    imgs, trials, ids = _write_brainio(d, np.random.default_rng(0))
    mdir = d.parent / "manifests"
    mdir.mkdir()
    files = {n: {"url": None, "sha1": _sha1(d / n), "verified": False} for n in ("assy.nc", "stimuli.csv",
                                                                               "stimuli.zip")}
    (mdir / "fakebrainio.yaml").write_text(yaml.safe_dump({"id": "fakebrainio", "licence": "test",
                                                           "citation": "test", "files": files}))
    return d, mdir, imgs, trials, ids


def _path_of(d):
    return lambda name: d / name


def test_reader_rebuilds_stimuli_and_trials_from_the_multi_index(brainio_dir):
    d, _, imgs, trials, ids = brainio_dir
    stim = read_brainio_stimuli(_path_of(d), name="fake", csv="stimuli.csv", zip="stimuli.zip")
    assert stim.ids == tuple(ids)
    np.testing.assert_array_equal(stim.image(7), imgs[7])
    assert list(stim.metadata["object_name"][:3]) == ["obj0", "obj1", "obj2"]
    # Presentations were shuffled in the file: the reader groups them back by stimulus id.
    da = read_brainio_assembly(_path_of(d), file="assy.nc", stimulus_ids=ids, region="IT",
                               average_repetitions=False)
    assert da.dims == ("stimulus", "neuroid", "repetition", "time_bin")
    assert list(da["region"].values) == ["IT"] * (N_NEUR - 4)
    assert list(da["time_bin_stop"].values) == [b[1] for b in BINS]
    got = np.sort(da.values[5, 2, :, 1])
    want = np.sort(trials[5, :, 2, 1])
    np.testing.assert_allclose(got, want)
    avg = read_brainio_assembly(_path_of(d), file="assy.nc", stimulus_ids=ids, region="IT")
    np.testing.assert_allclose(avg.values[:, :, 2], trials[:, :, :N_NEUR - 4, 2].mean(1))


def test_reader_names_a_stimulus_without_responses(brainio_dir):
    d, _, _, _, ids = brainio_dir
    with pytest.raises(StimulusError, match="'extra'"):
        read_brainio_assembly(_path_of(d), file="assy.nc", stimulus_ids=[*ids, "extra"])


def _benchmark_yaml(bdir, window):
    (bdir / "fakebrainio.IT-ridge.yaml").write_text(yaml.safe_dump({
        "id": "fakebrainio.IT-ridge", "version": "1", "kind": "regression", "dataset": "fakebrainio",
        "region": "IT", "visual_degrees": 4.0, "time_bin": window,
        "stimuli": {"reader": "brainio_stimuli", "csv": "stimuli.csv", "zip": "stimuli.zip",
                    "visual_degrees": 4.0},
        "target": {"reader": "brainio_assembly", "file": "assy.nc", "region": "IT", "average_repetitions": False},
        "metric": {"model": "ridge", "cv": 5, "alphas": [1e-2, 1e0, 1e2, 1e4, 1e6]},
        "ceiling": {"method": "split_half", "n_splits": 5},
        "statistics": {"bootstrap": {"n": 50}}, "citation": "test"}))
    return bdir / "fakebrainio.IT-ridge.yaml"


def _grey_halves_model():
    # Mean grey level of the left and right halves of the placed image.
    return ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d((1, 2)), nn.Flatten()), name="halves", input_size=32)


def test_window_is_used_and_placement_recorded(brainio_dir, tmp_path):
    d, mdir, *_ = brainio_dir
    model = _grey_halves_model()
    scores = {}
    for name, window in (("in", {"start": 70, "stop": 170}), ("out", {"start": 170, "stop": 270})):
        bdir = tmp_path / name
        bdir.mkdir()
        bench = ba.load_benchmark(_benchmark_yaml(bdir, window), data_dir=d.parent, manifest_dirs=[mdir])
        res = ba.score(model, bench, layers=["0"])
        scores[name] = res.table.iloc[0]
    inside, outside = scores["in"], scores["out"]
    assert inside["raw"] > 0.6 and abs(outside["raw"]) < 0.2
    assert inside["ceiling_upper"] > 0.8
    assert inside["normalised"] <= 1 + (inside["normalised_ci_high"] - inside["normalised"])
    assert inside["placement"] == "4° stimulus in a 8° field: pad to 0.5 of the field"
    assert res.meta["placement"][res.table["model"].iloc[0]]["mode"] == "pad"
    assert res.meta["time_bin"] == {"start": 170, "stop": 270}
    assert res.meta["data_files"]["assy.nc"].startswith("sha1:")


def test_model_time_steps_are_matched_to_bins(brainio_dir, tmp_path):
    d, mdir, imgs, *_ = brainio_dir
    bench = ba.load_benchmark(_benchmark_yaml(tmp_path, {"start": 70, "stop": 170}), data_dir=d.parent,
                              manifest_dirs=[mdir])
    s = bench.sessions[0]
    left, right = imgs[:, :, :8].mean((1, 2, 3)), imgs[:, :, 8:].mean((1, 2, 3))

    def feats(step_bins, order):
        vals = np.stack([np.stack([left, right], 1)[:, [k]] for k in order], -1)  # (stim, 1, step)
        return xr.DataArray(vals, dims=("stimulus", "unit", "time_bin"),
                            coords={"stimulus_id": ("stimulus", list(s.stimuli.ids)),
                                    "time_bin_start": ("time_bin", [b[0] for b in step_bins]),
                                    "time_bin_stop": ("time_bin", [b[1] for b in step_bins])})

    steps = [(60, 115), (115, 180)]
    assert list(match_bins(np.array(steps), np.array(BINS[1:3]))) == [0, 1]
    right_order = bench.score_features({s.name: feats(steps, [0, 1])})[s.name]["raw"]
    swapped = bench.score_features({s.name: feats(steps, [1, 0])})[s.name]["raw"]
    assert right_order > 0.6 and abs(swapped) < 0.25


def test_sha1_is_verified_when_no_sha256_is_known(brainio_dir, tmp_path):
    d, mdir, *_ = brainio_dir
    m = parse_manifest(mdir / "fakebrainio.yaml")
    assert fetch_file(m, "assy.nc", data_dir=d.parent, download_missing=False) == d / "assy.nc"
    bad = tmp_path / "fakebrainio"
    bad.mkdir()
    (bad / "stimuli.csv").write_text("stimulus_id,filename\nx,x.png\n")
    with pytest.raises(ChecksumMismatchError, match=r"stimuli\.csv.*sha1"):
        fetch_file(m, "stimuli.csv", data_dir=tmp_path, download_missing=False)
