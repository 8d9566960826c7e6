"""``brainalign train``: train a small model, a checkpoint per epoch; optionally score them all."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from brainalign.commands.options import DEVICE, POSITIVE_INT


@click.command("train")
@click.option("--arch", default="lenet5", show_default=True, help="A zoo classifier, e.g. lenet5, mlp, vit.")
@click.option("--dataset", default="digits", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Run folder for checkpoints. A folder that holds an earlier run is refused unless "
                   "--overwrite is given.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier run in --out: its checkpoints, history.csv, run.json and training "
                   "scores are deleted first (other files are left alone).")
@click.option("--epochs", type=POSITIVE_INT, default=10, show_default=True)
@click.option("--batch-size", type=POSITIVE_INT, default=64, show_default=True)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@click.option("--lr", default=0.05, show_default=True)
@click.option("--momentum", default=0.9, show_default=True)
@click.option("--weight-decay", default=5e-4, show_default=True)
@click.option("--dropout", type=float, default=None, help="Dropout probability (architectures with dropout).")
@click.option("--augment/--no-augment", default=True, show_default=True)
@click.option("--val-fraction", default=0.2, show_default=True)
@click.option("--patience", type=int, default=3, show_default=True, help="Early stopping; 0 = never.")
@click.option("--input-size", default=32, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
@click.option("--score", "benchmarks", multiple=True, help="Benchmark to score every checkpoint on; repeatable.")
@click.option("--layers", "layer_globs", multiple=True, help="Layers to score (name or glob); repeatable.")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Local data directory for --score; repeatable (default: BRAINALIGN_DATA).")
def train_command(arch: str, dataset: str, out: str, epochs: int, batch_size: int, optimizer: str,
                  lr: float, momentum: float, weight_decay: float, dropout: float | None,
                  augment: bool, val_fraction: float, patience: int, input_size: int, seed: int,
                  device: str, benchmarks: tuple[str, ...], layer_globs: tuple[str, ...],
                  data_dirs: tuple[str, ...], overwrite: bool) -> None:
    """Train ARCH on DATASET, writing OUT/epoch_<k>.pt, history.csv and run.json; with --score,
    score every checkpoint and write OUT/training_scores.csv and OUT/training.png."""
    from brainalign.commands.options import check_output_dir
    from brainalign.errors import BrainAlignError
    from brainalign.models.train import train
    from brainalign.models.train.loop import describe_run_files, earlier_run_files
    from brainalign.plots.training import plot_training
    from brainalign.results import ScoreResult
    from brainalign.runner.checkpoints import score_checkpoints

    check_output_dir(out)
    try:
        if benchmarks:  # everything scoring needs is checked before a minute is spent training
            from brainalign.benchmarks import load_benchmark
            from brainalign.commands.score import read_benchmark_data
            from brainalign.models import load_model

            for b in benchmarks:
                read_benchmark_data(load_benchmark(b, data_dir=list(data_dirs) or None))
            load_model(f"zoo:{arch}", weights="random").resolve_layers(list(layer_globs) or None)
    except BrainAlignError as err:
        click.echo(f"error: {err} (checked before training: nothing was trained)", err=True)
        sys.exit(2)
    old = earlier_run_files(out)
    if old and overwrite:
        click.echo(f"--overwrite: replacing the earlier run in {out}: {describe_run_files(old)} "
                   "are deleted", err=True)
    try:
        res = train(arch, out, overwrite=overwrite, dataset=dataset, epochs=epochs, batch_size=batch_size,
                    optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    dropout=dropout, augment=augment, val_fraction=val_fraction,
                    patience=patience or None, input_size=input_size, seed=seed, device=device,
                    progress=sys.stderr.isatty())
        click.echo(res.history[["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]]
                   .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        click.echo(f"best epoch {res.best_epoch}; {len(res.checkpoints)} checkpoints in {res.run_dir}"
                   + (" (stopped early)" if res.stopped_early else ""))
        if benchmarks:
            scored = ScoreResult.concat([
                score_checkpoints(res.run_dir, b, layers=list(layer_globs) or None,
                                  data_dir=list(data_dirs) or None, device=device)
                for b in benchmarks])
            csv = scored.save(out, "training_scores")
            plot_training(scored.table, path=Path(out) / "training.png", history=res.history)
            click.echo(f"wrote {csv} and {Path(out) / 'training.png'}")
    except (BrainAlignError, ValueError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
