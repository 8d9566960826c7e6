"""``brainalign cache``: where downloads, stored noise ceilings and cached activations are kept,
what they take, and ``--clear`` to empty one of them."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

STORES = ("downloads", "ceilings", "activations")


def _size(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files if p.exists())


@click.command("cache")
@click.option("--clear", "clear", multiple=True, type=click.Choice(STORES),
              help="Empty this store (repeatable): the next run that needs its content computes or "
                   "downloads it again. Only the store's own files are removed.")
@click.option("--cache-dir", "activation_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="An activation cache folder (as given to score/batch --cache-dir); default "
                   "<BRAINALIGN_CACHE>/activations.")
@click.option("--manifest-dir", "manifest_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Folder of your own dataset manifests (their downloads are counted too); repeatable.")
def cache_command(clear: tuple[str, ...], activation_dir: str | None, manifest_dirs: tuple[str, ...]) -> None:
    """Where brainalign keeps what it can make again, and how much it takes.

    downloads: the files of dataset manifests fetched into BRAINALIGN_CACHE (nothing else in its
    folders, and never a local copy in BRAINALIGN_DATA, even where the two folders meet);
    ceilings: the benchmarks' stored bootstrap noise ceilings (BRAINALIGN_CEILING_CACHE);
    activations: the content-addressed activation cache.
    """
    from brainalign.activations.budget import format_bytes
    from brainalign.activations.cache import ActivationCache
    from brainalign.benchmarks.ceiling_store import entries as ceiling_entries
    from brainalign.data.fetch import downloaded
    from brainalign.settings import cache_dir, ceiling_cache_dir, data_dirs

    per_dataset = downloaded(manifest_dirs=list(manifest_dirs))
    ceilings = ceiling_cache_dir()
    activations = ActivationCache(activation_dir)
    stores: dict[str, tuple[Path | None, list[Path], str]] = {
        "downloads": (cache_dir(), [p for files in per_dataset.values() for p in files],
                      f"{len(per_dataset)} dataset(s)" + (f": {', '.join(per_dataset)}" if per_dataset else "")),
        "ceilings": (ceilings, ceiling_entries(ceilings), ""),
        "activations": (activations.root, activations.entries(), ""),
    }
    inside = [d for d in data_dirs() if d.is_dir() and cache_dir().resolve().is_relative_to(d.resolve())]
    if inside:  # its files count as local copies there: never listed or removed (fetch.downloaded)
        click.echo(f"note: the download cache {cache_dir()} lies in the data directory {inside[0]}: files there "
                   "count as your local copies, and are neither listed nor removed here")
    for name in STORES:
        folder, files, what = stores[name]
        if folder is None:
            where = "off (BRAINALIGN_CEILING_CACHE)"
        else:
            where = str(folder) + ("" if folder.is_dir() else " (no such folder yet)")
        count = what or f"{len(files)} file(s)"
        click.echo(f"{name:<12} {format_bytes(_size(files)):>9}  {count:<28} {where}")
    failed = False
    for name in dict.fromkeys(clear):
        _, files, _ = stores[name]
        freed, left = _size(files), []
        for p in files:
            try:
                p.unlink(missing_ok=True)
            except OSError as err:
                left.append(f"{p} ({err.strerror or err})")
        root = stores[name][0]
        # the folders below the store's own that held them (a dataset's, a shard's), once empty
        for d in sorted({a for p in files for a in p.parents if root in a.parents}, key=lambda d: -len(d.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        click.echo(f"cleared {name}: {len(files) - len(left)} file(s), {format_bytes(freed)}")
        for line in left:
            click.echo(f"error: could not remove {line}", err=True)
        failed = failed or bool(left)
    if failed:
        sys.exit(1)
