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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO, needs_data

SKIP = "# readme-test: skip"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)

# (README text, what the test runs instead): the same commands with documented options that make
# them quick on 2 cores.
QUICK = [
    # README's example data folder is the lab layout this test builds: the datasets beside the clone.
    ("export BRAINALIGN_DATA=/data/brainalign/datasets", "export BRAINALIGN_DATA=$PWD/../shared/datasets"),
    ("brainalign demo --out results/demo",
     "brainalign demo --out results/demo --cells 16 --stimuli 120 --repeats 4 --noise-frames 400"),
    ("--out results/alexnet\n", "--out results/alexnet --n-bootstrap 30\n"),
    ("--out results/two\n", "--out results/two --n-bootstrap 30 --layers '*.1'\n"),
    ("--out results/alexnet-v1\n", "--out results/alexnet-v1 --n-bootstrap 20\n"),
    ('ba.load_benchmark("kriegeskorte2008.hIT-rsa")            #',
     'ba.load_benchmark("kriegeskorte2008.hIT-rsa", n_bootstrap=30)  #'),
    ('layers=["features.*"]', 'layers=["features.1?"]'),
    ('result = ba.score(model, "kriegeskorte2008.hIT-rsa")',
     'result = ba.score(model, "kriegeskorte2008.hIT-rsa", n_bootstrap=30)'),
    ("  - torchvision:alexnet            #", "  - {id: torchvision:alexnet, layers: ['features.1?']}  #"),
    ("--epochs 10 --score", "--epochs 1 --layers conv1 --score"),
    ('epochs=10, optimizer', 'epochs=1, optimizer'),
    ('ba.score_checkpoints(run.run_dir, "kriegeskorte2008.hIT-rsa")',
     'ba.score_checkpoints(run.run_dir, "kriegeskorte2008.hIT-rsa", layers=["conv1"])'),
    ("--cache-dir results/activation-cache\n", "--cache-dir results/activation-cache --n-bootstrap 30\n"),
    ("n_frames=2_000", "n_frames=500"),
    ('insilico.measure_properties(model, "features.0")',
     'insilico.measure_properties(model, "features.0", insilico.experiments.ExperimentSettings('
     'orientations=(0.0, 45.0, 90.0, 135.0), phases=(0.0, 180.0), sfs=(1.0, 3.0), size_diameters=(1.0, 4.0)))'),
    ("insilico.fit_gabors(rf.maps,", "insilico.fit_gabors(rf.maps[:4],"),
]


def readme_blocks(text: str) -> list[tuple[int, str, str]]:
    """(line number, language, body) of every fenced block."""
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def _block_script(line: int, lang: str, body: str) -> str:
    first = body.splitlines()[0] if body.strip() else ""
    head = f"echo '=== README line {line} ({lang})' >&2\n"
    if lang == "bash":
        return head + body
    if lang == "python":
        return head + f"python - <<'README_PY'\n{body}README_PY"
    if lang == "yaml":
        target = first.lstrip("# ").split()[0] if first.startswith("#") else None
        assert target, f"README line {line}: a yaml block starts with '# <file name>' to say where it goes"
        return head + f"cat > {target} <<'README_YAML'\n{body}README_YAML"
    raise AssertionError(f"README line {line}: block of unknown language {lang!r}; mark it "
                         f"'{SKIP} (reason)' or use bash/python/yaml")


def section_scripts(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """One bash script per README section (``## `` heading) running its blocks in order, each
    starting with the ``export`` lines of the sections before it (the one setting they share);
    and the blocks skipped, with why. Sections only share that setting, so they can run side by
    side."""
    heads = [(m.start(), m.group(1)) for m in re.finditer(r"^## (.+)$", text, re.M)]
    skipped: list[str] = []
    sections: list[tuple[str, list[str]]] = [("(top)", [])]
    exports: list[list[str]] = [[]]
    for line, lang, body in readme_blocks(text):
        pos = sum(len(x) + 1 for x in text.splitlines()[:line - 1])
        title = next((h for start, h in reversed(heads) if start <= pos), "(top)")
        if title != sections[-1][0]:
            sections.append((title, []))
            exports.append([])
        first = body.splitlines()[0] if body.strip() else ""
        if first.startswith(SKIP):
            skipped.append(f"line {line}: {first[len(SKIP):].strip()}")
            continue
        sections[-1][1].append(_block_script(line, lang, body))
        if lang == "bash":
            exports[-1] += [x for x in body.splitlines() if x.startswith("export ")]
    scripts = []
    for i, (title, parts) in enumerate(sections):
        if parts:
            prelude = [x for ex in exports[:i] for x in ex]
            scripts.append((title, "\n".join(["set -euo pipefail", *prelude, *parts, "times >&2"]) + "\n"))
    return scripts, skipped


def runnable_script(text: str) -> tuple[str, list[str]]:
    """Every section's script, one after the other (what a user following README runs)."""
    scripts, skipped = section_scripts(text)
    return "\n".join(body for _, body in scripts), skipped


def quick(script: str, strict: bool = True) -> str:
    """``script`` with the QUICK replacements; ``strict``: each must be found (checked on the whole
    README; one section holds only some of them)."""
    for old, new in QUICK:
        assert old in script or not strict, f"README no longer contains {old!r}: update QUICK in {__file__}"
        script = script.replace(old, new)
    return script


def test_readme_blocks_are_all_accounted_for():
    text = (REPO / "README.md").read_text()
    script, skipped = runnable_script(text)
    # Only installing packages and a cluster are skipped; everything else a user types runs.
    assert [s.split(": ", 1)[1] for s in skipped] == ["(installs packages: needs the network)",
                                                      "(needs a SLURM cluster)"]
    bodies = "".join(body for _, _, body in readme_blocks(text))
    assert bodies.count("export BRAINALIGN_DATA=") == 1 and "--data-dir" not in bodies
    assert "data_dir=" not in bodies  # the one way: the environment variable
    scripts, _ = section_scripts(text)
    # Every section after the one that sets it starts with that setting.
    after = [body for title, body in scripts if title not in ("First run: a simulated V1, no data needed",
                                                              "Real brain data")]
    assert after and all(body.splitlines()[1].startswith("export BRAINALIGN_DATA=") for body in after)
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
    scripts, _ = section_scripts((clone / "README.md").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINALIGN_DATA", "PYTHONPATH")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(clone),
               MPLBACKEND="Agg", https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")

    def run(item: tuple[int, tuple[str, str]]) -> tuple[str, subprocess.CompletedProcess]:
        i, (title, body) = item
        path = tmp_path / f"readme-{i}.sh"
        path.write_text(quick(body, strict=False))
        return title, subprocess.run(["bash", str(path)], cwd=clone, env=env, capture_output=True, text=True,
                                     timeout=900)

    # Two at a time: the sections share only the data setting, and the machine has 2 cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, enumerate(scripts)))
    for title, proc in done:
        assert proc.returncode == 0, (f"README section {title!r} failed:\n{proc.stdout[-3000:]}\n"
                                      f"--- stderr ---\n{proc.stderr[-6000:]}")
    stdout = "".join(proc.stdout for _, proc in done)
    for title, proc in done:  # CPU seconds per section (bash `times`: the commands' user and system)
        print(f"{title}: {' '.join(proc.stderr.strip().splitlines()[-1:])}")
    # What the commands promise is there, and every file they wrote is git-ignored.
    for f in ("results/demo/report.html", "results/alexnet/scores.csv", "results/two/figures/heatmap.png",
              "results/batch/provenance.json", "results/batch/report.html", "runs/lenet5/training.png",
              "results/alexnet-layers.png", "runs/lenet5-py/training.png"):
        assert (clone / f).is_file(), f
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout
    assert status == "", f"files written by the README examples are not git-ignored:\n{status}"
    assert "next:" in stdout and "brainalign report results/alexnet" in stdout


def test_readme_prints_tables_as_readable_column_selections():
    """A printed result table is a selection of real columns, not pandas' elided 34-column frame."""
    from brainalign.results.table import COLUMNS

    code = "".join(body for _, lang, body in readme_blocks((REPO / "README.md").read_text()) if lang == "python")
    printed = re.findall(r"print\((\w+)\.(table|best)\b(.*?)\)\n", code, re.S)
    assert printed, "README prints no result table"
    for name, attr, rest in printed:
        assert rest.startswith("[["), f"README prints the whole {name}.{attr}: select a few columns"
        cols = re.findall(r'"(\w+)"', rest)
        known = set(COLUMNS) | ({"best_score"} if attr == "best" else set())
        assert cols and set(cols) <= known, f"{name}.{attr}: unknown columns {set(cols) - known}"


def test_the_readme_counts_the_columns_a_table_has():
    import re

    from brainalign.results import COLUMNS

    said = re.findall(r"one row per layer, (\d+) columns", (REPO / "README.md").read_text())
    assert said and all(int(n) == len(COLUMNS) for n in said)  # it said 34 beside 35
