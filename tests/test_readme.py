"""README.md as a new user follows it: every bash, python and file block, in order, in a fresh copy
of the repository, with the data folder set the one way README says (``export BRAINALIGN_DATA=…``).

Blocks whose first line is ``# readme-test: skip (reason)`` are not run (installing packages, a
cluster). A few documented options make the run quick (fewer bootstrap samples, epochs, cells);
each replacement must find its text, so a README edit cannot silently bypass it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_data

SKIP = "# readme-test: skip"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)

# (README text, what the test runs instead): the same commands with documented options that make
# them quick on 2 cores.
QUICK = [
    ("brainalign demo --out results/demo",
     "brainalign demo --out results/demo --cells 16 --stimuli 120 --repeats 4 --noise-frames 400"),
    ("--out results/alexnet\n", "--out results/alexnet --n-bootstrap 30\n"),
    ("--out results/two\n", "--out results/two --n-bootstrap 30\n"),
    ("--out results/alexnet-v1\n", "--out results/alexnet-v1 --n-bootstrap 20\n"),
    ('ba.load_benchmark("kriegeskorte2008.hIT-rsa")            #',
     'ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=30)  #'),
    ('layers=["features.*"]', 'layers=["features.1?"]'),
    ('result = ba.score(model, "kriegeskorte2008.hIT-rsa")',
     'result = ba.score(model, "kriegeskorte2008.hIT-rsa", n_bootstrap=30)'),
    ("  - torchvision:alexnet\n", "  - {id: torchvision:alexnet, layers: ['features.1?']}\n"),
    ("--epochs 10 --score", "--epochs 1 --layers conv1 --score"),
    ('epochs=10, optimizer', 'epochs=1, optimizer'),
    ('ba.score_checkpoints(run.run_dir, "kriegeskorte2008.hIT-rsa")',
     'ba.score_checkpoints(run.run_dir, "kriegeskorte2008.hIT-rsa", layers=["conv1"])'),
    ("n_frames=10_000", "n_frames=500"),
    ("insilico.fit_gabors(rf.maps,", "insilico.fit_gabors(rf.maps[:4],"),
]


def readme_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, language, body) of every fenced block."""
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def runnable_script(text: str) -> tuple[str, list[str]]:
    """One bash script running README's blocks in order, and the list of blocks skipped (with why)."""
    parts, skipped = ["set -euo pipefail"], []
    for line, lang, body in readme_blocks(text):
        first = body.splitlines()[0] if body.strip() else ""
        if first.startswith(SKIP):
            skipped.append(f"line {line}: {first[len(SKIP):].strip()}")
            continue
        parts.append(f"times >&2; echo '=== README line {line} ({lang})' >&2")  # CPU time so far
        if lang == "bash":
            parts.append(body)
        elif lang == "python":
            parts.append(f"python - <<'README_PY'\n{body}README_PY")
        elif lang == "yaml":
            target = first.lstrip("# ").split()[0] if first.startswith("#") else None
            assert target, f"README line {line}: a yaml block starts with '# <file name>' to say where it goes"
            parts.append(f"cat > {target} <<'README_YAML'\n{body}README_YAML")
        else:
            raise AssertionError(f"README line {line}: block of unknown language {lang!r}; mark it "
                                 f"'{SKIP} (reason)' or use bash/python/yaml")
    return "\n".join([*parts, "times >&2"]) + "\n", skipped


def quick(script: str) -> str:
    for old, new in QUICK:
        assert old in script, f"README no longer contains {old!r}: update QUICK in tests/test_readme.py"
        script = script.replace(old, new)
    return script


def test_readme_blocks_are_all_accounted_for():
    text = (REPO / "README.md").read_text()
    script, skipped = runnable_script(text)
    # Only installing packages and a cluster are skipped; everything else a user types runs.
    assert [s.split(": ", 1)[1] for s in skipped] == ["(installs packages: needs the network)",
                                                      "(needs a SLURM cluster)"]
    assert script.count("export BRAINALIGN_DATA=") == 1 and "--data-dir" not in script
    assert "data_dir=" not in script  # the one way: the environment variable
    quick(script)


def _fresh_copy(dest: Path) -> None:
    """The repository's tracked and not-ignored files, as a clone would have them, in a new git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "clone"], cwd=dest, check=True)


@pytest.mark.slow
@needs_data
def test_readme_runs_as_written_in_a_fresh_clone(tmp_path, data_dir):
    clone = tmp_path / "brainalign"
    clone.mkdir()
    _fresh_copy(clone)
    # The lab layout README assumes: the shared datasets folder beside the clone.
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "datasets").symlink_to(data_dir.resolve())
    script, _ = runnable_script((clone / "README.md").read_text())
    (tmp_path / "readme.sh").write_text(quick(script))
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINALIGN_DATA", "PYTHONPATH")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(clone),
               MPLBACKEND="Agg", https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    proc = subprocess.run(["bash", str(tmp_path / "readme.sh")], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    # What the commands promise is there, and every file they wrote is git-ignored.
    for f in ("results/demo/report.html", "results/alexnet/scores.csv", "results/two/figures/heatmap.png",
              "results/batch/provenance.json", "results/batch/report.html", "runs/lenet5/training.png",
              "results/alexnet-layers.png", "runs/lenet5-py/training.png"):
        assert (clone / f).is_file(), f
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout
    assert status == "", f"files written by the README examples are not git-ignored:\n{status}"
    assert "next:" in proc.stdout and "brainalign report results/alexnet" in proc.stdout
