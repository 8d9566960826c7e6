"""``brainalign batch``: many models × benchmarks × layers, resumable, local or on Dask."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from brainalign.commands.options import BYTE_SIZE, DEVICE, POSITIVE_INT


@click.command("batch")
@click.argument("models", type=click.Path(exists=True, dir_okay=False))
@click.option("--benchmark", "benchmarks", multiple=True, required=True, help="Benchmark id or YAML; repeatable.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--resume", is_flag=True,
              help="Continue an earlier run into --out: its finished pairs are reused, not scored again.")
@click.option("--layers", "layer_globs", multiple=True, help="Layer name or glob for every model; repeatable.")
@click.option("--workers", type=POSITIVE_INT, default=1, show_default=True,
              help="Local processes scoring pairs in parallel.")
@click.option("--scheduler", default=None, help="Dask scheduler address: one task per (model, benchmark).")
@click.option("--max-features", type=POSITIVE_INT, default=None,
              help="Project layers to at most this many features.")
@click.option("--memory-budget", type=BYTE_SIZE, default=None,
              help="Activation memory per pass, e.g. 2.5GB; runs over it adapt.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Content-addressed activation cache folder (default: none).")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Local data directory; repeatable (default: BRAINALIGN_DATA).")
@click.option("--n-bootstrap", type=POSITIVE_INT, default=None,
              help="Bootstrap samples (default: each benchmark's; fewer is faster, CIs coarser).")
@click.option("--max-stimuli", type=POSITIVE_INT, default=None,
              help="Regression benchmarks: score a seeded random subset of at most N stimuli per "
                   "session. A quick look, not a paper number: rows record it (n_stimuli and "
                   "benchmark_version '+max_stimuli=N').")
@click.option("--batch-size", type=POSITIVE_INT, default=64, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True, help="auto, cpu, cuda, cuda:<i> or mps.")
def batch_command(models: str, benchmarks: tuple[str, ...], out: str, resume: bool,
                  layer_globs: tuple[str, ...], workers: int, scheduler: str | None,
                  max_features: int | None, memory_budget: int | None, cache_dir: str | None,
                  data_dirs: tuple[str, ...], n_bootstrap: int | None, max_stimuli: int | None,
                  batch_size: int, device: str) -> None:
    """Score every model in MODELS (YAML or a text list of ids) on every --benchmark, every layer.

    Writes scores.parquet / scores.csv (growing as pairs finish), failures.csv and a log to --out.
    A folder that holds results needs --resume. The tables then hold every finished pair in the
    folder: a pair this run scores replaces its earlier rows; pairs of earlier runs (or of
    `brainalign score --out`) that this run does not list are kept, and the summary says which
    pairs were reused, scored and kept.
    A worker process that dies (out of memory, a crash) fails only the pair it was scoring; the
    others go on. SIGTERM (timeout, SLURM, docker stop) stops a run as Ctrl-C does: the finished
    pairs are kept and --resume continues it. Exit status: 0 when every pair was scored, 1 when
    any failed, 2 when the run could not start, 130 on Ctrl-C, 143 on SIGTERM.
    """
    from brainalign.commands.options import check_output_dir, usable_cache_dir
    from brainalign.errors import BrainAlignError, without_names
    from brainalign.runner.batch import BatchTerminated, run_batch

    check_output_dir(out)
    cache_dir = usable_cache_dir(cache_dir)
    if max_stimuli is not None:
        from brainalign.benchmarks import load_benchmark

        for b in benchmarks:
            try:
                bench = load_benchmark(b, data_dir=list(data_dirs) or None)
            except BrainAlignError:
                continue  # the run reports it, pair by pair
            try:
                bench.refuse_max_stimuli(max_stimuli, bench.id)
            except BrainAlignError as err:
                click.echo(f"error: {err}", err=True)
                sys.exit(2)

    try:
        report = run_batch(models, list(benchmarks), out, resume=resume, layers=list(layer_globs) or None,
                           workers=workers, scheduler=scheduler, batch_size=batch_size, device=device,
                           max_features=max_features, memory_budget=memory_budget, cache_dir=cache_dir,
                           data_dir=list(data_dirs) or None, n_bootstrap=n_bootstrap,
                           benchmark_options={"max_stimuli": max_stimuli} if max_stimuli else None)
    except (BrainAlignError, ValueError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: not a bare "Aborted!" but what is kept and how to go on
        term = isinstance(err, BatchTerminated)
        click.echo(f"interrupted{' (SIGTERM)' if term else ''}: the pairs finished so far are kept in {out}; "
                   "run the same command with --resume to continue it (they are not scored again).", err=True)
        sys.exit(143 if term else 130)  # 128 + the signal's number, as a shell reports it
    if not report.table.empty:  # what was scored, as `score` prints it, and where to look next
        from brainalign.commands.summary import format_summary

        click.echo(format_summary(report.table))
        from brainalign.commands.score import report_step

        click.echo(f"next:\n{report_step(Path(out))}")
    if report.partial:  # as `score` says it: scored, but only the layers before the failing module
        click.echo(f"{len(report.partial)} pair(s) scored only in part, the model's forward pass failing "
                   "part-way (see the warnings above; the rows of the layers before it are kept): "
                   + ", ".join(report.partial), err=True)
    if not report.ok:
        for _, row in report.failures.iterrows():
            why = without_names(row["error"], row["model"], row["benchmark"])  # the line names both once
            why = "\n    ".join(str(why).splitlines() or [""])  # later lines of a multi-line error indented
            click.echo(f"failed: {row['model']} × {row['benchmark']}: {row['error_type']}: {why}", err=True)
        sys.exit(1)
    if report.partial:
        sys.exit(1)
