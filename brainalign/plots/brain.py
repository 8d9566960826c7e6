"""Voxel score maps on the brain (nilearn): glass brain, slices on the MNI152 template, and the
fsaverage5 surface. Everything used here ships with nilearn, so it works offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from brainalign.errors import MetricInputError
from brainalign.plots.style import SINGLE_COLUMN_IN, TITLE_PT, save_figure
from brainalign.settings import PathLike


def as_map(img: Any, name: str = "score map"):
    """A 3-D NIfTI image from an image, a path, or a 4-D image with one volume.

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    MetricInputError
        Not 3-D, or no finite value.
    """
    import nibabel as nib

    if isinstance(img, str | Path):
        p = Path(img)
        if not p.exists():
            raise FileNotFoundError(f"{name}: NIfTI file {p} does not exist")
        img = nib.load(p)
    if not hasattr(img, "affine") or not hasattr(img, "get_fdata"):
        raise MetricInputError(f"{name}: expected a NIfTI image or a path to one, got {type(img).__name__}")
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        img = nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine, img.header)
    elif len(shape) != 3:
        raise MetricInputError(f"{name}: a score map must be one 3-D volume, got shape {shape}")
    data = np.asarray(img.dataobj, dtype=float)
    if not np.isfinite(data).any():
        raise MetricInputError(f"{name}: the map holds no finite value")
    if not np.isfinite(data).all():  # NaN voxels (outside the scored set) shown as empty
        img = nib.Nifti1Image(np.nan_to_num(data, nan=0.0), img.affine)
    return img


def scores_to_image(values: np.ndarray, mask_img: Any):
    """Put per-voxel scores back into the brain: ``values`` in the order of the mask's non-zero
    voxels (C order, as :class:`nilearn.maskers.NiftiMasker` flattens them) → a 3-D image."""
    import nibabel as nib

    mask = as_map(mask_img, "mask")
    inside = np.asarray(mask.dataobj) != 0
    values = np.asarray(values, dtype=float).ravel()
    if values.size != int(inside.sum()):
        raise MetricInputError(f"scores_to_image: {values.size} values for {int(inside.sum())} voxels "
                               "in the mask")
    out = np.zeros(inside.shape, dtype=np.float32)
    out[inside] = values
    return nib.Nifti1Image(out, mask.affine)


def plot_glass_brain(img: Any, *, threshold: float | str | None = "auto", title: str | None = None,
                     vmax: float | None = None, width: float = SINGLE_COLUMN_IN,
                     path: PathLike | None = None, formats: Sequence[str] | None = None) -> Figure:
    """Maximum-intensity projections of a voxel score map (sagittal, coronal, axial) on the
    MNI152 glass brain.

    Parameters
    ----------
    img
        A 3-D NIfTI image in MNI space (or its path).
    threshold
        Values below are transparent (``"auto"``: nilearn's choice; ``None``: none).
    """
    from nilearn import plotting

    img = as_map(img)
    fig = Figure(figsize=(width, width * 0.4))
    plotting.plot_glass_brain(img, figure=fig, threshold=threshold, colorbar=True, plot_abs=False,
                              vmax=vmax, title=None, black_bg=False)
    if title:
        fig.suptitle(title, fontsize=TITLE_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig


def plot_slices(img: Any, *, display_mode: str = "ortho", cut_coords: Any = None,
                threshold: float | str | None = "auto", title: str | None = None,
                vmax: float | None = None, width: float = SINGLE_COLUMN_IN,
                path: PathLike | None = None, formats: Sequence[str] | None = None) -> Figure:
    """Slices of a voxel score map over the MNI152 template (nilearn's bundled copy).

    ``display_mode``/``cut_coords`` as in :func:`nilearn.plotting.plot_stat_map` (``"ortho"``
    with an (x, y, z) in mm; ``"z"``/``"x"``/``"y"`` with a number or list of cuts)."""
    from nilearn import datasets, plotting

    img = as_map(img)
    fig = Figure(figsize=(width, width * (0.4 if display_mode == "ortho" else 0.3)))
    plotting.plot_stat_map(img, bg_img=datasets.load_mni152_template(resolution=1), figure=fig,
                           display_mode=display_mode, cut_coords=cut_coords, threshold=threshold,
                           colorbar=True, vmax=vmax, black_bg=False, title=None)
    if title:
        fig.suptitle(title, fontsize=TITLE_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig


def surface_texture(img: Any, hemi: str = "right", *, radius: float = 3.0) -> np.ndarray:
    """Map values sampled on nilearn's fsaverage5 pial surface (10,242 vertices per hemisphere)."""
    from nilearn import datasets, surface

    if hemi not in ("left", "right"):
        raise MetricInputError(f"surface_texture: hemi must be 'left' or 'right', got {hemi!r}")
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    return surface.vol_to_surf(as_map(img), fs[f"pial_{hemi}"], radius=radius)


def plot_surface(img: Any, *, hemis: Sequence[str] = ("left", "right"),
                 views: Sequence[str] = ("lateral", "medial"), threshold: float | None = None,
                 vmax: float | None = None, title: str | None = None, width: float = SINGLE_COLUMN_IN,
                 path: PathLike | None = None, formats: Sequence[str] | None = None) -> Figure:
    """A voxel score map projected onto the inflated fsaverage5 surface, one panel per
    (view, hemisphere), on a shared colour scale."""
    from nilearn import datasets, plotting

    img = as_map(img)
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    tex = {h: surface_texture(img, h) for h in hemis}
    if vmax is None:
        vmax = float(max(np.nanmax(np.abs(t)) for t in tex.values())) or 1.0
    fig = Figure(figsize=(width, width * 0.45 * len(views) / max(len(hemis) / 2, 1)))
    n = 0
    for view in views:
        for h in hemis:
            n += 1
            ax = fig.add_subplot(len(views), len(hemis), n, projection="3d")
            plotting.plot_surf_stat_map(fs[f"infl_{h}"], tex[h], hemi=h, view=view,
                                        bg_map=fs[f"sulc_{h}"], axes=ax, figure=fig,
                                        threshold=threshold, vmax=vmax,
                                        colorbar=n == len(views) * len(hemis), engine="matplotlib")
            ax.set_title(f"{h} {view}", fontsize=TITLE_PT - 1)
    if title:
        fig.suptitle(title, fontsize=TITLE_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
