"""fMRI data in NIfTI: beta volumes (one per stimulus) and a mask or atlas, through nilearn."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign.errors import BenchmarkDefinitionError, StimulusError

PathGetter = Callable[[str], Path]


@dataclass
class VoxelData:
    """Voxel responses and what is needed to map per-voxel values back into the brain.

    Attributes
    ----------
    responses
        (stimulus × neuroid) betas of the voxels inside the mask; coords ``stimulus_id``,
        ``neuroid_id`` (``"i,j,k"`` voxel indices in the mask's grid) and ``roi`` (atlas label).
    masker
        The fitted :class:`nilearn.maskers.NiftiMasker`; ``masker.inverse_transform(values)``
        turns one value per voxel into an image in the mask's space.
    roi_names
        Atlas label → ROI name.
    """

    responses: xr.DataArray
    masker: Any
    roi_names: dict[int, str]

    def to_image(self, values: np.ndarray):
        """A 3-D NIfTI image in the mask's space holding one value per voxel (0 outside)."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (self.responses.sizes["neuroid"],):
            raise BenchmarkDefinitionError(
                f"a voxel map needs {self.responses.sizes['neuroid']} values, got shape {values.shape}")
        return self.masker.inverse_transform(values[None, :]).slicer[..., 0]


def _load(path: Path):
    import nibabel as nib

    try:
        img = nib.load(str(path))
        img.get_fdata(dtype=np.float32)  # decode now, so a broken file is reported here
    except Exception as err:
        raise BenchmarkDefinitionError(f"{path}: not a readable NIfTI image: {err}") from err
    return img


def _same_space(a, b) -> bool:
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=1e-4)


def _space(img) -> str:
    return f"shape {tuple(img.shape[:3])}, affine {np.round(img.affine, 3).tolist()}"


def read_nifti_betas(path_of: PathGetter, *, betas: str, mask: str, stimulus_ids: Sequence[str],
                     labels: Mapping[int | str, str] | None = None,
                     standardize: bool = False, resample_mask: bool = False) -> VoxelData:
    """Betas of the voxels inside ``mask``, with their ROI labels.

    The data are checked as they are read, before any voxel is extracted: NaN/inf betas inside the
    mask are an error naming the file, the volume and the voxel (nilearn would silently turn them
    into 0); so is a mask that covers no voxel of the betas. The betas are never interpolated.

    Parameters
    ----------
    betas
        A 4-D NIfTI file, volume k the response to stimulus k.
    mask
        A 3-D NIfTI file: a binary mask or an atlas of integer ROI labels (0 = outside), in the
        betas' space (same shape and affine).
    labels
        Atlas label → ROI name (default: the label as text).
    standardize
        z-score each voxel over stimuli (nilearn's ``standardize="zscore_sample"``).
    resample_mask
        A mask in another space (other shape or affine) is refused unless this is true; then the
        mask is resampled onto the betas' grid by nearest neighbour (labels stay labels, betas
        untouched), the maps come back in the betas' space, and ``responses.attrs["mask_resampled"]``
        (in the result's ``meta["fmri"]``) says so.

    Raises
    ------
    DataFaultError
        NaN/inf betas inside the mask; a mask in another space without ``resample_mask``; a mask
        that does not overlap the betas.
    StimulusError
        As many volumes as stimuli are needed.
    """
    from nilearn.image import new_img_like, resample_to_img
    from nilearn.maskers import NiftiMasker

    from brainalign.errors import DataFaultError

    beta_path, mask_path = path_of(betas), path_of(mask)
    beta_img, atlas_img = _load(beta_path), _load(mask_path)
    if beta_img.ndim != 4:
        raise BenchmarkDefinitionError(f"{beta_path}: betas must be 4-D (x, y, z, stimulus), got {beta_img.shape}")
    if beta_img.shape[3] != len(stimulus_ids):
        raise StimulusError(f"{beta_path}: {beta_img.shape[3]} volumes but {len(stimulus_ids)} stimuli "
                            f"(first id {stimulus_ids[0] if len(stimulus_ids) else None!r})")
    if atlas_img.ndim == 4 and atlas_img.shape[3] == 1:
        atlas_img = atlas_img.slicer[..., 0]
    if atlas_img.ndim != 3:
        raise BenchmarkDefinitionError(f"{mask_path}: mask must be 3-D, got {atlas_img.shape}")
    resampled = ""
    if not _same_space(atlas_img, beta_img):
        if not resample_mask:
            raise DataFaultError(
                f"{mask_path}: the mask is in another space than the betas {beta_path.name} "
                f"(mask {_space(atlas_img)}; betas {_space(beta_img)}). Resample it onto the betas' grid "
                "yourself, or set `resample_mask: true` in the target section (nearest neighbour, recorded "
                "in the result)")
        atlas_img = resample_to_img(atlas_img, beta_img.slicer[..., 0], interpolation="nearest",
                                    force_resample=True, copy_header=True)
        resampled = (f"mask {mask_path.name} resampled by nearest neighbour onto the betas' grid "
                     f"({_space(beta_img)})")
    atlas = np.rint(np.nan_to_num(np.asarray(atlas_img.get_fdata()))).astype(np.int64)
    inside = atlas > 0
    if not inside.any():
        raise DataFaultError(f"{mask_path}: the mask does not overlap the betas {beta_path.name}: no voxel "
                             "inside it" + (" after resampling onto the betas' grid" if resampled else ""))
    ijk = np.argwhere(inside)  # C order, as nilearn's masking
    raw = np.asarray(beta_img.get_fdata(dtype=np.float32))[tuple(ijk.T)]  # (voxel, volume), before masking
    bad = ~np.isfinite(raw)
    if bad.any():
        v, k = (int(x) for x in np.argwhere(bad)[0])
        vols = np.unique(np.argwhere(bad)[:, 1])
        raise DataFaultError(f"{beta_path}: {int(bad.sum())} NaN/inf betas inside the mask, in {len(vols)} "
                             f"volume(s) (first: volume {k}, stimulus {stimulus_ids[k]!r}, voxel "
                             f"{tuple(int(x) for x in ijk[v])})")
    binary = new_img_like(atlas_img, inside.astype(np.int8), copy_header=True)
    masker = NiftiMasker(mask_img=binary, standardize="zscore_sample" if standardize else None)
    data = masker.fit_transform(beta_img)  # (stimulus, voxel); the same grid: no resampling
    # The same masker applied to the atlas gives each voxel's label, in the same voxel order.
    lab = np.rint(np.ravel(masker.transform(new_img_like(atlas_img, atlas.astype(np.float32), copy_header=True))))
    lab = lab.astype(np.int64)
    names = {int(k): str(v) for k, v in (labels or {}).items()}
    roi = [names.get(int(v), str(int(v))) for v in lab]
    attrs = {"source": str(beta_path), "mask": str(mask_path)}
    if resampled:
        attrs["mask_resampled"] = resampled
    da = xr.DataArray(
        np.asarray(data, dtype=np.float64), dims=("stimulus", "neuroid"),
        coords={"stimulus_id": ("stimulus", list(stimulus_ids)),
                "neuroid_id": ("neuroid", [f"{i},{j},{k}" for i, j, k in ijk]),
                "roi": ("neuroid", roi), "roi_label": ("neuroid", lab)},
        attrs=attrs)
    for v in np.unique(lab):
        names.setdefault(int(v), str(int(v)))
    return VoxelData(da, masker, names)
