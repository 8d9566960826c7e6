"""V1 properties: the former per-layer adaptive experiment vs one stream over all layers.

Former: each layer recorded on its own with ``insilico.record`` (blank + ori × SF × phase, then
size gratings at the (ori, SF) pairs its responsive units prefer). Now: one StimulusSet of every
grating (size tuning for every ori × SF pair) through ``stream_layers`` for all layers at once,
then ``properties_from_responses`` per layer; a second run reads the activation cache.

Side by side, interleaved, one warm-up, ``--rounds`` rounds; the load average is recorded and
the properties of both paths are checked equal. Prints one JSON line per round and a summary.

    python perf/v1_properties_stream.py --model tiny --device cpu
    python perf/v1_properties_stream.py --model alexnet --device cuda --layers 'features.*'
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def build(name: str):
    if name == "tiny":
        from tests.batch_models import tiny_cnn

        return tiny_cnn(seed=0), ["0", "2"]
    import torch
    import torchvision

    from brainalign.models import wrap

    torch.manual_seed(0)
    return wrap(torchvision.models.alexnet(weights=None), name="alexnet-random", input_size=224), None


def former(model, layers, device, batch_size):
    from brainalign.insilico.experiments import properties_from_responses
    from tests.test_insilico_properties_stream import _adaptive

    out, n_images = {}, 0
    for layer in layers:
        exp, responses, _ = _adaptive(model, layer, None, device=device)
        n_images += int(np.isfinite(responses[:, 0]).sum())
        out[layer] = properties_from_responses(responses, exp, layer=layer).table
    return out, n_images


def streamed(model, layers, device, batch_size, cache=None):
    from brainalign.activations.stream import stream_layers
    from brainalign.insilico.experiments import grating_experiments, properties_from_responses
    from brainalign.insilico.recording import centre_reducer, physiology_view

    exp = grating_experiments(model)
    out = {}
    for layer, acts in stream_layers(physiology_view(model), exp.stimuli, layers, batch_size=batch_size,
                                     device=device, reducers=centre_reducer, cache=cache):
        out[layer] = properties_from_responses(acts.values, exp, layer=layer).table
    return out, len(exp.stimuli)


def max_diff(a, b) -> float:
    from brainalign.insilico.experiments import PROPERTIES

    worst = 0.0
    for layer in a:
        for c in PROPERTIES:
            x, y = a[layer][c].to_numpy(float), b[layer][c].to_numpy(float)
            if not np.array_equal(np.isnan(x), np.isnan(y)):
                return float("inf")
            if np.isfinite(x).any():
                worst = max(worst, float(np.nanmax(np.abs(x - y) / np.maximum(1, np.abs(y)))))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny", choices=["tiny", "alexnet"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--layers", default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-tf32", action="store_true",
                    help="CUDA: full float32 convolutions (cuDNN's TF32 default changes values ~1e-3 "
                         "between batch compositions)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    if args.no_tf32:
        import torch

        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    from brainalign.activations.cache import ActivationCache

    model, layers = build(args.model)
    layers = model.resolve_layers(args.layers) if args.layers else layers
    layers = [n for n in layers if len(model.layer_info[n].output_shape) in (1, 3)]  # units locatable
    with tempfile.TemporaryDirectory() as tmp:
        cache = ActivationCache(tmp)
        runs = {"former": lambda: former(model, layers, args.device, args.batch_size),
                "stream": lambda: streamed(model, layers, args.device, args.batch_size),
                "stream+cache(2nd)": lambda: streamed(model, layers, args.device, args.batch_size, cache)}
        streamed(model, layers, args.device, args.batch_size, cache)  # warm-up; fills the cache
        former(model, layers, args.device, args.batch_size)
        times: dict[str, list[float]] = {k: [] for k in runs}
        results = {}
        for r in range(args.rounds):
            for k, fn in runs.items():  # interleaved
                t = time.perf_counter()
                results[k] = fn()
                times[k].append(time.perf_counter() - t)
            print(json.dumps({"round": r, **{k: round(v[-1], 3) for k, v in times.items()},
                              "loadavg": os.getloadavg()}))
    diff = max_diff(results["stream"][0], results["former"][0])
    summary = {"model": args.model, "device": args.device, "no_tf32": args.no_tf32, "layers": layers,
               "images": {k: v[1] for k, v in results.items()},
               "median_s": {k: float(np.median(v)) for k, v in times.items()},
               "stream/former": float(np.median(times["stream"]) / np.median(times["former"])),
               "max_rel_diff_properties": diff, "loadavg": os.getloadavg()}
    print(json.dumps(summary))
    assert diff < args.tolerance, diff


if __name__ == "__main__":
    main()
