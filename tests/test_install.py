"""The base install (no extras) runs ``brainalign demo``: everything the demo imports comes from the
base dependencies in pyproject.toml (or what they require), never from an extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement

from tests.conftest import REPO

# Run the demo (small) and report every top-level module it imported. Extras' packages are
# blocked, as if not installed, though this environment has them.
_CODE = """
import json, sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # import fails, importlib.util.find_spec says "not installed"
from brainalign.cli import main
try:
    main(["demo", "--cells", "8", "--stimuli", "60", "--repeats", "3", "--noise-frames", "200",
          "--out", sys.argv[2]])
except SystemExit as e:
    assert not e.code, e.code
names = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None}
               - set(sys.stdlib_module_names) - {"__main__"})
print("MODULES " + json.dumps(names))
"""


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0].lower().replace("_", "-")


def _closure(roots: list[str]) -> set[str]:
    """Distributions the base dependencies pull in (markers of this interpreter; no extras)."""
    seen: set[str] = set()
    todo = [_name(r) for r in roots]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            reqs = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for r in reqs:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name.lower().replace("_", "-"))
    return seen


def test_the_demo_runs_with_only_the_base_dependencies_importable(tmp_path):
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = {_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    base = _closure(project["dependencies"])
    to_module = metadata.packages_distributions()
    # Everything installed here that the base install would not have: the extras and what they
    # pull in, and whatever else this environment holds.
    blocked = sorted({m for m, dists in to_module.items()
                      if not {d.lower().replace("_", "-") for d in dists} & base})
    assert {"rsatoolbox", "himalaya", "timm", "transformers", "dask", "pytest"} <= set(blocked)
    assert extras - base  # the extras are not part of the base closure
    proc = subprocess.run([sys.executable, "-c", _CODE, ",".join(blocked), str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "demo" / "layers.png").is_file() and (tmp_path / "demo" / "scores.csv").is_file()
    modules = json.loads(proc.stdout.split("MODULES ", 1)[1])
    assert "torch" in modules and not set(modules) & set(blocked)
