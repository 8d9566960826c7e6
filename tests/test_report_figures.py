"""The report's embedded figures: sharp (about 1000 px wide, shown scaled down by CSS), nothing
clipped at their edges (the heatmap's colour-bar label was cut), and the page of a typical folder
still a few MB at most. Read from a real folder: two benchmarks scored by ``brainalign score``."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from brainalign.cli import main
from brainalign.plots.heatmap import plot_heatmap
from brainalign.plots.tables import read_results
from tests.conftest import needs_data

MIN_PNG_PX = 900  # wide enough for a normal screen, and twice the CSS width shown
MAX_REPORT_BYTES = 3_000_000  # two benchmarks, three figures


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("figs") / "R"
    for bench in ("antolik2016.V1-ridge", "cowley2023.V4-ridge"):
        r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--layers", "conv2",
                                      "--benchmark", bench, "--max-stimuli", "20", "--n-bootstrap", "10",
                                      "--data-dir", str(data_dir), "--out", str(out)])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["report", str(out)])
    assert r.exit_code == 0, r.output
    return out


def _edge_is_blank(png: np.ndarray, px: int = 2) -> bool:
    """Whether the outer ``px`` pixels of an RGB(A) image are all white: a label cut by the figure's
    edge leaves ink there."""
    rgb = png[..., :3]
    edges = np.concatenate([rgb[:px].reshape(-1, 3), rgb[-px:].reshape(-1, 3),
                            rgb[:, :px].reshape(-1, 3), rgb[:, -px:].reshape(-1, 3)])
    return bool((edges > 0.98).all())


@needs_data
def test_embedded_figures_are_sharp_unclipped_and_the_page_small(folder):
    page = (folder / "report.html").read_text()
    imgs = re.findall(r'<img alt="([^"]*)" style="width:(\d+)px" src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 3  # heatmap + one layer plot per benchmark
    for alt, css_width, data in imgs:
        png = imread(io.BytesIO(base64.b64decode(data)), format="png")
        width = png.shape[1]
        assert width >= MIN_PNG_PX, (alt, width)
        assert 400 <= int(css_width) <= width / 1.5, (alt, css_width, width)  # shown scaled down
        assert _edge_is_blank(png), f"{alt}: something is cut at the figure's edge"
    assert (folder / "report.html").stat().st_size < MAX_REPORT_BYTES


@needs_data
def test_a_saved_heatmap_keeps_its_colour_bar_label(folder, tmp_path):
    fig = plot_heatmap(read_results(folder).table)
    label = fig.axes[-1].get_ylabel()
    assert "noise ceiling" in label
    plot_heatmap(read_results(folder).table, path=tmp_path / "heatmap.png")  # save_figure, as `report --figures`
    assert _edge_is_blank(imread(tmp_path / "heatmap.png"))
