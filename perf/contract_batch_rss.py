"""Peak RSS of batch scoring a regression benchmark (issue 11 measure) beside a bare forward pass.

``python perf/contract_batch_rss.py [MAX_STIMULI_PER_SESSION] [bare|batch …]`` (default 200; 0 = all
3,040; both sides by default).

Two child processes, each measured by its own ``ru_maxrss``:

1. ``run_batch`` (what ``brainalign batch`` runs) with ResNet-18, random weights (seed 0), on
   ``cowley2023.V4-ridge`` at ``memory_budget="2GB"``, every default layer scored (the union of
   the 3 sessions' placed stimuli streamed once; SpatialPool to 4,096 features; ridge, 5 folds,
   1,000 bootstrap samples per fold);
2. a bare forward pass of the same model over the same placed stimuli (``bench.recording``),
   same batch size, nothing kept.

Results are written to ``perf/contract_batch_rss.md`` by hand from the printed JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

CHILD = r'''
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(int(sys.argv[3]))
mode, n = sys.argv[1], int(sys.argv[2])
opts = {"max_stimuli": n} if n else {}
t0 = time.perf_counter()
if mode == "batch":
    import tempfile
    from brainalign.runner.batch import ModelEntry, run_batch
    class Q:
        def start(self, *a): ...
        def pair_started(self, *a): ...
        def layer_done(self, *a): ...
        def pair_done(self, *a): ...
        def note(self, *a): ...
        def close(self): return ""
    out = tempfile.mkdtemp()
    rep = run_batch([ModelEntry(id="torchvision:resnet18", weights="random", seed=0)], ["cowley2023.V4-ridge"],
                    out, memory_budget="2GB", benchmark_options=opts, progress=Q())
    assert rep.ok, rep.failures.to_dict()
    t = rep.table
    info = {"rows": len(t), "layers": int(t["layer"].nunique()),
            "n_stimuli": int(t.loc[t.session == "all", "n_stimuli"].iloc[0]),
            "reduction": t["reduction"].iloc[0], "best": t.loc[t.selected, ["layer", "raw"]].to_dict("records")}
else:
    from brainalign.benchmarks import load_benchmark
    from brainalign.models import load_model
    bench = load_benchmark("cowley2023.V4-ridge", **opts)
    model = load_model("torchvision:resnet18", weights="random", seed=0)
    stim, _ = bench.recording(model)
    with torch.inference_mode():
        for s in range(0, len(stim), 64):
            x = torch.stack([model.preprocess(stim.image(i)) for i in range(s, min(s + 64, len(stim)))])
            model.module(x)
    info = {"n_stimuli": len(stim)}
info["seconds"] = time.perf_counter() - t0
info["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(json.dumps(info))
'''


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    threads = os.environ.get("OMP_NUM_THREADS", "2")
    print(json.dumps({"load_average": os.getloadavg(), "max_stimuli_per_session": n, "threads": threads}))
    modes = sys.argv[2:] or ["bare", "batch"]  # e.g. `... 0 batch` to rerun one side
    for mode in modes:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", CHILD, mode, str(n), threads], capture_output=True, text=True,
                           check=False)
        print(mode, r.stdout.strip() or r.stderr[-2000:], f"wall {time.perf_counter() - t0:.0f}s",
              json.dumps({"load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
