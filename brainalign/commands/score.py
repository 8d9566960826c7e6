"""``brainalign score``: models × benchmarks, every layer, with progress and a closing summary.

Bad settings are refused while the command line is parsed (see :mod:`brainalign.commands.options`);
the output folder is checked before any work; each model's rows are written as soon as it
finishes, so a model that fails later loses nothing already computed.
"""

from __future__ import annotations

import importlib
import sys
import threading
import traceback
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import click

from brainalign.commands.options import BYTE_SIZE, DEVICE, POSITIVE_INT

# Properties that read a benchmark's neural data, by kind; read before any model is loaded so a
# missing or broken file is reported first.
_DATA_ATTRS = ("stimuli", "subject_rdms", "sessions", "voxels", "distributions")


def read_benchmark_data(bench) -> None:
    """Read ``bench``'s stimuli and neural data now (they are cached on the benchmark)."""
    for name in _DATA_ATTRS:
        if isinstance(getattr(type(bench), name, None), property | cached_property):
            try:
                getattr(bench, name)
            except AttributeError:  # a kind without it (V1 properties draw stimuli per model)
                continue


def report_step(out: Path) -> str:
    """The line that points to the report; a report or figures already in ``out`` are said to show
    the scores before this run (they are documents, left in place; ``compare.csv``, which the
    report reads, is removed instead)."""
    out = Path(out)
    old = [f"{p.name}/" if p.is_dir() else p.name for p in (out / "report.html", out / "figures") if p.exists()]
    line = f"  brainalign report {out}   # then open {out / 'report.html'} in a browser"
    if old:
        redo = " and ".join((["run it again"] if "report.html" in old else [])
                            + ([f"`brainalign plot {out}`"] if "figures/" in old else []))
        verb = "show" if len(old) > 1 else "shows"
        line += f"\n    ({' and '.join(old)} there {verb} the scores before this run: {redo})"
    return line


def next_steps(out: Path | None, own_model: bool = False) -> str:
    """What to do after a score: look at the report, score your own model (unless this run
    already scored one, ``own_model``)."""
    lines = ["next:"]
    if out is not None:
        lines.append(report_step(out))
    else:
        lines.append("  add --out results/NAME to keep the per-layer table and figures, then "
                     "`brainalign report results/NAME`")
    if not own_model:
        lines.append("  your own model: --model file:mynet:build (mynet.py in this folder, build() returns an "
                     "nn.Module), or ba.wrap(module) in Python (README: 'Use from Python')")
    return "\n".join(lines)


def earlier_results(out_dir: Path | None, say: Callable[[str], None]) -> Any:
    """What an earlier ``score`` left in ``out_dir`` (a ScoreResult), or None."""
    from brainalign.results import ScoreResult

    if out_dir is None or not (out_dir / "scores.csv").is_file():
        return None
    old = ScoreResult.load(out_dir)
    pairs = old.table[["model", "benchmark"]].drop_duplicates()
    say(f"{out_dir} holds earlier results ({len(pairs)} model × benchmark pair(s)): they are kept, "
        "and pairs scored again are replaced")
    return old


def with_earlier(earlier: Any, new: Any) -> Any:
    """``new`` plus the rows (and details) of ``earlier`` whose (model, benchmark) pair ``new``
    does not score again: a second benchmark scored into the same folder adds, never erases.
    The meta is merged the same way: one entry per benchmark held, each with its own settings."""
    from brainalign.results import ScoreResult
    from brainalign.results.provenance import without_pairs

    if earlier is None:
        return new
    again = set(map(tuple, new.table[["model", "benchmark"]].drop_duplicates().to_numpy()))
    keep = [(m, b) not in again for m, b in zip(earlier.table["model"], earlier.table["benchmark"], strict=True)]
    kept = earlier.table[keep].reset_index(drop=True)
    details = {k: v for k, v in earlier.details.items() if (k[0], k[1]) not in again}
    # The meta follows the rows: a pair scored again is described by this run's settings only.
    meta = without_pairs(earlier.meta, again)
    return ScoreResult.concat([ScoreResult(kept, details, meta), new]) if len(kept) else new


# Row settings whose change is said when a pair's rows are replaced: (earlier rows', this run's) label.
_REPLACED_LABELS = {"benchmark_version": ("benchmark version", "version"), "weights": ("weights", "weights"),
                    "weights_hash": ("weights sha256", "weights sha256")}


def replaced_notes(earlier: Any, new: Any) -> list[str]:
    """Lines naming the pairs of ``new`` whose earlier rows in the folder, replaced by this run,
    were of another benchmark version (a ``--max-stimuli`` subset replaced by the full data; the
    reverse is refused before any work) or of other weights under the same model name (another
    checkpoint, other random weights): said, because the earlier rows may be a paper number, or another model."""
    if earlier is None:
        return []
    t = earlier.table
    lines = []
    for (m, b), rows in new.table.groupby(["model", "benchmark"], sort=False):
        old = t[(t["model"] == m) & (t["benchmark"] == b)]
        if old.empty:
            continue
        differ: dict[str, tuple[str, str]] = {}  # column → (earlier values, this run's)
        for col in _REPLACED_LABELS:
            if col in old and col in rows:
                n = 12 if col == "weights_hash" else None
                before, after = ({str(v)[:n] for v in x[col].dropna()} for x in (old, rows))
                if before and after and before != after:
                    differ[col] = (", ".join(sorted(before)), ", ".join(sorted(after)))
        if "weights" in differ:
            differ.pop("weights_hash", None)  # other weights: their hash differs too, said once
        was = [f"{_REPLACED_LABELS[c][0]} {before}" for c, (before, _) in differ.items()]
        now = [f"{_REPLACED_LABELS[c][1]} {after}" for c, (_, after) in differ.items()]
        if differ:
            other_model = "weights" in differ or "weights_hash" in differ
            lines.append(f"note: {m} × {b}: the folder's earlier rows ({'; '.join(was)}) are replaced by this "
                         f"run's ({'; '.join(now)})" + (
                             ": another model under the same name; to keep both, give this one another "
                             "--label, or score into another --out" if other_model else ""))
    return lines


def save_results(result: Any, out_dir: Path) -> Path:
    """``result.save(out_dir)`` (``result`` already merged :func:`with_earlier`); in a batch folder
    also its ``scores.parquet``, so the two tables there never disagree. Returns the CSV path."""
    from brainalign.io import atomic_write

    csv = result.save(out_dir)
    if (out_dir / "scores.parquet").is_file():
        atomic_write(out_dir / "scores.parquet", lambda p: result.table.to_parquet(p, index=False))
    return csv


def _refuse_before_any_work(models: tuple[str, ...], labels: tuple[str, ...], weights: str,
                            weights_given: bool = False) -> None:
    """What can be known of the models before any data is read, not after the models before them
    were scored: labels that do not pair with the models, then batch's check of a model list
    (:func:`~brainalign.runner.batch.model_list_problems`: ids no source knows, your module's
    callables, a checkpoint that is not there, two models whose rows would carry one name). Other
    names are checked as each model loads.

    Raises
    ------
    click.UsageError
        Every problem found, at once.
    """
    from brainalign.runner.batch import ModelEntry, model_list_problems

    if labels and len(labels) != len(models):
        raise click.UsageError(f"{len(labels)} --label for {len(models)} --model: give one label per model, "
                               "in the order of the models")
    if len(set(labels)) != len(labels) or any(not x.strip() for x in labels):
        raise click.UsageError(f"--label values must be distinct and not empty, got {list(labels)}")
    if weights_given:  # a checkpoint carries its own weights: --weights would be ignored without a word
        from brainalign.models.file_source import is_checkpoint_id

        own = [mid for mid in models if is_checkpoint_id(mid)]
        if own:
            raise click.UsageError(f"--weights {weights} is not used for a checkpoint, which carries its own "
                                   f"weights: {', '.join(own)}. Leave --weights out, or score the checkpoints "
                                   "and the other models in separate runs")
    entries = [ModelEntry(id=mid, weights=weights, label=label)
               for mid, label in zip(models, labels or [None] * len(models), strict=True)]
    problems = model_list_problems(entries, at=lambda i, key: {"id": "--model"}.get(key, f"--{key}"))
    if problems:  # one --weights for every model: said once
        raise click.UsageError("\n".join(dict.fromkeys(problems)) + "\n(`brainalign list models` lists the ids)")


@click.command("score")
@click.option("--model", "models", multiple=True, required=True, help="Model id; repeat for several.")
@click.option("--label", "labels", multiple=True,
              help="Name of the model in the results (default: its own name); one per --model, in order. "
                   "Keeps two checkpoints of one training run apart.")
@click.option("--benchmark", "benchmarks", multiple=True, required=True, help="Benchmark id or YAML; repeatable.")
@click.option("--weights", default=None,
              help="random (default) | pretrained | path of a checkpoint; not for a checkpoint id.")
@click.option("--layers", "layer_globs", multiple=True, help="Layer name or glob; repeatable.")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Local data directory; repeatable (default: BRAINALIGN_DATA).")
@click.option("--manifest-dir", "manifest_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Folder of your own dataset manifests; repeatable (also found: beside a --benchmark "
                   "YAML file, BRAINALIGN_MANIFESTS).")
@click.option("--batch-size", type=POSITIVE_INT, default=64, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True,
              help="auto, cpu, cuda, cuda:<i> or mps.")
@click.option("--seed", default=0, show_default=True, help="Seed of random weights.")
@click.option("--n-bootstrap", type=POSITIVE_INT, default=None,
              help="Bootstrap samples (default: the benchmark's, usually 1000; fewer is faster, CIs coarser).")
@click.option("--max-stimuli", type=POSITIVE_INT, default=None,
              help="Regression benchmarks: score a seeded random subset of at most N stimuli per "
                   "session. A quick look, not a paper number: rows record it (n_stimuli and "
                   "benchmark_version '+max_stimuli=N').")
@click.option("--memory-budget", type=BYTE_SIZE, default=None,
              help="Activation memory per pass, e.g. 2.5GB; a run over it is planned in passes.")
@click.option("--max-features", type=POSITIVE_INT, default=None,
              help="Project every layer to at most this many features.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Content-addressed activation cache folder (default: none).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Write scores.csv, scores.meta.json and layers.png here. Results already in the "
                   "folder (other benchmarks or models, a batch run's) are kept; a model × benchmark "
                   "pair scored again replaces its earlier rows.")
def score_command(models: tuple[str, ...], labels: tuple[str, ...], benchmarks: tuple[str, ...],
                  weights: str | None, layer_globs: tuple[str, ...], data_dirs: tuple[str, ...],
                  manifest_dirs: tuple[str, ...],
                  batch_size: int, device: str,
                  seed: int, n_bootstrap: int | None, max_stimuli: int | None, memory_budget: int | None,
                  max_features: int | None,
                  cache_dir: str | None, out: str | None) -> None:
    """Score one or more models on one or more benchmarks, every layer.

    Prints progress on stderr and, at the end, the layer chosen on development stimuli per model ×
    benchmark (× session) with its held-out score, CI and the noise ceiling; the per-layer table
    goes to --out (printed when there is no --out). Exit status: 0 when every model was scored,
    1 when some failed (the others are kept), 2 when none could be scored or the input was bad.
    """
    import pandas as pd

    from brainalign.commands.options import check_output_dir, tolerant_cache, usable_cache_dir
    from brainalign.commands.summary import format_summary
    from brainalign.errors import BrainAlignError, DuplicateModelNameError, without_names
    from brainalign.runner.pair_warnings import collect_warnings, warning_lines
    from brainalign.runner.progress import ScoreProgress

    _refuse_before_any_work(models, labels, weights or "random", weights_given=weights is not None)
    out_dir = check_output_dir(out) if out else None
    cache = tolerant_cache(usable_cache_dir(cache_dir))
    progress = ScoreProgress()
    layers = list(layer_globs) or None

    from brainalign.activations.blas import numpy_blas_one_thread
    from brainalign.benchmarks import load_benchmark
    from brainalign.models import load_model
    from brainalign.models.file_source import is_checkpoint_id
    from brainalign.results import ScoreResult
    from brainalign.results.compare import remove_stale_comparison
    from brainalign.results.provenance import (
        FORWARD_STOPPED,
        full_data_pairs,
        held_weights,
        refuse_other_network,
        refuse_subset_over_full,
        unscored_layers,
    )

    # From the first prepare (ceilings, bootstrap) to the last model's scores, numpy's BLAS runs
    # one thread per caller when torch computes on the CPU (activations.blas), and warnings are
    # collected: prepare starts before the first pair's collector, on its own thread, and a
    # `warnings.catch_warnings` there that began before a collector and ended inside it restored
    # Python's printing hook under it (every α warning of a regression run was printed raw). With
    # this outer collector open first, every thread saves and restores the collecting hook.
    with numpy_blas_one_thread(device), collect_warnings() as unpaired:
        benches = []
        try:
            for b in benchmarks:
                progress.stage(f"reading the data of {b}")
                opts = {k: v for k, v in (("n_bootstrap", n_bootstrap), ("max_stimuli", max_stimuli)) if v}
                bench = load_benchmark(b, data_dir=list(data_dirs) or None, manifest_dirs=list(manifest_dirs),
                                       **opts)
                read_benchmark_data(bench)
                bench.start_preparing()  # its ceilings and bootstrap, while the model loads
                benches.append(bench)
        except BrainAlignError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)

        done: list = []
        failures: list[tuple[str, str]] = []
        earlier = earlier_results(out_dir, progress.line)
        plots_import: threading.Thread | None = None
        stream = {"memory_budget": memory_budget, "max_features": max_features, "cache": cache}
        stream = {k: v for k, v in stream.items() if v is not None}
        loaded_as: dict[str, str] = {}  # model name → the id it was loaded from, in this run
        said_in_pairs: set[str] = set()  # failed-layer messages already printed at their pair
        partial: list[str] = []  # models whose forward pass fails part-way (scored up to it)

        def shown_as(i: int, mid: str) -> str:
            return f"{labels[i]} ({mid})" if labels else mid  # as the user named it
        try:
            for i, mid in enumerate(models):
                model = None
                try:
                    own = is_checkpoint_id(mid)  # --weights unused
                    what = "weights from the checkpoint" if own else f"{weights or 'random'} weights"
                    progress.stage(f"loading {mid} ({what})")
                    model = load_model(mid, weights=None if own else weights, seed=seed)
                    if labels:
                        model.name = labels[i].strip()
                    if loaded_as.setdefault(model.name, mid) != mid:  # two checkpoints of one run
                        raise DuplicateModelNameError(model.name, loaded_as[model.name], mid)
                    names = model.resolve_layers(layers)
                    if earlier is not None:  # its rows on other benchmarks there: the same network?
                        refuse_other_network(held_weights(earlier.table, model.name, {b.id for b in benches}),
                                             model.name, model.weights_hash, out_dir)
                        refuse_subset_over_full(full_data_pairs(earlier.table),
                                                [(model.name, b.id, b.subset_applied) for b in benches],
                                                out_dir, max_stimuli)
                    if out_dir is not None and plots_import is None:
                        # The figure is drawn at the end. matplotlib's import (~0.6 s of Python, holding
                        # the GIL) runs during the recording, when the forward pass has released the GIL
                        # and the metric leaves a core idle; started before the model loads, it only took
                        # turns with torchvision's import. (The import lock makes the later import wait.)
                        plots_import = threading.Thread(target=importlib.import_module, args=("brainalign.plots",),
                                                        name="brainalign-import-plots")
                        plots_import.start()
                    parts = []
                    for bench in benches:
                        progress.pair_started(model.name, bench.id, names)
                        with collect_warnings() as caught:
                            parts.append(bench(model, layers, batch_size=batch_size, device=device,
                                               progress=progress.bars, on_layer=progress.layer_done, **stream))
                        for line in warning_lines(caught, f"{model.name} × {bench.id}"):
                            progress.line(line)
                        failed_here = unscored_layers(parts[-1].meta)
                        for why in failed_here.values():
                            progress.line(f"warning: {why}")  # named, and the other layers are kept
                            said_in_pairs.add(why)
                        if FORWARD_STOPPED in failed_here and shown_as(i, mid) not in partial:
                            partial.append(shown_as(i, mid))
                        progress.pair_done(True)
                except Exception as err:  # one model's failure must not cost the others their results
                    progress.close_bar()
                    # The line names the model; the message often starts with it too (said once).
                    message = without_names(str(err), mid, getattr(model, "name", mid), *(b.id for b in benches))
                    detail = message if isinstance(err, BrainAlignError) else f"{type(err).__name__}: {message}"
                    shown = shown_as(i, mid)
                    progress.line(f"{shown} FAILED: " + "\n    ".join(detail.splitlines() or [""]))
                    if not isinstance(err, BrainAlignError):
                        progress.line(traceback.format_exc().rstrip())
                    failures.append((shown, detail))
                    continue
                done.append(ScoreResult.concat(parts))
                for line in replaced_notes(earlier, done[-1]):
                    progress.line(line)
                if out_dir is not None:  # rewritten after every model: what finished is on disk
                    save_results(with_earlier(earlier, ScoreResult.concat(done)), out_dir)
                    remove_stale_comparison(out_dir, progress.line)  # compared the scores before this run
        except KeyboardInterrupt:  # Ctrl-C: not a bare "Aborted!" but what is kept and how to go on
            progress.close_bar()
            if out_dir is None:
                kept = "not saved (no --out)"
            elif (out_dir / "scores.csv").exists():
                kept = (f"kept in {out_dir / 'scores.csv'}; score the others with the same --out (their rows "
                        "are added to that table)")
            else:  # interrupted before the first model finished: nothing was written
                kept = f"nothing written to {out_dir}"
            click.echo(f"interrupted: {len(done)} of {len(models)} model(s) had finished, {kept}", err=True)
            sys.exit(130)
    for line in warning_lines(unpaired, "loading"):  # raised outside any pair: model loading, prepare
        if line.removeprefix("warning: ") not in said_in_pairs:  # a failed forward pass, said at its pair
            progress.line(line)

    if done:
        result = ScoreResult.concat(done)
        if out_dir is None:
            cols = ["model", "benchmark", "session", "layer", "raw", "ceiling_upper", "normalised",
                    "normalised_ci_low", "normalised_ci_high", "selected"]
            with pd.option_context("display.max_rows", None, "display.width", 200):
                click.echo(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
            click.echo("")
        click.echo(format_summary(result.table))
        if out_dir is not None:
            from brainalign.plots import plot_layers

            plot_layers(with_earlier(earlier, result), path=out_dir / "layers.png")
            click.echo(f"wrote {out_dir / 'scores.csv'} (every layer) and {out_dir / 'layers.png'}")
        click.echo(next_steps(out_dir, own_model=any(m.startswith("file:") for m in models)))
    if partial:  # scored, but only the layers before the module where the forward pass fails
        click.echo(f"{len(partial)} of {len(models)} model(s) scored only in part, their forward pass failing "
                   f"part-way (see the warnings above; the rows of the layers before it are kept): "
                   + ", ".join(partial), err=True)
    if failures:
        click.echo(f"{len(failures)} of {len(models)} model(s) failed"
                   + ("; the others' rows are kept" if done else "") + ":", err=True)
        for mid, detail in failures:
            # A multi-line error keeps its later lines under the first, indented.
            click.echo(f"  {mid}: " + "\n    ".join(detail.splitlines() or [""]), err=True)
        sys.exit(1 if done else 2)
    if partial:
        sys.exit(1)
