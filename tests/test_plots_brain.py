"""Brain maps with nilearn, on a synthetic score map in MNI space with a known peak."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("nilearn")

from brainalign.errors import MetricInputError  # noqa: E402
from brainalign.plots.brain import (  # noqa: E402
    as_map,
    plot_glass_brain,
    plot_slices,
    plot_surface,
    scores_to_image,
    surface_texture,
)

PEAK = np.array([30.0, -88.0, 0.0])  # right lateral occipital cortex, MNI mm


@pytest.fixture(scope="module")
def mask():
    from nilearn import datasets

    return datasets.load_mni152_brain_mask(resolution=2)


@pytest.fixture(scope="module")
def blob(mask):
    """A Gaussian 'score' blob (sd 8 mm) at PEAK, zero outside nilearn's MNI152 brain mask."""
    inside = np.asarray(mask.dataobj) != 0
    ijk = np.argwhere(inside)
    xyz = nib.affines.apply_affine(mask.affine, ijk)
    values = np.exp(-((xyz - PEAK) ** 2).sum(axis=1) / (2 * 8.0**2))
    return scores_to_image(values, mask), values


def test_scores_go_back_to_their_voxels(mask, blob):
    img, values = blob
    data = np.asarray(img.dataobj)
    inside = np.asarray(mask.dataobj) != 0
    np.testing.assert_allclose(data[inside], values, rtol=1e-6, atol=1e-30)
    assert (data[~inside] == 0).all()
    peak_vox = np.unravel_index(np.argmax(data), data.shape)
    assert np.linalg.norm(nib.affines.apply_affine(img.affine, peak_vox) - PEAK) <= 2 * np.sqrt(3)


def test_surface_texture_peaks_at_the_blob(blob):
    from nilearn import datasets, surface

    img, _ = blob
    right, left = surface_texture(img, "right"), surface_texture(img, "left")
    assert right.shape == left.shape == (10242,)
    assert right.max() > 0.5 and left.max() < 0.05  # the blob is in the right hemisphere only
    coords, _ = surface.load_surf_mesh(datasets.fetch_surf_fsaverage("fsaverage5")["pial_right"])
    assert np.linalg.norm(coords[np.argmax(right)] - PEAK) < 12.0


def test_figures_are_drawn_and_written(blob, tmp_path):
    img, _ = blob
    glass = plot_glass_brain(img, threshold=0.2, title="synthetic", path=tmp_path / "glass")
    assert len(glass.axes) >= 3  # three projections (+ colour bar)
    assert (tmp_path / "glass.png").stat().st_size > 5000 and (tmp_path / "glass.svg").exists()
    slices = plot_slices(img, cut_coords=tuple(PEAK), threshold=0.2, path=tmp_path / "slices.png")
    assert len(slices.axes) >= 3 and (tmp_path / "slices.png").exists()
    surf = plot_surface(img, hemis=("right",), views=("lateral",), threshold=0.2, path=tmp_path / "surf.png")
    assert any(ax.name == "3d" for ax in surf.axes) and (tmp_path / "surf.png").exists()


def test_bad_maps_are_named(tmp_path, mask):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        as_map(tmp_path / "nope.nii.gz")
    four_d = nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4))
    with pytest.raises(MetricInputError, match="one 3-D volume"):
        plot_glass_brain(four_d)
    with pytest.raises(MetricInputError, match="3 values for"):
        scores_to_image(np.zeros(3), mask)
    with pytest.raises(MetricInputError, match="no finite value"):
        as_map(nib.Nifti1Image(np.full((4, 4, 4), np.nan, np.float32), np.eye(4)))
