"""The perf scripts of issue 15 run at their small size and their built-in checks pass (the checks
compare values, never times)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

PERF = Path(__file__).resolve().parent.parent / "perf"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"perf_{name}", PERF / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_end_to_end_small_keeps_activations_on_the_device_and_agrees_with_the_host(one_torch_thread):
    out = _load("gpu_end_to_end").main(["--small", "--device", "cpu"])
    assert out["checked"]  # activations and every metric equal the host computation
    assert set(out["result"]) == {"rsa", "cka", "ridge", "pls"}
    for values in out["result"].values():
        assert values.shape == (out["layers"],) and np.isfinite(values).all()


def test_issue15_speed_small_runs_every_row_and_the_values_agree(one_torch_thread):
    out = _load("issue15_speed").main(["--small"])  # asserts brainalign = sklearn / himalaya / numpy
    assert {"ridge", "kridge", "rsa", "extract", "import"} <= set(out)
    assert out["import"]["brainalign.metrics.rsa"]["s"] > 0
    assert set(out["extract"]["times"]) >= {"bare forward", "brainalign.extract (after)",
                                            "create_feature_extractor", "clone hooks"}
