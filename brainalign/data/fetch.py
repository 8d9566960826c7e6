"""Resolve a dataset file to a verified local path: a local copy, the cache, or a download."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from brainalign.data.manifest import FileEntry, Manifest, load_manifest
from brainalign.errors import ChecksumMismatchError, DataNotFoundError, DownloadError
from brainalign.io import atomic_path
from brainalign.settings import PathLike, cache_dir, data_dirs

_CHUNK = 1 << 20


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha1_file(path: PathLike) -> str:
    """Hex sha1 of a file (BrainIO publishes sha1 only)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: PathLike, sha256: str | None, sha1: str | None = None) -> Path:
    """Return ``path`` if its sha256 equals ``sha256`` (or, with no sha256 recorded, its sha1
    equals ``sha1``; or neither is recorded), else raise :class:`ChecksumMismatchError`."""
    path = Path(path)
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ChecksumMismatchError(str(path), sha256, actual)
    elif sha1 is not None:
        actual = sha1_file(path)
        if actual != sha1:
            raise ChecksumMismatchError(str(path), f"{sha1} (sha1)", actual)
    return path


def download(url: str, dest: PathLike, sha256: str | None = None, *, timeout: float = 30.0,
             progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, checking ``sha256`` before the file appears.

    The body goes to a temporary file beside ``dest`` and is renamed into place only when it is
    complete and verified, so an interrupted download never leaves a file that looks valid.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    # The body goes to a temporary file; atomic_path moves it onto dest only when no error
    # (network, truncation, checksum) was raised.
    with atomic_path(dest, suffix=".part") as tmp, open(tmp, "wb") as out:
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DownloadError(f"could not open {url}: {err}") from err
        with resp:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total = int(total) if total else None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, leave=False) as bar:
                got = 0
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise DownloadError(f"{url}: got {got} of {total} bytes")
        out.flush()
        if sha256 is not None and h.hexdigest() != sha256:
            raise ChecksumMismatchError(url, sha256, h.hexdigest())
    return dest


def candidate_paths(manifest: Manifest, entry: FileEntry,
                    data_dir: PathLike | Sequence[PathLike] | None = None) -> list[Path]:
    """Every local path where a copy of ``entry`` may sit, in search order."""
    out = []
    for d in data_dirs(data_dir):
        out.append(d / manifest.local_dir / entry.name)
        if manifest.local_dir != manifest.id:
            out.append(d / manifest.id / entry.name)
    return out


def fetch_file(dataset: str | Manifest, name: str, *,
               data_dir: PathLike | Sequence[PathLike] | None = None,
               cache: PathLike | None = None, download_missing: bool = True,
               progress: bool = True) -> Path:
    """Path to a verified copy of file ``name`` of ``dataset``.

    Looks in each local data directory (``<dir>/<local_dir>/<name>``), then in the cache
    (``<cache>/<dataset>/<name>``), then downloads into the cache. A copy whose sha256 does not
    match raises :class:`ChecksumMismatchError` rather than being used or silently replaced.

    Raises
    ------
    DataNotFoundError
        Nowhere to be found and the download failed or was not allowed; the message lists every
        place that was looked in.
    """
    manifest = dataset if isinstance(dataset, Manifest) else load_manifest(dataset)
    entry = manifest.file(name)
    looked = candidate_paths(manifest, entry, data_dir)
    for p in looked:
        if p.is_file():
            return verify(p, entry.sha256, entry.sha1)
    cached = cache_dir(cache) / manifest.id / entry.name
    looked.append(cached)
    if cached.is_file():
        return verify(cached, entry.sha256, entry.sha1)
    if not download_missing or not entry.url:
        raise DataNotFoundError(name, map(str, looked), entry.url,
                                "downloads disabled" if entry.url else "no URL in the manifest")
    try:
        got = download(entry.url, cached, entry.sha256, progress=progress)
    except DownloadError as err:
        raise DataNotFoundError(name, map(str, looked), entry.url, str(err)) from err
    try:
        return verify(got, entry.sha256, entry.sha1)
    except ChecksumMismatchError:
        got.unlink()  # never leave an unverified file where the next call would trust it
        raise
