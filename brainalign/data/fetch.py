"""Resolve a dataset file to a verified local path: a local copy, the cache, or a download."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from brainalign.data.archives import unsafe_member
from brainalign.data.manifest import FileEntry, Manifest, load_manifest
from brainalign.errors import (
    ChecksumMismatchError,
    DataAccessError,
    DataNotFoundError,
    DownloadError,
    InsecureDownloadError,
    ManifestError,
    UnsafeArchiveError,
)
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


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("1", "true", "yes", "on")


def insecure_allowed(allow_insecure: bool | None = None) -> bool:
    """The opt-in for downloads that are not https or carry no checksum: ``allow_insecure`` when
    given, else the environment variable ``BRAINALIGN_ALLOW_INSECURE`` (``1``/``true``), read at
    call time. Meant for local mirrors and tests (e.g. files served from 127.0.0.1 over http)."""
    if allow_insecure is not None:
        return bool(allow_insecure)
    return _truthy(os.environ.get("BRAINALIGN_ALLOW_INSECURE"))


def check_download(url: str, sha256: str | None, sha1: str | None = None, *,
                   sha256_prefix: str | None = None, allow_insecure: bool | None = None) -> None:
    """Refuse a download that is not ``https://`` or has no checksum to verify it, unless the user
    opted in (:func:`insecure_allowed`).

    Raises
    ------
    InsecureDownloadError
        Names the URL and what is missing.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    problems = []
    if scheme != "https":
        problems.append(f"its scheme is {scheme + '://' if scheme else 'missing'}, not https://")
    if sha256 is None and sha1 is None and not sha256_prefix:
        problems.append("no checksum (sha256) is recorded to verify it")
    if problems and not insecure_allowed(allow_insecure):
        raise InsecureDownloadError(
            f"refusing to download {url}: {' and '.join(problems)}. Downloads must be https and "
            "checksum-verified; for a local mirror or data you trust, opt in with allow_insecure=True "
            "or BRAINALIGN_ALLOW_INSECURE=1, or place the file in a data directory (--data-dir).")


def _opener(allow_insecure: bool | None) -> urllib.request.OpenerDirector:
    """urllib's opener, whose redirects may not leave https (without the opt-in)."""

    class _Redirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
            if urllib.parse.urlsplit(newurl).scheme.lower() != "https" and not insecure_allowed(allow_insecure):
                raise DownloadError(f"{req.full_url} redirects to {newurl}, which is not https; refused")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return urllib.request.build_opener(_Redirect)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created, deepest first."""
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(created: list[Path]) -> None:
    for d in created:  # deepest first; a folder another file landed in stays
        try:
            d.rmdir()
        except OSError:
            break


def download(url: str, dest: PathLike, sha256: str | None = None, *, sha1: str | None = None,
             size: int | None = None, sha256_prefix: str | None = None,
             allow_insecure: bool | None = None, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, checking its checksum before the file appears.

    The body goes to a temporary file beside ``dest`` and is renamed into place only when it is
    complete and verified, so an interrupted download never leaves a file that looks valid; the
    folders made for it are removed again when it fails. ``sha256_prefix``: the leading hex digits
    of the sha256 that torch hub's file names carry (``alexnet-owt-7be5be79.pth``), checked as
    ``torch.hub.download_url_to_file(check_hash=True)`` does; it counts as a checksum.

    Raises
    ------
    InsecureDownloadError
        Not https, or neither ``sha256`` nor ``sha1`` given, without the opt-in (:func:`check_download`).
    DownloadError
        Network, HTTP status, truncated body, a size other than ``size``.
    ChecksumMismatchError
        The body's checksum differs from the recorded one.
    """
    check_download(url, sha256, sha1, sha256_prefix=sha256_prefix, allow_insecure=allow_insecure)
    dest = Path(dest)
    created = _make_parents(dest.parent)
    ok = False
    try:
        h, h1 = hashlib.sha256(), hashlib.sha1()
        # The body goes to a temporary file; atomic_path moves it onto dest only when no error
        # (network, truncation, size, checksum) was raised.
        with atomic_path(dest, suffix=".part") as tmp, open(tmp, "wb") as out:
            try:
                resp = _opener(allow_insecure).open(url, timeout=timeout)
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
                        h1.update(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                if total is not None and got != total:
                    raise DownloadError(f"{url}: got {got} of {total} bytes")
                if size is not None and got != size:
                    raise DownloadError(f"{url}: got {got} bytes, the manifest records {size}")
            out.flush()
            if sha256 is not None and h.hexdigest() != sha256:
                raise ChecksumMismatchError(url, sha256, h.hexdigest())
            if sha256 is None and sha1 is not None and h1.hexdigest() != sha1:
                raise ChecksumMismatchError(url, f"{sha1} (sha1)", h1.hexdigest())
            if sha256_prefix and not h.hexdigest().startswith(sha256_prefix):
                raise ChecksumMismatchError(url, f"{sha256_prefix}… (sha256 prefix)", h.hexdigest())
        ok = True
    finally:
        if not ok:
            _remove_empty(created)
    return dest


def _is_file(p: Path) -> bool:
    """Whether ``p`` is a file; a folder on its way that cannot be searched is a named error."""
    try:
        return p.is_file()
    except PermissionError as err:
        raise DataAccessError(f"data folder {p.parent} cannot be read ({err.strerror}); fix its "
                              "permissions or remove it from the data directories") from err


def _readable_dirs(data_dir: PathLike | Sequence[PathLike] | None) -> list[Path]:
    dirs = data_dirs(data_dir)
    for d in dirs:
        if d.exists() and not (d.is_dir() and os.access(d, os.R_OK | os.X_OK)):
            what = "is not a folder" if not d.is_dir() else "cannot be read (permissions)"
            raise DataAccessError(f"data directory {d} {what}; fix it or remove it from --data-dir / "
                                  "BRAINALIGN_DATA")
    return dirs


def candidate_paths(manifest: Manifest, entry: FileEntry,
                    data_dir: PathLike | Sequence[PathLike] | None = None) -> list[Path]:
    """Every local path where a copy of ``entry`` may sit, in search order.

    Raises
    ------
    DataAccessError
        A data directory that exists but is not a readable folder.
    """
    out = []
    for d in _readable_dirs(data_dir):
        out.append(d / manifest.local_dir / entry.name)
        if manifest.local_dir != manifest.id:
            out.append(d / manifest.id / entry.name)
    return out


def _verified(path: Path, entry: FileEntry) -> Path:
    try:
        return verify(path, entry.sha256, entry.sha1)
    except PermissionError as err:
        raise DataAccessError(f"data file {path} cannot be read ({err.strerror})") from err


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Extract one member of a zip to ``dest`` atomically.

    Raises
    ------
    UnsafeArchiveError
        A member name that would land outside its folder (absolute, ``..``).
    ManifestError
        The archive holds no such member.
    """
    import shutil
    import zipfile

    if why := unsafe_member(member):
        raise UnsafeArchiveError(f"{archive}: member {member!r} {why}; refused")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        if member not in names:
            raise ManifestError(f"{archive}: holds no member {member!r} (members: {', '.join(names[:10])}"
                                f"{', …' if len(names) > 10 else ''}); fix member / member_of in the manifest")
        created = _make_parents(dest.parent)
        ok = False
        try:
            with atomic_path(dest, suffix=".part") as tmp, open(tmp, "wb") as out, zf.open(member) as src:
                shutil.copyfileobj(src, out, _CHUNK)
            ok = True
        finally:
            if not ok:
                _remove_empty(created)
    return dest


def fetch_file(dataset: str | Manifest, name: str, *,
               data_dir: PathLike | Sequence[PathLike] | None = None,
               cache: PathLike | None = None, download_missing: bool = True,
               progress: bool = True, allow_insecure: bool | None = None) -> Path:
    """Path to a verified copy of file ``name`` of ``dataset``.

    Looks in each local data directory (``<dir>/<local_dir>/<name>``), then in the cache
    (``<cache>/<dataset>/<name>``), then downloads into the cache (https and checksummed only,
    unless ``allow_insecure`` / ``BRAINALIGN_ALLOW_INSECURE=1``). A file that is a member of an
    archive of the manifest (``member_of``) is extracted from the fetched archive into the cache.
    A copy whose checksum does not match raises :class:`ChecksumMismatchError` rather than being
    used or silently replaced.

    Raises
    ------
    DataNotFoundError
        Nowhere to be found and the download failed or was not allowed; the message lists every
        place that was looked in.
    InsecureDownloadError
        A download that is not https or has no checksum, without the opt-in.
    DataAccessError
        A data directory or file that exists but cannot be read.
    """
    manifest = dataset if isinstance(dataset, Manifest) else load_manifest(dataset)
    entry = manifest.file(name)
    looked = candidate_paths(manifest, entry, data_dir)
    for p in looked:
        if _is_file(p):
            return _verified(p, entry)
    cached = cache_dir(cache) / manifest.id / entry.name
    looked.append(cached)
    if _is_file(cached):
        return _verified(cached, entry)
    # The file directly inside a data directory: the user named the dataset folder itself, not
    # the folder that holds it. Said now, rather than downloading a copy of what they have.
    inside = [d for d in _readable_dirs(data_dir) if _is_file(d / entry.name)]
    if inside:
        d = inside[0]
        raise DataNotFoundError(name, _said(looked), None, hint=(
            f"{d / entry.name} exists, directly inside the data directory {d}: that looks like the "
            f"dataset folder itself. The data directory is the folder that holds the dataset "
            f"folders ({manifest.local_dir}/, …): set it to the parent folder {d.parent} "
            f"(data_dir=..., --data-dir, or BRAINALIGN_DATA), or put the files in "
            f"{d / manifest.local_dir}."))
    if entry.member_of is not None:
        archive = fetch_file(manifest, entry.member_of, data_dir=data_dir, cache=cache,
                             download_missing=download_missing, progress=progress,
                             allow_insecure=allow_insecure)
        # The archive passed the download policy (or is a local copy): its members are trusted as it is.
        got = extract_member(archive, entry.member or entry.name, cached)
        try:
            return verify(got, entry.sha256, entry.sha1)
        except ChecksumMismatchError:
            got.unlink()
            raise
    if not download_missing or not entry.url:
        raise DataNotFoundError(
            name, _said(looked), entry.url,
            "downloads disabled" if entry.url else
            "no URL in the manifest (local-only data: put it in a data directory)",
            hint="" if not entry.url else (
                "Set the data directory (data_dir=..., --data-dir, or BRAINALIGN_DATA) to a folder that "
                "holds a copy, or allow the download (without --no-download / download_missing=False)."))
    try:
        return download(entry.url, cached, entry.sha256, sha1=entry.sha1, size=entry.size,
                        allow_insecure=allow_insecure, progress=progress)
    except DownloadError as err:
        raise DataNotFoundError(name, _said(looked), entry.url, str(err)) from err


def _said(looked: list[Path]) -> list[str]:
    """The places looked in, each whose folder does not exist marked with the first missing one
    (a mistyped or relative data directory is then named as such, not only its file)."""
    out = []
    for p in map(Path, looked):
        missing = None
        for a in p.parents:
            if a.exists():
                break
            missing = a
        out.append(f"{p}   (no folder {missing})" if missing is not None else str(p))
    return out


def downloaded(cache: PathLike | None = None, manifest_dirs: Sequence[PathLike] = ()) -> dict[str, list[Path]]:
    """The files the download cache holds per dataset with a manifest: the manifest's files where
    :func:`fetch_file` downloads or extracts them (``<cache>/<dataset>/<file>``) and unfinished
    downloads of them. Nothing else in those folders, and nothing inside a local data directory
    (``BRAINALIGN_DATA``): a local copy is the user's, even where the two folders meet."""
    from brainalign.data.manifest import list_datasets
    from brainalign.errors import BrainAlignError

    root = cache_dir(cache)
    local = [d.resolve() for d in data_dirs() if d.is_dir()]
    found: dict[str, list[Path]] = {}
    for dataset in list_datasets(manifest_dirs):
        try:
            manifest = load_manifest(dataset, manifest_dirs)
        except BrainAlignError:  # a broken manifest of the user's: its files are not known
            continue
        folder = root / manifest.id
        if not folder.is_dir():
            continue
        files = []
        for name in manifest.files:
            path = folder / name
            partial = list(path.parent.glob(f".{path.name}.@*")) if path.parent.is_dir() else []
            files += [f for f in [path, *partial] if f.is_file() and not
                      any(f.resolve().is_relative_to(d) for d in local)]
        if files:
            found[dataset] = sorted(files)
    return found
