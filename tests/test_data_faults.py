"""Data faults found when the data are read (issue 12), naming the file and where in it: NaN
responses, RDMs that are not symmetric, have a non-zero diagonal or are similarity matrices, fMRI
betas with NaN (found before nilearn would fill them), a mask in another space, no overlap."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.io import savemat
from torch import nn

import brainalign as ba
from brainalign.data.arrays import read_npy_assembly
from brainalign.data.nifti import read_nifti_betas
from brainalign.data.readers import read_mat_rdms
from brainalign.errors import DataFaultError

IDS = [f"s/{i:02d}" for i in range(12)]


def _npy(tmp_path, arr):
    np.save(tmp_path / "resp.npy", arr)
    return lambda n: tmp_path / n


def test_nan_in_repeat_averaged_responses_names_file_stimulus_and_neuroid(tmp_path):
    arr = np.random.default_rng(0).normal(size=(12, 7))
    arr[3, 5] = np.nan
    with pytest.raises(DataFaultError, match=r"resp\.npy: 1 NaN response value\(s\); first at stimulus 3 "
                                             r"\(s/03\), neuroid 5 \(5\)"):
        read_npy_assembly(_npy(tmp_path, arr), file="resp.npy", dims=["stimulus", "neuroid"], stimulus_ids=IDS)
    arr[3, 5] = np.inf
    with pytest.raises(DataFaultError, match=r"resp\.npy: 1 infinite response value"):
        read_npy_assembly(_npy(tmp_path, arr), file="resp.npy", dims=["stimulus", "neuroid"], stimulus_ids=IDS)


def test_nan_padding_of_repeats_is_allowed_but_a_response_without_any_repeat_is_not(tmp_path):
    arr = np.random.default_rng(0).normal(size=(7, 12, 4))  # neuroid, stimulus, repetition
    arr[:, :, 3] = np.nan  # unequal repeat counts, NaN-padded (as Cowley et al.'s raw arrays)
    da = read_npy_assembly(_npy(tmp_path, arr), file="resp.npy", dims=["neuroid", "stimulus", "repetition"],
                           stimulus_ids=IDS)
    assert da.dims == ("stimulus", "neuroid", "repetition")
    arr[2, 9, :] = np.nan
    with pytest.raises(DataFaultError, match=r"1 response\(s\) with no finite repeat \(all NaN\); first at "
                                             r"stimulus 9 \(s/09\), neuroid 2"):
        read_npy_assembly(_npy(tmp_path, arr), file="resp.npy", dims=["neuroid", "stimulus", "repetition"],
                          stimulus_ids=IDS)


def _rdms(n=12, k=3, seed=0):
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(seed)
    return [squareform(pdist(rng.normal(size=(n, 5)), "correlation")) for _ in range(k)]


def _mat(tmp_path, mats):
    s = np.empty((1, len(mats)), dtype=[("RDM", "O")])
    for i, m in enumerate(mats):
        s[0, i]["RDM"] = m
    savemat(tmp_path / "rdms.mat", {"RDMs": s})
    return lambda n: tmp_path / n


def _read(path_of):
    return read_mat_rdms(path_of, file="rdms.mat", variable="RDMs", stimulus_ids=IDS,
                         labels={"subject": ["A", "B", "C"]})


def test_valid_rdms_are_read(tmp_path):
    mats = _rdms()
    np.testing.assert_allclose(_read(_mat(tmp_path, mats)).values, np.stack(mats))


def test_asymmetric_rdm_names_file_subject_and_pair(tmp_path):
    mats = _rdms()
    mats[1][2, 7] += 0.3
    with pytest.raises(DataFaultError, match=r"rdms\.mat:RDMs: RDM of subject B is not symmetric: \[2, 7\]"):
        _read(_mat(tmp_path, mats))


def test_nonzero_diagonal_names_the_stimulus(tmp_path):
    mats = _rdms()
    mats[2][4, 4] = 0.2
    with pytest.raises(DataFaultError, match=r"RDM of subject C has a non-zero diagonal: 0\.2 at stimulus 4"):
        _read(_mat(tmp_path, mats))


def test_similarity_matrix_given_as_rdm_is_named(tmp_path):
    mats = _rdms()
    mats[0] = 1 - mats[0]  # correlations, not correlation distances
    with pytest.raises(DataFaultError, match=r"the matrix of subject A has 1 on its diagonal: a similarity "
                                             r"\(correlation\) matrix, not an RDM"):
        _read(_mat(tmp_path, mats))


def test_nan_in_an_rdm_names_the_subject(tmp_path):
    mats = _rdms()
    mats[1][0, 3] = mats[1][3, 0] = np.nan
    with pytest.raises(DataFaultError, match=r"RDM of subject B has 2 NaN/inf value\(s\); first at stimulus "
                                             r"pair \(0, 3\)"):
        _read(_mat(tmp_path, mats))


# ----- fMRI ------------------------------------------------------------------------------------------

def _nifti(tmp_path, *, shift_mm=0.0, nan_volume=None, nan_outside=False, n=12):
    """Betas on a 3 mm grid (10×10×10, `n` volumes) and a mask box of 4×4×6 = 96 voxels."""
    import nibabel as nib

    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    rng = np.random.default_rng(0)
    betas = rng.normal(size=(10, 10, 10, n)).astype(np.float32)
    mask = np.zeros((10, 10, 10), np.int16)
    mask[3:7, 3:7, 2:8] = 1
    if nan_volume is not None:
        betas[..., nan_volume] = np.nan  # one NaN volume among valid betas (issue 12, item 6)
    if nan_outside:
        betas[0, 0, 0, :] = np.nan  # outside the mask: not used, not an error
    m_aff = affine.copy()
    m_aff[0, 3] += shift_mm
    nib.save(nib.Nifti1Image(betas, affine), tmp_path / "betas.nii.gz")
    nib.save(nib.Nifti1Image(mask, m_aff), tmp_path / "mask.nii.gz")
    return (lambda f: tmp_path / f), betas, mask


def test_nan_betas_are_found_before_masking_naming_file_volume_and_voxel(tmp_path):
    path_of, _, _ = _nifti(tmp_path, nan_volume=5)
    with pytest.raises(DataFaultError, match=r"betas\.nii\.gz: 96 NaN/inf betas inside the mask, in 1 volume\(s\) "
                                             r"\(first: volume 5, stimulus 's/05', voxel \(3, 3, 2\)\)"):
        read_nifti_betas(path_of, betas="betas.nii.gz", mask="mask.nii.gz", stimulus_ids=IDS)
    path_of, betas, mask = _nifti(tmp_path, nan_outside=True)
    vd = read_nifti_betas(path_of, betas="betas.nii.gz", mask="mask.nii.gz", stimulus_ids=IDS)
    ijk = np.argwhere(mask > 0)
    np.testing.assert_array_equal(vd.responses.values, betas[tuple(ijk.T)].T.astype(np.float64))


def test_mask_in_another_space_is_refused_or_resampled_and_recorded(tmp_path):
    # The case: a mask shifted 9 mm from the betas (nilearn resampled the betas silently).
    path_of, betas, mask = _nifti(tmp_path, shift_mm=9.0)
    with pytest.raises(DataFaultError, match=r"mask\.nii\.gz: the mask is in another space than the betas "
                                             r"betas\.nii\.gz .*resample_mask: true"):
        read_nifti_betas(path_of, betas="betas.nii.gz", mask="mask.nii.gz", stimulus_ids=IDS)
    vd = read_nifti_betas(path_of, betas="betas.nii.gz", mask="mask.nii.gz", stimulus_ids=IDS, resample_mask=True)
    assert "resampled by nearest neighbour" in vd.responses.attrs["mask_resampled"]
    # 9 mm = 3 voxels along x: the same 96 voxels, moved, and the betas themselves untouched.
    moved = np.argwhere(np.roll(mask, 3, axis=0) > 0)
    assert vd.responses.sizes["neuroid"] == 96
    np.testing.assert_array_equal(vd.responses.values, betas[tuple(moved.T)].T.astype(np.float64))
    assert np.all(np.isfinite(vd.responses.values)) and (vd.responses.std("stimulus") > 0).all()


def test_mask_without_overlap_is_a_named_error(tmp_path):
    path_of, _, _ = _nifti(tmp_path, shift_mm=90.0)
    with pytest.raises(DataFaultError, match=r"mask\.nii\.gz: the mask does not overlap the betas betas\.nii\.gz"):
        read_nifti_betas(path_of, betas="betas.nii.gz", mask="mask.nii.gz", stimulus_ids=IDS, resample_mask=True)


def test_rdm_fault_in_a_benchmark_is_found_when_its_data_are_read(tmp_path, data_dir):
    """A user's RSA benchmark whose RDM file holds similarities fails when its target is read,
    naming the file, before any model is recorded."""
    from scipy.io import loadmat

    src = data_dir / "kriegeskorte2008_92img"
    rdms = loadmat(src / "92_brainRDMs.mat")["RDMs"]
    rdms[0, 1, 0]["RDM"] = 1 - rdms[0, 1, 0]["RDM"]  # subject KO, session 1: similarities
    d = tmp_path / "data" / "mine"
    d.mkdir(parents=True)
    savemat(d / "brain.mat", {"RDMs": rdms})
    (d / "stim.mat").symlink_to(src / "Kriegeskorte_Neuron2008_supplementalData.mat")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({
        "id": "mine", "licence": "test", "citation": "none", "files": {"brain.mat": None, "stim.mat": None}}))
    bench = yaml.safe_load((ba.benchmarks.spec.benchmark_paths()["kriegeskorte2008.hIT-rsa"]).read_text())
    bench.update(id="mine.hIT-rsa", dataset="mine")
    bench["stimuli"]["file"] = "stim.mat"
    bench["target"]["file"] = "brain.mat"
    (tmp_path / "mine.hIT-rsa.yaml").write_text(yaml.safe_dump(bench))
    b = ba.load_benchmark(tmp_path / "mine.hIT-rsa.yaml", data_dir=tmp_path / "data")
    calls = []
    net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten())
    model = ba.wrap(net, name="pixels", input_size=32)
    _ = model.layers
    net[0].register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(DataFaultError, match=r"brain\.mat:RDMs: the matrix of subject KO, session 1 has 1 on "
                                             r"its diagonal"):
        ba.score(model, b)
    assert calls == []  # found when the data were read, before any layer was recorded


def test_nan_pixels_in_an_image_array_name_the_image(tmp_path):
    from brainalign.data.arrays import read_npy_images
    from brainalign.errors import StimulusError

    arr = np.random.default_rng(0).uniform(0, 1, (4, 9))
    arr[2, 5] = np.nan  # NaN passes `min() < 0` and `max() > 1`: it used to reach the model
    np.save(tmp_path / "img.npy", arr)
    with pytest.raises(StimulusError, match=r"img\.npy: 1 NaN/inf pixel value\(s\); first in image 2"):
        read_npy_images(lambda n: tmp_path / n, name="x", file="img.npy", shape=[3, 3])


def test_brainio_responses_without_any_finite_repeat_are_named(tmp_path):
    import xarray as xr

    from brainalign.data.brainio import read_brainio_assembly
    from tests.test_benchmarks_brainio import N_NEUR, _path_of, _write_brainio

    d = tmp_path / "fake"
    d.mkdir()
    _, _, ids = _write_brainio(d, np.random.default_rng(0))
    with xr.open_dataset(d / "assy.nc") as ds:
        ds = ds.load()
    name = "data" if "data" in ds.data_vars else next(iter(ds.data_vars))
    pres_dim = ds[name].dims[0]
    sel = np.asarray(ds["stimulus_id"].values).astype(str) == "im005"
    values = ds[name].values.copy()
    values[np.flatnonzero(sel), 2, :] = np.nan  # every repeat of stimulus im005 at neuroid 2
    ds[name] = (ds[name].dims, values)
    ds.to_netcdf(d / "assy_nan.nc")
    assert ds[name].dims[0] == pres_dim and N_NEUR > 2
    with pytest.raises(DataFaultError, match=r"assy_nan\.nc: 4 NaN response value\(s\); first at stimulus 5 "
                                             r"\(im005\), neuroid 2 \(n2\), time_bin 0"):
        read_brainio_assembly(_path_of(d), file="assy_nan.nc", stimulus_ids=ids, region="IT")
    with pytest.raises(DataFaultError, match=r"assy_nan\.nc: 4 response\(s\) with no finite repeat \(all NaN\); "
                                             r"first at stimulus 5 \(im005\), neuroid 2 \(n2\), time_bin 0"):
        read_brainio_assembly(_path_of(d), file="assy_nan.nc", stimulus_ids=ids, region="IT",
                              average_repetitions=False)


def _own_regression(tmp_path, Y, trials=None):
    """A regression benchmark of the user's own: 40 random images, responses ``Y`` (40 × neuroids),
    and, given ``trials`` (neuroid × stimulus × repetition), a split-half ceiling from them."""
    rng = np.random.default_rng(0)
    d = tmp_path / "mydata"
    d.mkdir(exist_ok=True)
    np.save(d / "imgs.npy", rng.random((40, 32, 32)).astype(np.float32))
    np.save(d / "resp.npy", Y.astype(np.float32))
    files = {"imgs.npy": {}, "resp.npy": {}}
    ceiling = {"method": "none", "reason": "synthetic"}
    if trials is not None:
        np.save(d / "trials.npy", trials.astype(np.float32))
        files["trials.npy"] = {}
        ceiling = {"method": "split_half", "trials": {"reader": "npy_assembly", "file": "trials.npy",
                                                      "dims": ["neuroid", "stimulus", "repetition"]}}
    (tmp_path / "mydata.yaml").write_text(yaml.safe_dump({
        "id": "mydata", "licence": "none", "citation": "none", "local_dir": "mydata", "files": files}))
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({
        "id": "mine", "version": "1", "kind": "regression", "dataset": "mydata", "region": "X",
        "stimuli": {"reader": "npy_images", "file": "imgs.npy", "id_format": "{name}/{index:02d}",
                    "visual_degrees": 8.0},
        "target": {"reader": "npy_assembly", "file": "resp.npy", "dims": ["stimulus", "neuroid"]},
        "metric": {"name": "ridge", "model": "ridge", "cv": 5, "aggregate": "median"},
        "ceiling": ceiling,
        "statistics": {"bootstrap": {"n": 20, "ci": 0.95, "seed": 0}}, "citation": "none"}))
    return ba.load_benchmark(path, data_dir=tmp_path)


def test_responses_constant_in_every_neuroid_are_refused_and_some_constant_ones_are_said(tmp_path):
    """All constant: NaN rows and "no scores" with exit 0 before. Some constant: left out of the
    median without a word."""
    with pytest.raises(DataFaultError, match=r"mine: target resp\.npy: every neuroid responds identically "
                                             r"to every stimulus \(20 neuroids, 40 stimuli\)"):
        _ = _own_regression(tmp_path, np.ones((40, 20))).sessions
    Y = np.random.default_rng(1).normal(size=(40, 20))
    Y[:, :5] = 3.0
    bench = _own_regression(tmp_path, Y)
    model = ba.wrap(nn.Sequential(nn.Conv2d(1, 4, 5, stride=4), nn.Flatten()), name="c", input_size=32,
                    in_channels=1)
    with pytest.warns(UserWarning, match=r"5 of 20 neuroids have no score \(5 with zero variance"):
        res = bench(model, layers="0")
    assert (res.table["n_neuroids"] == 15).all()


def test_ceiling_trials_of_a_benchmark_without_sessions_give_its_ceiling(tmp_path):
    """Declared under `ceiling.trials` with no `sessions:`, the repeats were ignored: no ceiling,
    and the rows said "no repeat trials in the data"."""
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(20, 40))
    trials = signal[:, :, None] + 0.5 * rng.normal(size=(20, 40, 6))  # neuroid, stimulus, repetition
    bench = _own_regression(tmp_path, trials.mean(2).T, trials=trials)
    assert bench.sessions[0].trials is not None
    model = ba.wrap(nn.Sequential(nn.Conv2d(1, 4, 5, stride=4), nn.Flatten()), name="c", input_size=32,
                    in_channels=1)
    row = bench(model, layers="0").table.iloc[0]
    assert 0.8 < row["ceiling_upper"] <= 1 and "no repeat" not in str(row["ceiling_note"])
