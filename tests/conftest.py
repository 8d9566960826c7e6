"""Shared fixtures. Real data is read from ../shared/datasets through the data-directory setting."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    """The data directory a user with a local copy would configure: BRAINALIGN_DATA, else
    ../shared/datasets beside the repository."""
    env = os.environ.get("BRAINALIGN_DATA")
    cand = Path(env.split(os.pathsep)[0]) if env else REPO.parent / "shared" / "datasets"
    return cand if cand.is_dir() else None


DATA = shared_datasets()
needs_data = pytest.mark.skipif(
    DATA is None, reason="real datasets not found: set BRAINALIGN_DATA or put ../shared/datasets beside the repo")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA is None:
        pytest.skip("real datasets not found: set BRAINALIGN_DATA or put ../shared/datasets beside the repo")
    return DATA


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test reads or writes the user's real caches.
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("BRAINALIGN_CACHE", str(base / "brainalign-cache"))
    monkeypatch.setenv("TORCH_HOME", str(base / "torch-home"))
    # Stored ceilings are per test: a test that changes a ceiling's computation (monkeypatch) must
    # not read another test's entry, nor leave its own for the next.
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", str(tmp_path_factory.mktemp("ceilings")))


@pytest.fixture(scope="session")
def hit_benchmark(data_dir: Path):
    import brainalign as ba

    return ba.load_benchmark("kriegeskorte2008.hIT-rsa", data_dir=data_dir)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread: on a loaded machine torch's thread pool makes
    each small tensor op ~100x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def mirror(tmp_path: Path):
    """A local mirror: files put in the yielded folder are served from 127.0.0.1 over http
    (the documented opt-in, ``allow_insecure``, lets downloads read it)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
