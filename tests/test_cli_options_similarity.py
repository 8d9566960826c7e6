"""``brainalign similarity`` checks --batch-size and --device before any work, as ``score`` does
(a bad value used to surface as a ZeroDivisionError or torch's driver error with exit status 1)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from brainalign.cli import main


@pytest.mark.parametrize("option, value, says", [
    ("--batch-size", "0", "Invalid value for '--batch-size'"),
    ("--batch-size", "-3", "Invalid value for '--batch-size'"),
    ("--device", "gpu7", "Invalid value for '--device'"),
])
def test_similarity_refuses_bad_options_with_status_2(tmp_path, option, value, says):
    out = tmp_path / "s"
    r = CliRunner().invoke(main, ["similarity", "--model", "zoo:lenet5", "--model", "zoo:mlp", "--stimuli",
                                  "kriegeskorte2008.hIT-rsa", option, value, "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert says in r.output
    assert not out.exists()


def test_similarity_refuses_cuda_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = CliRunner().invoke(main, ["similarity", "--model", "zoo:lenet5", "--stimuli", "kriegeskorte2008.hIT-rsa",
                                  "--device", "cuda", "--out", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "cuda" in r.output
