"""Archive member names that are safe to use: never outside the folder they belong to."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from brainalign.errors import UnsafeArchiveError


def unsafe_member(name: str) -> str | None:
    """Why an archive member name may not be used (it would land outside the folder it is
    extracted to: absolute, a drive letter, ``..``, a backslash), or None when it is safe."""
    if "\\" in name:
        return "contains a backslash"
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in p.parts:
        return "climbs out of its folder ('..')"
    return None


def check_members(archive: str | Path, names: Iterable[str]) -> None:
    """Raise :class:`UnsafeArchiveError` naming the first unsafe member of ``archive``."""
    for name in names:
        if why := unsafe_member(name):
            raise UnsafeArchiveError(f"{archive}: member {name!r} {why}; refused")
