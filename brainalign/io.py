"""One way to write a file so that readers see the old file or the whole new one, never a part.

Everything brainalign writes for others to read (cached activations, downloads, batch tables,
results, reports) goes through :func:`atomic_path`: the content is written to a temporary file
beside the target, flushed to disk, and renamed over the target (``os.replace`` is atomic on one
file system). A run killed at any moment leaves the previous file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from brainalign.settings import PathLike


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp", mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (named ``.<name>.@<host>-<pid>@.<random><suffix>``);
    when the block ends without an exception the file is fsynced and moved onto ``path``,
    otherwise it is deleted. Parent folders are created.

    ``mode``: permissions of the result (``mkstemp``'s 0600 would hide shared caches and results
    from the rest of a lab).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's host and pid in the name: whoever finds a leftover temporary file can tell
    # whether its writer still runs (a starting batch run removes only those of dead processes).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.@{socket.gethostname()}-{os.getpid()}@.",
                               suffix=suffix)
    os.close(fd)
    os.chmod(tmp, mode)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write(path: PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding=encoding))


@contextlib.contextmanager
def interrupt_after() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives during the block and raise it, as ``KeyboardInterrupt``,
    when the block ends: a write stopped part-way can leave a library's lock held (xarray's netCDF
    writer then waits for it forever in its own cleanup), and a results folder half written. In
    a thread other than the main one (where Python delivers signals), or inside another such
    block (which holds the interrupt for both), the block runs as it is. The handler in place
    before is restored either way."""
    if (threading.current_thread() is not threading.main_thread()
            or getattr(signal.getsignal(signal.SIGINT), "holds_interrupts", False)):  # an outer block holds them
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    hold.holds_interrupts = True  # type: ignore[attr-defined]
    before = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt
