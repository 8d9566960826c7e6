"""Option types and checks shared by the commands: bad input is refused by name before any work.

Each check runs while click parses the command line (or right after, for checks that touch the
file system), so a typo in ``--device`` or an output folder that cannot be written costs nothing
rather than the whole run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import click

#: Batch sizes, feature caps, bootstrap counts: whole numbers of at least 1.
POSITIVE_INT = click.IntRange(min=1)

class DeviceType(click.ParamType):
    """A torch device that exists on this machine: ``auto``, ``cpu``, ``cuda``, ``cuda:<i>``, ``mps``.

    Checked by :func:`brainalign.device.resolve_device` while the command line is parsed: a name
    torch does not know (``gpu``), ``cuda`` without a usable GPU or an index past the last GPU is
    refused with what is available. torch is imported only for a GPU device, so ``--help`` stays fast.
    """

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if text in ("auto", "cpu"):
            return text
        from brainalign.device import resolve_device
        from brainalign.errors import DeviceUnavailableError

        try:
            resolve_device(text)
        except DeviceUnavailableError as err:
            self.fail(str(err).replace("use 'cpu'", "use --device cpu"), param, ctx)
        return text


class ByteSizeType(click.ParamType):
    """A memory size such as ``2.5GB`` or ``800MiB``, returned in bytes (must be > 0)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            n = value
        else:
            from brainalign.activations.budget import parse_bytes

            try:
                n = parse_bytes(value)
            except ValueError as err:
                self.fail(str(err), param, ctx)
        if n <= 0:
            self.fail(f"{value!r}: a memory budget must be more than 0 bytes", param, ctx)
        return n


DEVICE = DeviceType()
BYTE_SIZE = ByteSizeType()


def _probe_write(folder: Path) -> None:
    """Check that files can be written in ``folder`` (raises OSError if not) and leave no trace.

    Missing folders are created for the test and removed again (those still empty), so a run
    refused later, before it writes anything, leaves no empty folder behind; whatever writes the
    results creates the folder then.
    """
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".brainalign-write-test-{uuid.uuid4().hex[:8]}"
        try:
            with open(probe, "wb") as f:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
    finally:
        for p in missing:  # deepest first; rmdir leaves a folder something was written to
            with contextlib.suppress(OSError):
                p.rmdir()


def check_output_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a folder results can be written to. A missing folder is not left created:
    the command creates it when it writes its first file, so a run refused before that leaves
    nothing behind.

    Raises
    ------
    click.BadParameter
        The folder cannot be created or written (read-only file system, a file in the way, no
        permission, a full disk), said before any work is done.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise click.BadParameter(f"{folder} is a file, not a folder", param_hint=f"'{option}'")
    try:
        _probe_write(folder)
    except OSError as err:
        raise click.BadParameter(f"cannot write results to {folder}: {err.strerror or err}",
                                 param_hint=f"'{option}'") from None
    return folder


def usable_cache_dir(path: str | os.PathLike[str] | None) -> str | None:
    """``path`` if the activation cache can be written there, else ``None`` with a warning.

    The cache only saves time, so a cache folder that is read-only or on a full disk is no reason
    to stop: the run goes on without it (see also :class:`TolerantCache` for a disk that fills up
    during the run).
    """
    if path is None:
        return None
    folder = Path(path).expanduser()
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(20, "a file is in the way", str(folder))
        _probe_write(folder)
    except OSError as err:
        click.echo(f"warning: the activation cache {folder} cannot be written "
                   f"({err.strerror or err}); running without the cache", err=True)
        return None
    return str(folder)


def tolerant_cache(path: str | None):
    """An activation cache at ``path`` that turns itself off, with one warning, when a write fails
    (disk full, folder made read-only) instead of failing the run; ``None`` for no cache."""
    if path is None:
        return None
    from brainalign.activations.cache import ActivationCache

    class TolerantCache(ActivationCache):
        disabled = False

        def get(self, key: str, ids: Any) -> Any:
            return None if self.disabled else super().get(key, ids)

        def put(self, key: str, values: Any, ids: Any, parts: dict[str, Any]) -> None:
            if self.disabled:
                return
            try:
                super().put(key, values, ids, parts)
            except OSError as err:
                self.disabled = True
                warnings.warn(f"the activation cache {self.root} could not be written "
                              f"({err.strerror or err}); going on without the cache", stacklevel=2)

    return TolerantCache(path)


def temp_name(folder: Path, name: str) -> Path:
    """A fresh temporary path beside ``folder / name`` (never shared with another process)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)
