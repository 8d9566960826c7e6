"""RDM panels on the real 92-image data, and MDS checked against known geometry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import procrustes
from scipy.spatial.distance import pdist, squareform

from brainalign.errors import MetricInputError
from brainalign.metrics import rdm
from brainalign.plots.rdm import category_order, mds_embedding, plot_mds, plot_rdms, rank_transform
from brainalign.plots.style import MIN_FONT_PT


@pytest.fixture(scope="module")
def hit(hit_benchmark):
    stim = hit_benchmark.stimuli
    cats = stim.metadata["category"].tolist()
    brain = hit_benchmark.subject_rdms.values.mean(axis=0)
    pixels = np.stack([np.asarray(stim.images[i], float)[::8, ::8].ravel() for i in range(len(stim))])
    return brain, rdm(pixels), cats


def test_panels_share_one_category_order_with_boundaries(hit):
    brain, pix, cats = hit
    fig = plot_rdms(brain, {"pixels": pix}, categories=cats)
    a_brain, a_pix = fig.axes[:2]
    order = category_order(cats)
    assert [cats[i] for i in order] == sorted(cats, key=list(dict.fromkeys(cats)).index)
    np.testing.assert_allclose(a_brain.images[0].get_array(), rank_transform(brain[np.ix_(order, order)]))
    np.testing.assert_allclose(a_pix.images[0].get_array(), rank_transform(pix[np.ix_(order, order)]))
    n_cat = len(set(cats))
    for ax in (a_brain, a_pix):  # (n_cat - 1) boundaries, horizontal and vertical
        assert len(ax.get_lines()) == 2 * (n_cat - 1)
    labels = [t.get_text() for t in a_brain.get_yticklabels()]
    assert labels == list(dict.fromkeys(cats)) and "human face" in labels
    assert min(t.get_fontsize() for t in a_brain.get_yticklabels()) >= MIN_FONT_PT


def test_rank_transform_is_a_percentile_of_the_upper_triangle(hit):
    brain = hit[0]
    r = rank_transform(brain)
    iu = np.triu_indices(len(brain), 1)
    assert r[iu].min() == 0 and r[iu].max() == 100 and np.allclose(r, r.T)
    assert np.corrcoef(np.argsort(np.argsort(r[iu])), np.argsort(np.argsort(brain[iu])))[0, 1] > 0.999


def test_mds_recovers_known_geometry():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(40, 2)) * [3.0, 1.0]
    xy = mds_embedding(squareform(pdist(pts)), seed=0)
    _, _, disparity = procrustes(pts, xy)
    assert disparity < 1e-3


def test_mds_of_hit_separates_animate_from_inanimate(hit):
    brain, _, cats = hit
    fig = plot_mds(brain, cats, title="hIT")
    xy = mds_embedding(brain)
    animate = np.array(["inanimate" not in c for c in cats])
    # Kriegeskorte et al. 2008: the main division of the IT representation is animate/inanimate.
    d = squareform(pdist(xy))
    within = (d[np.ix_(animate, animate)].mean() + d[np.ix_(~animate, ~animate)].mean()) / 2
    assert d[np.ix_(animate, ~animate)].mean() > within
    assert len(fig.axes[0].collections) == len(set(cats))


@pytest.mark.parametrize("bad, kw, message", [
    (np.zeros((3, 4)), {}, "square"),
    (np.zeros((4, 4)), {"categories": ["a"] * 3}, "3 categories for 4"),
])
def test_bad_rdms_are_named(bad, kw, message):
    with pytest.raises(MetricInputError, match=message):
        plot_rdms(bad, {}, **kw)


def test_mismatched_model_rdm_is_named():
    with pytest.raises(MetricInputError, match="layer3: 5 stimuli"):
        plot_rdms(np.zeros((4, 4)), {"layer3": np.zeros((5, 5))})
