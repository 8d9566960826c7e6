"""The notebooks in notebooks/: stored without outputs, and each runs top to bottom offline."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, REPO

nbformat = pytest.importorskip("nbformat")
NB_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(p.name for p in NB_DIR.glob("*.ipynb"))
# Notebooks built on parts of brainalign that land separately: skipped until that module exists.
NEEDS = {
    "v1_receptive_fields.ipynb": "brainalign.insilico.rf",
    "fmri_voxelwise.ipynb": "brainalign.benchmarks.fmri",
    "training.ipynb": "brainalign.models.train",
}


def test_the_five_notebooks_are_there():
    assert {"quickstart.ipynb", "your_own_model.ipynb", *NEEDS} <= set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stored_without_outputs(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: cell {i} has stored outputs; strip them"
            assert cell.execution_count is None, f"{name}: cell {i} has an execution count"
        assert "/work/" not in cell.source, f"{name}: cell {i} holds a machine-specific path"
    assert "widgets" not in nb.metadata


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_runs_top_to_bottom(name, monkeypatch, tmp_path):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"{name} needs {NEEDS[name]}, which is not in this tree")
    if DATA is None:
        pytest.skip("real datasets not found: set BRAINALIGN_DATA or put ../shared/datasets beside the repo")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # The kernel inherits this environment: the data folder, this checkout, no GPU surprises.
    monkeypatch.setenv("BRAINALIGN_DATA", str(DATA))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    nb = nbformat.read(NB_DIR / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(NB_DIR)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert images, f"{name} drew no figure"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    print(f"{name}: {elapsed:.1f} s")
    out = Path(__file__).parent / "artifacts"
    out.mkdir(exist_ok=True)
    nbformat.write(nb, out / name)  # the executed copy, for a reader to look at
