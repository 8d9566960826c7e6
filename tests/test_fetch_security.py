"""Security of downloads and archives (issue 12): https and checksums unless explicitly opted in,
unsafe zip members refused naming them, archive members (`member_of`) extracted safely."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile

import numpy as np
import pytest
import yaml

from brainalign.data import fetch_file, list_datasets, load_manifest
from brainalign.data.fetch import download, extract_member
from brainalign.data.manifest import parse_manifest
from brainalign.data.stimuli import StimulusSet
from brainalign.errors import (
    DataAccessError,
    DataNotFoundError,
    InsecureDownloadError,
    ManifestError,
    UnsafeArchiveError,
)


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_bundled_manifests_download_only_over_https():
    for d in list_datasets():
        for f in load_manifest(d).files.values():
            assert f.url is None or f.url.startswith("https://"), (d, f.name, f.url)
    # algonauts2019 shipped an http URL without a checksum: now https, and still unverified, so
    # fetching it needs the opt-in.
    visual = load_manifest("algonauts2019").files["visual_stimuli.mat"]
    assert visual.url.startswith("https://") and visual.sha256 is None and not visual.verified


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.bin", "file:///etc/hostname",
                                 "data:application/octet-stream;base64,AAAA", "ftp://example.org/x"])
def test_non_https_download_is_refused_without_the_opt_in(tmp_path, url, monkeypatch):
    monkeypatch.delenv("BRAINALIGN_ALLOW_INSECURE", raising=False)
    with pytest.raises(InsecureDownloadError, match=r"refusing to download .*not https://"):
        download(url, tmp_path / "d" / "x.bin", "0" * 64, progress=False)
    assert not (tmp_path / "d").exists()


def test_download_without_checksum_is_refused_before_any_network(tmp_path, monkeypatch):
    monkeypatch.delenv("BRAINALIGN_ALLOW_INSECURE", raising=False)
    # An https URL on a closed local port: refused for the missing checksum before it is opened.
    with pytest.raises(InsecureDownloadError, match=r"no checksum \(sha256\) is recorded"):
        download("https://127.0.0.1:9/x.bin", tmp_path / "x.bin", progress=False)


def test_local_mirror_over_http_with_the_opt_in(mirror, tmp_path, monkeypatch):
    root, base = mirror
    body = np.arange(300, dtype=np.int64).tobytes()
    (root / "x.bin").write_bytes(body)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "mirror.yaml").write_text(yaml.safe_dump({
        "id": "mirror", "licence": "test", "citation": "none",
        "files": {"x.bin": {"url": f"{base}/x.bin", "sha256": _sha(body)},
                  "nosum.bin": {"url": f"{base}/x.bin"}}}))
    m = parse_manifest(tmp_path / "m" / "mirror.yaml")
    monkeypatch.delenv("BRAINALIGN_ALLOW_INSECURE", raising=False)
    with pytest.raises(InsecureDownloadError, match=r"127\.0\.0\.1.*scheme is http://"):
        fetch_file(m, "x.bin", data_dir=[], cache=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()  # nothing made for a refused download
    got = fetch_file(m, "x.bin", data_dir=[], cache=tmp_path / "cache", progress=False, allow_insecure=True)
    assert got.read_bytes() == body
    # A body of another size than the manifest records is refused (and nothing is kept).
    m_size = dataclasses.replace(m, files={**m.files, "x.bin": dataclasses.replace(m.files["x.bin"], size=7)})
    with pytest.raises(DataNotFoundError, match=r"got 2400 bytes, the manifest records 7"):
        fetch_file(m_size, "x.bin", data_dir=[], cache=tmp_path / "cache2", allow_insecure=True, progress=False)
    assert not (tmp_path / "cache2").exists()
    # The documented environment opt-in works the same way (and covers a missing checksum).
    monkeypatch.setenv("BRAINALIGN_ALLOW_INSECURE", "1")
    assert fetch_file(m, "nosum.bin", data_dir=[], cache=tmp_path / "cache", progress=False).read_bytes() == body


def test_member_of_extracts_a_verified_member_from_a_fetched_archive(mirror, tmp_path):
    root, base = mirror
    inner = b"matlab bytes" * 100
    with zipfile.ZipFile(root / "bundle.zip", "w") as zf:
        zf.writestr("92_Image_Set/target_fmri.mat", inner)
        zf.writestr("other.txt", b"x")
    zbytes = (root / "bundle.zip").read_bytes()
    p = tmp_path / "algo.yaml"
    p.write_text(yaml.safe_dump({
        "id": "algo", "licence": "test", "citation": "none",
        "files": {"bundle.zip": {"url": f"{base}/bundle.zip", "sha256": _sha(zbytes)},
                  "92_Image_Set/target_fmri.mat": {"member_of": "bundle.zip", "sha256": _sha(inner)},
                  "renamed.txt": {"member_of": "bundle.zip", "member": "other.txt"},
                  "missing.txt": {"member_of": "bundle.zip"}}}))
    m = parse_manifest(p)
    cache = tmp_path / "cache"
    got = fetch_file(m, "92_Image_Set/target_fmri.mat", data_dir=[], cache=cache, progress=False,
                     allow_insecure=True)  # http: a local mirror
    assert got == cache / "algo" / "92_Image_Set" / "target_fmri.mat" and got.read_bytes() == inner
    # A member without its own checksum is trusted through its verified archive.
    assert fetch_file(m, "renamed.txt", data_dir=[], cache=cache).read_bytes() == b"x"
    with pytest.raises(ManifestError, match=r"bundle\.zip: holds no member 'missing\.txt' \(members: 92_Image"):
        fetch_file(m, "missing.txt", data_dir=[], cache=cache)


def test_zip_members_that_climb_out_are_refused_naming_the_member(tmp_path):
    from brainalign.data.arrays import read_zip_images

    for bad in ("../../x.png", "/abs/x.png", "a\\..\\..\\x.png"):
        z = tmp_path / "imgs.zip"
        with zipfile.ZipFile(z, "w") as zf:
            zf.writestr("ok.png", b"")
            zf.writestr(bad, b"")
        with pytest.raises(UnsafeArchiveError, match=re.escape(f"imgs.zip: member {bad!r}")):
            StimulusSet.from_zip("s", z)
        with pytest.raises(UnsafeArchiveError):
            read_zip_images(lambda n: tmp_path / n, name="s", file="imgs.zip")
        with pytest.raises(UnsafeArchiveError):
            extract_member(z, bad, tmp_path / "out" / "x.png")
        assert not (tmp_path / "out").exists()


def test_data_directory_that_is_not_a_readable_folder_is_a_named_error(tmp_path):
    not_a_dir = tmp_path / "data.txt"
    not_a_dir.write_text("")
    m = load_manifest("kriegeskorte2008")
    with pytest.raises(DataAccessError, match=r"data directory .*data\.txt is not a folder"):
        fetch_file(m, "92_brainRDMs.mat", data_dir=not_a_dir, cache=tmp_path / "c", download_missing=False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        if not os.access(locked, os.R_OK):  # root reads every folder: nothing to check there
            with pytest.raises(DataAccessError, match=r"locked cannot be read"):
                fetch_file(m, "92_brainRDMs.mat", data_dir=locked, cache=tmp_path / "c", download_missing=False)
    finally:
        locked.chmod(0o755)


def test_manifest_entry_fields_flow_into_the_file_entry(tmp_path):
    m = load_manifest("algonauts2019")
    e = m.files["92_Image_Set/target_fmri.mat"]
    assert e.member_of == "algonauts2019_osf_mirror.zip" and e.url is None
    assert dataclasses.replace(e, member="x").member == "x"


def test_a_redirect_may_not_leave_https_without_the_opt_in(monkeypatch):
    import urllib.request

    from brainalign.data.fetch import _opener
    from brainalign.errors import DownloadError

    monkeypatch.delenv("BRAINALIGN_ALLOW_INSECURE", raising=False)
    req = urllib.request.Request("https://example.org/x.bin")

    def handler(opener):
        return next(h for h in opener.handlers if isinstance(h, urllib.request.HTTPRedirectHandler))

    with pytest.raises(DownloadError, match=r"redirects to http://mirror\.example/x\.bin, which is not https"):
        handler(_opener(None)).redirect_request(req, None, 302, "Found", {}, "http://mirror.example/x.bin")
    ok = handler(_opener(None)).redirect_request(req, None, 302, "Found", {}, "https://cdn.example/x.bin")
    assert ok.full_url == "https://cdn.example/x.bin"
    assert handler(_opener(True)).redirect_request(req, None, 302, "Found", {}, "http://m/x").full_url == "http://m/x"


def test_sha256_prefix_of_torch_hub_file_names_counts_as_checksum(mirror, tmp_path, monkeypatch):
    """torchvision's weights carry the first digits of their sha256 in the file name: that prefix
    verifies the download (as torch.hub's check_hash does); a mismatch leaves no file behind."""
    from brainalign.errors import ChecksumMismatchError

    root, base = mirror
    body = b"weights" * 100
    (root / "w.pth").write_bytes(body)
    monkeypatch.delenv("BRAINALIGN_ALLOW_INSECURE", raising=False)
    # Over plain http the opt-in is still needed (the mirror); the prefix replaces a full sha256.
    with pytest.raises(InsecureDownloadError, match="not https"):
        download(f"{base}/w.pth", tmp_path / "a" / "w.pth", sha256_prefix=_sha(body)[:8])
    dest = download(f"{base}/w.pth", tmp_path / "a" / "w.pth", sha256_prefix=_sha(body)[:8],
                    allow_insecure=True, progress=False)
    assert dest.read_bytes() == body
    with pytest.raises(ChecksumMismatchError, match="prefix"):
        download(f"{base}/w.pth", tmp_path / "b" / "w.pth", sha256_prefix="00000000",
                 allow_insecure=True, progress=False)
    assert not (tmp_path / "b").exists()
