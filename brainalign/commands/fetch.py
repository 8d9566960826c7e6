"""``brainalign fetch DATASET``: resolve every file of a dataset (local copy, cache or download)."""

from __future__ import annotations

import sys

import click


@click.command("fetch")
@click.argument("dataset")
@click.option("--data-dir", "data_dirs", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Local data directory to look in first; repeatable (default: BRAINALIGN_DATA).")
@click.option("--cache", type=click.Path(file_okay=False), help="Download cache (default: BRAINALIGN_CACHE).")
@click.option("--no-download", is_flag=True, help="Only verify local and cached copies.")
@click.option("--manifest-dir", "manifest_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Folder of your own dataset manifests; repeatable (also BRAINALIGN_MANIFESTS).")
@click.option("--allow-insecure", is_flag=True, default=None,
              help="Allow downloads that are not https or have no checksum (a local mirror; "
                   "same as BRAINALIGN_ALLOW_INSECURE=1).")
def fetch_command(dataset: str, data_dirs: tuple[str, ...], cache: str | None, no_download: bool,
                  manifest_dirs: tuple[str, ...], allow_insecure: bool | None) -> None:
    """Verify or download every file of DATASET; print where each one is."""
    from brainalign.data import fetch_file, load_manifest
    from brainalign.errors import BrainAlignError

    try:
        manifest = load_manifest(dataset, list(manifest_dirs))
    except BrainAlignError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    failed = 0
    for name, entry in manifest.files.items():
        try:
            path = fetch_file(manifest, name, data_dir=list(data_dirs) or None, cache=cache,
                              download_missing=not no_download, allow_insecure=allow_insecure or None)
            mark = "ok" if entry.sha256 else "ok (no checksum recorded)"
            click.echo(f"{mark}\t{name}\t{path}")
        except BrainAlignError as err:
            failed += 1
            click.echo(f"FAILED\t{name}\t{err}", err=True)
    click.echo(f"{len(manifest.files) - failed} of {len(manifest.files)} files ready; "
               f"licence: {manifest.licence.strip()}")
    if failed:
        sys.exit(1)
