"""Dataset manifests: YAML files in ``data_manifests/`` (or a user's own folder) that say which
files make a dataset, where to download them, their sha256, licence and citation. Validated by the
declared schema :class:`ManifestSchema`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, NonNegativeInt, StringConstraints, model_validator

from brainalign.data.archives import unsafe_member
from brainalign.errors import ManifestError, UnknownDatasetError
from brainalign.schema import StrictModel, Text, read_yaml, validate
from brainalign.settings import PathLike, manifest_dirs

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Sha1 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}$")]


class ManifestFileSchema(StrictModel):
    """One entry of `files` (the key is the file's path inside the dataset's folder)."""

    url: str | None = Field(None, description="Download URL: https, checksummed. Local-only data: leave out. "
                            "Other schemes or no checksum need the opt-in `BRAINALIGN_ALLOW_INSECURE=1`.")
    sha256: Sha256 | None = Field(None, description="sha256 of the file (64 lowercase hex digits).")
    sha1: Sha1 | None = Field(None, description="sha1, where the provider publishes only that (BrainIO).")
    size: NonNegativeInt | None = Field(None, description="Size in bytes; a download of another size fails.")
    format: str | None = Field(None, description="File format (informative).")
    description: str = Field("", description="What the file holds.")
    verified: bool | None = Field(None, description="False: checksum copied from a third party or unknown "
                                  "(default: true when a sha256 is given).")
    member_of: str | None = Field(None, description="Another file of this manifest (a zip) that holds this "
                                  "one: it is fetched, verified, and this member extracted from it.")
    member: str | None = Field(None, description="Path of the member inside `member_of` (default: this "
                               "file's name).")

    @model_validator(mode="after")
    def _archive(self) -> ManifestFileSchema:
        if self.member is not None and self.member_of is None:
            raise ValueError("member: needs member_of (the archive that holds it)")
        if self.member_of is not None and self.url is not None:
            raise ValueError("give url or member_of, not both")
        return self


class ManifestSchema(StrictModel):
    """A dataset manifest: which files make the dataset, where to get them, licence and citation."""

    id: Text = Field(description="Dataset id; benchmarks name it in `dataset`.")
    title: str | None = Field(None, description="One-line title (default: the id).")
    version: Text = Field("1", description="Version of the manifest.")
    description: str = Field("", description="What the files hold.")
    licence: str = Field(description="Licence and terms of use.")
    citation: str | list[str] = Field(description="Papers to cite.")
    homepage: str | None = Field(None, description="Where the data are described.")
    local_dir: str | None = Field(None, description="Folder name inside a data directory (default: the id).")
    access: str = Field("", description="Access conditions (e.g. a data agreement).")
    notes: str = Field("", description="Caveats and sources of URLs and checksums.")
    files: dict[str, ManifestFileSchema | None] = Field(description="File path → entry.")

    @model_validator(mode="after")
    def _members(self) -> ManifestSchema:
        problems = []
        for name, f in self.files.items():
            if why := unsafe_member(name):
                problems.append(f"files.{name}: the file name {why}")
            if f is None or f.member_of is None:
                continue
            if f.member_of not in self.files:
                problems.append(f"files.{name}.member_of: {f.member_of!r} is not a file of this manifest")
            elif (archive := self.files[f.member_of]) is not None and archive.member_of is not None:
                problems.append(f"files.{name}.member_of: {f.member_of!r} is itself a member of an archive")
            if why := unsafe_member(f.member or name):
                problems.append(f"files.{name}.member: {f.member or name!r} {why}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


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
    member_of: str | None = None  # the archive (another file of the manifest) holding this one
    member: str | None = None  # path inside that archive (default: name)


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
            raise ManifestError(
                f"Dataset {self.id!r} ({self.path}) lists no file {name!r}; "
                f"it has: {', '.join(self.files)}"
            ) from None


def parse_manifest(path: PathLike) -> Manifest:
    """Read a manifest file and validate it with :class:`ManifestSchema`.

    Raises
    ------
    ManifestError
        Invalid YAML, an unknown key, a bad checksum format, a missing field: one line per
        problem, each naming the file and the key's path.
    """
    path = Path(path)
    raw = read_yaml(path, ManifestError)
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest must be a mapping")
    m = validate(ManifestSchema, raw, path, ManifestError)
    files = {}
    for name, f in m.files.items():
        f = f or ManifestFileSchema()
        files[name] = FileEntry(
            name=name, url=f.url, sha256=f.sha256, size=f.size, format=f.format, description=f.description,
            verified=f.verified if f.verified is not None else f.sha256 is not None, sha1=f.sha1,
            member_of=f.member_of, member=f.member)
    extra = {k: getattr(m, k) for k in ("notes", "access", "homepage") if k in m.model_fields_set}
    return Manifest(
        id=m.id, title=m.title or m.id, licence=m.licence,
        citation=tuple([m.citation] if isinstance(m.citation, str) else m.citation), files=files,
        local_dir=m.local_dir or m.id, path=path, version=m.version, description=m.description, extra=extra,
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
