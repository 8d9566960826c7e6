"""Physiology stimuli placed in the model's field of view: gratings, noise and spots.

Every stimulus is a luminance-contrast image ``c`` in -1..1 (0 is the mean grey), of the model's
input size; sizes and positions are given in degrees of visual angle and converted with the
model's ``visual_degrees`` (the field of view its input spans), or given directly in pixels.

Conventions (shared by the Gabor fit and the simulated V1):

* ``x`` grows to the right and ``y`` upwards, in degrees from the image centre;
* orientation θ is the direction along which luminance is modulated, counter-clockwise from the
  x axis: θ = 0 gives vertical bars (as in Brain-Score's grating generator); 0 ≤ θ < 180;
* phase φ in degrees: the carrier is ``cos(2π f (x cos θ + y sin θ) - φ)``, so ``φ`` = 0 puts a
  bright bar through the centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from brainalign.errors import StimulusError


@dataclass(frozen=True)
class FieldOfView:
    """The square image a model sees: its side in pixels and in degrees of visual angle."""

    size_px: int
    degrees: float

    def __post_init__(self) -> None:
        if self.size_px < 2 or not self.degrees > 0:
            raise StimulusError(f"field of view needs size_px >= 2 and degrees > 0, got "
                                f"{self.size_px} px, {self.degrees} deg")

    @classmethod
    def of(cls, model) -> FieldOfView:
        """The field of view of a :class:`~brainalign.models.BrainModel`."""
        return cls(int(model.input_size), float(model.visual_degrees))

    @property
    def ppd(self) -> float:
        """Pixels per degree."""
        return self.size_px / self.degrees

    @property
    def nyquist(self) -> float:
        """Highest representable spatial frequency, cycles/degree."""
        return self.ppd / 2

    def deg_to_px(self, deg: float) -> float:
        return deg * self.ppd

    def px_to_deg(self, px: float) -> float:
        return px / self.ppd

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) pixel-centre coordinates in degrees, each (size, size); y grows upwards."""
        c = (np.arange(self.size_px) - (self.size_px - 1) / 2) / self.ppd
        x, y = np.meshgrid(c, -c)
        return x, y


def _check_size(fov: FieldOfView, diameter_deg: float | None, what: str) -> None:
    if diameter_deg is not None and diameter_deg > fov.degrees * np.sqrt(2) + 1e-9:
        raise StimulusError(
            f"{what}: diameter {diameter_deg:g} deg is larger than the field of view "
            f"({fov.degrees:g} deg, {fov.size_px} px; its diagonal is {fov.degrees * np.sqrt(2):.3g} deg)")


def _check_sf(fov: FieldOfView, sf: float, what: str) -> None:
    if not 0 < sf <= fov.nyquist:
        raise StimulusError(f"{what}: spatial frequency {sf:g} c/deg is outside (0, {fov.nyquist:g}] "
                            f"(the Nyquist limit of {fov.ppd:.3g} px/deg)")


def grating(fov: FieldOfView, orientation: float, sf: float, phase: float = 0.0, *,
            contrast: float = 1.0, diameter: float | None = None, center: tuple[float, float] = (0.0, 0.0),
            ) -> np.ndarray:
    """A sinusoidal grating, full-field or in a circular aperture.

    Parameters
    ----------
    fov
        The field of view (pixels and degrees).
    orientation
        Degrees; the direction of luminance modulation (0 = vertical bars).
    sf
        Spatial frequency, cycles per degree.
    phase
        Degrees.
    contrast
        Michelson contrast, 0..1.
    diameter
        Aperture diameter in degrees (hard edge); ``None`` for a full-field grating.
    center
        Aperture centre (x, y) in degrees from the image centre; the phase is relative to it.

    Returns
    -------
    numpy.ndarray
        (size_px, size_px) float32 contrast image in -1..1.

    Raises
    ------
    StimulusError
        An aperture larger than the field of view or a frequency above the Nyquist limit.
    """
    _check_size(fov, diameter, "grating")
    _check_sf(fov, sf, "grating")
    x, y = fov.coords()
    x, y = x - center[0], y - center[1]
    th = np.deg2rad(orientation)
    img = contrast * np.cos(2 * np.pi * sf * (x * np.cos(th) + y * np.sin(th)) - np.deg2rad(phase))
    if diameter is not None:
        img = img * (x ** 2 + y ** 2 <= (diameter / 2) ** 2)
    return img.astype(np.float32)


def _aperture_grid(fov: FieldOfView, diameters: Sequence[float | None],
                   center: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """float32 (x, y) in degrees from ``center`` and one aperture mask per diameter (None: full)."""
    x, y = fov.coords()
    x, y = (x - center[0]).astype(np.float32), (y - center[1]).astype(np.float32)
    masks = [np.ones_like(x) if d is None else (x ** 2 + y ** 2 <= (d / 2) ** 2).astype(np.float32)
             for d in diameters]
    return x, y, masks


def _carrier(x: np.ndarray, y: np.ndarray, orientation: float, sf: float, phase: float,
             contrast: float = 1.0) -> np.ndarray:
    """The float32 sinusoid of :func:`grating_set` (one rendering rule for sets and sources)."""
    th = np.deg2rad(orientation)
    u = np.float32(2 * np.pi * sf) * (x * np.float32(np.cos(th)) + y * np.float32(np.sin(th)))
    return contrast * np.cos(u - np.float32(np.deg2rad(phase)))


def grating_set(fov: FieldOfView, orientations: Sequence[float], sfs: Sequence[float],
                phases: Sequence[float] = (0.0,), diameters: Sequence[float | None] = (None,), *,
                contrast: float = 1.0, center: tuple[float, float] = (0.0, 0.0),
                ) -> tuple[np.ndarray, pd.DataFrame]:
    """Every combination of orientation × SF × phase × diameter.

    Returns
    -------
    images : numpy.ndarray
        (N, size, size) float32 contrast images.
    params : pandas.DataFrame
        One row per image: ``orientation``, ``sf``, ``phase``, ``diameter`` (NaN = full field).
    """
    for d in diameters:
        _check_size(fov, d, "grating_set")
    for f in sfs:
        _check_sf(fov, f, "grating_set")
    rows = list(product(orientations, sfs, phases, diameters))
    x, y, masks = _aperture_grid(fov, diameters, center)
    imgs = np.empty((len(rows), fov.size_px, fov.size_px), np.float32)
    i = 0
    for o, f in product(orientations, sfs):  # same order as `rows`
        for p in phases:
            carrier = _carrier(x, y, o, f, p, contrast)
            for mask in masks:
                imgs[i] = carrier * mask
                i += 1
    params = pd.DataFrame(rows, columns=["orientation", "sf", "phase", "diameter"])
    params["diameter"] = params["diameter"].astype(float)
    return imgs, params


class GratingImages:
    """Gratings rendered on demand, as luminance images (``0.5 + 0.5 × contrast``, 0..1), for a
    :class:`~brainalign.data.StimulusSet` of thousands of gratings that is never held at once.

    ``params`` has one row per image: ``orientation``, ``sf``, ``phase``, ``diameter`` (deg;
    NaN = full field); a row whose ``sf`` is NaN is the blank (mean grey). The pixels are those
    of :func:`grating_set` for the same parameters. Consecutive rows that differ only in their
    diameter reuse one carrier.
    """

    def __init__(self, fov: FieldOfView, params: pd.DataFrame, *, contrast: float = 1.0):
        for d in params["diameter"].dropna().unique():
            _check_size(fov, float(d), "GratingImages")
        for f in params["sf"].dropna().unique():
            _check_sf(fov, float(f), "GratingImages")
        self.fov, self.contrast = fov, contrast
        self.params = params.reset_index(drop=True)
        self._rows = self.params[["orientation", "sf", "phase", "diameter"]].to_numpy(float)
        self._x, self._y, _ = _aperture_grid(fov, [])
        diams = self.params["diameter"].dropna().unique()
        self._masks = dict(zip(diams, _aperture_grid(fov, list(diams))[2], strict=True))
        self._last: tuple[tuple[float, float, float], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, i: int) -> np.ndarray:
        o, f, p, d = (float(v) for v in self._rows[i])
        if np.isnan(f):
            return blank(self.fov) + np.float32(0.5)
        last = self._last
        if last is None or last[0] != (o, f, p):
            last = ((o, f, p), _carrier(self._x, self._y, o, f, p, self.contrast))
            self._last = last
        img = last[1] if np.isnan(d) else last[1] * self._masks[d]
        return np.float32(0.5) + np.float32(0.5) * img


def drifting_grating(fov: FieldOfView, orientation: float, sf: float, *, n_frames: int = 8,
                     cycles: float = 1.0, contrast: float = 1.0, diameter: float | None = None,
                     center: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """A grating drifting along its modulation direction, as a sequence of frames.

    ``cycles`` temporal cycles are spread over ``n_frames`` frames. Returns the frames
    (n_frames, size, size) and the phase of each frame in degrees; the first harmonic of a
    unit's response over the frames at ``cycles`` cycles is its F1.
    """
    if n_frames < 2:
        raise StimulusError(f"drifting_grating needs at least 2 frames, got {n_frames}")
    phases = (360.0 * cycles * np.arange(n_frames) / n_frames) % 360.0
    frames = np.stack([grating(fov, orientation, sf, p, contrast=contrast, diameter=diameter,
                               center=center) for p in phases])
    return frames, phases


def white_noise(fov: FieldOfView, n: int, *, block_px: int = 1, seed: int = 0,
                binary: bool = True) -> np.ndarray:
    """White noise frames: independent pixels (or square blocks of ``block_px``).

    Binary noise takes values ±1; Gaussian noise has unit variance (clipped at ±3). Returns
    (n, size, size) float32.
    """
    rng = np.random.default_rng(seed)
    return noise_blocks(rng, fov.size_px, n, block_px=block_px, binary=binary)


def noise_blocks(rng: np.random.Generator, size_px: int, n: int, *, block_px: int = 1,
                 binary: bool = True) -> np.ndarray:
    """``n`` noise frames of ``size_px`` from generator ``rng`` (see :func:`white_noise`)."""
    if block_px < 1 or block_px > size_px:
        raise StimulusError(f"noise block of {block_px} px does not fit a {size_px} px field")
    m = -(-size_px // block_px)
    if binary:
        v = rng.integers(0, 2, size=(n, m, m), dtype=np.int8).astype(np.float32) * 2 - 1
    else:
        v = np.clip(rng.standard_normal((n, m, m), dtype=np.float32), -3, 3)
    if block_px > 1:
        v = v.repeat(block_px, 1).repeat(block_px, 2)
    return np.ascontiguousarray(v[:, :size_px, :size_px])


def sparse_noise(fov: FieldOfView, n: int, *, n_spots: int = 1, spot_px: int = 4, seed: int = 0,
                 ) -> np.ndarray:
    """Sparse noise: each frame holds ``n_spots`` squares of ``spot_px``, randomly bright (+1) or
    dark (-1), on grey, on a grid of ``spot_px`` cells. Returns (n, size, size) float32."""
    if spot_px < 1 or spot_px > fov.size_px:
        raise StimulusError(f"sparse-noise spot of {spot_px} px does not fit a {fov.size_px} px field")
    rng = np.random.default_rng(seed)
    m = -(-fov.size_px // spot_px)
    grid = np.zeros((n, m * m), np.float32)
    cells = np.argsort(rng.random((n, m * m)), axis=1)[:, :n_spots]
    signs = rng.integers(0, 2, size=(n, n_spots)).astype(np.float32) * 2 - 1
    np.put_along_axis(grid, cells, signs, axis=1)
    img = grid.reshape(n, m, m).repeat(spot_px, 1).repeat(spot_px, 2)
    return np.ascontiguousarray(img[:, :fov.size_px, :fov.size_px])


def spot(fov: FieldOfView, diameter: float, *, center: tuple[float, float] = (0.0, 0.0),
         polarity: int = 1, contrast: float = 1.0) -> np.ndarray:
    """A bright (``polarity`` = 1) or dark (-1) disc of ``diameter`` degrees on grey."""
    _check_size(fov, diameter, "spot")
    if polarity not in (1, -1):
        raise StimulusError(f"spot polarity must be 1 (on) or -1 (off), got {polarity}")
    x, y = fov.coords()
    disc = (x - center[0]) ** 2 + (y - center[1]) ** 2 <= (diameter / 2) ** 2
    return (polarity * contrast * disc).astype(np.float32)


def blank(fov: FieldOfView) -> np.ndarray:
    """The mean-grey image."""
    return np.zeros((fov.size_px, fov.size_px), np.float32)
