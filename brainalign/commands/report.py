"""``brainalign report DIR`` and ``brainalign plot DIR``: a static HTML report / figure files."""

from __future__ import annotations

import sys

import click


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.command("report")
@click.argument("results_dir", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), help="HTML file (default DIR/report.html).")
@click.option("--title", help="Page title (default: the folder's name).")
@click.option("--max-models", default=10, show_default=True, help="Models drawn per layer plot.")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png", show_default=True,
              help="Format of the embedded figures.")
def report_command(results_dir: str, out: str | None, title: str | None, max_models: int, fmt: str) -> None:
    """Write one self-contained HTML report of every results table (CSV) under RESULTS_DIR:
    a sortable leaderboard, layer-by-layer plots per benchmark, provenance and versions."""
    from brainalign.errors import BrainAlignError
    from brainalign.plots.report import build_report

    try:
        path = build_report(results_dir, out, title=title, max_models=max_models, fmt=fmt)
    except BrainAlignError as err:
        _fail(err)
    click.echo(f"wrote {path}")


@click.command("plot")
@click.argument("results_dir", type=click.Path())
@click.option("--out", type=click.Path(file_okay=False), help="Figure folder (default DIR/figures).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg", "pdf"]),
              help="Repeatable (default: png and svg).")
@click.option("--max-models", default=10, show_default=True, help="Models drawn per layer plot.")
def plot_command(results_dir: str, out: str | None, formats: tuple[str, ...], max_models: int) -> None:
    """Write the figures of every results table under RESULTS_DIR: layer-by-layer curves per
    benchmark, the model × benchmark heatmap and, for tables with an epoch column, score over
    training."""
    from brainalign.errors import BrainAlignError
    from brainalign.plots.report import write_figures

    try:
        paths = write_figures(results_dir, out, formats=formats or ("png", "svg"), max_models=max_models)
    except BrainAlignError as err:
        _fail(err)
    for p in paths:
        click.echo(f"wrote {p}")
