"""Dataset manifests: YAML files in ``data_manifests/`` that say which files make a dataset,
where to download them, their sha256, licence and citation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from brainalign.errors import BenchmarkDefinitionError, UnknownDatasetError
from brainalign.settings import PathLike, manifest_dirs

_MANIFEST_KEYS = {
    "id", "title", "version", "description", "licence", "citation", "homepage",
    "local_dir", "files", "notes", "access",
}
_FILE_KEYS = {"url", "sha256", "size", "format", "description", "verified", "sha1", "member_of"}


@dataclass(frozen=True)
class FileEntry:
    """One file of a dataset."""

    name: str
    url: str | None
    sha256: str | None
    size: int | None = None
    format: str | None = None
    description: str = ""
    verified: bool = True  # False: checksum copied from a third party, not yet checked by us
    sha1: str | None = None  # where the provider publishes only sha1 (BrainIO); used without sha256


@dataclass(frozen=True)
class Manifest:
    """A dataset's manifest."""

    id: str
    title: str
    licence: str
    citation: tuple[str, ...]
    files: dict[str, FileEntry]
    local_dir: str
    path: Path
    version: str = "1"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def file(self, name: str) -> FileEntry:
        try:
            return self.files[name]
        except KeyError:
            raise BenchmarkDefinitionError(
                f"Dataset {self.id!r} ({self.path}) lists no file {name!r}; "
                f"it has: {', '.join(self.files)}"
            ) from None


def _check_keys(where: str, got: dict, allowed: set[str], required: set[str]) -> None:
    unknown = set(got) - allowed
    if unknown:
        raise BenchmarkDefinitionError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = required - set(got)
    if missing:
        raise BenchmarkDefinitionError(f"{where}: missing field(s) {sorted(missing)}")


def _sha1(path: Path, name: str, sha1: Any) -> str | None:
    if sha1 is None:
        return None
    sha1 = str(sha1)
    if len(sha1) != 40 or any(c not in "0123456789abcdef" for c in sha1):
        raise BenchmarkDefinitionError(f"{path}: file {name!r}: sha1 must be 40 lowercase hex digits")
    return sha1


def parse_manifest(path: PathLike) -> Manifest:
    """Read and validate one manifest file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise BenchmarkDefinitionError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise BenchmarkDefinitionError(f"{path}: a manifest must be a mapping")
    _check_keys(str(path), raw, _MANIFEST_KEYS, {"id", "licence", "citation", "files"})
    files = {}
    for name, spec in (raw.get("files") or {}).items():
        spec = spec or {}
        _check_keys(f"{path}: file {name!r}", spec, _FILE_KEYS, {"url"})
        sha = spec.get("sha256")
        if sha is not None and (len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha))):
            raise BenchmarkDefinitionError(f"{path}: file {name!r}: sha256 must be 64 lowercase hex digits")
        files[name] = FileEntry(
            name=name, url=spec.get("url"), sha256=sha, size=spec.get("size"),
            format=spec.get("format"), description=spec.get("description", ""),
            verified=bool(spec.get("verified", sha is not None)),
            sha1=_sha1(path, name, spec.get("sha1")),
        )
    citation = raw["citation"]
    citation = tuple([citation] if isinstance(citation, str) else citation)
    extra = {k: raw[k] for k in ("notes", "access", "homepage") if k in raw}
    return Manifest(
        id=str(raw["id"]), title=str(raw.get("title", raw["id"])), licence=str(raw["licence"]),
        citation=citation, files=files, local_dir=str(raw.get("local_dir", raw["id"])), path=path,
        version=str(raw.get("version", "1")), description=str(raw.get("description", "")), extra=extra,
    )


def _manifest_paths(extra_dirs: Sequence[PathLike] = ()) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in manifest_dirs(extra_dirs):
        for p in sorted(Path(d).glob("*.yaml")):
            found.setdefault(p.stem, p)  # earlier directories win
    return found


def list_datasets(extra_dirs: Sequence[PathLike] = ()) -> list[str]:
    """Identifiers of every dataset with a manifest."""
    return sorted(_manifest_paths(extra_dirs))


def load_manifest(dataset: str, extra_dirs: Sequence[PathLike] = ()) -> Manifest:
    """The manifest of ``dataset`` (its file stem in a manifest directory)."""
    paths = _manifest_paths(extra_dirs)
    if dataset not in paths:
        raise UnknownDatasetError(dataset, paths)
    return parse_manifest(paths[dataset])
