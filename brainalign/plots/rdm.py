"""RDM panels (the brain's beside the model's, one stimulus order, category boundaries) and an
MDS map of the stimuli."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from scipy.stats import rankdata

from brainalign.errors import MetricInputError
from brainalign.plots.style import LABEL_PT, LEGEND_PT, TICK_PT, TITLE_PT, save_figure
from brainalign.settings import PathLike


def _check_rdm(a: np.ndarray, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise MetricInputError(f"{name}: an RDM must be a square (stimulus × stimulus) matrix, "
                               f"got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise MetricInputError(f"{name}: {a.shape[0]} stimuli, but the brain RDM has {n}; "
                               "all RDMs must share one stimulus order")
    if not np.isfinite(a).all():
        raise MetricInputError(f"{name}: the RDM holds NaN or inf")
    return a


def category_order(categories: Sequence[str]) -> np.ndarray:
    """Indices that group stimuli by category (categories in order of first appearance, stimuli
    in their original order within a category)."""
    cats = list(categories)
    first = {c: i for i, c in reversed(list(enumerate(cats)))}
    return np.array(sorted(range(len(cats)), key=lambda i: (first[cats[i]], i)))


def rank_transform(rdm: np.ndarray) -> np.ndarray:
    """Off-diagonal dissimilarities as percentiles (0–100), the display convention of Nili et al.
    (2014), so RDMs on different scales share one colour map; the diagonal is 0."""
    n = rdm.shape[0]
    iu = np.triu_indices(n, 1)
    r = rankdata(rdm[iu])
    out = np.zeros_like(rdm, dtype=float)
    out[iu] = 100.0 * (r - 1) / max(len(r) - 1, 1)
    return out + out.T


def plot_rdms(brain_rdm: np.ndarray, model_rdms: Mapping[str, np.ndarray], *,
              categories: Sequence[str] | None = None, brain_label: str = "brain", rank: bool = True,
              panel_width: float = 1.75, path: PathLike | None = None,
              formats: Sequence[str] | None = None) -> Figure:
    """The brain RDM beside model-layer RDMs, in one stimulus order, with category boundaries.

    Parameters
    ----------
    brain_rdm
        (stimulus × stimulus) target RDM (e.g. averaged over subjects).
    model_rdms
        Title → (stimulus × stimulus) RDM, same stimulus order as ``brain_rdm``.
    categories
        One category per stimulus; stimuli are grouped by category and block boundaries drawn.
    rank
        Show percentiles of dissimilarity (default) rather than raw values.
    panel_width
        Inches per panel.

    Raises
    ------
    MetricInputError
        A non-square RDM, mismatched sizes, NaN, or a category list of the wrong length.
    """
    brain = _check_rdm(brain_rdm, brain_label)
    n = brain.shape[0]
    mats = {brain_label: brain}
    for k, v in model_rdms.items():
        mats[str(k)] = _check_rdm(v, str(k), n)
    order = np.arange(n)
    cats = None
    if categories is not None:
        cats = np.asarray(list(categories), dtype=object)
        if len(cats) != n:
            raise MetricInputError(f"plot_rdms: {len(cats)} categories for {n} stimuli")
        order = category_order(cats)
        cats = cats[order]
    k = len(mats)
    fig = Figure(figsize=(panel_width * k + 0.6, panel_width + 0.45), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    cmap = colormaps["viridis"]
    im = None
    for i, (ax, (title, m)) in enumerate(zip(axes, mats.items(), strict=True)):
        shown = m[np.ix_(order, order)]
        shown = rank_transform(shown) if rank else shown
        im = ax.imshow(shown, cmap=cmap, vmin=0 if rank else None, vmax=100 if rank else None,
                       interpolation="nearest")
        ax.set_title(title, fontsize=TITLE_PT)
        ax.set_xticks([])
        ax.set_yticks([])
        if cats is not None:
            edges = [j for j in range(1, n) if cats[j] != cats[j - 1]]
            for e in edges:
                ax.axhline(e - 0.5, color="w", lw=0.6)
                ax.axvline(e - 0.5, color="w", lw=0.6)
            if i == 0:
                starts = [0, *edges]
                ends = [*edges, n]
                ax.set_yticks([(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)],
                              [str(cats[s]) for s in starts], fontsize=TICK_PT)
                ax.tick_params(length=0)
    cb = fig.colorbar(im, ax=list(axes), shrink=0.8)
    cb.set_label("dissimilarity (percentile)" if rank else "dissimilarity", fontsize=LABEL_PT)
    cb.ax.tick_params(labelsize=TICK_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig


def mds_embedding(rdm: np.ndarray, *, n_components: int = 2, seed: int = 0) -> np.ndarray:
    """Metric MDS (scikit-learn's SMACOF, classical-MDS start) of a dissimilarity matrix:
    (stimulus × n_components) coordinates whose distances approximate ``rdm``."""
    from sklearn.manifold import MDS

    d = _check_rdm(rdm, "mds_embedding")
    d = (d + d.T) / 2  # exact symmetry, which SMACOF requires
    np.fill_diagonal(d, 0.0)
    mds = MDS(n_components=n_components, metric="precomputed", metric_mds=True, init="classical_mds",
              random_state=seed, normalized_stress="auto")
    return mds.fit_transform(d)


def plot_mds(rdm: np.ndarray, categories: Sequence[str] | None = None, *, seed: int = 0,
             title: str | None = None, width: float = 3.5, path: PathLike | None = None,
             formats: Sequence[str] | None = None) -> Figure:
    """A 2-D MDS map of the stimuli from an RDM, coloured by category.

    Distances on the map approximate the RDM's dissimilarities (metric MDS); axes have no meaning
    of their own, so they are not labelled.
    """
    xy = mds_embedding(rdm, seed=seed)
    fig = Figure(figsize=(width, width * 0.8), layout="constrained")
    ax = fig.subplots()
    if categories is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=8, color="0.3")
    else:
        cats = list(categories)
        if len(cats) != len(xy):
            raise MetricInputError(f"plot_mds: {len(cats)} categories for {len(xy)} stimuli")
        names = list(dict.fromkeys(cats))
        cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
        for i, c in enumerate(names):
            sel = np.array([x == c for x in cats])
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, color=cmap(i % cmap.N), label=str(c))
        fig.legend(fontsize=LEGEND_PT, frameon=False, loc="outside right upper", markerscale=1.2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title, fontsize=TITLE_PT)
    if path is not None:
        save_figure(fig, path, formats)
    return fig
