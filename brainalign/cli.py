"""The ``brainalign`` command line. Heavy imports happen inside commands, so ``--help`` is fast."""

from __future__ import annotations

import sys
from pathlib import Path

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
    except BrainAlignError as err:
        _fail(err)
    names = m.all_layers if show_all else m.layers
    for n in names:
        info = m.layer_info[n]
        click.echo(f"{n}\t{info.kind}\t{'x'.join(map(str, info.output_shape))}")


@main.command()
@click.option("--model", "models", multiple=True, required=True, help="Model id; repeat for several.")
@click.option("--benchmark", "benchmarks", multiple=True, required=True,
              help="Benchmark id or path of your own benchmark YAML; repeatable.")
@click.option("--weights", default="random", show_default=True,
              help="random | pretrained | path of a checkpoint.")
@click.option("--layers", "layer_globs", multiple=True, help="Layer name or glob; repeatable.")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Local data directory; repeatable (default: BRAINALIGN_DATA).")
@click.option("--manifest-dir", "manifest_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Folder of your own dataset manifests; repeatable (also found: beside a --benchmark "
                   "YAML file, BRAINALIGN_MANIFESTS).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True, help="Seed of random weights.")
@click.option("--out", type=click.Path(file_okay=False), help="Write scores.csv and layers.png here.")
def score(models: tuple[str, ...], benchmarks: tuple[str, ...], weights: str,
          layer_globs: tuple[str, ...], data_dirs: tuple[str, ...], manifest_dirs: tuple[str, ...],
          batch_size: int, device: str,
          seed: int, out: str | None) -> None:
    """Score one or more models on one or more benchmarks, every layer."""
    import pandas as pd

    from brainalign.benchmarks import load_benchmark
    from brainalign.errors import BrainAlignError
    from brainalign.models import load_model
    from brainalign.results import ScoreResult
    from brainalign.runner import score as run_score

    try:
        benches = [load_benchmark(b, data_dir=list(data_dirs) or None, manifest_dirs=list(manifest_dirs))
                   for b in benchmarks]
        results = []
        for mid in models:
            model = load_model(mid, weights=weights, seed=seed)
            results.append(run_score(model, benches, layers=list(layer_globs) or None,
                                     batch_size=batch_size, device=device, progress=sys.stderr.isatty()))
    except BrainAlignError as err:
        _fail(err)
    result = ScoreResult.concat(results)
    cols = ["model", "benchmark", "session", "layer", "raw", "ceiling_upper", "normalised", "normalised_ci_low",
            "normalised_ci_high", "selected"]
    with pd.option_context("display.max_rows", None, "display.width", 160):
        click.echo(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for r in result.best.itertuples():  # the one best-layer rule (brainalign.results.choose_best)
        click.echo(f"best layer: {r.model} on {r.benchmark}: {r.layer}, score {r.best_score:.4f} "
                   f"({r.selection})")
    if out:
        csv = result.save(out)
        from brainalign.plots import plot_layers

        plot_layers(result, path=Path(out) / "layers.png")
        click.echo(f"wrote {csv} and {Path(out) / 'layers.png'}")


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
