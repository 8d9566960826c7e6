"""Stimuli in degrees and tuning analysis, checked against analytic values."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.errors import StimulusError
from brainalign.insilico import tuning
from brainalign.insilico.stimuli import (
    FieldOfView,
    drifting_grating,
    grating,
    grating_set,
    sparse_noise,
    spot,
    white_noise,
)

FOV = FieldOfView(128, 4.0)  # 32 px/deg, Nyquist 16 c/deg


def _peak_frequency(img: np.ndarray, fov: FieldOfView) -> tuple[float, float]:
    n = 8 * fov.size_px  # zero-padding: a fine frequency grid
    spec = np.abs(np.fft.fft2(img * np.hanning(fov.size_px)[:, None] * np.hanning(fov.size_px), s=(n, n)))
    spec[0, 0] = 0
    iy, ix = np.unravel_index(spec.argmax(), spec.shape)
    f = np.fft.fftfreq(n, d=1 / fov.ppd)
    fx, fy = f[ix], -f[iy]
    return float(np.hypot(fx, fy)), float(np.rad2deg(np.arctan2(fy, fx)) % 180)


@pytest.mark.parametrize(("ori", "sf"), [(0.0, 2.0), (45.0, 4.0), (90.0, 1.0), (135.0, 8.0)])
def test_grating_frequency_and_orientation_in_degrees(ori: float, sf: float) -> None:
    img = grating(FOV, ori, sf)
    f, o = _peak_frequency(img, FOV)
    assert f == pytest.approx(sf, rel=0.02)
    assert abs((o - ori + 90) % 180 - 90) < 1.0


def test_orientation_zero_gives_vertical_bars_and_phase_zero_a_bright_centre() -> None:
    img = grating(FieldOfView(65, 4.0), 0.0, 1.0)  # odd size: a pixel at the exact centre
    assert np.allclose(img, img[:1])  # constant along y → vertical bars
    assert img[32, 32] == pytest.approx(1.0)


def test_aperture_and_pixels_degrees_conversion() -> None:
    img = grating(FOV, 0, 2.0, diameter=1.0)
    r_px = np.sqrt((np.nonzero(img)[0] - 63.5) ** 2 + (np.nonzero(img)[1] - 63.5) ** 2).max()
    assert r_px == pytest.approx(FOV.deg_to_px(0.5), abs=1.0)
    assert FOV.px_to_deg(32) == pytest.approx(1.0)


def test_bad_stimuli_are_named_errors() -> None:
    with pytest.raises(StimulusError, match="larger than the field of view"):
        grating(FOV, 0, 2, diameter=10)
    with pytest.raises(StimulusError, match="Nyquist"):
        grating(FOV, 0, 20)
    with pytest.raises(StimulusError, match="larger than the field"):
        spot(FOV, 9.0)
    with pytest.raises(StimulusError, match="does not fit"):
        white_noise(FOV, 2, block_px=500)


def test_grating_set_matches_single_gratings_and_noise_statistics() -> None:
    imgs, params = grating_set(FOV, [0, 30, 100], [1, 2.5], [0, 90], [None, 1.0])
    assert len(imgs) == len(params) == 24
    for i in (0, 7, 23):
        r = params.iloc[i]
        d = None if np.isnan(r.diameter) else r.diameter
        assert np.allclose(imgs[i], grating(FOV, r.orientation, r.sf, r.phase, diameter=d), atol=1e-4)
    frames, phases = drifting_grating(FOV, 30, 2.0, n_frames=8)
    assert frames.shape == (8, 128, 128) and np.allclose(np.diff(phases), 45)
    wn = white_noise(FOV, 50, block_px=4, seed=1)
    assert set(np.unique(wn)) == {-1.0, 1.0} and abs(wn.mean()) < 0.05
    sp = sparse_noise(FOV, 20, n_spots=2, spot_px=8, seed=1)
    assert all((np.abs(f) > 0).sum() == 2 * 64 for f in sp)
    assert spot(FOV, 1.0, polarity=-1).min() == -1


def test_orientation_measures_against_analytic_values() -> None:
    oris = np.arange(0, 180, 7.5)
    a, th0 = 0.6, 40.0
    r = 1 + a * np.cos(2 * np.deg2rad(oris - th0))
    assert tuning.circular_variance(oris, r)[0] == pytest.approx(1 - a / 2, abs=1e-9)
    assert tuning.preferred_orientation(oris, r)[0] == pytest.approx(th0, abs=1e-6)
    sigma = 15.0
    d = (oris - 60 + 90) % 180 - 90
    g = np.exp(-0.5 * (d / sigma) ** 2)
    assert tuning.orientation_bandwidth(oris, g)[0] == pytest.approx(sigma * np.sqrt(np.log(2)), abs=1.0)
    assert tuning.orthogonal_preferred_ratio(oris, g)[0] == pytest.approx(g[np.argmin(np.abs(d - 90) % 180)])
    assert np.isnan(tuning.orientation_bandwidth(oris, np.ones_like(oris))[0])  # untuned


def test_sf_tuning_log_gaussian_and_modulation_ratio() -> None:
    sfs = 2 ** np.arange(-2, 4.01, 0.25)
    peak, s_oct = 2.5, 0.6
    r = np.exp(-0.5 * (np.log2(sfs / peak) / s_oct) ** 2)
    out = tuning.sf_tuning(sfs, r)
    assert out["peak_sf"][0] == pytest.approx(peak, rel=0.05)
    assert out["bandwidth_oct"][0] == pytest.approx(2 * s_oct * np.sqrt(np.log(2)), abs=0.05)
    assert out["bandwidth_ratio"][0] == pytest.approx(100 / 2 ** out["bandwidth_oct"][0])
    assert bool(out["selective"][0])
    ph = np.deg2rad(np.arange(0, 360, 45))
    m = tuning.modulation_ratio(np.stack([1 + 0.7 * np.cos(ph), np.maximum(np.cos(ph), 0)]))
    assert m["modulation_ratio"][0] == pytest.approx(0.7)
    ref = 2 * np.abs(np.sum(np.maximum(np.cos(ph), 0) * np.exp(-1j * ph))) / 8 / np.maximum(np.cos(ph), 0).mean()
    assert m["modulation_ratio"][1] == pytest.approx(ref)


def test_size_tuning() -> None:
    d = np.array([0.25, 0.5, 1, 2, 4])
    r = np.array([[1, 3, 4, 2, 1.0]])
    out = tuning.size_tuning(d, r)
    assert out["surround_suppression_index"][0] == pytest.approx(0.75)
    assert out["grating_summation_field"][0] == pytest.approx(0.5 + 0.5 * (3.8 - 3) / 1)
