"""``brainalign demo``: score small models on a simulated V1 with known ground truth, offline."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from brainalign.commands.options import DEVICE, POSITIVE_INT


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write scores.csv, layers.png and rf_mosaic.png here; results already in the folder "
                   "are kept, the demo's own model × benchmark pairs are replaced.")
@click.option("--cells", type=POSITIVE_INT, default=64, show_default=True, help="Simulated V1 cells.")
@click.option("--stimuli", "n_stimuli", type=POSITIVE_INT, default=400, show_default=True,
              help="Photo patches shown.")
@click.option("--repeats", type=POSITIVE_INT, default=6, show_default=True, help="Poisson repeats per stimulus.")
@click.option("--noise-frames", type=POSITIVE_INT, default=4000, show_default=True,
              help="White-noise frames for the RF mosaic.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", type=DEVICE, default="cpu", show_default=True)
def demo_command(out: str | None, cells: int, n_stimuli: int, repeats: int, noise_frames: int, seed: int,
                 device: str) -> None:
    """Score a random CNN, a Gabor-initialised CNN and the simulator itself on a simulated V1.

    Everything is generated here (no download): a V1 population of simple and complex cells with
    parameters drawn from macaque distributions, responding with Poisson noise to patches of the
    photographs that ship with scikit-learn and scikit-image. The simulator should reach its
    ceiling; the CNNs should not. Prints the per-layer table; with --out also writes the
    layer-by-layer plot and the RF mosaic of the Gabor CNN's first layer.
    """
    import warnings

    import pandas as pd

    from brainalign.commands.options import check_output_dir
    from brainalign.insilico.benchmark import SimulatedV1Benchmark, make_simulated_v1_data
    from brainalign.insilico.demo_models import gabor_cnn, small_cnn
    from brainalign.insilico.gabor import fit_gabors
    from brainalign.insilico.rf import map_receptive_fields
    from brainalign.insilico.simulator import simulated_v1_model
    from brainalign.models import wrap
    from brainalign.results import ScoreResult

    if out:  # an --out that cannot be written is said now, not after the scoring (nothing created)
        check_output_dir(out)
    t0 = time.perf_counter()
    size, degrees = 96, 4.0
    data = make_simulated_v1_data(cells, n_stimuli, repeats, input_size=size, visual_degrees=degrees,
                                  seed=seed)
    bench = SimulatedV1Benchmark(data, seed=seed)
    click.echo(f"simulated V1: {cells} cells ({(data.params.table.kind == 'complex').sum()} complex), "
               f"{n_stimuli} photo patches x {repeats} repeats over {degrees:g} deg; median ceiling "
               f"{pd.Series(bench.ceiling).median():.3f}", err=True)
    gray = {"input_size": size, "in_channels": 1, "mean": (0.5,), "std": (0.5,), "visual_degrees": degrees}
    models = [
        (simulated_v1_model(params=data.params, input_size=size, visual_degrees=degrees, seed=seed),
         ["filters", "response"]),
        (wrap(small_cnn(seed), "random-cnn", weights=f"random(seed={seed})", **gray), ["1", "4", "7"]),
        (wrap(gabor_cnn(seed), "gabor-cnn", weights=f"gabor-init(seed={seed})", **gray), ["1", "4", "7"]),
    ]
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # α-grid-edge warnings are recorded in the result settings
        for model, layers in models:
            results.append(bench(model, layers, device=device))
    result = ScoreResult.concat(results)
    cols = ["model", "layer", "depth", "raw", "ceiling_upper", "normalised", "normalised_ci_low",
            "normalised_ci_high", "dev_score", "heldout_score", "selected"]
    with pd.option_context("display.max_rows", None, "display.width", 200):
        click.echo(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    # The per-layer columns are on all stimuli; the layer is chosen on development stimuli, so the
    # headline is the chosen layer's held-out score, worded as `brainalign score` words it.
    click.echo("dev_score / heldout_score: each layer's score on the development / held-out stimuli; "
               "selected: the layer chosen on development stimuli (highest dev_score)\n")
    from brainalign.commands.summary import format_summary

    click.echo(format_summary(result.table))
    if out:
        from brainalign.commands.score import earlier_results, save_results, with_earlier

        out_dir = Path(out)
        # Results already in the folder (other benchmarks, other models) are kept; only the
        # demo's own (model, benchmark) pairs are replaced.
        merged = with_earlier(earlier_results(out_dir, lambda s: click.echo(s, err=True)), result)
        csv = save_results(merged, out_dir)
        from brainalign.plots import plot_layers

        plot_layers(merged, path=out_dir / "layers.png", normalised=True)
        from brainalign.plots.rf import plot_rf_mosaic

        gcnn = models[2][0]
        rf = map_receptive_fields(gcnn, "1", n_frames=noise_frames, device=device, seed=seed)
        fits = fit_gabors(rf.maps[:, 36:60, 36:60], rf.cell_deg)
        plot_rf_mosaic(rf.maps, fits=fits, cell_deg=rf.cell_deg, crop=24,
                       title=f"gabor-cnn layer 1, STA of {noise_frames} white-noise frames",
                       path=out_dir / "rf_mosaic.png")
        fits.to_csv(out_dir / "rf_gabor_fits.csv", index=False)
        click.echo(f"wrote {csv}, {out_dir / 'layers.png'}, {out_dir / 'rf_mosaic.png'}, "
                   f"{out_dir / 'rf_gabor_fits.csv'} ({int(fits.ok.sum())}/{len(fits)} Gabor fits ok)")
    click.echo(f"done in {time.perf_counter() - t0:.1f} s", err=True)
    click.echo("next:")
    if out:
        click.echo(f"  brainalign report {out}   # then open {Path(out) / 'report.html'} in a browser")
    else:
        click.echo("  brainalign demo --out results/demo && brainalign report results/demo   # files and a report")
    click.echo("  score a network on real brain data: brainalign score --model torchvision:alexnet "
               "--benchmark kriegeskorte2008.hIT-rsa --out results/alexnet (README: 'Real brain data')")
    sys.stdout.flush()
