"""Tuning-curve analysis: orientation, spatial frequency, modulation (F1/F0) and size.

Pure functions over response arrays (units × stimulus condition); they work the same for model
units, simulated cells and recorded neurons. Definitions follow Brain-Score's model-side code
(``benchmark_helpers/properties_common.py``) as documented in the v1_properties PROVENANCE.
Values that cannot be computed for a unit are NaN *and* flagged in the caller's table.
"""

from __future__ import annotations

import numpy as np


def _rows(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    return r[None] if r.ndim == 1 else r


def preferred_orientation(orientations: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """Preferred orientation (deg, 0..180) by the vector sum of doubled angles.

    ``resp`` (units, n_ori) should be non-negative (rectified, baseline removed).
    """
    r = _rows(resp)
    z = (r * np.exp(2j * np.deg2rad(orientations))[None]).sum(1)
    return (np.rad2deg(np.angle(z)) / 2) % 180


def circular_variance(orientations: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """1 − |Σ r e^{2iθ}| / Σ r over orientations (0: sharply tuned, 1: untuned)."""
    r = _rows(resp)
    z = (r * np.exp(2j * np.deg2rad(orientations))[None]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - np.abs(z) / r.sum(1)


def orthogonal_preferred_ratio(orientations: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """Response at the orientation orthogonal to the peak / response at the peak."""
    r = _rows(resp)
    ori = np.asarray(orientations, float)
    peak = r.argmax(1)
    orth = (ori[peak] + 90) % 180
    j = np.abs(((ori[None, :] - orth[:, None]) + 90) % 180 - 90).argmin(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return r[np.arange(len(r)), j] / r[np.arange(len(r)), peak]


def osi(orientations: np.ndarray, resp: np.ndarray) -> np.ndarray:
    """Orientation selectivity index (pref − orth) / (pref + orth)."""
    q = orthogonal_preferred_ratio(orientations, resp)
    return (1 - q) / (1 + q)


def orientation_bandwidth(orientations: np.ndarray, resp: np.ndarray, *, level: float = 1 / np.sqrt(2),
                          upsample: int = 20) -> np.ndarray:
    """Half-width (deg) at ``level`` × peak of the orientation curve, on a periodic curve
    interpolated ``upsample``-fold; NaN where the curve never falls below the level (untuned,
    > 90° in Brain-Score's convention)."""
    r = _rows(resp)
    ori = np.asarray(orientations, float)
    order = np.argsort(ori)
    ori, r = ori[order], r[:, order]
    fine = np.linspace(0, 180, len(ori) * upsample, endpoint=False)
    ext_o = np.concatenate([ori - 180, ori, ori + 180])
    out = np.full(len(r), np.nan)
    for i, row in enumerate(r):
        f = np.interp(fine, ext_o, np.tile(row, 3))
        p = f.argmax()
        thr = f[p] * level
        if not f[p] > 0:
            continue
        g = np.roll(f, len(f) // 2 - p)  # peak in the middle
        mid = len(f) // 2
        below = np.nonzero(g < thr)[0]
        left, right = below[below < mid], below[below > mid]
        if len(left) == 0 or len(right) == 0:
            continue
        step = 180 / len(f)
        out[i] = (right[0] - left[-1]) * step / 2
    return out


def sf_tuning(sfs: np.ndarray, resp: np.ndarray, *, level: float = 1 / np.sqrt(2),
              upsample: int = 20) -> dict[str, np.ndarray]:
    """Spatial-frequency tuning from (units, n_sf) responses to gratings at ``sfs`` (c/deg).

    The curve is interpolated on a log2 axis. Returns per unit ``peak_sf`` (c/deg), the cut-offs
    ``f_low`` and ``f_high`` where the curve falls to ``level`` × peak (NaN where it does not
    within the tested range), ``bandwidth_oct`` = log2(f_high / f_low), ``bandwidth_ratio`` =
    100 f_low / f_high (Schiller 1976's measure), and ``selective`` (both cut-offs found).
    """
    r = _rows(resp)
    f = np.asarray(sfs, float)
    order = np.argsort(f)
    lf, r = np.log2(f[order]), r[:, order]
    fine = np.linspace(lf[0], lf[-1], (len(lf) - 1) * upsample + 1)
    n = len(r)
    peak, lo, hi = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i, row in enumerate(r):
        c = np.interp(fine, lf, row)
        p = c.argmax()
        if not c[p] > 0:
            continue
        peak[i] = 2 ** fine[p]
        thr = c[p] * level
        left = np.nonzero(c[:p] < thr)[0]
        right = np.nonzero(c[p:] < thr)[0]
        if len(left):
            j = left[-1]  # crossing between j and j+1
            lo[i] = 2 ** np.interp(thr, [c[j], c[j + 1]], [fine[j], fine[j + 1]])
        if len(right):
            j = p + right[0]
            hi[i] = 2 ** np.interp(thr, [c[j], c[j - 1]], [fine[j], fine[j - 1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"peak_sf": peak, "f_low": lo, "f_high": hi, "bandwidth_oct": np.log2(hi / lo),
                "bandwidth_ratio": 100 * lo / hi, "selective": np.isfinite(lo) & np.isfinite(hi)}


def modulation_ratio(resp_over_phase: np.ndarray) -> dict[str, np.ndarray]:
    """F0, F1 and F1/F0 from (units, n_phase) responses to equally spaced phases (one cycle).

    F0 is the mean; F1 twice the amplitude of the first Fourier component (Brain-Score's
    convention, so that a half-wave rectified sinusoid gives F1/F0 = π/2 ≈ 1.57).
    """
    r = _rows(resp_over_phase)
    f0 = r.mean(1)
    f1 = 2 * np.abs(np.fft.rfft(r, axis=1)[:, 1]) / r.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"f0": f0, "f1": f1, "modulation_ratio": f1 / f0}


def size_tuning(diameters: np.ndarray, resp: np.ndarray, *, gsf_level: float = 0.95,
                min_suppression: float = 0.1, plateau_tolerance: float = 0.05
                ) -> dict[str, np.ndarray]:
    """Surround suppression from (units, n_diam) size-tuning responses (Cavanaugh et al. 2002 as
    measured in Brain-Score's ``calc_size_tuning``).

    SSI = (peak − response at the largest diameter) / peak, for every unit with a positive peak.
    ``strongly_suppressed`` = SSI ≥ ``min_suppression``. Only for those units (Cavanaugh's GSF and
    surround histograms hold only cells suppressed by more than 10%; the others are NaN):
    GSF = the smallest diameter whose response reaches ``gsf_level`` × peak, and the surround
    diameter = the smallest diameter beyond the peak whose response is within
    ``plateau_tolerance`` × |plateau| of the plateau (the response at the largest diameter), both
    linearly interpolated between tested diameters (deg); ``surround_gsf_ratio`` = surround / GSF.
    """
    r = _rows(resp)
    d = np.asarray(diameters, float)
    order = np.argsort(d)
    d, r = d[order], r[:, order]
    peak = r.max(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ssi = np.where(peak > 0, (peak - r[:, -1]) / peak, np.nan)
    n = len(r)
    gsf, surround = np.full(n, np.nan), np.full(n, np.nan)
    for i, row in enumerate(r):
        if not (peak[i] > 0 and ssi[i] >= min_suppression):
            continue
        thr = gsf_level * peak[i]
        j = int(np.nonzero(row >= thr)[0][0])
        gsf[i] = d[0] if j == 0 else float(np.interp(thr, [row[j - 1], row[j]], [d[j - 1], d[j]]))
        p = int(row.argmax())
        plateau = row[-1]
        thr = plateau + plateau_tolerance * abs(plateau)
        k = p + 1 + int(np.nonzero(row[p + 1:] <= thr)[0][0])  # the last diameter always qualifies
        # falling from row[k-1] > thr to row[k] <= thr
        surround[i] = float(np.interp(thr, [row[k], row[k - 1]], [d[k], d[k - 1]]))
    strong = np.where(np.isfinite(ssi), (ssi >= min_suppression).astype(float), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = surround / gsf
    return {"surround_suppression_index": ssi, "grating_summation_field": gsf,
            "surround_diameter": surround, "surround_gsf_ratio": ratio, "strongly_suppressed": strong}


def firing_rate_affine(blank: np.ndarray, max_f0: np.ndarray, responsive: np.ndarray, *,
                       median_spontaneous: float = 0.82, median_peak: float = 33.8
                       ) -> tuple[float, float]:
    """Slope and offset mapping activations to firing rates (spk/s) as Marques et al. (2021) do
    (Brain-Score ``firing_rates_affine``): over the responsive units, the median blank response
    goes to ``median_spontaneous`` and the median of each unit's largest F0 (mean over phase) to
    ``median_peak`` (Ringach et al. 2002's V1 medians). Rates are ``max(slope × a + offset, 0)``.

    Returns (nan, nan) where no responsive unit is driven above its blank response.
    """
    resp = np.asarray(responsive, bool)
    if not resp.any():
        return float("nan"), float("nan")
    mb = float(np.median(np.asarray(blank, float)[resp]))
    mp = float(np.median(np.asarray(max_f0, float)[resp]))
    if not mp > mb:
        return float("nan"), float("nan")
    slope = (median_peak - median_spontaneous) / (mp - mb)
    return slope, median_spontaneous - slope * mb
