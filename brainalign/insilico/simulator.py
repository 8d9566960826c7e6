"""A simulated V1 population with known parameters: the ground truth for in-silico physiology.

Simple cells are half-wave rectified linear Gabor filters; complex cells the energy of a
quadrature pair. Each cell's drive is divided by ``1 + w · E_surround``, where ``E_surround`` is
the local contrast energy under a Gaussian several times wider than the cell's envelope
(1 for a full-field full-contrast grating), which gives surround suppression; an untuned share
of the drive (contrast energy under the envelope) broadens orientation tuning. Expected responses
are spikes per presentation; :meth:`SimulatedV1.sample` draws Poisson counts over repeats.

Parameters are drawn from the macaque V1 distributions (orientation: De Valois 1982a; peak SF:
De Valois 1982b; envelope widths nx, ny: Ringach 2002 via VOneNet; surround suppression:
Cavanaugh 2002), or given explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from brainalign.insilico.gabor import gabor
from brainalign.insilico.stimuli import FieldOfView, grating

# Histograms (bin edges, counts) of the V1 distributions, as in the v1_properties tables
# (marques2020_brainscore/devalois1982a_preferred_orientation.csv, devalois1982b_peak_sf_all.csv,
# cavanaugh2002a_surround_suppression_index.csv; vonenet_dapello2020/vonenet_ringach2002b_nx_ny_joint.csv).
# Kept here so that the simulator (and the offline demo) needs no data files; a test checks them
# against the CSVs.
ORIENTATION_HIST = (np.array([-22.5, 22.5, 67.5, 112.5, 157.5]), np.array([110, 83, 100, 92]))
PEAK_SF_HIST = (np.array([0.35, 0.5, 0.7, 1, 1.4, 2, 2.8, 4, 5.6, 8, 11.2, 16, 22.4]),
                np.array([3, 10, 15, 31, 57, 62, 67, 63, 31, 15, 5, 4]))
SSI_HIST = (np.linspace(0, 2, 11), np.array([66, 44, 38, 23, 16, 3, 0, 0, 0, 0]))
NXNY_EDGES = 10 ** np.linspace(-1, 0.2, 6)
NXNY_JOINT = np.array([[2, 0, 1, 0, 0], [8, 9, 4, 1, 0], [1, 2, 19, 17, 3], [0, 0, 1, 7, 4],
                       [0, 0, 0, 0, 0]])


def _draw_hist(rng: np.random.Generator, edges: np.ndarray, counts: np.ndarray, n: int,
               log: bool = False) -> np.ndarray:
    p = counts / counts.sum()
    b = rng.choice(len(counts), size=n, p=p)
    lo, hi = edges[b], edges[b + 1]
    u = rng.random(n)
    if log:
        return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
    return lo + u * (hi - lo)


@dataclass(frozen=True)
class V1Parameters:
    """One row per cell: kind (simple/complex), x0, y0, orientation, sf, phase, nx, ny,
    sigma_x, sigma_y (deg), surround_weight, surround_scale, gain, baseline."""

    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)


def sample_parameters(n_cells: int, *, fov: FieldOfView, seed: int = 0, complex_fraction: float = 0.5,
                      max_sf_fraction: float = 0.6, position_jitter: float = 0.0,
                      peak_rate: float = 20.0, baseline: float = 0.5, untuned_max: float = 0.0,
                      ) -> V1Parameters:
    """Draw ``n_cells`` cells from the macaque V1 distributions.

    With ``untuned_max`` = 0 (default) the cells are a pure Gabor energy model. A positive value
    adds an untuned share of the drive (local contrast energy), u/(1+u) uniform on
    0..``untuned_max``: orientation tuning then broadens to Ringach 2002's range (0.6 matches its
    circular variance), but the responses to photographs become dominated by local contrast,
    which any model predicts easily.

    Peak SFs above ``max_sf_fraction`` × the field's Nyquist limit are redrawn (they could not be
    rendered); envelopes are limited to fit the field. ``position_jitter`` (deg SD) moves
    RF centres off the field centre.
    """
    rng = np.random.default_rng(seed)
    ori = _draw_hist(rng, *ORIENTATION_HIST, n_cells) % 180
    sf_max = max_sf_fraction * fov.nyquist
    sf = _draw_hist(rng, *PEAK_SF_HIST, n_cells, log=True)
    while (bad := sf > sf_max).any():
        sf[bad] = _draw_hist(rng, *PEAK_SF_HIST, int(bad.sum()), log=True)
    flat = NXNY_JOINT.ravel() / NXNY_JOINT.sum()
    cells = rng.choice(flat.size, size=n_cells, p=flat)
    ix, iy = np.unravel_index(cells, NXNY_JOINT.shape)
    e = np.log(NXNY_EDGES)
    nx = np.exp(e[ix] + rng.random(n_cells) * (e[ix + 1] - e[ix]))
    ny = np.exp(e[iy] + rng.random(n_cells) * (e[iy + 1] - e[iy]))
    # Low-SF cells with wide envelopes would not fit the field: cap sigma at field/6.
    cap = fov.degrees / 6
    sx, sy = np.minimum(nx / sf, cap), np.minimum(ny / sf, cap)
    # Very narrow envelopes (under a cycle's third) make untuned blobs; keep >= 0.25 cycles.
    sx, sy = np.maximum(sx, 0.25 / sf), np.maximum(sy, 0.25 / sf)
    ssi = np.minimum(_draw_hist(rng, *SSI_HIST, n_cells), 0.9)
    kind = np.where(rng.random(n_cells) < complex_fraction, "complex", "simple")
    q = rng.uniform(0, untuned_max, n_cells)
    untuned = q / (1 - q)
    table = pd.DataFrame({
        "kind": kind, "x0": rng.normal(0, position_jitter, n_cells) if position_jitter else 0.0,
        "y0": rng.normal(0, position_jitter, n_cells) if position_jitter else 0.0,
        "orientation": ori, "sf": sf, "phase": rng.uniform(0, 360, n_cells), "nx": sx * sf, "ny": sy * sf,
        "sigma_x": sx, "sigma_y": sy, "surround_weight": ssi / (1 - ssi), "surround_scale": 3.0,
        "untuned": untuned,
        "peak_rate": peak_rate, "baseline": baseline})
    return V1Parameters(table)


class _Filters(nn.Module):
    """Linear Gabor filters, two per cell (even, odd); (B, 1, H, W) → (B, 2K)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T


class _Surround(nn.Module):
    """Local contrast energy under each cell's surround Gaussian; (B, 1, H, W) → (B, K)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) ** 2) @ self.weight.T


class _Response(nn.Module):
    """Simple: rectified even filter; complex: quadrature energy; plus the untuned drive;
    divided by the surround."""

    def __init__(self, is_complex: torch.Tensor, scale: torch.Tensor, surround_w: torch.Tensor,
                 baseline: torch.Tensor):
        super().__init__()
        self.register_buffer("is_complex", is_complex)
        self.register_buffer("scale", scale)
        self.register_buffer("surround_w", surround_w)
        self.register_buffer("baseline", baseline)

    def forward(self, lin: torch.Tensor, untuned: torch.Tensor, surround: torch.Tensor) -> torch.Tensor:
        k = self.scale.numel()
        even, odd = lin[:, :k], lin[:, k:]
        simple = torch.relu(even)
        cplx = even ** 2 + odd ** 2
        drive = torch.where(self.is_complex, cplx, simple) * self.scale + untuned
        return drive / (1 + self.surround_w * surround) + self.baseline


class SimulatedV1(nn.Module):
    """A V1 population as an ``nn.Module``: (B, 1, H, W) contrast images → (B, cells) expected
    spike counts per presentation. Wrap it with :func:`simulated_v1_model` to score it.

    Parameters
    ----------
    params
        Cell parameters (:func:`sample_parameters`).
    fov
        The field of view the input spans.
    """

    def __init__(self, params: V1Parameters, fov: FieldOfView):
        super().__init__()
        self.params, self.fov = params, fov
        t = params.table
        x, y = fov.coords()
        even, odd, sur, centre = [], [], [], []
        for r in t.itertuples():
            args = (r.x0, r.y0, r.sigma_x, r.sigma_y, r.orientation, r.sf)
            even.append(gabor(x, y, *args, r.phase))
            odd.append(gabor(x, y, *args, r.phase + 90))
            cg = np.exp(-0.5 * (((x - r.x0) / r.sigma_x) ** 2 + ((y - r.y0) / r.sigma_y) ** 2))
            centre.append(cg / (0.5 * cg.sum()))
            s = max(r.sigma_x, r.sigma_y) * r.surround_scale
            g = np.exp(-0.5 * ((x - r.x0) ** 2 + (y - r.y0) ** 2) / s ** 2)
            sur.append(g / (0.5 * g.sum()))  # a full-field grating (mean c² = 1/2) gives 1
        even_w, odd_w = np.stack(even), np.stack(odd)
        # Scale so that the drive to the preferred full-field grating peaks at peak_rate.
        amp = np.array([np.hypot((e * grating(fov, r.orientation, r.sf, 0.0)).sum(),
                                 (e * grating(fov, r.orientation, r.sf, 90.0)).sum())
                        for e, r in zip(even_w, t.itertuples(), strict=True)])
        is_c = (t["kind"] == "complex").to_numpy()
        scale = np.where(is_c, t["peak_rate"] / amp ** 2, t["peak_rate"] / amp)
        w = np.concatenate([even_w, odd_w]).reshape(2 * len(t), -1)
        sur_w = np.stack(sur).reshape(len(t), -1)
        # untuned drive: peak_rate x untuned share x local contrast energy (1 for a full field)
        cen_w = np.stack(centre).reshape(len(t), -1) * (t["untuned"] * t["peak_rate"]).to_numpy()[:, None]
        # Envelope tails underflow to subnormal floats, which slow a CPU matmul ~20-fold.
        w[np.abs(w) < 1e-6 * np.abs(w).max(1, keepdims=True)] = 0.0
        sur_w[sur_w < 1e-6 * sur_w.max(1, keepdims=True)] = 0.0
        cen_w[cen_w < 1e-6 * cen_w.max(1, keepdims=True)] = 0.0
        self.filters = _Filters(torch.tensor(w, dtype=torch.float32))
        self.surround = _Surround(torch.tensor(sur_w, dtype=torch.float32))
        self.untuned = _Surround(torch.tensor(cen_w, dtype=torch.float32))
        self.response = _Response(torch.tensor(is_c), torch.tensor(scale, dtype=torch.float32),
                                  torch.tensor(t["surround_weight"].to_numpy(), dtype=torch.float32),
                                  torch.tensor(t["baseline"].to_numpy(), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 1:
            x = x.mean(1, keepdim=True)
        return self.response(self.filters(x), self.untuned(x), self.surround(x))

    @torch.inference_mode()
    def sample(self, images: torch.Tensor | np.ndarray, n_repeats: int, *, seed: int = 0,
               batch_size: int = 256) -> np.ndarray:
        """Poisson spike counts (cells, stimuli, repeats) to (N, H, W) contrast images."""
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        rates = torch.cat([self(x[i:i + batch_size].unsqueeze(1)) for i in range(0, len(x), batch_size)])
        rng = np.random.default_rng(seed)
        lam = rates.T.numpy().astype(np.float64)
        return rng.poisson(lam[:, :, None], size=(*lam.shape, n_repeats)).astype(np.float32)


def simulated_v1_model(n_cells: int = 128, *, input_size: int = 96, visual_degrees: float = 4.0,
                       seed: int = 0, params: V1Parameters | None = None, **kwargs):
    """The simulated population as a :class:`~brainalign.models.BrainModel` whose units are the
    cells (layer ``"response"``); grayscale input with contrast = 2 × luminance − 1."""
    from brainalign.models.registry import wrap

    fov = FieldOfView(input_size, visual_degrees)
    params = params if params is not None else sample_parameters(n_cells, fov=fov, seed=seed, **kwargs)
    module = SimulatedV1(params, fov)
    model = wrap(module, name=f"simulated-v1:n{len(params)}-s{seed}", input_size=input_size,
                 in_channels=1, mean=(0.5,), std=(0.5,), weights=f"simulated(seed={seed})",
                 visual_degrees=visual_degrees)
    model.extra["v1_parameters"] = "see module.params.table"
    return model


def orientation_sf_truth(params: V1Parameters) -> tuple[np.ndarray, np.ndarray]:
    """The known preferred orientation (deg) and spatial frequency (c/deg) of each cell."""
    return params.table["orientation"].to_numpy(), params.table["sf"].to_numpy()


def photo_patches(n: int, size: int, *, seed: int = 0, sources: Sequence[str] | None = None) -> np.ndarray:
    """``n`` grayscale patches (n, size, size) in 0..1 cropped at random from photographs that ship
    with scikit-learn (``china.jpg``, ``flower.jpg``) and scikit-image (``skimage.data``), so no
    download is needed. Each patch is cropped at a random scale (1–3 × ``size``) and resized."""
    from PIL import Image

    photos = _photos(sources)
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size), np.float32)
    for i in range(n):
        img = photos[rng.integers(len(photos))]
        side = int(min(img.shape[0], img.shape[1], size * rng.uniform(1, 3)))
        top = rng.integers(0, img.shape[0] - side + 1)
        left = rng.integers(0, img.shape[1] - side + 1)
        crop = Image.fromarray((img[top:top + side, left:left + side] * 255).astype(np.uint8))
        out[i] = np.asarray(crop.resize((size, size), Image.BILINEAR), np.float32) / 255
    return out


DEFAULT_PHOTOS = ("sklearn:china.jpg", "sklearn:flower.jpg", "skimage:camera", "skimage:astronaut",
                  "skimage:coffee", "skimage:chelsea", "skimage:rocket", "skimage:horse",
                  "skimage:grass", "skimage:gravel", "skimage:brick", "skimage:moon", "skimage:coins")


def _photos(sources: Sequence[str] | None) -> list[np.ndarray]:
    out = []
    for src in sources or DEFAULT_PHOTOS:
        kind, _, name = src.partition(":")
        if kind == "sklearn":
            from sklearn.datasets import load_sample_image

            img = load_sample_image(name)
        elif kind == "skimage":
            import skimage.data

            img = getattr(skimage.data, name)()
        else:
            raise ValueError(f"unknown photo source {src!r}; use 'sklearn:<file>' or 'skimage:<name>'")
        img = np.asarray(img, np.float32)
        if img.ndim == 3:
            img = img[..., :3].mean(-1)
        out.append(img / 255.0 if img.max() > 1 else img)
    return out
