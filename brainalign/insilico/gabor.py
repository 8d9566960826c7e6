"""2-D Gabor functions and their least-squares fit to receptive-field maps.

Parameters are in degrees of the field of view, with the conventions of
:mod:`brainalign.insilico.stimuli`: orientation is the modulation direction (0 = vertical bars),
``sigma_x`` is the envelope SD along the modulation, ``sigma_y`` along the bars, and the carrier
is ``cos(2π sf x' - phase)`` in the rotated frame centred on (x0, y0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

PARAMS = ("x0", "y0", "sigma_x", "sigma_y", "orientation", "sf", "phase", "amplitude", "offset")


def gabor(x: np.ndarray, y: np.ndarray, x0: float, y0: float, sigma_x: float, sigma_y: float,
          orientation: float, sf: float, phase: float, amplitude: float = 1.0, offset: float = 0.0,
          ) -> np.ndarray:
    """A Gabor function on coordinates ``x``, ``y`` (degrees; orientation and phase in degrees)."""
    th = np.deg2rad(orientation)
    dx, dy = x - x0, y - y0
    xr = dx * np.cos(th) + dy * np.sin(th)
    yr = -dx * np.sin(th) + dy * np.cos(th)
    env = np.exp(-0.5 * ((xr / sigma_x) ** 2 + (yr / sigma_y) ** 2))
    return amplitude * env * np.cos(2 * np.pi * sf * xr - np.deg2rad(phase)) + offset


@dataclass(frozen=True)
class GaborFit:
    """One unit's fit: parameters, goodness of fit and whether it can be trusted.

    ``ok`` is False when the fit failed or is poor (``r2`` below the threshold, a carrier at the
    Nyquist bound); ``flag`` says why. A failed fit (flat map, optimiser failure) has NaN
    parameters; a poor fit keeps its parameters for inspection. Filter on ``ok`` before
    averaging.
    """

    x0: float
    y0: float
    sigma_x: float
    sigma_y: float
    orientation: float
    sf: float
    phase: float
    amplitude: float
    offset: float
    r2: float
    ok: bool
    flag: str = ""

    @property
    def aspect_ratio(self) -> float:
        """sigma_y / sigma_x (elongation along the bars)."""
        return self.sigma_y / self.sigma_x

    @property
    def nx(self) -> float:
        """sigma_x × sf: envelope width along the modulation in carrier cycles (Ringach 2002)."""
        return self.sigma_x * self.sf

    @property
    def ny(self) -> float:
        """sigma_y × sf (Ringach 2002)."""
        return self.sigma_y * self.sf


def _failed(flag: str, r2: float = float("nan")) -> GaborFit:
    nan = float("nan")
    return GaborFit(*(nan,) * len(PARAMS), r2=r2, ok=False, flag=flag)


def _initial_guess(rf: np.ndarray, x: np.ndarray, y: np.ndarray, cell: float) -> list[float]:
    n = rf.shape[0]
    pad = 4 * n
    spec = np.abs(np.fft.fft2(rf - rf.mean(), s=(pad, pad)))
    freqs = np.fft.fftfreq(pad, d=cell)
    spec[0, 0] = 0
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    fx, fy = freqs[ix], -freqs[iy]  # rows run downwards, y upwards
    sf = float(np.hypot(fx, fy))
    ori = float(np.rad2deg(np.arctan2(fy, fx)) % 180)
    energy = rf ** 2
    w = energy / energy.sum()
    x0, y0 = float((w * x).sum()), float((w * y).sum())
    spread = float(np.sqrt((w * ((x - x0) ** 2 + (y - y0) ** 2)).sum() / 2))
    sigma = max(spread, cell)
    return [x0, y0, sigma, sigma, ori, max(sf, 1e-3), 0.0, float(np.abs(rf).max()), 0.0]


def fit_gabor(rf: np.ndarray, cell_deg: float, *, min_r2: float = 0.5) -> GaborFit:
    """Fit a 2-D Gabor to one RF map by non-linear least squares.

    Starts from the spectral peak (orientation, SF), the energy centroid (position, size) and
    two phases; keeps the best. The map's grid is ``cell_deg`` degrees per cell, centred on
    the field of view.

    Parameters
    ----------
    rf
        (m, m) map.
    cell_deg
        Degrees per map cell.
    min_r2
        Fits explaining less variance are flagged (``ok=False``, flag ``"poor fit"``).
    """
    from scipy.optimize import least_squares  # imported on use: 1 s that scoring never needs

    rf = np.asarray(rf, dtype=np.float64)
    if rf.ndim != 2 or rf.shape[0] != rf.shape[1]:
        return _failed(f"map of shape {rf.shape} is not square")
    if not np.isfinite(rf).all():
        return _failed("map has NaN/inf")
    if rf.std() == 0:
        return _failed("flat map (unit did not respond to the noise)")
    m = rf.shape[0]
    c = (np.arange(m) - (m - 1) / 2) * cell_deg
    x, y = np.meshgrid(c, -c)
    half = m * cell_deg / 2
    p0 = _initial_guess(rf, x, y, cell_deg)
    nyq = 0.5 / cell_deg
    lo = [-half, -half, cell_deg / 4, cell_deg / 4, -np.inf, 0.0, -np.inf, -np.inf, -np.inf]
    hi = [half, half, 2 * half, 2 * half, np.inf, nyq, np.inf, np.inf, np.inf]
    p0[5] = min(p0[5], nyq * 0.99)
    p0[2] = min(max(p0[2], lo[2] * 1.01), hi[2] * 0.99)
    p0[3] = p0[2]
    target = rf.ravel()
    ss_tot = float(((target - target.mean()) ** 2).sum())

    def resid(p: np.ndarray) -> np.ndarray:
        return gabor(x, y, *p).ravel() - target

    best = None
    for ph in (0.0, 90.0):  # the amplitude's sign covers the other two quadrants
        start = list(p0)
        start[6] = ph
        try:
            sol = least_squares(resid, start, bounds=(lo, hi), max_nfev=400)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if best is None or sol.cost < best.cost:
            best = sol
    if best is None or not np.isfinite(best.x).all():
        return _failed("optimiser failed")
    p = best.x.copy()
    r2 = 1 - 2 * float(best.cost) / ss_tot
    if p[7] < 0:  # a negative amplitude is the same Gabor with the phase shifted by 180°
        p[7], p[6] = -p[7], p[6] + 180.0
    p[4], p[6] = p[4] % 360.0, p[6] % 360.0
    if p[4] >= 180.0:  # orientation θ+180 is θ with the carrier mirrored: phase → -phase
        p[4], p[6] = p[4] - 180.0, (-p[6]) % 360.0
    flag = ""
    if r2 < min_r2:
        flag = f"poor fit (r2={r2:.2f} < {min_r2})"
    elif p[5] <= 0 or p[5] >= nyq * 0.999:
        flag = "carrier at the frequency bound"
    return GaborFit(*map(float, p), r2=float(r2), ok=not flag, flag=flag)


def fit_gabors(maps: np.ndarray, cell_deg: float, *, min_r2: float = 0.5) -> pd.DataFrame:
    """Fit every map in (units, m, m); one row per unit with parameters, r2, ok, flag, and
    aspect ratio, nx, ny."""
    rows = []
    for i, rf in enumerate(maps):
        f = fit_gabor(rf, cell_deg, min_r2=min_r2)
        rows.append({"unit": i, **asdict(f), "aspect_ratio": f.aspect_ratio, "nx": f.nx, "ny": f.ny})
    return pd.DataFrame(rows)
