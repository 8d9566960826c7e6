"""Receptive-field maps from noise: spike-triggered average (streamed) or ridge regression."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from brainalign.activations.extract import extract
from brainalign.device import DeviceLike, resolve_device
from brainalign.errors import StimulusError
from brainalign.insilico.recording import centre_reducer, input_converter, unit_layout
from brainalign.insilico.stimuli import FieldOfView
from brainalign.models.base import BrainModel


@dataclass
class RFMaps:
    """Receptive-field maps of a layer's units.

    Attributes
    ----------
    maps
        (units, m, m) linear RF estimates on the noise grid (``block_px`` pixels per cell);
        positive = the unit is driven by light there.
    block_px
        Pixels per noise cell.
    fov
        The field of view the maps span.
    responsive
        (units,) False where the unit's response did not vary over the noise (its map is
        meaningless; reported, not averaged).
    settings
        How the maps were made (noise, frames, seed, method).
    """

    maps: np.ndarray
    block_px: int
    fov: FieldOfView
    responsive: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def cell_deg(self) -> float:
        """Side of a noise cell in degrees."""
        return self.block_px / self.fov.ppd


def _noise_batch(gen: torch.Generator, n: int, m: int, kind: str, device: torch.device) -> torch.Tensor:
    if kind == "white":
        return torch.randint(0, 2, (n, m, m), generator=gen, device=device).float().mul_(2).sub_(1)
    if kind == "sparse":
        # one bright or dark cell per frame
        cell = torch.randint(0, m * m, (n,), generator=gen, device=device)
        sign = torch.randint(0, 2, (n,), generator=gen, device=device).float().mul_(2).sub_(1)
        out = torch.zeros(n, m * m, device=device)
        out[torch.arange(n, device=device), cell] = sign
        return out.view(n, m, m)
    raise StimulusError(f"unknown noise {kind!r}; use 'white' or 'sparse'")


def map_receptive_fields(model: BrainModel, layer: str, *, n_frames: int = 10_000, block_px: int = 1,
                         noise: str = "white", method: str = "sta", batch_size: int = 256,
                         seed: int = 0, device: DeviceLike = "auto", ridge_alphas: tuple[float, ...] = (
                             1e-1, 1e0, 1e1, 1e2, 1e3, 1e4)) -> RFMaps:
    """Map the receptive fields of ``layer``'s units with noise.

    ``method="sta"``: the spike-triggered average (response-weighted mean of the frames, minus
    the mean frame), accumulated batch by batch on the device, so memory does not grow with
    ``n_frames``; for white noise it is proportional to the linear filter. ``method="ridge"``:
    ridge regression of each unit on the noise cells (:class:`brainalign.metrics.RidgeCV`, α per
    unit by leave-one-out; all frames in memory, so use a coarse ``block_px``).

    Parameters
    ----------
    model, layer
        The model and one layer (conv: channels at the centre; fully connected: every unit).
    n_frames
        Noise frames.
    block_px
        Side of a noise cell in pixels.
    noise
        ``"white"`` (binary ±1 cells) or ``"sparse"`` (one ±1 cell per frame on grey).
    """
    layout = unit_layout(model, layer)
    name = layout["layer"]
    fov = FieldOfView.of(model)
    if block_px < 1 or block_px > fov.size_px:
        raise StimulusError(f"noise cell of {block_px} px does not fit the {fov.size_px} px field")
    if method not in ("sta", "ridge"):
        raise ValueError(f"unknown RF method {method!r}; use 'sta' or 'ridge'")
    for what, v in (("n_frames", n_frames), ("block_px", block_px)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:  # 0 frames gave all-zero maps
            raise StimulusError(f"map_receptive_fields: {what}={v!r} must be a whole number ≥ 1")
    m = -(-fov.size_px // block_px)
    dev = resolve_device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    convert = input_converter(model)
    k = int(layout["n_units"])
    s_sum = torch.zeros(m * m, dtype=torch.float64, device=dev)
    r_sum = torch.zeros(k, dtype=torch.float64, device=dev)
    r_sq = torch.zeros(k, dtype=torch.float64, device=dev)
    rs_sum = torch.zeros(k, m * m, dtype=torch.float64, device=dev)
    keep_s, keep_r = [], []
    done = 0
    while done < n_frames:
        b = min(batch_size, n_frames - done)
        cells = _noise_batch(gen, b, m, noise, dev)
        frames = cells.repeat_interleave(block_px, 1).repeat_interleave(block_px, 2)[
            :, :fov.size_px, :fov.size_px] if block_px > 1 else cells
        acts = extract(model, convert(frames), [name], batch_size=b, device=dev, reducers=centre_reducer)
        r = torch.from_numpy(acts[name].values).to(dev)
        flat = cells.reshape(b, -1)
        if method == "sta":
            s_sum += flat.sum(0, dtype=torch.float64)
            r_sum += r.sum(0, dtype=torch.float64)
            r_sq += (r.double() ** 2).sum(0)
            rs_sum += (r.T @ flat).double()
        else:
            keep_s.append(flat.cpu().numpy())
            keep_r.append(r.cpu().numpy())
        done += b
    if method == "sta":
        mean_r = r_sum / n_frames
        var_r = r_sq / n_frames - mean_r ** 2
        maps = ((rs_sum - mean_r[:, None] * s_sum[None, :]) / n_frames).float().cpu().numpy()
        responsive = (var_r > 1e-12 * torch.clamp(mean_r.abs() ** 2, min=1e-12)).cpu().numpy() & (
            var_r.cpu().numpy() > 0)
    else:
        from brainalign.metrics import RidgeCV

        s_all, r_all = np.concatenate(keep_s), np.concatenate(keep_r)
        responsive = r_all.std(0) > 0
        reg = RidgeCV(alphas=np.asarray(ridge_alphas), alpha_per_target=True, device=dev,
                      dtype="float32").fit(s_all, r_all)
        maps = np.asarray(reg.coef_, dtype=np.float32).reshape(k, -1)
    maps[~responsive] = 0.0
    return RFMaps(maps.reshape(k, m, m), block_px, fov, np.asarray(responsive, bool),
                  {"model": model.name, "layer": name, "n_frames": n_frames, "noise": noise,
                   "block_px": block_px, "method": method, "seed": seed,
                   "units": "centre position of each channel" if layout["spatial"] else "all units"})
