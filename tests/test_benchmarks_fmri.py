"""The fmri benchmark kind on synthetic NIfTI betas in MNI space with known signal voxels."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from torch import nn

import brainalign as ba
from brainalign.benchmarks.fmri import FMRIBenchmark
from brainalign.data.fetch import sha256_file
from brainalign.errors import StimulusError
from tests.conftest import needs_data

pytestmark = [needs_data, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:encoding_score.*end of the grid:UserWarning")]


def _pixel_model():
    # Raw pixels (8 x 8 average-pooled grey levels) as the "model".
    return ba.wrap(nn.Sequential(nn.AdaptiveAvgPool2d(8)), name="pixels", input_size=64)


@pytest.fixture(scope="module")
def pixel_features(data_dir):
    bench = ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir)
    # The synthetic benchmark shows the images full-field (8° in an 8° field): no placement.
    return ba.extract(_pixel_model(), bench.stimuli, layers=["0"])["0"].values


def _write_dataset(tmp_path, acts, n_volumes=92):
    """MNI brain mask at 8 mm; ROI 1 (a box in the right posterior brain) carries signal made from
    known pixel features of the 92 images; ROI 2 (the rest) is noise. Returns (dirs, truth)."""
    import nibabel as nib
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.image import resample_img

    mask = load_mni152_brain_mask(resolution=2)
    coarse = resample_img(mask, target_affine=np.diag([8.0, 8.0, 8.0]), interpolation="nearest",
                          force_resample=True, copy_header=True)
    inside = coarse.get_fdata() > 0
    ijk = np.argwhere(inside)
    xyz = nib.affines.apply_affine(coarse.affine, ijk)
    signal = (xyz[:, 0] > 10) & (xyz[:, 1] < -40)  # right, posterior
    atlas = np.zeros(inside.shape, np.int16)
    atlas[tuple(ijk[signal].T)] = 1
    atlas[tuple(ijk[~signal].T)] = 2

    rng = np.random.default_rng(0)
    feats = (acts - acts.mean(0)) / acts.std(0)
    resp = np.zeros((*inside.shape, n_volumes), np.float32)
    w = rng.standard_normal((feats.shape[1], int(signal.sum()))) / np.sqrt(feats.shape[1])
    sig = feats @ w
    vox = rng.standard_normal((92, len(ijk)))  # noise everywhere
    vox[:, signal] += 2.0 * sig / sig.std(0)  # SNR 2 in the signal ROI
    resp[tuple(ijk.T)] = vox[:n_volumes].T.reshape(len(ijk), n_volumes) if n_volumes == 92 else \
        np.resize(vox.T, (len(ijk), n_volumes))
    d = tmp_path / "synthfmri"
    d.mkdir()
    nib.save(nib.Nifti1Image(resp, coarse.affine), d / "betas.nii.gz")
    nib.save(nib.Nifti1Image(atlas, coarse.affine), d / "atlas.nii.gz")
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    files = {n: {"url": None, "sha256": sha256_file(d / n)} for n in ("betas.nii.gz", "atlas.nii.gz")}
    (mdir / "synthfmri.yaml").write_text(yaml.safe_dump({
        "id": "synthfmri", "licence": "synthetic test data", "citation": "none", "files": files}))
    bdir = tmp_path / "benchmarks"
    bdir.mkdir()
    (bdir / "synthfmri.ROI-fmri.yaml").write_text(yaml.safe_dump({
        "id": "synthfmri.ROI-fmri", "version": "1", "kind": "fmri", "dataset": "synthfmri", "region": "ROI",
        "visual_degrees": 8.0,
        "stimuli": {"reader": "mat_images", "dataset": "kriegeskorte2008",
                    "file": "Kriegeskorte_Neuron2008_supplementalData.mat", "variable": "stimuli_92objs",
                    "image_field": "image", "visual_degrees": 8.0},
        "target": {"reader": "nifti_betas", "betas": "betas.nii.gz", "mask": "atlas.nii.gz",
                   "labels": {1: "signal", 2: "noise"}},
        "metric": {"model": "ridge", "cv": 4, "aggregate": "median"},
        "ceiling": {"method": "none", "reason": "synthetic data without repeated betas"},
        "statistics": {"bootstrap": {"n": 50, "seed": 0}},
        "citation": "synthetic"}))
    return (mdir, bdir), (ijk, signal)


@pytest.fixture(scope="module")
def fmri_run(tmp_path_factory, data_dir, pixel_features):
    tmp = tmp_path_factory.mktemp("fmri")
    (mdir, bdir), truth = _write_dataset(tmp, pixel_features)
    bench = ba.load_benchmark(bdir / "synthfmri.ROI-fmri.yaml", data_dir=[tmp, data_dir], manifest_dirs=[mdir])
    result = ba.score(_pixel_model(), bench)
    return bench, result, truth, tmp


def test_voxelwise_encoding_finds_the_signal_voxels_and_the_map_shows_them(fmri_run):
    import nibabel as nib

    bench, result, (ijk, signal), tmp = fmri_run
    assert isinstance(bench, FMRIBenchmark)
    det = result.details[("pixels", "synthfmri.ROI-fmri", "0", "all")]
    img = det["image"]
    mask_img = nib.load(tmp / "synthfmri" / "atlas.nii.gz")
    assert img.shape == mask_img.shape and np.allclose(img.affine, mask_img.affine)
    vals = img.get_fdata()[tuple(ijk.T)]  # read back from the map, voxel by voxel
    np.testing.assert_allclose(vals, np.nan_to_num(det["r"]), atol=1e-6)
    sig, noise = vals[signal], vals[~signal]
    assert np.median(sig) > 0.5 and abs(np.median(noise)) < 0.1
    # Nearly every signal voxel scores above the 99th percentile of the noise voxels.
    assert np.mean(sig > np.percentile(noise, 99)) > 0.9
    paths = FMRIBenchmark.save_maps(result, tmp / "maps")
    assert len(paths) == 1 and np.allclose(nib.load(paths[0]).get_fdata(), img.get_fdata())


def test_roi_rows_encoding_and_rsa(fmri_run):
    _, result, _, _ = fmri_run
    t = result.table.set_index(["session", "metric"])
    enc = "ridge:pearson/median"
    assert t.loc[("roi:signal", enc), "raw"] > 0.5 > 0.1 > abs(t.loc[("roi:noise", enc), "raw"])
    rsa = "rsa:correlation/spearman"
    assert t.loc[("roi:signal", rsa), "raw"] > 0.3 > 0.1 > abs(t.loc[("roi:noise", rsa), "raw"])
    assert t.loc[("roi:signal", rsa), "raw_ci_low"] > 0.1
    assert (result.table["ceiling_note"].str.len() > 0).all()  # no ceiling, and every row says so
    assert result.table["normalised"].isna().all()
    assert result.meta["fmri"]["rois"] == {1: "signal", 2: "noise"}


def test_betas_with_too_few_volumes_name_the_file(tmp_path, data_dir, pixel_features):
    (mdir, bdir), _ = _write_dataset(tmp_path, pixel_features, n_volumes=90)
    bench = ba.load_benchmark(bdir / "synthfmri.ROI-fmri.yaml", data_dir=[tmp_path, data_dir],
                              manifest_dirs=[mdir])
    with pytest.raises(StimulusError, match=r"betas\.nii\.gz: 90 volumes but 92 stimuli"):
        bench.sessions  # noqa: B018



def test_the_layer_plot_shows_each_region_beside_the_whole_mask(fmri_run):
    """The figure drew the whole mask only (r ≈ 0.04 here), and a reader took the model for one
    that predicts nothing; the signal region (r > 0.5) was only in the table."""
    from brainalign.plots import plot_layers

    _, result, _, _ = fmri_run
    fig = plot_layers(result)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    b = "synthfmri.ROI-fmri"
    assert set(panels) == {f"{b} [whole mask]", *(f"{b} [roi:{r} · {m}]" for r in ("signal", "noise")
                                                  for m in ("ridge:pearson/median", "rsa:correlation/spearman"))}
    drawn = panels[f"{b} [roi:signal · ridge:pearson/median]"].lines[0].get_ydata()
    assert min(drawn) > 0.5 and max(panels[f"{b} [whole mask]"].lines[0].get_ydata()) < 0.2
