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


def read_nifti_betas(path_of: PathGetter, *, betas: str, mask: str, stimulus_ids: Sequence[str],
                     labels: Mapping[int | str, str] | None = None,
                     standardize: bool = False) -> VoxelData:
    """Betas of the voxels inside ``mask``, with their ROI labels.

    Parameters
    ----------
    betas
        A 4-D NIfTI file, volume k the response to stimulus k.
    mask
        A 3-D NIfTI file: a binary mask or an atlas of integer ROI labels (0 = outside). The
        betas are resampled to its grid when they differ (nilearn); the map goes back into it.
    labels
        Atlas label → ROI name (default: the label as text).
    standardize
        z-score each voxel over stimuli (nilearn's ``standardize="zscore_sample"``).
    """
    from nilearn.image import new_img_like
    from nilearn.maskers import NiftiMasker

    beta_path, mask_path = path_of(betas), path_of(mask)
    beta_img, atlas_img = _load(beta_path), _load(mask_path)
    if beta_img.ndim != 4:
        raise BenchmarkDefinitionError(f"{beta_path}: betas must be 4-D (x, y, z, stimulus), got {beta_img.shape}")
    if beta_img.shape[3] != len(stimulus_ids):
        raise StimulusError(f"{beta_path}: {beta_img.shape[3]} volumes but {len(stimulus_ids)} stimuli "
                            f"(first id {stimulus_ids[0] if len(stimulus_ids) else None!r})")
    atlas = np.rint(np.asarray(atlas_img.get_fdata())).astype(np.int64)
    if atlas.ndim == 4 and atlas.shape[3] == 1:
        atlas = atlas[..., 0]
    if atlas.ndim != 3 or not (atlas > 0).any():
        raise BenchmarkDefinitionError(f"{mask_path}: mask must be 3-D with some voxels > 0, got {atlas.shape}")
    binary = new_img_like(atlas_img, (atlas > 0).astype(np.int8), copy_header=True)
    masker = NiftiMasker(mask_img=binary, standardize="zscore_sample" if standardize else None)
    data = masker.fit_transform(beta_img)  # (stimulus, voxel)
    bad = ~np.isfinite(data)
    if bad.any():
        k, v = (int(x) for x in np.argwhere(bad)[0])
        raise BenchmarkDefinitionError(f"{beta_path}: {int(bad.sum())} NaN/inf betas inside the mask "
                                       f"(first: volume {k}, voxel {tuple(np.argwhere(atlas > 0)[v])})")
    # The same masker applied to the atlas gives each voxel's label, in the same voxel order.
    lab = np.rint(np.ravel(masker.transform(new_img_like(atlas_img, atlas.astype(np.float32), copy_header=True))))
    lab = lab.astype(np.int64)
    ijk = np.argwhere(atlas > 0)  # C order, as nilearn's masking
    names = {int(k): str(v) for k, v in (labels or {}).items()}
    roi = [names.get(int(v), str(int(v))) for v in lab]
    da = xr.DataArray(
        np.asarray(data, dtype=np.float64), dims=("stimulus", "neuroid"),
        coords={"stimulus_id": ("stimulus", list(stimulus_ids)),
                "neuroid_id": ("neuroid", [f"{i},{j},{k}" for i, j, k in ijk]),
                "roi": ("neuroid", roi), "roi_label": ("neuroid", lab)},
        attrs={"source": str(beta_path), "mask": str(mask_path)})
    for v in np.unique(lab):
        names.setdefault(int(v), str(int(v)))
    return VoxelData(da, masker, names)
