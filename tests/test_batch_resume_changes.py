"""``brainalign batch --resume`` after changed settings or edited model code, on the real hIT
benchmark: only the current pairs' files are read, superseded ones are removed, and a ``file:``
model whose source changed is scored anew with the reason said."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from brainalign.cli import main
from brainalign.results import ScoreResult
from brainalign.results.details import load_details, save_details
from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.progress import BatchProgress
from tests.conftest import needs_data

BENCH = "kriegeskorte2008.hIT-rsa"

NET = """\
from torch import nn
from blocks import act


def build():
    return nn.Sequential(nn.Conv2d(3, 4, 8, stride=8), act(), nn.AdaptiveAvgPool2d(3), nn.Flatten())
"""
BLOCKS = """\
from torch import nn


def act():
    return nn.ReLU()
"""


@pytest.fixture
def net(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "mynet.py").write_text(NET)
    (code / "blocks.py").write_text(BLOCKS)
    yield code / "mynet.py"
    _forget(code)  # the sibling stays imported as `blocks`: not to be found by the next test's mynet


def _forget(folder: Path) -> None:
    """Drop the modules imported from ``folder``: a new CLI process would import them afresh."""
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and Path(f).parent == folder:
            del sys.modules[name]


def _run(models, out: Path, data_dir: Path, n_bootstrap: int, resume: bool = False, **kw):
    log = io.StringIO()
    report = run_batch(models, [BENCH], out, data_dir=data_dir, n_bootstrap=n_bootstrap, resume=resume,
                       progress=BatchProgress(log), **kw)
    return report, log.getvalue()


def _entries(net: Path, labels=("a", "b")) -> list[ModelEntry]:
    return [ModelEntry(id=f"file:{net}:build", seed=i, label=lab, layers=("0", "1"))
            for i, lab in enumerate(labels)]


def _lengths(res: ScoreResult) -> set[int]:
    return {len(d["bootstrap_raw"]) for d in res.details.values()}


@needs_data
def test_resume_with_other_settings_reads_only_the_current_pairs(net, data_dir, tmp_path):
    out = tmp_path / "D2"
    a, b = _entries(net)
    _run([a, b], out, data_dir, 50)
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "compare.csv").is_file()

    # Only model a anew with 60 samples: b stays from the first run (its 50 samples).
    report, log1 = _run([a], out, data_dir, 60, resume=True)
    assert len(report.scored) == 1 and report.kept == ["b × " + BENCH]
    # The old files of a are gone; only b's first-run files and a's new ones remain.
    assert len(list((out / "pairs").glob("*.parquet"))) == 2
    assert len(list((out / "pairs").glob("*.details"))) == 2
    # compare.csv compared the scores before this run: removed, not left as current.
    assert not (out / "compare.csv").exists() and "removed" in log1

    # Both again with 60: b comes from an older run than the last one.
    report, log2 = _run([a, b], out, data_dir, 60, resume=True)
    assert len(report.scored) == 1 and len(report.skipped) == 1
    res = ScoreResult.load(out)
    assert _lengths(res) == {60}
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    assert "(60 vs 50)" not in r.output

    # A stale details folder that sorts last (from a crash, or an older version) is not read:
    # only the pair keys scores.csv names are.
    key = sorted(res.table["pair_key"].unique())[0]
    stale = out / "pairs" / "zzz-stale.details"
    current = load_details(out / "pairs" / f"{key}.details")
    save_details({k: {**v, "bootstrap_raw": v["bootstrap_raw"][:50] + 1.0} for k, v in current.items()}, stale)
    again = ScoreResult.load(out)
    assert _lengths(again) == {60}
    for k, v in current.items():
        np.testing.assert_array_equal(again.details[k]["bootstrap_raw"], v["bootstrap_raw"])

    # The resume message counts and names what is recomputed, whichever earlier run finished it.
    assert f"1 pair(s) finished by an earlier run were scored with other settings or code and will be " \
           f"recomputed: a × {BENCH}" in log1
    assert f"1 pair(s) finished by an earlier run were scored with other settings or code and will be " \
           f"recomputed: b × {BENCH}" in log2


@needs_data
def test_a_failed_compare_removes_a_comparison_of_replaced_scores(net, data_dir, tmp_path):
    out = tmp_path / "D"
    a, b = _entries(net)
    _run([a, b], out, data_dir, 50)
    assert CliRunner().invoke(main, ["compare", str(out)]).exit_code == 0
    # Scores replaced after the comparison (e.g. `brainalign score --out` into the folder),
    # and the next comparison fails: the old one must not stay as if it were current.
    details = sorted((out / "pairs").glob("*.details"))[0]
    shutil.rmtree(details)
    (out / "scores.csv").write_text((out / "scores.csv").read_text())
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 2, r.output
    assert not (out / "compare.csv").exists() and "removed" in r.output


@needs_data
@pytest.mark.parametrize("edit", ["mynet.py", "blocks.py"])
@pytest.mark.parametrize("process", ["new", "same"])
def test_resume_rescores_a_file_model_whose_source_changed(net, data_dir, tmp_path, edit, process):
    """A new process (the CLI) or the same one (a notebook, where the modules stay imported)."""
    out = tmp_path / "D"
    a = _entries(net, ("a",))
    first, _ = _run(a, out, data_dir, 50)
    if process == "new":
        _forget(net.parent)
    same, log = _run(a, out, data_dir, 50, resume=True)
    assert len(same.skipped) == 1 and not same.scored  # unchanged code: reused

    f = net.parent / edit
    # (another length too: a .pyc of the same size and second would be taken for the new source)
    old_call = "act(), nn.Adaptive" if edit == "mynet.py" else "nn.ReLU()"
    new_call = old_call.replace("act()", "nn.GELU()").replace("nn.ReLU()", "nn.GELU()")
    f.write_text(f.read_text().replace(old_call, new_call) + "# GELU\n")
    if process == "new":
        _forget(net.parent)
    report, log = _run(a, out, data_dir, 50, resume=True)
    assert len(report.scored) == 1 and not report.skipped, log
    assert f"files of file:{net}:build changed: {edit} (code)" in log
    assert "benchmark definition changed" not in log
    old = first.table.set_index("layer")["raw"]
    new = report.table.set_index("layer")["raw"]
    assert old["0"] == new["0"] and old["1"] != new["1"]  # the conv is the same, the activation not
    assert len(list((out / "pairs").glob("*.parquet"))) == 1


def test_source_files_follow_the_local_imports_of_every_file_model_form(tmp_path, monkeypatch):
    """The files a ``file:`` model is made of, found without importing it: its module, the
    modules beside it that it imports (directly, through another, or relatively inside a
    package), not unrelated files, installed packages or brainalign itself."""
    from brainalign.models.file_source import source_files
    from brainalign.runner.batch import model_source

    (tmp_path / "mynet.py").write_text("import torch\nfrom blocks import act\nimport brainalign\n")
    (tmp_path / "blocks.py").write_text("from helpers import util\n")
    (tmp_path / "helpers.py").write_text("x = 1\n")
    (tmp_path / "unrelated.py").write_text("y = 2\n")
    pkg = tmp_path / "mylab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text("from . import layers\nfrom .deep.parts import Part\n")
    (pkg / "layers.py").write_text("")
    (pkg / "deep").mkdir()
    (pkg / "deep" / "__init__.py").write_text("")
    (pkg / "deep" / "parts.py").write_text("from ..layers import thing\n")
    (tmp_path / "ckpt.pt").write_bytes(b"not really a checkpoint")
    monkeypatch.chdir(tmp_path)

    def names(found):
        return sorted(str(f.relative_to(tmp_path)) for f in found)

    local = ["blocks.py", "helpers.py", "mynet.py"]
    assert names(source_files("mynet:build")) == local
    assert names(source_files(f"{tmp_path / 'mynet.py'}:build")) == local
    assert names(source_files("./mynet.py:build")) == local
    assert names(source_files("mylab.nets:build")) == [
        "mylab/__init__.py", "mylab/deep/__init__.py", "mylab/deep/parts.py", "mylab/layers.py",
        "mylab/nets.py"]
    assert names(source_files("ckpt.pt")) == ["ckpt.pt"]
    assert source_files("zoo:lenet5") == [] and source_files("nosuchmodule:build") == []
    # The entry's source: names relative to the model's folder, each file's sha256.
    src = model_source(ModelEntry(id="file:mynet:build", weights=str(tmp_path / "ckpt.pt")))
    import hashlib

    assert sorted(src) == ["blocks.py", "ckpt.pt", "helpers.py", "mynet.py"]
    assert src["ckpt.pt"] == hashlib.sha256(b"not really a checkpoint").hexdigest()
    assert model_source(ModelEntry(id="torchvision:alexnet")) == {}


def test_a_changed_checkpoint_is_said_as_other_weights_not_other_source():
    """"source of file:mynet:build changed (ckpt.pt)" read as edited code; a new checkpoint is new weights."""
    from brainalign.runner.batch import resume_changes

    def record(ckpt: str) -> dict:
        return {"settings": {}, "models": {"net": {"id": "file:mynet:build", "source": {
            "mynet.py": "code-1", "ckpt.pt": ckpt}}}, "pairs": {}}

    lines = resume_changes(record("w-1"), record("w-2"))
    assert lines == ["model net: files of file:mynet:build changed: ckpt.pt (weights) (its pairs are recomputed)"]
