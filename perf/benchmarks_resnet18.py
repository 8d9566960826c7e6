"""Wall time (extraction vs. metric) and peak memory of every real benchmark for one random resnet18.

Each benchmark runs in its own child process, so its peak resident memory (ru_maxrss) is its own.
The extraction / metric split comes from ``result.meta["timing_s"]``, measured inside the
benchmark. Timings depend on the machine's load: report them with the load average printed here.

    PYTHONPATH=. python perf/benchmarks_resnet18.py --data-dir ../shared/datasets \
        [--layers layer1 layer2 layer3 layer4] [--max-stimuli 300] [--n-bootstrap 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BENCHMARKS = ["kriegeskorte2008.hIT-rsa", "kriegeskorte2008.mIT-rsa", "kriegeskorte2008.behavior-rsa",
              "antolik2016.V1-ridge", "cowley2023.V4-ridge"]


def child(args: argparse.Namespace) -> None:
    import resource
    import warnings

    import torch

    import brainalign as ba

    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = ba.load_model("torchvision:resnet18", weights="random", seed=0)
    opts = {"n_bootstrap": args.n_bootstrap}
    if args.max_stimuli:
        opts["max_stimuli"] = args.max_stimuli
    bench = ba.load_benchmark(args.benchmark, data_dir=args.data_dir, **opts)
    t1 = time.perf_counter()
    res = bench(model, args.layers or None, batch_size=args.batch_size, device="cpu")
    t2 = time.perf_counter()
    timing = res.meta["timing_s"][args.benchmark]
    print(json.dumps({"benchmark": args.benchmark, "load_s": t1 - t0, "total_s": t2 - t1,
                      "extract_s": timing["extract"], "metric_s": timing["metric"],
                      "n_layers": int(res.table["layer"].nunique()), "n_rows": len(res.table),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("BRAINALIGN_DATA"))
    p.add_argument("--layers", nargs="*", default=None, help="default: every candidate layer")
    p.add_argument("--max-stimuli", type=int, default=0, help="regression kinds: per-session cap (0: all)")
    p.add_argument("--n-bootstrap", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--benchmark", help=argparse.SUPPRESS)
    p.add_argument("--only", nargs="*", default=BENCHMARKS)
    args = p.parse_args()
    if args.benchmark:
        child(args)
        return
    print(f"# load average {os.getloadavg()}, {os.cpu_count()} CPUs, torch threads {args.threads}, "
          f"layers {args.layers or 'all candidates'}, max_stimuli {args.max_stimuli or 'all'}, "
          f"n_bootstrap {args.n_bootstrap}")
    print(f"{'benchmark':32s} {'extract s':>9s} {'metric s':>9s} {'total s':>8s} {'peak MiB':>9s} layers")
    for b in args.only:
        cmd = [sys.executable, __file__, "--benchmark", b, "--n-bootstrap", str(args.n_bootstrap),
               "--max-stimuli", str(args.max_stimuli), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        if args.layers:
            cmd += ["--layers", *args.layers]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
            print(f"{b:32s} FAILED: {why}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{b:32s} {r['extract_s']:9.1f} {r['metric_s']:9.1f} {r['total_s']:8.1f} {r['peak_rss_mib']:9.0f} "
              f"{r['n_layers']}")


if __name__ == "__main__":
    main()
