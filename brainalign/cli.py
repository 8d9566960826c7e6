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


# One line per model source on how to name a model from it; sources marked "any" take names
# that no list can hold (every timm model, every Hugging Face id, your own files).
SOURCE_HELP = {
    "torchvision": "torchvision:NAME - torchvision's image classifiers (alexnet, resnet18, …); "
                   "--weights random|pretrained",
    "zoo": "zoo:NAME - brainalign's small models (lenet5, mlp, cornet_rt, vit, …)",
    "timm": "timm:NAME - any: every timm model, e.g. timm:resnet18 (pip install \"brainalign[timm]\")",
    "hf": "hf:ID or hf:/saved/folder - any: every Hugging Face transformers model, e.g. "
          "hf:sentence-transformers/all-MiniLM-L6-v2 (pip install \"brainalign[hf]\")",
    "file": "file:CHECKPOINT.pt, file:zoo:NAME or file:module:function - any: your own model: a checkpoint "
            "of a known architecture, or a function returning an nn.Module",
}


@main.command("list")
@click.argument("what", type=click.Choice(["models", "sources", "benchmarks", "datasets"]))
def list_(what: str) -> None:
    """List available models (and the sources that take any name), sources, benchmarks or datasets."""
    if what in ("models", "sources"):
        from brainalign.models.registry import SOURCES

        sources = [SOURCE_HELP.get(s, f"{s}:NAME") for s in SOURCES]
        if what == "sources":
            items = sources
        else:
            from brainalign.models import list_models

            items = [*list_models(), "# sources (the ones marked 'any' also take names not listed above):",
                     *(f"#   {line}" for line in sources)]
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
    except BrainAlignError as err:
        _fail(err)
    names = m.all_layers if show_all else m.layers
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

if __name__ == "__main__":
    main()
