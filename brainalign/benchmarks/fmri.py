"""fMRI benchmarks: NIfTI betas (one volume per stimulus) in a mask or atlas, scored voxel by voxel
and ROI by ROI, with the per-voxel score map written back into the mask's space.

The voxels inside the mask (atlas label > 0) are extracted with nilearn's ``NiftiMasker``. Every
voxel is predicted from a layer by cross-validated ridge regression, exactly as a neuron in
:class:`~brainalign.benchmarks.regression.RegressionBenchmark` (held-out Pearson r, bootstrap CIs,
dev / held-out layer choice); the row ``session == "all"`` aggregates every voxel, and rows
``session == "roi:<name>"`` aggregate the voxels of one atlas label. Per ROI, an RSA row
(``metric`` starting with ``rsa``) compares the layer's RDM with the RDM of the ROI's voxel
patterns. Each layer's per-voxel r goes back into the brain as a NIfTI image
(``result.details[(model, benchmark, layer, "all")]["image"]``; :meth:`FMRIBenchmark.save_maps`
writes them). Without repeated betas there is no noise ceiling: rows say so.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from brainalign.benchmarks.base import bootstrap_settings, no_ceiling_note, percentile_ci
from brainalign.benchmarks.regression import RegressionBenchmark, Session, _agg
from brainalign.benchmarks.schemas import FMRISchema
from brainalign.benchmarks.selection import dev_split, selection_settings
from brainalign.data.nifti import VoxelData
from brainalign.errors import BenchmarkDefinitionError
from brainalign.metrics.rsa import RSABootstrap, compare_rdms, rdm
from brainalign.results.result import ScoreResult
from brainalign.results.table import LayerScore
from brainalign.settings import PathLike


class FMRIBenchmark(RegressionBenchmark):
    """Voxelwise encoding and per-ROI RSA on NIfTI betas; see the module docstring.

    YAML ``target``: ``reader: nifti_betas`` with ``betas`` (4-D file), ``mask`` (3-D mask or
    atlas), ``labels`` (atlas label → ROI name). ``metric`` takes the regression keys plus
    ``rdm_distance`` and ``compare`` for the ROI RSA. ``ceiling: {method: none, reason: …}``.
    """

    schema = FMRISchema
    kind_label = "an fMRI benchmark"
    supports_max_stimuli = False  # its sessions are read from the voxel data, never subset

    def __init__(self, spec, **kwargs: Any):
        metric = dict(spec.metric)
        self.rdm_distance = metric.pop("rdm_distance", "correlation")
        self.compare = metric.pop("compare", "spearman")
        import dataclasses

        spec = dataclasses.replace(spec, metric=metric, ceiling={"method": "none", **spec.ceiling})
        super().__init__(spec, **kwargs)
        self.ceiling_reason = no_ceiling_note(spec, "no repeated betas: no noise ceiling")

    @cached_property
    def voxels(self) -> VoxelData:
        """The betas inside the mask, their ROI labels and the masker that maps values back."""
        stimuli = self.read(self.spec.stimuli, name=self.spec.dataset)
        vd = self.read(self.spec.target, stimulus_ids=stimuli.ids)
        if not isinstance(vd, VoxelData):
            raise BenchmarkDefinitionError(f"{self.spec.path}: the fmri kind needs a nifti_betas target")
        self._stimuli_cache = stimuli
        return vd

    @cached_property
    def sessions(self) -> list[Session]:  # type: ignore[override]
        vd = self.voxels
        return [Session("all", self._stimuli_cache, vd.responses, None)]

    def _more_scores(self, layer: str, features: dict[str, xr.DataArray],
                     stats: dict[str, dict[str, Any]]) -> list[LayerScore]:
        """Per ROI: the encoding score over its voxels and an RSA row (layer RDM vs the ROI's
        voxel-pattern RDM); the layer's per-voxel r map goes into the ``all`` row's details."""
        d = stats["all"]["detail"]
        vd = self.voxels
        n_boot, level, bseed = bootstrap_settings(self.spec, self.n_bootstrap)
        common = {"ceiling_note": self.ceiling_reason, "n_stimuli": len(self.stimuli)}
        out = []
        roi = vd.responses["roi"].values
        X = features["all"].transpose("stimulus", ...).values.reshape(len(self.stimuli), -1)
        model_rdm = rdm(X, self.rdm_distance)
        fraction, sseed = selection_settings(self.spec.statistics)
        split = dev_split(len(self.stimuli), fraction=fraction, seed=sseed)
        enc_metric = f"{self.model_kind}:pearson/{self.aggregate}"
        for name in dict.fromkeys(roi):
            sel = roi == name
            r = d["r"][sel]
            boot = _agg(d["boot"][:, sel], self.aggregate)
            lo, hi = percentile_ci(boot, level)
            out.append(LayerScore(
                raw=float(_agg(r, self.aggregate)), metric=enc_metric, session=f"roi:{name}",
                raw_ci_low=lo, raw_ci_high=hi, n_neuroids=int(np.isfinite(r).sum()),
                dev_score=float(_agg(d["dev"][sel], self.aggregate)),
                heldout_score=float(_agg(d["held"][sel], self.aggregate)),
                details={"r": r, "bootstrap_raw": boot, "bootstrap_normalised": np.full(len(boot), np.nan)},
                **common))
            roi_rdm = rdm(vd.responses.values[:, sel], self.rdm_distance)
            rboot = RSABootstrap(roi_rdm[None], self.compare, n_boot=n_boot, seed=bseed).score(model_rdm)
            lo, hi = percentile_ci(rboot, level)
            sub = [np.ix_(ix, ix) for ix in (split.dev, split.heldout)]
            out.append(LayerScore(
                raw=float(compare_rdms(model_rdm, roi_rdm, self.compare)),
                metric=f"rsa:{self.rdm_distance}/{self.compare}", session=f"roi:{name}",
                raw_ci_low=lo, raw_ci_high=hi, n_neuroids=int(sel.sum()),
                dev_score=float(compare_rdms(model_rdm[sub[0]], roi_rdm[sub[0]], self.compare)),
                heldout_score=float(compare_rdms(model_rdm[sub[1]], roi_rdm[sub[1]], self.compare)),
                details={"bootstrap_raw": rboot, "bootstrap_normalised": np.full(len(rboot), np.nan)},
                **common))
        return out

    def score_layer(self, layer: str, activations: xr.DataArray) -> list[LayerScore]:
        """The regression kind's rows plus per-ROI rows; the aggregate row's details carry the
        layer's per-voxel r as a NIfTI image in the mask's space (``image``)."""
        scores = super().score_layer(layer, activations)
        agg = scores[0]  # session "all": every voxel
        vd = self.voxels
        agg.details.update(image=vd.to_image(np.nan_to_num(agg.details["r"], nan=0.0)),
                           voxel_ids=vd.responses["neuroid_id"].values, roi=vd.responses["roi"].values)
        return scores

    def _more_meta(self) -> dict[str, Any]:
        vd = self.voxels
        return {"fmri": {"n_voxels": vd.responses.sizes["neuroid"], "rois": vd.roi_names,
                         "mask": vd.responses.attrs.get("mask"),
                         "mask_resampled": vd.responses.attrs.get("mask_resampled", ""),
                         "rdm_distance": self.rdm_distance,
                         "compare": self.compare,
                         "map": "per-voxel held-out r of each layer, in the mask's space"}}

    @staticmethod
    def save_maps(result: ScoreResult, out_dir: PathLike) -> list[Path]:
        """Write every per-voxel score map of ``result`` as ``<model>__<benchmark>__<layer>.nii.gz``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for (model, bench, layer, _session), det in result.details.items():
            if "image" in det:
                safe = "__".join(x.replace("/", "_").replace(":", "_") for x in (model, bench, layer))
                p = out / f"{safe}.nii.gz"
                det["image"].to_filename(str(p))
                paths.append(p)
        return paths
