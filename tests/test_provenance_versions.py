"""Every row's ``versions`` names the libraries that built its model (timm:, hf: ids)."""

from __future__ import annotations

from importlib import metadata

import pytest

from brainalign.results.provenance import versions, versions_string


@pytest.mark.parametrize("pkg", ["timm", "transformers"])
def test_installed_model_libraries_are_recorded(pkg):
    try:
        expected = metadata.version(pkg)
    except metadata.PackageNotFoundError:
        assert pkg not in versions()  # not "not installed" in every row of a default install
        return
    assert versions()[pkg] == expected and f"{pkg}={expected}" in versions_string()
