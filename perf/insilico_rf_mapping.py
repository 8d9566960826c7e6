"""Cost of RF mapping vs bare forward passes, measured side by side in one run.

Maps all 64 channels of AlexNet's first conv layer (``features.0``, centre position) with N
white-noise frames by streamed spike-triggered average, and times, on the same inputs:

* ``map``: :func:`brainalign.insilico.map_receptive_fields` (noise generation, input
  normalisation, forward stopped after ``features.0``, centre read-out, STA accumulation);
* ``full_forward``: N bare forward passes of the full AlexNet on the same kind of noise batches
  (generation and normalisation included, nothing recorded);
* ``conv1_forward``: N bare passes through ``features.0`` alone (the floor for mapping).

Usage: ``python perf/insilico_rf_mapping.py [--frames 10000] [--batch 250] [--device auto]``.
Writes perf/out/insilico_rf_mapping.json. On a shared machine, repeat and read the ratios, not
the absolute times.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    import brainalign as ba
    from brainalign.device import resolve_device
    from brainalign.insilico.recording import input_converter
    from brainalign.insilico.rf import _noise_batch, map_receptive_fields

    dev = resolve_device(args.device)
    model = ba.load_model("torchvision:alexnet", weights="random", seed=0)
    model.module.to(dev).eval()
    convert = input_converter(model)
    size = model.input_size

    def bare(module: torch.nn.Module) -> float:
        gen = torch.Generator(device=dev).manual_seed(0)
        t = time.perf_counter()
        with torch.inference_mode():
            done = 0
            while done < args.frames:
                b = min(args.batch, args.frames - done)
                module(convert(_noise_batch(gen, b, size, "white", dev)))
                done += b
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def mapping() -> float:
        t = time.perf_counter()
        rf = map_receptive_fields(model, "features.0", n_frames=args.frames, batch_size=args.batch,
                                  device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        assert rf.maps.shape == (64, size, size)
        return time.perf_counter() - t

    bare(model.module.features[0])  # warm-up (allocations, kernels)
    runs = []
    for _ in range(args.repeats):
        m = mapping()
        f = bare(model.module)
        c = bare(model.module.features[0])
        runs.append({"map_s": m, "full_forward_s": f, "conv1_forward_s": c,
                     "map_over_full_forward": m / f, "map_over_conv1_forward": m / c})
        print(json.dumps(runs[-1]))
    out = {"frames": args.frames, "batch": args.batch, "device": str(dev),
           "threads": torch.get_num_threads(), "runs": runs,
           "note": "same process, same noise generator; shared machine: compare ratios"}
    path = Path(__file__).parent / "out" / "insilico_rf_mapping.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
