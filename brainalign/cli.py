"""The ``brainalign`` command line. Heavy imports happen inside commands, so ``--help`` is fast."""

from __future__ import annotations

import sys

import click


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brainalign")
def main() -> None:
    """Measure how brain-like deep networks are."""


@main.command("list")
@click.argument("what", type=click.Choice(["models", "sources", "benchmarks", "datasets"]))
def list_(what: str) -> None:
    """List available models, model sources, benchmarks or datasets."""
    if what in ("models", "sources"):
        from brainalign.models import list_models, list_sources

        sources = ["Model sources (<source>:<name>; these also take names not listed here):",
                   *(f"  {line}" for line in list_sources())]
        items = sources if what == "sources" else [*list_models(), "", *sources]
    elif what == "benchmarks":
        from brainalign.benchmarks.spec import list_benchmarks

        items = list_benchmarks()
    else:
        from brainalign.data.manifest import list_datasets

        items = list_datasets()
    click.echo("\n".join(items))


@main.command()
@click.argument("model")
@click.option("--weights", default="random", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Every recordable module, not only the default layers.")
def layers(model: str, weights: str, show_all: bool) -> None:
    """List MODEL's layers in forward order, with output shapes."""
    from brainalign.errors import BrainAlignError
    from brainalign.models import load_model

    try:
        m = load_model(model, weights=weights)
        # resolve_layers: a model that cannot run (ForwardError) or has no default layer
        # (NoLayersError) is an error here too, never an empty listing with exit status 0.
        names = m.all_layers if show_all else m.resolve_layers(None)
        if not names:
            from brainalign.errors import NoLayersError

            raise NoLayersError(m.name)
    except BrainAlignError as err:
        _fail(err)
    for n in names:
        info = m.layer_info[n]
        click.echo(f"{n}\t{info.kind}\t{'x'.join(map(str, info.output_shape))}")


from brainalign.commands.score import score_command  # noqa: E402

main.add_command(score_command)
from brainalign.commands.fetch import fetch_command  # noqa: E402

main.add_command(fetch_command)
from brainalign.commands.train import train_command  # noqa: E402

main.add_command(train_command)
from brainalign.commands.report import plot_command, report_command  # noqa: E402

main.add_command(report_command)
main.add_command(plot_command)
from brainalign.commands.batch import batch_command  # noqa: E402

main.add_command(batch_command)
from brainalign.commands.demo import demo_command  # noqa: E402

main.add_command(demo_command)
from brainalign.commands.similarity import similarity_command  # noqa: E402

main.add_command(similarity_command)
from brainalign.commands.compare import compare_command  # noqa: E402

main.add_command(compare_command)

if __name__ == "__main__":
    main()
