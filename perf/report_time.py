"""Report generation time for a 50-model × 5-benchmark results folder (synthetic scores).

Writes the folder (one scores.csv per model, as `brainalign score --out` would, 12 layers each,
one benchmark without a ceiling), then times, in one process and in rotation over R rounds:
reading the folder, each figure kind, and the whole `build_report` (PNG and SVG figures).
Reports the best time of each and the share of the report that each part takes.

    python perf/report_time.py [--models 50] [--benchmarks 5] [--layers 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from brainalign.plots.heatmap import plot_heatmap
from brainalign.plots.layers import plot_layers
from brainalign.plots.report import build_report, figure_data_uri
from brainalign.plots.synthetic import synthetic_table
from brainalign.plots.tables import read_results
from brainalign.results import ScoreResult


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--benchmarks", type=int, default=5)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ceilings = [b != 2 for b in range(args.benchmarks)]  # one benchmark without a ceiling
    table = synthetic_table(args.models, args.benchmarks, args.layers, ceiling=ceilings)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "results"
        for model, sub in table.groupby("model"):
            ScoreResult(sub.reset_index(drop=True), meta={"model": model}).save(root / model)
        res = read_results(root)
        bench0 = res.table[res.table["benchmark"] == res.table["benchmark"].iloc[0]]
        jobs = {
            "read folder": lambda: read_results(root),
            "heatmap (png)": lambda: figure_data_uri(plot_heatmap(res.table)),
            "1 layer plot, 10 models (png)": lambda: figure_data_uri(plot_layers(bench0, max_models=10)),
            "report, png figures": lambda: build_report(root, Path(tmp) / "r.html"),
            "report, svg figures": lambda: build_report(root, Path(tmp) / "r.svg.html", fmt="svg"),
        }
        best = {k: float("inf") for k in jobs}
        for _ in range(args.rounds):
            for name, job in jobs.items():
                t0 = time.perf_counter()
                job()
                best[name] = min(best[name], time.perf_counter() - t0)
        size = {f: (Path(tmp) / f).stat().st_size for f in ("r.html", "r.svg.html")}
    print(f"{args.models} models x {args.benchmarks} benchmarks x {args.layers} layers = {len(table)} rows, "
          f"{args.models} result files; best of {args.rounds} rounds")
    whole = best["report, png figures"]
    for name, t in best.items():
        print(f"  {name:32s} {t:7.2f} s   {t / whole:5.2f} x report(png)")
    print(f"  report size: png {size['r.html'] / 1e6:.2f} MB, svg {size['r.svg.html'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
