"""``brainalign cache``: what the download cache, the stored noise ceilings and an activation
cache hold, filled by a real run; ``--clear`` removes a store's own files and nothing else."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.settings import cache_dir, ceiling_cache_dir

HIT = "kriegeskorte2008.hIT-rsa"


def _run(*args: str):
    r = CliRunner().invoke(main, list(args))
    return r, {ln.split()[0]: ln for ln in r.output.splitlines() if ln.split() and ln.split()[0] in
               ("downloads", "ceilings", "activations")}


def test_cache_lists_and_clears_each_store_and_nothing_else(tmp_path, data_dir):
    if not data_dir.is_dir():
        pytest.skip("needs ../shared/datasets")
    acts = tmp_path / "acts"
    score = ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", HIT, "--n-bootstrap", "10",
             "--data-dir", str(data_dir), "--cache-dir", str(acts), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(main, score)
    assert r.exit_code == 0, r.output
    # a dataset in the download cache (as fetch_file places it), and files the stores do not own
    from brainalign.data import load_manifest

    dl = cache_dir() / "kriegeskorte2008" / next(iter(load_manifest("kriegeskorte2008").files))
    dl.parent.mkdir(parents=True, exist_ok=True)
    dl.write_bytes(b"\0" * 1500)
    (cache_dir() / "not-a-dataset").mkdir()
    (cache_dir() / "not-a-dataset" / "keep.txt").write_text("mine")
    ceilings = ceiling_cache_dir()
    (ceilings / "notes.txt").write_text("mine")
    stored = sorted(p.name for p in ceilings.glob("*.npz"))
    assert stored  # the run stored its ceilings

    r, lines = _run("cache", "--cache-dir", str(acts))
    assert r.exit_code == 0, r.output
    assert "1.5 kB" in lines["downloads"] and "1 dataset(s): kriegeskorte2008" in lines["downloads"]
    assert f"{len(stored)} file(s)" in lines["ceilings"] and str(ceilings) in lines["ceilings"]
    n_acts = sum(1 for _ in acts.rglob("*.npy")) * 2  # array + sidecar per layer
    assert n_acts and f"{n_acts} file(s)" in lines["activations"] and str(acts) in lines["activations"]

    r, _ = _run("cache", "--clear", "ceilings", "--clear", "activations", "--clear", "downloads",
                "--cache-dir", str(acts))
    assert r.exit_code == 0, r.output
    assert f"cleared ceilings: {len(stored)} file(s)" in r.output
    assert "cleared downloads: 1 file(s), 1.5 kB" in r.output
    assert not list(ceilings.glob("*.npz")) and (ceilings / "notes.txt").read_text() == "mine"
    assert not list(acts.rglob("*.npy")) and not list(acts.rglob("*.json")) and not any(acts.iterdir())
    assert not (cache_dir() / "kriegeskorte2008").exists()
    assert (cache_dir() / "not-a-dataset" / "keep.txt").read_text() == "mine"
    r, lines = _run("cache", "--cache-dir", str(acts))
    assert all("0 B" in lines[s] for s in ("downloads", "ceilings", "activations")), r.output
    # the next run makes them again, with the same scores
    before = pd.read_csv(tmp_path / "o" / "scores.csv")
    r = CliRunner().invoke(main, score)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in ceilings.glob("*.npz")) == stored
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "o" / "scores.csv"), before)


def test_clearing_downloads_removes_the_manifest_files_only_never_a_local_copy(monkeypatch, tmp_path):
    """A user's own files in a dataset's cache folder stay; a download cache that is also the data
    directory (BRAINALIGN_DATA) holds local copies, which are the user's: never removed (they were,
    where a dataset's local folder is named as its id)."""
    from brainalign.data import load_manifest

    manifest = load_manifest("kriegeskorte2008")
    name = next(iter(manifest.files))
    folder = cache_dir() / "kriegeskorte2008"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"downloaded")
    (folder / f".{name}.@host-1@.x.tmp").write_bytes(b"partial")  # an unfinished download
    (folder / "my_notes.txt").write_text("mine")
    (folder / "analysis").mkdir()
    (folder / "analysis" / "fig.txt").write_text("mine")
    r, lines = _run("cache", "--clear", "downloads")
    assert r.exit_code == 0 and "cleared downloads: 2 file(s)" in r.output, r.output
    assert not (folder / name).exists() and (folder / "my_notes.txt").exists()
    assert (folder / "analysis" / "fig.txt").exists()
    # the same folder as the data directory: a local copy (manifest local_dir == id) is kept
    local = tmp_path / "mydata"
    (local / "majajhong2015").mkdir(parents=True)
    copy = local / "majajhong2015" / next(iter(load_manifest("majajhong2015").files))
    copy.write_bytes(b"precious")
    monkeypatch.setenv("BRAINALIGN_DATA", str(local))
    monkeypatch.setenv("BRAINALIGN_CACHE", str(local))
    r, lines = _run("cache", "--clear", "downloads")
    assert r.exit_code == 0 and "0 dataset(s)" in lines["downloads"], r.output
    assert f"note: the download cache {local} lies in the data directory {local}" in r.output
    assert copy.read_bytes() == b"precious"
    r, _ = _run("cache", "--cache-dir", str(tmp_path / "typo"))
    assert r.exit_code == 2 and "does not exist" in r.output


def test_a_store_turned_off_is_said(monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINALIGN_CEILING_CACHE", "off")
    r, lines = _run("cache")
    assert r.exit_code == 0 and "off (BRAINALIGN_CEILING_CACHE)" in lines["ceilings"], r.output
    assert os.environ["BRAINALIGN_CACHE"] in lines["downloads"]
