"""Issue 15, every row side by side: a score costs little more than the model's own forward pass.

One script for the whole table of issue 15. Each row is measured in the same run as its reference
(the bare forward pass, or the peer library), with a *before* column (the code of another tree,
``--before``: ``/work/main`` by default; for issue 15's numbers, commit 3217337 unpacked with
``git archive``) and an *after* column (this tree), variants interleaved round by round (the order
alternates), after a warm-up, over ``--rounds`` rounds; the load average is printed with every
round and the results of before and after are checked equal.

Rows (``--rows``, default all):

``hit``      ``brainalign score`` (the CLI, writing scores.csv and the plot) of a random resnet18 on
             ``kriegeskorte2008.hIT-rsa``, vs a bare import + forward pass over 92 images at 224 px;
             wall time and peak RSS of each process (``os.wait4``).
``cowley``   ``score`` of resnet18 on ``cowley2023.V4-ridge`` (``--cowley-max-stimuli`` per session,
             0 = all 3,040 images), vs a bare import + forward pass over the same number of images.
``extract``  21 full-resolution conv/linear layers of resnet18 on ``--extract-n`` images: bare
             forward, a floor (the bare pass, then fresh arrays of the returned size, held and
             written once), brainalign.extract before (the other tree's ``activations/extract.py``,
             loaded from its file) and after, torchvision ``create_feature_extractor``, plain clone
             hooks, all in one process, interleaved. thingsvision is not a peer here: it pins
             ``numpy<2``, ``torchvision==0.15.2`` and needs tensorflow (checked with
             ``pip download --no-deps thingsvision``, 2.7.3), so it cannot share this environment.
``ridge``    ``encoding_score`` (ridge, per-neuroid α by exact LOO) 2,560 × 1,000 → 168, 10 splits,
             vs scikit-learn ``RidgeCV(alpha_per_target=True)`` on the same splits (same r).
``kridge``   ``RidgeCV(cv=5)`` 1,000 × 10,000 → 500, per-target α, vs himalaya ``KernelRidgeCV``
             (warmed up), float64.
``rsa``      RDM (correlation) + Spearman, 5,000 × 4,096, numpy and torch input, vs plain numpy
             (``np.corrcoef`` + ``rankdata``), and vs rsatoolbox at ``--rsatoolbox-n`` stimuli.
``import``   ``import brainalign.metrics.rsa`` vs ``import torch`` (fresh processes), and which of
             torch / sklearn / pandas it loads.

Usage::

    OMP_NUM_THREADS=1 BRAINALIGN_DATA=/work/shared/datasets \\
        python perf/issue15_speed.py [--before /work/main] [--rows hit extract ...] [--rounds 3]
    python perf/issue15_speed.py --small      # every row at toy size, this tree only, < 30 s

``OMP_NUM_THREADS`` is passed to every child (1 when unset). Run the table at 1 and at the number
of cores: torch's default is all cores, which is what a user gets. Until the late-night session
of 2026-11-30 every number below was taken at 1; at 2 (this machine's cores) two thread pools
took the cores from each other (``perf/PROFILE.md`` §7).

Every child runs with the Python that runs this script: run it with a default install's Python
(``pip install brainalign``, no extras) as well as the test environment's. With dask installed
(the ``[dask]`` and ``[test]`` extras), xarray imports ``dask.array`` on its first ``DataArray``
and ``distributed`` in ``to_netcdf``: about +0.5–0.8 s on the hIT row that a default install does
not pay (``perf/PROFILE.md`` §6).

``--small`` runs every row in this process at toy sizes, one round, no before column (CI checks
that the script runs and that the results agree; its times mean nothing). Rows that need the real
data are skipped, with the reason printed, when the data directory is missing.

Earlier measurements (2026-11-30 morning, load 9–14; ``perf/PROFILE.md`` §4) of the ``hit`` row
had "before" and "after" equal: ``python -c`` put the working directory (this repository) first
on sys.path, so both variants ran this tree's code. ``run_process`` now starts every child in a
neutral directory; the numbers below are from the fixed script.

hit, 2026-11-30 afternoon, before = 3217337, after = main (streamed scoring), 92 stimuli, one torch
thread; the score run records the 92 stimuli in one batch, so it is compared with a bare pass in
batches of 64 and with one in a single batch (``bare1``):

    load 0.6–1.9, 2 rounds    bare 7.8 s 1.15 GB | one batch 8.2 s 1.31 GB
                              before 18.8 s 2.42x 3.00 GB 2.62x | after 14.4 s 1.86x 1.86 GB 1.62x
                              (vs one batch: after 1.77x time, 1.41x memory); tables identical
    load 2–3 (two other jobs), 3 rounds
                              bare 15.5 s 1.15 GB | one batch 15.3 s 1.31 GB
                              before 29.1 s 1.87x 3.01 GB | after 24.5 s 1.58x 1.96 GB 1.71x
                              (vs one batch: 1.60x time, 1.49x memory); tables identical

    load 1.1–1.7, 3 rounds (final code: one recording at a time, cancellable)
                              bare 9.8 s 1.15 GB | one batch 10.9 s 1.31 GB
                              before 22.9 s 2.34x 2.97 GB 2.59x | after 15.6 s 1.59x 1.94 GB 1.69x
                              (vs one batch: 1.42x time, 1.48x memory); tables identical

    evening (copies off the pass, heap trimmed, hand-over limit 1.25x, bootstrap scored in
    blocks; ``bare_img``: the same 92 images read from the .mat and resized, as a user's script),
    3 rounds each, load 1.0–1.2:
                              run 1: bare 7.6 s 1.15 GB | after 11.7 s 1.54x 1.64 GB 1.43x
                                     (one batch 1.53x, 1.25x)
                              run 2: bare 10.2 s 1.15 GB | one batch 11.0 s 1.31 GB |
                                     the images 9.8 s 1.25 GB | before 24.4 s 2.39x 2.97 GB 2.59x |
                                     after 15.3 s 1.50x 1.68 GB 1.47x (one batch 1.39x, 1.28x;
                                     the images 1.55x, 1.34x); tables identical

2026-12-01 afternoon (stop 23), another VM of this kind (AMD EPYC, 2 cores), OMP_NUM_THREADS=2;
perf/PROFILE.md §10:
    hit      default install, 5 rounds, before = 4345a6f (stop 22; nothing changed on this path),
             load 1.2-1.9: bare 5.9 s 1.39 GB, CPU 8.6 s | before 8.5 s 1.43x | after 8.3 s 1.40x
             (1.30 1.41 1.40 1.41 1.47), CPU 11.9 s, 2.04 GB 1.47x | after_cold 8.7 s 1.46x
             (1.41 1.39 1.45 1.45 1.61); tables identical
    cowley   all 3,040 images, 2 rounds, after only: bare 103.2 s 2.94 GB | after 127.5 s 1.24x
             (1.26 1.21), 2.01 GB; extract 98.2 s, metric 24.5 s
    extract  512 images, 3 rounds: bare 14.7 s | brainalign.extract 1.36x (1.79 1.33 1.39), user CPU
             1.08x, system 15.1 s vs 4.9 s | the same code in the next slot 1.24x, user 1.06x |
             create_feature_extractor 2.01x | clone hooks 1.84x
    ridge    float64 4.11x sklearn (4.49 4.11 3.84), float32 5.00x; an earlier run 3.87x
    kridge   1.87x himalaya (2.10 1.87 1.75)
    rsa      numpy input 2.64x, torch input 2.37x plain numpy; rsatoolbox (n = 1,500) 24.3x
    import   brainalign.metrics.rsa 0.09 s vs torch 1.41 s; loads none of torch, sklearn, pandas

2026-12-01 evening (stop 24), the same VM, OMP_NUM_THREADS=2; perf/PROFILE.md §11. The extract row
has a ``floor`` variant: the bare pass, then as many fresh bytes as extract returns, one array per
layer, held together and written once (what any extractor that returns the activations in new
memory pays at least). Two runs of 3 rounds, load 0.5-2.1:
    extract  run 1 (floor's arrays freed one by one, so not held: a too-low floor): bare 14.0 s |
             floor 1.23x | extract 1.47x | fx 1.91x | clone hooks 1.94x
             run 2 (floor's arrays held): bare 16.3 s | floor 1.72x (2.39 1.70 1.71) | extract
             1.39x (1.93 1.33 1.37) = 0.80x the floor (0.81 0.78 0.80) | fx 0.98x the floor |
             clone hooks 1.01x the floor; user CPU extract 1.14x, system 16.6 s vs 8.6 s

2026-12-01 morning, OMP_NUM_THREADS=2, before = f2b7071 (stop 21), after = the ceiling store and
the closed-form Spearman bootstrap (perf/PROFILE.md §9); warm-up score first (fills this run's
store); 5 rounds, default install, load 1.6-1.8:
    hit      bare 7.8 s 1.15 GB, CPU 11.3 s | before 12.5 s 1.60x (1.72 1.42 1.42 1.78 1.53), CPU 18.2 s
             | after 12.1 s 1.55x (1.71 1.54 1.38 1.53 1.46), CPU 16.8 s, 1.71 GB 1.49x
             | after_cold (store off) 12.7 s 1.62x (1.90 1.47 1.32 1.62 1.83), CPU 18.4 s;
             tables: after = after_cold exactly, before vs after 2.2e-16

2026-12-01, OMP_NUM_THREADS=2, before = a05e081 (stop 20), after = the console script's fast exit
(``cli.run``: atexit handlers, flushed streams, ``os._exit``; perf/PROFILE.md §8); 3 rounds:
    hit, default install, load 1.1-1.4: bare 8.5 s 1.15 GB | before 13.1 s 1.54x (1.21 2.07 1.60) |
             after 12.4 s 1.47x (1.34 2.01 1.45) 1.72 GB 1.50x; vs one batch 1.59x -> 1.52x
    hit, [test] env, load 1.3-1.9: bare 6.6 s | before 12.0 s 1.83x (1.33 1.97 1.74) |
             after 11.2 s 1.70x (1.19 1.70 1.82) 1.73 GB 1.51x; vs one batch 1.57x -> 1.46x;
             tables identical
    ridge    float64 4.89x sklearn (5.69 4.89 4.72), float32 6.11x (same code as before)
    rsa      --child rsa --rsatoolbox-n 5000: numpy input 2.87-3.29x, torch input 2.66-3.39x plain
             numpy; rsatoolbox at n = 5,000: 96.6 s vs 2.26 s = 42.8x; values equal to 1.3e-12

late night, OMP_NUM_THREADS=2 (torch's default here), before = 2ec586f (stop 19), after = numpy's
BLAS on one thread in CPU runs + ridge's Gram by torch products; 3 rounds, load 0.6–2.1:
    hit      bare 5.9 s 1.15 GB | before 11.5 s 1.93x 1.73 GB 1.51x | after 11.0 s 1.86x 1.69 GB 1.47x
             (rounds 1.74 1.83 2.22; vs one batch 1.58x; vs the images 1.80x); tables identical
    cowley, 300 images per session: bare 32.0 s 1.70 GB | before 43.9 s 1.37x (metric 6.6 s) |
             after 38.3 s 1.20x (rounds 1.06 1.22 1.38; metric 2.8 s), 1.60 GB; max |diff| 2.5e-14
    ridge    float64 3.54x -> 4.70x sklearn (rounds 4.70 4.69 5.11); float32 4.15x -> 5.85x
             (at OMP_NUM_THREADS=1 the same run: 5.08x -> 5.10x, float32 5.65x -> 5.52x: no cost)
    cowley, all 3,040 images, 1 round: bare 89.6 s 2.90 GB | before 136.1 s 1.52x (metric 27.7 s) |
             after 120.7 s 1.35x (metric 18.8 s), 1.93 GB 0.67x; max |diff| 1.3e-13
    kridge   2.57x -> 2.35x himalaya (same code path; rounds 2.18–2.78)
    rsa      numpy input 2.72x -> 3.44x, torch input 2.82x -> 3.20x plain numpy; rsatoolbox (n=1,500) 20–23x
    extract  512 images (code unchanged): brainalign 1.39–1.50x the bare pass (rounds 1.16–1.85),
             create_feature_extractor 1.65x, clone hooks 1.75x: with torch on every core the copies
             cannot run beside it; fresh memory for 5.3 GB of layers alone costs ~3 s (2.3 of it
             first-touch faults) against a 12 s forward

night (matplotlib imported during the recording; before = 3217337), 3 rounds each, load 0.4–1.2,
the machine slower than in the evening (bare 8.7–11.0 s):
    default install (no dask)  bare 8.7 s 1.15 GB | before 22.2 s 2.56x 2.99 GB 2.61x |
                               after 13.2 s 1.52x (rounds 1.47 1.50 1.64) 1.63 GB 1.43x
                               (one batch 1.40x, 1.24x; the images 1.42x, 1.31x)
    [test] env (dask)          bare 11.0 s 1.15 GB | before 27.8 s 2.53x 2.98 GB 2.60x |
                               after 16.6 s 1.51x (rounds 1.69 1.38 1.51) 1.74 GB 1.52x
                               (one batch 1.39x, 1.33x; the images 1.51x, 1.41x); tables identical
    A/B against d007307 (default install, 3 rounds, load 0.7–1.2): 12.8 s 1.62x -> 11.5 s 1.45x.

ridge, night, 3 rounds, load 1.0: float64 4.99x sklearn (rounds 5.06 4.99 4.78), float32 5.55x.

cowley, evening, 3 rounds, load 1.0–1.9 (two helpers' tests in the last round), no before tree:
bare 171.1 s 2.89 GB; score 233.2 s = 1.36x, 2.11 GB (extract 192.8 s, metric 34.5 s).

extract, evening, 512 images, 3 rounds, load 0.3–1.1, before = fdefe2e (copies in the hook),
per-round ratio to the bare pass (27.3 s): after 1.09 / 0.99 / 0.90 (the copies run on the
core torch's one thread leaves idle), before 1.25 / 1.21 / 1.04, create_feature_extractor
1.46 / 1.39 / 1.21, clone hooks 1.43 / 1.62 / 1.27.

ridge, evening, 3 rounds, load 1.0–1.1: float64 5.35x sklearn RidgeCV (rounds 6.19 5.35 4.84),
float32 6.00x (6.80 6.00 5.42).

cowley, 2026-11-30 14:34–14:41, load 1.1, 1 round, all 3,040 stimuli, one torch thread: bare import
+ forward over the same number of 224 px images 183.9 s, 2.91 GB (it holds every input); ``score``
241.0 s = 1.31x, 2.18 GB (extract 194.6 s, metric 39.8 s; the issue's run: 287 s, metric 158 s).

extract, 2026-11-30 14:55–15:05, load 0.4–1.0 (quiet), 512 images, 3 rounds, per-round ratios to
the bare pass (31.8 s): after 1.53 / 1.07 / 1.11, before 1.58 / 1.15 / 1.00,
create_feature_extractor 1.71 / 1.08 / 1.08, clone hooks 1.50 / 1.28 / 1.16 (first round slow for
every variant).

extract (morning, load 9–14), 192 images, 3 rounds, median ratio to bare (33.5 s): after 1.28x
(rounds 1.15 1.04 1.28), before 2.50x, create_feature_extractor 2.40x, clone hooks 1.93x.

``--small``: 22 s of CPU (110–170 s wall at load 12; ≈ 25 s idle), all checks pass.

ridge row, 2026-11-30 13:41–14:06 (branch ridge3; before = 6415fb9 unpacked; 3 runs × 3 rounds,
load 0.4–3.8; details in ``perf/metrics_speed.py``): float64 vs sklearn ``RidgeCV`` before 3.20×,
4.01×, 3.65× → after 4.87×, 7.59×, 4.74× (median of the 9 rounds 3.65× → 5.02×); float32 5.0–5.8×
→ 5.3–6.4×; held-out r equal to before to 9e-16, α choices identical.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
AFTER = HERE.parent.parent


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def data_dir() -> str | None:
    d = os.environ.get("BRAINALIGN_DATA")
    return d if d and Path(d).is_dir() else None


def run_process(cmd: list[str], tree: Path, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` with ``tree`` first on PYTHONPATH; wall seconds, CPU seconds (user + system,
    every thread: less noisy than wall time on a shared VM), peak RSS (MiB) and its stdout (the
    last line parsed as JSON when it is)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore", **(env_extra or {})}
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        # A neutral working directory: ``python -c`` puts the cwd first on sys.path, which would
        # shadow the tree on PYTHONPATH (this repository's brainalign for every variant).
        p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{err.read()[-3000:]}")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        parsed = json.loads(last)
    except json.JSONDecodeError:
        parsed = None
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "json": parsed,
            "cpu_s": usage.ru_utime + usage.ru_stime}


TOY: list[str] = []  # ["--toy"] when the parent runs with --toy


def child_cmd(kind: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE), "--child", kind, *TOY, *args]


def max_abs_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    import numpy as np

    worst = 0.0
    for k in set(a) & set(b):  # columns both versions write
        x, y = np.asarray(a[k], float), np.asarray(b[k], float)
        both = np.isfinite(x) & np.isfinite(y)
        if x.shape != y.shape or not np.array_equal(np.isfinite(x), np.isfinite(y)):
            return float("inf")
        if both.any():
            worst = max(worst, float(np.max(np.abs(x[both] - y[both]))))
    return worst


# ----------------------------------------------------------------------------------------------
# children (each runs in its own process, or in this one for --small)
# ----------------------------------------------------------------------------------------------

def bare_forward(n: int, size: int = 224, batch: int = 64, images: bool = False) -> dict[str, Any]:
    """Import torch + torchvision, build resnet18 and run ``n`` images through it: the reference.

    ``images``: the hIT row's 92 images themselves, read from the dataset's .mat file (scipy) and
    resized to ``size`` and normalised with torchvision, as a user's own script would; otherwise
    random tensors of that size."""
    import torch
    import torchvision

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = torchvision.models.resnet18().eval()
    if images:
        import scipy.io
        from torchvision.transforms import functional as F

        mat = scipy.io.loadmat(Path(data_dir()) / "kriegeskorte2008_92img"
                               / "Kriegeskorte_Neuron2008_supplementalData.mat")
        imgs = [torch.from_numpy(s["image"]).permute(2, 0, 1) for s in mat["stimuli_92objs"][0][:n]]
        x = torch.stack([F.normalize(F.resize(im, [size, size], antialias=True).float() / 255,
                                     [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) for im in imgs])
    else:
        x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for b in x.split(batch):
            model(b)
    return {"n": n}


def table_values(table: Any) -> dict[str, list[float]]:
    cols = ["raw", "raw_ci_low", "raw_ci_high", "normalised", "normalised_ci_low", "normalised_ci_high",
            "ceiling_upper", "ceiling", "ci_low", "ci_high", "dev_score", "heldout_score"]
    t = table.sort_values([c for c in ("layer", "session") if c in table.columns])
    return {c: [float(v) for v in t[c]] for c in cols if c in t.columns}


def cowley_score(max_stimuli: int, layers: list[str] | None, n_bootstrap: int | None = None) -> dict[str, Any]:
    import torch

    import brainalign as ba

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = ba.load_model("torchvision:resnet18", weights="random", seed=0)
    opts: dict[str, Any] = {}
    if max_stimuli:
        opts["max_stimuli"] = max_stimuli
    if n_bootstrap:
        opts["n_bootstrap"] = n_bootstrap
    bench = ba.load_benchmark("cowley2023.V4-ridge", **opts)
    res = bench(model, layers, batch_size=64, device="cpu")
    timing = res.meta["timing_s"]["cowley2023.V4-ridge"]
    n = sum(len(s.stimuli) for s in bench.sessions)
    return {"n_stimuli": n, "timing": timing, "values": table_values(res.table)}


def cowley_n(max_stimuli: int) -> int:
    sizes = [1200, 1200, 640]
    return sum(min(s, max_stimuli) if max_stimuli else s for s in sizes)


def _main_extract(tree: Path):
    """``extract`` of another tree, loaded from its file (its imports resolve to this tree)."""
    spec = importlib.util.spec_from_file_location("_before_extract", tree / "brainalign/activations/extract.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod.extract


def extract_row(n: int, rounds: int, before: Path | None, size: int = 224) -> dict[str, Any]:
    """All methods in this process, interleaved; outputs checked equal to brainalign's."""
    import gc

    import numpy as np
    import torch
    from torch import nn
    from torchvision.models.feature_extraction import create_feature_extractor

    import brainalign as ba

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    m = ba.load_model("torchvision:resnet18", weights="random", seed=0)
    layers = m.layers_of_type(nn.Conv2d, nn.Linear)
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    module = m.module.eval()

    def bare(x: torch.Tensor) -> None:
        with torch.inference_mode():
            for b in x.split(64):
                module(b)

    def fx(x: torch.Tensor) -> dict[str, torch.Tensor]:
        ext = create_feature_extractor(module, return_nodes=layers)
        out: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
        with torch.inference_mode():
            for b in x.split(64):
                for k, v in ext(b).items():
                    out[k].append(v.flatten(1))
        return {k: torch.cat(v) for k, v in out.items()}

    def clone_hooks(x: torch.Tensor) -> dict[str, torch.Tensor]:
        mods = dict(module.named_modules())
        out: dict[str, list[torch.Tensor]] = {k: [] for k in layers}
        hs = [mods[k].register_forward_hook(lambda _m, _i, o, k=k: out[k].append(o.detach().clone()))
              for k in layers]
        try:
            with torch.inference_mode():
                for b in x.split(64):
                    module(b)
        finally:
            for h in hs:
                h.remove()
        return {k: torch.cat(v).flatten(1) for k, v in out.items()}

    def floor(x: torch.Tensor) -> None:
        # The least any extractor that returns the activations can cost: the bare pass, plus
        # provisioning (first write) of as many fresh bytes as extract returns, one array per layer.
        # All held at once, as extract's result holds them.
        bare(x)
        held = [np.empty((len(x), int(np.prod(m.layer_info[k].output_shape))), np.float32) for k in layers]
        for a in held:
            a.fill(0.0)

    methods = {"bare forward": bare, "floor: bare + fresh arrays": floor,
               "brainalign.extract (after)": lambda x: ba.extract(m, x, layers, batch_size=64, device="cpu")}
    if before is not None:
        before_extract = _main_extract(before)
        methods["brainalign.extract (before)"] = lambda x: before_extract(m, x, layers, batch_size=64,
                                                                           device="cpu")
    methods["create_feature_extractor"] = fx
    methods["clone hooks"] = clone_hooks

    def as_np(res: Any, k: str) -> np.ndarray:
        v = res[k]
        return v.numpy() if isinstance(v, torch.Tensor) else v.values

    # Warm-up (first-call costs: thread pools, allocator, tracing) and the check: every method
    # records the same numbers (two batches, so batch boundaries are exercised).
    check = x[:70] if size <= 64 else x[:66]
    ref = ba.extract(m, check, layers, batch_size=64, device="cpu")
    for name, fn in methods.items():
        res = fn(check)
        if res is None:
            continue
        for k in layers:
            if not np.array_equal(as_np(res, k), ref[k].values):
                raise AssertionError(f"{name}: layer {k} differs from brainalign.extract")
    times: dict[str, list[float]] = {k: [] for k in methods}
    # CPU seconds of the whole process (every thread) in user space and in the kernel: the kernel's
    # share is the provisioning of fresh memory (page faults), which the bare pass pays too for its
    # intermediates, and a method pays again for the arrays it returns.
    cpu: dict[str, list[tuple[float, float, int]]] = {k: [] for k in methods}
    order = list(methods)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            gc.collect()
            u0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            res = methods[name](x)
            times[name].append(time.perf_counter() - t0)
            u1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu[name].append((u1.ru_utime - u0.ru_utime, u1.ru_stime - u0.ru_stime, u1.ru_minflt - u0.ru_minflt))
            del res
        print(f"  extract round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
              + f"  ({load()})", file=sys.stderr, flush=True)
    gb = sum(int(np.prod(m.layer_info[k].output_shape)) for k in layers) * n * 4 / 1e9
    return {"n": n, "layers": len(layers), "gb": gb, "times": times, "cpu": cpu}


def _encoding_helpers():
    """The synthetic encoding problem and the column-wise Pearson r of ``perf/metrics_encoding.py``
    (one definition for both scripts)."""
    spec = importlib.util.spec_from_file_location("_metrics_encoding", HERE.parent / "metrics_encoding.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._data, mod._r


def interleave(fns: dict[str, Any], rounds: int, label: str) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Warm up each function once, then ``rounds`` interleaved timed calls (order alternating)."""
    values = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fn in fns.items():
            values[name] = fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        order = list(fns)
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                t0 = time.perf_counter()
                fns[name]()
                times[name].append(time.perf_counter() - t0)
            print(f"  {label} round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + f"  ({load()})", file=sys.stderr, flush=True)
    return times, values


def ridge_row(small: bool, rounds: int) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import RidgeCV as SkRidgeCV
    from sklearn.model_selection import ShuffleSplit

    from brainalign.metrics import encoding_score

    n, p, t = (320, 120, 21) if small else (2560, 1000, 168)
    _ridge_data, _r = _encoding_helpers()
    X, Y = _ridge_data(n, p, t)
    alphas = np.logspace(-2, 7, 10)
    splits = list(ShuffleSplit(10, test_size=0.1, random_state=0).split(X))

    def sk():
        rs = [_r(SkRidgeCV(alphas=alphas, alpha_per_target=True).fit(X[tr], Y[tr]).predict(X[te]), Y[te])
              for tr, te in splits]
        return np.mean(rs, 0)

    fns = {"brainalign encoding_score ridge float64":
           lambda: np.asarray(encoding_score(X, Y, alphas=alphas, cv=splits).r),
           "brainalign encoding_score ridge float32":
           lambda: np.asarray(encoding_score(X, Y, alphas=alphas, cv=splits, dtype="float32").r),
           "sklearn RidgeCV(alpha_per_target)": sk}
    times, vals = interleave(fns, rounds, "ridge")
    ref = vals["sklearn RidgeCV(alpha_per_target)"]
    return {"times": times, "values": {k: v.tolist() for k, v in vals.items()},
            "max_abs_r_diff_vs_sklearn": {k: float(np.max(np.abs(v - ref))) for k, v in vals.items()}}


def kridge_row(small: bool, rounds: int) -> dict[str, Any]:
    import numpy as np
    from himalaya.kernel_ridge import KernelRidgeCV
    from sklearn.model_selection import KFold

    from brainalign.metrics import RidgeCV

    n, p, t = (200, 2000, 100) if small else (1000, 10000, 500)
    _ridge_data, _r = _encoding_helpers()
    X, Y = _ridge_data(n + 200, p, t, seed=1)
    X, Y, Xte, Yte = X[:n], Y[:n], X[n:], Y[n:]
    alphas = np.logspace(-1, 8, 10)
    fns = {"brainalign RidgeCV(cv=5) float64":
           lambda: _r(np.asarray(RidgeCV(alphas, cv=5).fit(X, Y).predict(Xte)), Yte),
           "himalaya KernelRidgeCV(cv=5)":
           lambda: _r(np.asarray(KernelRidgeCV(kernel="linear", alphas=alphas, cv=KFold(5), fit_intercept=True)
                                 .fit(X, Y).predict(Xte)), Yte)}
    times, vals = interleave(fns, rounds, "kridge")
    ref = vals["himalaya KernelRidgeCV(cv=5)"]
    return {"times": times, "values": {k: v.tolist() for k, v in vals.items()},
            "max_abs_r_diff_vs_himalaya": {k: float(np.max(np.abs(v - ref))) for k, v in vals.items()}}


def rsa_row(small: bool, rounds: int, rsatoolbox_n: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from scipy.stats import rankdata

    from brainalign.metrics import compare_rdms, rdm

    n, d = (300, 256) if small else (5000, 4096)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, d))
    labels = rng.integers(0, 20, n)
    X = centres[labels] + 2.0 * rng.standard_normal((n, d))
    Yb = centres[labels][:, :256] + 3.0 * rng.standard_normal((n, 256))
    target = 1.0 - np.corrcoef(Yb)[np.triu_indices(n, k=1)]
    Xt = torch.from_numpy(X)

    def plain():
        D = 1.0 - np.corrcoef(X)
        v = D[np.triu_indices(n, k=1)]
        return float(np.corrcoef(rankdata(v), rankdata(target))[0, 1])

    fns = {"brainalign numpy input": lambda: float(compare_rdms(rdm(X), target, "spearman")),
           "brainalign torch input": lambda: float(compare_rdms(rdm(Xt), target, "spearman")),
           "plain numpy": plain}
    times, vals = interleave(fns, rounds, "rsa")
    out: dict[str, Any] = {"times": times, "values": vals}
    try:
        import rsatoolbox
    except ImportError:
        out["rsatoolbox"] = "not installed"
        return out
    m = min(rsatoolbox_n, n)
    Xs, ts = X[:m], 1.0 - np.corrcoef(Yb[:m])[np.triu_indices(m, k=1)]

    def rsatb():
        model = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(Xs), method="correlation")
        return float(rsatoolbox.rdm.compare(model, rsatoolbox.rdm.RDMs(ts[None]), method="spearman")[0, 0])

    t2, v2 = interleave({"brainalign numpy input": lambda: float(compare_rdms(rdm(Xs), ts, "spearman")),
                         "rsatoolbox": rsatb}, 1, f"rsa n={m}")
    out["rsatoolbox"] = {"n": m, "times": t2, "values": v2}
    return out


def import_row(tree: Path) -> dict[str, Any]:
    """Seconds to import brainalign.metrics.rsa and torch, each in a fresh process."""
    code = ("import time, sys, json; t=time.perf_counter(); import {mod}; "
            "print(json.dumps({{'s': time.perf_counter()-t, 'loaded': [m for m in ('torch', 'sklearn', "
            "'pandas') if m in sys.modules]}}))")
    return {mod: run_process([sys.executable, "-c", code.format(mod=mod)], tree)["json"]
            for mod in ("brainalign.metrics.rsa", "torch")}


CHILDREN = {"bare", "cowley", "extract", "ridge", "kridge", "rsa", "warmup"}


def child(args: argparse.Namespace) -> None:
    kind = args.child
    if kind == "bare":
        res = bare_forward(args.n, batch=args.batch, images=args.images)
    elif kind == "cowley":
        res = cowley_score(args.cowley_max_stimuli, ["maxpool"] if args.toy else None, 50 if args.toy else None)
    elif kind == "extract":
        res = extract_row(args.extract_n, args.rounds, Path(args.before) if args.before else None)
    elif kind == "ridge":
        res = ridge_row(args.toy, args.rounds)
    elif kind == "kridge":
        res = kridge_row(args.toy, args.rounds)
    elif kind == "rsa":
        res = rsa_row(args.toy, args.rounds, args.rsatoolbox_n)
    elif kind == "warmup":  # read the libraries and data files once, so round 0 is not a cold start
        import matplotlib.pyplot  # noqa: F401
        import pandas  # noqa: F401
        import sklearn  # noqa: F401
        import torchvision  # noqa: F401

        import brainalign as ba

        if data_dir():
            for b in ("kriegeskorte2008.hIT-rsa", "cowley2023.V4-ridge"):
                bench = ba.load_benchmark(b)
                _ = bench.sessions if hasattr(bench, "sessions") else bench.stimuli
        res = {}
    else:
        raise SystemExit(f"unknown child {kind}")
    print(json.dumps(res, default=float))


# ----------------------------------------------------------------------------------------------
# the side-by-side run
# ----------------------------------------------------------------------------------------------

def hit_cli(tree: Path, out: Path, layers: list[str], env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    # What the ``brainalign`` console script runs (``run``, with its fast exit, since stop 21;
    # ``main`` in trees from before).
    entry = "import brainalign.cli as cli; getattr(cli, 'run', cli.main)()"
    cmd = [sys.executable, "-c", entry, "score", "--model",
           "torchvision:resnet18", "--benchmark", "kriegeskorte2008.hIT-rsa", "--device", "cpu",
           "--out", str(out)]
    for layer in layers:
        cmd += ["--layers", layer]
    r = run_process(cmd, tree, env_extra)
    import pandas as pd

    r["values"] = table_values(pd.read_csv(out / "scores.csv"))
    return r


def med(xs: list[float]) -> float:
    s = sorted(xs)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def full(args: argparse.Namespace) -> None:
    before = Path(args.before) if args.before else None
    if args.toy:
        TOY.append("--toy")
    trees = {"after": AFTER, **({"before": before} if before else {})}
    print(f"issue 15 side by side; after = {AFTER}, before = {before}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS')}; {load()}", flush=True)
    have_data = data_dir() is not None
    rows = [r for r in args.rows if have_data or r not in ("hit", "cowley")]
    for r in set(args.rows) - set(rows):
        print(f"row {r}: skipped, no data directory (BRAINALIGN_DATA)")
    for tree in trees.values():
        run_process(child_cmd("warmup"), tree)
    rec: dict[str, dict[str, list[Any]]] = {}

    def add(row: str, variant: str, value: Any) -> None:
        rec.setdefault(row, {}).setdefault(variant, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        # The ceiling store (since stop 22) is this run's own: "after" reads what the warm-up run
        # stored, as a user's second run does; "after_cold" has none (a user's first run).
        os.environ["BRAINALIGN_CEILING_CACHE"] = str(Path(tmp) / "ceilings")
        if "hit" in rows:
            hit_cli(AFTER, Path(tmp) / "hit_warmup", args.hit_layers)
        for rnd in range(args.rounds):
            print(f"round {rnd} ({load()})", flush=True)
            order = list(trees) if rnd % 2 == 0 else list(trees)[::-1]
            if "hit" in rows:
                add("hit", "bare", run_process(child_cmd("bare", "--n", "92"), AFTER))
                # The score run records the 92 stimuli in one batch (see activations.budget.one_batch):
                # the like-for-like reference is a bare pass in one batch too; both are reported.
                add("hit", "bare1", run_process(child_cmd("bare", "--n", "92", "--batch", "92"), AFTER))
                # The reference: "a bare import + forward pass over the same 92 images".
                add("hit", "bare_img", run_process(child_cmd("bare", "--n", "92", "--images"), AFTER))
                for v in order:
                    add("hit", v, hit_cli(trees[v], Path(tmp) / f"hit_{v}_{rnd}", args.hit_layers))
                add("hit", "after_cold", hit_cli(AFTER, Path(tmp) / f"hit_cold_{rnd}", args.hit_layers,
                                                 {"BRAINALIGN_CEILING_CACHE": "0"}))
            if "cowley" in rows:
                n = cowley_n(args.cowley_max_stimuli)
                add("cowley", "bare", run_process(child_cmd("bare", "--n", str(n)), AFTER))
                for v in order:
                    add("cowley", v, run_process(child_cmd("cowley", "--cowley-max-stimuli",
                                                           str(args.cowley_max_stimuli)), trees[v]))
            for row in ("ridge", "kridge", "rsa"):
                if row in rows:
                    for v in order:
                        add(row, v, run_process(child_cmd(row, "--rounds", "1", "--rsatoolbox-n",
                                                          str(args.rsatoolbox_n)), trees[v]))
            if "import" in rows:
                for v in order:
                    add("import", v, import_row(trees[v]))
        if "extract" in rows:  # one process: every method interleaved, `before` loaded from its file
            add("extract", "all", run_process(child_cmd("extract", "--rounds", str(args.rounds),
                                                        "--extract-n", str(args.extract_n),
                                                        *(["--before", str(before)] if before else [])),
                                              AFTER))
    report(rec, trees)


def report(rec: dict[str, dict[str, list[Any]]], trees: dict[str, Path]) -> None:
    print(f"\n==== results (median over rounds; {load()}) ====")
    variants = [v for v in ("before", "after") if v in trees]
    if "hit" in rec or "cowley" in rec:
        print("\nscore vs bare import + forward      " + "".join(f"{v:>28s}" for v in variants)
              + ("   after_cold (no stored ceilings)" if "after_cold" in rec.get("hit", {}) else ""))
        for row in ("hit", "cowley"):
            if row not in rec:
                continue
            r = rec[row]
            row_variants = variants + [v for v in ("after_cold",) if v in r]
            for ref, label in (("bare", f"{row:8s} bare"), ("bare1", "  one batch"),
                               ("bare_img", "  the images")):
                if ref not in r:
                    continue
                bw = med([x["wall_s"] for x in r[ref]])
                bm = med([x["peak_rss_mib"] for x in r[ref]])
                cells = []
                for v in row_variants:
                    w = med([x["wall_s"] for x in r[v]])
                    m = med([x["peak_rss_mib"] for x in r[v]])
                    cells.append(f"{w:6.1f} s {w / bw:4.2f}x {m / 1024:4.2f} GB {m / bm:4.2f}x")
                print(f"{label} {bw:6.1f} s {bm / 1024:4.2f} GB  " + "".join(f"{c:>28s}" for c in cells))
                for v in row_variants:  # each round against that round's reference
                    per = [x["wall_s"] / y["wall_s"] for x, y in zip(r[v], r[ref], strict=True)]
                    print(f"             {v} per round: " + " ".join(f"{p:.2f}x" for p in per))
                if ref == "bare" and all("cpu_s" in x for v in row_variants for x in r[v]):
                    print(f"             CPU s (user + system): bare {med([x['cpu_s'] for x in r[ref]]):.1f}; "
                          + "; ".join(f"{v} {med([x['cpu_s'] for x in r[v]]):.1f}" for v in row_variants))
            if row == "cowley":
                for v in variants:
                    t = [x["json"]["timing"] for x in r[v]]
                    print(f"         {v}: extract {med([x['extract'] for x in t]):.1f} s, "
                          f"metric {med([x['metric'] for x in t]):.1f} s")
            if len(variants) == 2:
                a = r["after"][0]["values"] if row == "hit" else r["after"][0]["json"]["values"]
                b = r["before"][0]["values"] if row == "hit" else r["before"][0]["json"]["values"]
                print(f"         results before vs after: max |difference| {max_abs_diff(a, b):.3g}")
            if "after_cold" in r:
                print("         results after vs after_cold: max |difference| "
                      f"{max_abs_diff(r['after'][0]['values'], r['after_cold'][0]['values']):.3g}")
    if "extract" in rec:
        e = rec["extract"]["all"][0]["json"]
        t = {k: med(v) for k, v in e["times"].items()}
        base = t["bare forward"]
        print(f"\nextract: {e['layers']} layers of resnet18, {e['n']} images ({e['gb']:.1f} GB), "
              f"median of {len(e['times']['bare forward'])} rounds; per-round ratios to that round's bare pass")
        for k, v in t.items():
            per = [x / y for x, y in zip(e["times"][k], e["times"]["bare forward"], strict=True)]
            print(f"  {k:32s} {v:7.2f} s  {v / base:5.2f}x  (rounds: {' '.join(f'{p:.2f}' for p in per)})")
        if "floor: bare + fresh arrays" in t:
            fl = e["times"]["floor: bare + fresh arrays"]
            print("  per-round ratios to that round's floor (bare pass + fresh arrays of the returned size):")
            for k in t:
                if k.startswith(("brainalign", "create", "clone")):
                    per = [x / y for x, y in zip(e["times"][k], fl, strict=True)]
                    print(f"  {k:32s} {med(per):5.2f}x  (rounds: {' '.join(f'{p:.2f}' for p in per)})")
        if "cpu" in e:
            print("  CPU seconds, median (user / system / minor page faults):")
            ub = med([c[0] for c in e["cpu"]["bare forward"]])
            for k, c in e["cpu"].items():
                u, sy, f = (med([x[i] for x in c]) for i in range(3))
                print(f"  {k:32s} user {u:6.2f} s ({u / ub:4.2f}x)  system {sy:6.2f} s  faults {f / 1e6:.2f} M")
    for row, ref in (("ridge", "sklearn RidgeCV(alpha_per_target)"), ("kridge", "himalaya KernelRidgeCV(cv=5)"),
                     ("rsa", "plain numpy")):
        if row not in rec:
            continue
        print(f"\n{row}: speed-up over {ref} (ref time / time), median over rounds")
        for v in variants:
            runs = [x["json"] for x in rec[row][v]]
            names = list(runs[0]["times"])
            cells = []
            for k in names:
                if k == ref:
                    continue
                per = [x["times"][ref][0] / x["times"][k][0] for x in runs]
                tk = med([x["times"][k][0] for x in runs])
                cells.append(f"{k} {med(per):.2f}x ({tk:.2f} s; rounds {' '.join(f'{p:.2f}' for p in per)})")
            print(f"  {v:6s} " + "; ".join(cells) + f"  [{ref} {med([x['times'][ref][0] for x in runs]):.2f} s]")
            if "rsatoolbox" in runs[0] and isinstance(runs[0]["rsatoolbox"], dict):
                rt = runs[0]["rsatoolbox"]
                print(f"         vs rsatoolbox at n={rt['n']}: "
                      f"{rt['times']['rsatoolbox'][0] / rt['times']['brainalign numpy input'][0]:.1f}x")
        if len(variants) == 2:
            a, b = rec[row]["after"][0]["json"]["values"], rec[row]["before"][0]["json"]["values"]
            diffs = {k: max_abs_diff({k: _aslist(a[k])}, {k: _aslist(b[k])}) for k in a if k in b}
            print("         before vs after: " + ", ".join(f"{k}: {d:.2g}" for k, d in diffs.items()))
    if "import" in rec:
        print("\nimport brainalign.metrics.rsa vs import torch (fresh process)")
        for v in variants:
            runs = rec["import"][v]
            s = med([x["brainalign.metrics.rsa"]["s"] for x in runs])
            tt = med([x["torch"]["s"] for x in runs])
            print(f"  {v:6s} {s:.2f} s vs torch {tt:.2f} s; loads {runs[0]['brainalign.metrics.rsa']['loaded']}")


def _aslist(v: Any) -> list[float]:
    return v if isinstance(v, list) else [v]


def small(args: argparse.Namespace) -> dict[str, Any]:
    """Every row at toy size, in this process, this tree only: checks, not timings."""
    import numpy as np

    t_start = time.perf_counter()
    print(f"issue 15, --small (toy sizes, times mean nothing); {load()}")
    out: dict[str, Any] = {}
    r = out["ridge"] = ridge_row(True, 1)
    print("ridge: max |r - sklearn r|", r["max_abs_r_diff_vs_sklearn"])
    assert r["max_abs_r_diff_vs_sklearn"]["brainalign encoding_score ridge float64"] < 1e-6
    k = out["kridge"] = kridge_row(True, 1)
    print("kridge: max |r - himalaya r|", k["max_abs_r_diff_vs_himalaya"])
    assert k["max_abs_r_diff_vs_himalaya"]["brainalign RidgeCV(cv=5) float64"] < 1e-6
    s = out["rsa"] = rsa_row(True, 1, 100)
    v = s["values"]
    print("rsa: rho", v)
    assert abs(v["brainalign numpy input"] - v["plain numpy"]) < 1e-9
    assert abs(v["brainalign torch input"] - v["plain numpy"]) < 1e-9
    e = out["extract"] = extract_row(16, 1, None, size=64)
    print("extract (16 images, 64 px): every method recorded the same values;",
          {k: round(x[0], 3) for k, x in e["times"].items()})
    imp = out["import"] = import_row(AFTER)
    print(f"import brainalign.metrics.rsa: {imp['brainalign.metrics.rsa']}")
    if data_dir():
        import brainalign as ba

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ba.load_model("torchvision:resnet18", weights="random", seed=0)
            # maxpool only: the pass stops after the stem, so the row stays cheap
            h = out["hit"] = table_values(ba.score(m, "kriegeskorte2008.hIT-rsa", layers=["maxpool"],
                                                   device="cpu", n_bootstrap=50).table)
            print(f"hit (layer maxpool): raw {np.round(h['raw'], 4).tolist()}")
            c = out["cowley"] = cowley_score(12, ["maxpool"], n_bootstrap=50)
            raw = np.round(c["values"]["raw"], 4).tolist()
            print(f"cowley (12 stimuli per session, layer maxpool): raw {raw}")
    else:
        print("cowley, hit: skipped, no data directory (BRAINALIGN_DATA)")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return out


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="every row at toy size, this tree only (CI)")
    ap.add_argument("--before", default="/work/main", help="tree measured as 'before' ('' for none)")
    ap.add_argument("--rows", nargs="*", default=["hit", "cowley", "extract", "ridge", "kridge", "rsa", "import"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cowley-max-stimuli", type=int, default=0, help="per session; 0 = all")
    ap.add_argument("--hit-layers", nargs="*", default=[], help="default: every layer")
    ap.add_argument("--extract-n", type=int, default=512)
    ap.add_argument("--rsatoolbox-n", type=int, default=1500)
    ap.add_argument("--n", type=int, default=92, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--images", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--toy", action="store_true", help="full mode's machinery at --small's sizes (a smoke test)")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
    elif args.small:
        return small(args)
    else:
        if args.before and not Path(args.before, "brainalign").is_dir():
            raise SystemExit(f"--before {args.before}: no brainalign package there")
        full(args)
    return None


if __name__ == "__main__":
    main()
