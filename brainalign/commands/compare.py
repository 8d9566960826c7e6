"""``brainalign compare DIR``: which model is better, pair by pair, with statistics."""

from __future__ import annotations

import sys
from pathlib import Path

import click

_UNIT = click.FloatRange(0, 1, min_open=True, max_open=True)


@click.command("compare")
@click.argument("results_dir", type=click.Path())
@click.option("--benchmark", "benchmarks", multiple=True, help="Only this benchmark; repeatable.")
@click.option("--model", "models", multiple=True, help="Only this model; repeatable (at least two).")
@click.option("--score", type=click.Choice(["auto", "normalised", "raw"]), default="auto", show_default=True,
              help="Compare ceiling-normalised or raw scores (auto: normalised where every model has one).")
@click.option("--ci", default=0.95, show_default=True, type=_UNIT,
              help="Level of the CIs of the differences.")
@click.option("--alpha", default=0.05, show_default=True, type=_UNIT,
              help="Corrected p below this: the pair is told apart; else 'within noise'.")
@click.option("--correction", type=click.Choice(["holm", "bh", "none"]), default="holm", show_default=True,
              help="Correction for the number of pairs per benchmark (Holm: family-wise error; bh: FDR).")
@click.option("--no-neuroids", is_flag=True,
              help="Regression: resample stimuli only, not neuroids and stimuli.")
@click.option("--out", type=click.Path(dir_okay=False), help="CSV to write (default DIR/compare.csv).")
def compare_command(results_dir: str, benchmarks: tuple[str, ...], models: tuple[str, ...], score: str,
                    ci: float, alpha: float, correction: str, no_neuroids: bool, out: str | None) -> None:
    """Compare every pair of models scored in RESULTS_DIR, per benchmark, at their chosen layers:
    the difference of their scores with a paired bootstrap CI (both models re-scored on the same
    resamples of the stimuli; for regression benchmarks also of the neuroids, where the results keep
    each neuroid's score in every resample) and a p-value corrected for the number of pairs. Each
    benchmark's lines say what was tested, on which score and with which correction. Writes compare.csv;
    `brainalign report` then marks the pairs whose difference is within noise. A pair whose samples
    are not paired (a benchmark that generates its stimuli per model, such as the V1 property ones,
    for models of other input sizes; different settings or data) is skipped with its reason and the
    others are written: exit status 1; 2 when nothing could be compared."""
    import pandas as pd

    from brainalign.errors import BrainAlignError
    from brainalign.results.compare import COMPARE_FILE, compare_scores, load_results

    path = Path(out) if out else Path(results_dir) / COMPARE_FILE
    try:
        result = load_results(results_dir)
        table = compare_scores(result, score=score, ci=ci, alpha=alpha, correction=correction,  # type: ignore[arg-type]
                               models=list(models) or None, benchmarks=list(benchmarks) or None,
                               neuroids=not no_neuroids)
    except BrainAlignError as err:
        click.echo(f"error: {err}", err=True)
        scores = [p.stat().st_mtime_ns for p in Path(results_dir).rglob("scores.csv")] if \
            Path(results_dir).is_dir() else []
        if path.is_file() and scores and path.stat().st_mtime_ns < max(scores):
            # a comparison of scores since replaced: not left to be shown (by report) as current
            path.unlink()
            click.echo(f"removed {path} (an earlier comparison, not of the scores now in {results_dir})",
                       err=True)
        sys.exit(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    show = table.assign(
        a=table["model_a"] + " [" + table["layer_a"].astype(str) + "]",
        b=table["model_b"] + " [" + table["layer_b"].astype(str) + "]",
        ci=[f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)],
        verdict=["within noise" if w else "differs" for w in table["within_noise"]])
    for (bench, sess), fam in show.groupby(["benchmark", "session"], sort=False):
        head = bench if sess == "all" else f"{bench} (session {sess})"
        methods = list(dict.fromkeys(fam["method"]))
        click.echo(f"{head}: {fam['score'].iloc[0]} score; " + "\n  ".join(methods))
        cols = ["a", "b", "difference", "ci", "p", "p_corrected", "verdict"]
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
            click.echo(fam[cols].rename(columns={"a": "model_a", "b": "model_b"}).to_string(
                index=False, float_format=lambda v: f"{v:.4f}"))
    for line in table.attrs.get("not_compared", []):
        click.echo(f"not compared (one model): {line}")
    for line in table.attrs.get("too_few_samples", []):
        click.echo(f"note: {line}")
    click.echo(f"wrote {path}")
    unpaired = table.attrs.get("not_paired", [])
    for line in unpaired:
        click.echo(f"skipped: {line}", err=True)
    if unpaired:  # partial results, as `score` and `batch` say them: written, exit status 1
        click.echo(f"{len(unpaired)} comparison(s) skipped (see above); the others are in {path}", err=True)
        sys.exit(1)
