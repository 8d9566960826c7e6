"""The ``brainalign`` command line. Heavy imports happen inside commands, so ``--help`` is fast."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

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
        items = _benchmark_lines()
    else:
        from brainalign.data.manifest import list_datasets

        items = list_datasets()
    click.echo("\n".join(items))


def _benchmark_lines() -> list[str]:
    """One line per benchmark: id, kind, region, and whether its dataset is here (a local copy in
    a data directory, or in the download cache) or is fetched on first use."""
    from brainalign.benchmarks.spec import find_benchmark, list_benchmarks
    from brainalign.data.fetch import downloaded
    from brainalign.data.manifest import Manifest, load_manifest
    from brainalign.errors import BrainAlignError
    from brainalign.settings import data_dirs

    cached, dirs = downloaded(), data_dirs()
    manifests: dict[str, Manifest] = {}  # one read per dataset (the V1 properties share one)
    rows = []
    for bid in list_benchmarks():
        try:
            spec = find_benchmark(bid)
            manifest = manifests.get(spec.dataset) or manifests.setdefault(spec.dataset,
                                                                           load_manifest(spec.dataset))
        except BrainAlignError as err:  # a broken definition of the user's: listed, said broken
            rows.append((bid, "?", "", f"unreadable: {str(err).splitlines()[0]}"))
            continue
        if not manifest.files:
            data = f"{spec.dataset}: generated, no files"
        elif any((d / manifest.local_dir).is_dir() for d in dirs):
            data = f"{spec.dataset}: local copy"
        elif spec.dataset in cached:
            data = f"{spec.dataset}: in the download cache"
        else:
            data = f"{spec.dataset}: not here (fetched on first use, or BRAINALIGN_DATA)"
        rows.append((bid, spec.kind, spec.region, data))
    rows.insert(0, ("benchmark", "kind", "region", "data"))
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    return [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]


@main.command()
@click.argument("model")
@click.option("--weights", default=None, help="random (default), pretrained or a checkpoint path.")
@click.option("--all", "show_all", is_flag=True, help="Every recordable module, not only the default layers.")
def layers(model: str, weights: str | None, show_all: bool) -> None:
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
    # One write, as `list` does: a reader that stops early (| head) ends the listing, not the
    # command with click's broken-pipe status 1.
    click.echo("\n".join(f"{n}\t{m.layer_info[n].kind}\t{'x'.join(map(str, m.layer_info[n].output_shape))}"
                         for n in names))


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
from brainalign.commands.cache import cache_command  # noqa: E402

main.add_command(cache_command)


def run(argv: list[str] | None = None) -> NoReturn:
    """The ``brainalign`` console script: :func:`main`, then a fast exit.

    Tearing the interpreter down after a command (clearing the modules of torch, torch._dynamo,
    pandas, matplotlib, …) takes 1.1–1.7 s on 2 cores, about a tenth of a short ``score`` run,
    when every result is already on disk. So, as mypy's ``fast_exit``, the process ends with
    ``os._exit`` once the ``atexit`` handlers (logging, temporary folders, a user model's own)
    have run and the standard streams are flushed. While a thread that Python would wait for is
    still running, the usual exit (which waits for it) is taken instead. An exception that is not
    a command's exit (a bug) leaves through the usual path, with its traceback.
    """
    try:
        main.main(args=argv, prog_name="brainalign")  # standalone mode: ends in SystemExit
    except SystemExit as stop:
        _fast_exit(stop.code)
    raise AssertionError("click's standalone mode returned")  # pragma: no cover


def _fast_exit(code: object) -> NoReturn:
    """End the process with exit status ``code`` (SystemExit's: int, None or a message)."""
    me = threading.current_thread()
    if threading.main_thread() is not me or any(
            t.is_alive() and not t.daemon for t in threading.enumerate() if t is not me):
        sys.exit(code)
    atexit._run_exitfuncs()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed on stderr, status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (| head): nothing more to say
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
