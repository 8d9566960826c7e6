"""``brainalign similarity``: a layers × layers CKA / RSA matrix between two models (or within one)."""

from __future__ import annotations

import sys

import click

from brainalign.commands.options import DEVICE, POSITIVE_INT


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


def _per_model(values: tuple, n: int, what: str, default):
    if not values:
        return [default] * n
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise click.BadParameter(f"give one {what} for all models or one per --model ({n})")
    return list(values)


@click.command("similarity")
@click.option("--model", "models", multiple=True, required=True,
              help="Model id; give it twice for A and B (once: A's layers against each other).")
@click.option("--label", "labels", multiple=True,
              help="Name of each model in the matrix and figure (default: its own name); one per --model.")
@click.option("--stimuli", required=True, help="A folder of images or a benchmark id (its stimuli).")
@click.option("--metric", type=click.Choice(["cka", "cka_rbf", "rsa"]), default="cka", show_default=True)
@click.option("--weights", "weights", multiple=True,
              help="random | pretrained | checkpoint path; once for both models or once per --model.")
@click.option("--seed", "seeds", multiple=True, type=int,
              help="Seed of random weights; once for both or once per --model.")
@click.option("--layers-a", multiple=True, help="Layer name or glob of model A; repeatable.")
@click.option("--layers-b", multiple=True, help="Layer name or glob of model B; repeatable.")
@click.option("--debiased", is_flag=True, help="Debiased CKA (unbiased HSIC).")
@click.option("--rdm-distance", type=click.Choice(["correlation", "cosine", "euclidean"]),
              default="correlation", show_default=True, help="RSA only.")
@click.option("--rsa-comparator", type=click.Choice(["spearman", "pearson", "cosine"]),
              default="spearman", show_default=True, help="RSA only.")
@click.option("--precision", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="Dtype of the Gram products (float32: faster products, ~1e-6 relative error).")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Local data directory for a benchmark's stimuli; repeatable.")
@click.option("--batch-size", type=POSITIVE_INT, default=64, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True, help="auto, cpu, cuda, cuda:<i> or mps.")
@click.option("--memory-budget", default="auto", show_default=True,
              help="e.g. 4GB; 'auto' = half the available memory; 'none' = no limit.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Write similarity.nc, similarity.csv, similarity.json and similarity.png here.")
def similarity_command(models: tuple[str, ...], labels: tuple[str, ...], stimuli: str, metric: str,
                       weights: tuple[str, ...], seeds: tuple[int, ...], layers_a: tuple[str, ...],
                       layers_b: tuple[str, ...], debiased: bool, rdm_distance: str, rsa_comparator: str,
                       precision: str, data_dirs: tuple[str, ...], batch_size: int, device: str,
                       memory_budget: str, out: str) -> None:
    """Layer-by-layer similarity (CKA or RSA) between two models on the same stimuli, written as
    a matrix (netCDF + CSV) and a heatmap with the layers in forward order."""
    from brainalign.commands.options import check_output_dir
    from brainalign.errors import BrainAlignError
    from brainalign.models import load_model
    from brainalign.similarity import compare_models, save_similarity

    if len(models) > 2:
        raise click.BadParameter("give --model once or twice", param_hint="--model")
    check_output_dir(out)  # said before the models run; the folder is created when written
    ws = _per_model(weights, len(models), "--weights", None)
    ss = _per_model(seeds, len(models), "--seed", 0)
    if labels and len(labels) != len(models):
        raise click.BadParameter(f"give one --label per --model ({len(models)})", param_hint="--label")
    if len(set(labels)) != len(labels):
        raise click.BadParameter(f"the labels must differ, got {list(labels)}", param_hint="--label")
    try:
        loaded = [load_model(m, weights=w, seed=s) for m, w, s in zip(models, ws, ss, strict=True)]
        for model, label in zip(loaded, labels, strict=False):
            model.name = label
        sim = compare_models(loaded[0], loaded[1] if len(loaded) == 2 else None, stimuli, metric=metric,
                             layers_a=list(layers_a) or None, layers_b=list(layers_b) or None,
                             batch_size=batch_size, device=device,
                             memory_budget=None if memory_budget.lower() == "none" else memory_budget,
                             debiased=debiased, rdm_distance=rdm_distance, rsa_comparator=rsa_comparator,
                             precision=precision, data_dir=list(data_dirs) or None, progress=sys.stderr.isatty())
        paths = save_similarity(sim, out)
    except (BrainAlignError, ValueError) as err:
        _fail(err)
    click.echo(sim.to_pandas().to_string(float_format=lambda v: f"{v:.3f}"))
    for p in paths.values():
        click.echo(f"wrote {p}")
