"""V1 properties recorded through the layer stream equal the former adaptive experiment.

The former ``measure_properties`` recorded each layer on its own with :func:`record` (contrast
images → the model's input) and then, per responsive unit, the size-tuning gratings at that
unit's preferred orientation and SF only. Now one StimulusSet holds every grating (size tuning
for every orientation × SF pair) and goes through :func:`stream_layers`. The reference here is
the adaptive recording, built from the public pieces; both must give the same properties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainalign.errors import StimulusError
from brainalign.insilico.experiments import (
    PROPERTIES,
    ExperimentSettings,
    grating_experiments,
    measure_properties,
    properties_from_responses,
)
from brainalign.insilico.recording import record
from brainalign.insilico.simulator import simulated_v1_model
from brainalign.insilico.stimuli import blank, grating_set
from tests.batch_models import tiny_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ExperimentSettings(orientations=tuple(np.arange(0, 180, 22.5)), phases=(0, 90, 180, 270))


def _adaptive(model, layer, settings, device="cpu"):
    """The former experiment: blank, tuning grid, then size gratings only at the (orientation,
    SF) pairs some responsive unit prefers, each recorded on its own by ``record``. Returns
    the responses laid out in the experiments' order (entries never recorded are NaN) and the
    per-unit size curves read with the diameters taken from grating_set's own parameters."""
    exp = grating_experiments(model, settings)
    s, fov = exp.settings, exp.fov
    rec = lambda im: record(model, layer, im, device=device)  # noqa: E731
    base = rec(blank(fov)[None])[0]
    tune_imgs, _ = grating_set(fov, s.orientations, s.sfs, s.phases, [s.diameter])
    tune = rec(tune_imgs)
    n = tune.shape[1]
    r = np.maximum(tune, 0).T.reshape(n, *exp.grid)
    driven = r.mean(-1) - np.maximum(base, 0)[:, None, None]
    peak = driven.reshape(n, -1).max(1)
    responsive = peak > s.responsive_fraction * max(float(peak.max()), 1e-12)
    bo, bs = np.unravel_index(driven.reshape(n, -1).argmax(1), driven.shape[1:])
    size = np.full((int(np.prod(exp.size_grid)), n), np.nan, np.float32)
    grid = size.reshape(*exp.size_grid, n)
    curves = np.full((n, len(s.size_diameters)), np.nan)
    for o, f in sorted({(int(bo[i]), int(bs[i])) for i in np.flatnonzero(responsive)}):
        im, params = grating_set(fov, [s.orientations[o]], [s.sfs[f]], s.size_phases, s.size_diameters)
        resp = rec(im)
        for p_i, ph in enumerate(s.size_phases):
            for d_i, d in enumerate(s.size_diameters):
                row = np.flatnonzero((params.phase == ph).to_numpy() & np.isclose(params.diameter, d))
                grid[o, f, p_i, d_i] = resp[row[0]]
        units = np.flatnonzero(responsive & (bo == o) & (bs == f))
        by_d = pd.DataFrame(np.maximum(resp[:, units], 0)).groupby(params.diameter.to_numpy()).mean()
        curves[units] = by_d.loc[list(s.size_diameters)].to_numpy().T - np.maximum(base, 0)[units, None]
    return exp, np.concatenate([base[None], tune, size]), curves


@pytest.mark.parametrize(("build", "layer", "settings"), [
    (lambda: simulated_v1_model(32, seed=5), "response", SMALL),
    (lambda: tiny_cnn(seed=0), "2", None),
    (lambda: tiny_cnn(seed=1), "0", SMALL),
], ids=["simulated-v1", "tiny-conv2", "tiny-conv1"])
def test_stream_properties_equal_the_adaptive_experiment(build, layer, settings) -> None:
    model = build()
    streamed = measure_properties(model, layer, settings, device="cpu", batch_size=50)
    exp, responses, curves = _adaptive(model, layer, settings)
    ref = properties_from_responses(responses, exp, model=model.name, layer=layer)
    got, want = streamed.table, ref.table
    assert got["responsive"].sum() > 0 and got["surround_suppression_index"].notna().sum() > 0
    for col in PROPERTIES:
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                   rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=col)
    assert list(got["flag"]) == list(want["flag"])
    # each unit's size curve is the one recorded at ITS preferred orientation and SF
    np.testing.assert_allclose(streamed.curves["size"], curves, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_the_stimulus_set_is_every_grating_in_the_models_degrees() -> None:
    model = tiny_cnn(seed=0)
    exp = grating_experiments(model, SMALL)
    st = exp.stimuli
    s = exp.settings
    n_tune, n_size = int(np.prod(exp.grid)), int(np.prod(exp.size_grid))
    assert len(st) == 1 + n_tune + n_size == len(set(st.ids))
    assert st.metadata["part"].value_counts().to_dict() == {"blank": 1, "tuning": n_tune, "size": n_size}
    size_imgs, params = grating_set(exp.fov, s.orientations, s.sfs, s.size_phases, s.size_diameters)
    for k in (0, 7, len(params) - 1):  # the lazily rendered luminance = grating_set's contrast
        np.testing.assert_array_equal(st.image(1 + n_tune + k), np.float32(0.5) + np.float32(0.5) * size_imgs[k])
    assert np.all(st.image(0) == 0.5)
    with pytest.raises(StimulusError, match="expected"):
        exp.split(np.zeros((len(st) - 1, 3)))


def test_v1_benchmark_records_centre_units_whatever_reducer_is_asked(data_dir) -> None:
    import brainalign as ba

    bench = ba.load_benchmark("marques2020.V1-peak_sf", data_dir=data_dir, n_bootstrap=20)
    model = tiny_cnn(seed=0)
    plain = bench(model, ["0", "2"], device="cpu")
    asked = bench(model, ["0", "2"], device="cpu", max_features=3)
    pd.testing.assert_frame_equal(plain.table.drop(columns="versions"), asked.table.drop(columns="versions"))
    assert any("max_features=3 not applied" in n for n in asked.meta["memory_plan"][model.name])
    assert plain.meta["reduction"][model.name]["2"]["kind"] == "centre_unit"
    n = len(bench.recording(model)[0])
    assert (plain.table["n_stimuli"] == n).all()
    with pytest.raises(StimulusError, match="not responses"):  # activations of other stimuli
        import xarray as xr

        bench.score_layer("2", xr.DataArray(np.zeros((3, 16)), dims=("stimulus", "unit"),
                                            coords={"stimulus_id": ("stimulus", ["a", "b", "c"])}))


def test_v1_benchmark_finds_each_models_gratings_by_the_ids_of_its_responses(data_dir) -> None:
    """One benchmark object serves models of other input sizes (their own grating sets): responses
    with ids find theirs, a part of a set is told apart from other stimuli (the missing count), and
    an array without ids is refused once the set is ambiguous."""
    from torch import nn

    import brainalign as ba
    from brainalign.errors import StimulusMismatchError

    bench = ba.load_benchmark("marques2020.V1-peak_sf", data_dir=data_dir, n_bootstrap=20)
    small, wide = tiny_cnn(seed=0), ba.wrap(nn.Sequential(nn.Conv2d(3, 4, 5)), name="wide", input_size=48)
    n_small = len(bench.recording(small)[0])
    assert list(bench.stimulus_order(None)) == list(bench.recording(small)[0].ids)  # the one set so far
    wide_ids = bench.recording(wide)[0].ids
    assert len(wide_ids) != n_small
    assert list(bench.stimulus_order(list(reversed(wide_ids)))) == list(wide_ids)
    part = xr.DataArray(np.zeros((10, 4)), dims=("stimulus", "unit"),
                        coords={"stimulus_id": ("stimulus", list(wide_ids[:10]))})
    with pytest.raises(StimulusMismatchError, match=rf"10 given, {len(wide_ids)} expected; stimulus ids "
                                                    rf"{len(wide_ids) - 10} missing"):
        bench.score_layer("0", part)
    with pytest.raises(StimulusMismatchError, match="without stimulus ids, but 2 grating sets were recorded"):
        bench.score_layer("0", np.zeros((n_small, 4)))
