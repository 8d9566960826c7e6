"""A model that cannot run on images (or has nothing to record) is a named error in every entry
point, naming the model, the input shape and the original error; never an empty layer list."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from torch import nn

import brainalign as ba
from brainalign.cli import main
from brainalign.errors import ForwardError, NoLayersError
from tests.batch_models import write_quick_benchmark
from tests.conftest import needs_data

BADNET = "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Linear(10, 5), nn.ReLU())\n"


def _badnet(folder) -> str:
    (folder / "badnet.py").write_text(BADNET)
    return f"file:{folder / 'badnet.py'}:build"


def test_a_model_failing_on_images_is_a_forward_error_naming_model_shape_and_cause():
    m = ba.wrap(nn.Sequential(nn.Linear(10, 5), nn.ReLU()), name="badnet", input_size=32)
    with pytest.raises(ForwardError) as caught:
        _ = m.layers
    msg = str(caught.value)
    assert msg.startswith("badnet: ")
    assert "(2, 3, 32, 32)" in msg and "module '0' (Linear)" in msg
    assert "mat1 and mat2 shapes cannot be multiplied" in msg
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(ForwardError):
        m.resolve_layers(None)


@pytest.mark.filterwarnings("ignore:layer discovery stopped")
def test_a_model_failing_after_some_layers_keeps_them_with_a_warning_naming_it():
    m = ba.wrap(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(10, 5)),
                name="halfnet", input_size=16)
    with pytest.warns(UserWarning, match=r"module '3' \(Linear\) of model 'halfnet'.*\(2, 3, 16, 16\)"):
        assert m.layers == ["0", "1"]  # (Flatten is never a layer)


def test_a_model_with_no_recordable_layer_is_a_named_error_not_an_empty_list():
    bare = ba.wrap(nn.Flatten(), name="bare", input_size=8)  # runs, but has no submodule
    with pytest.raises(NoLayersError, match="bare: .*nn.Sequential"):
        bare.resolve_layers(None)


def test_cli_layers_of_a_model_failing_on_images_exits_with_the_forward_error(tmp_path):
    r = CliRunner().invoke(main, ["layers", _badnet(tmp_path)])
    assert r.exit_code == 2, r.output
    assert "mat1 and mat2 shapes cannot be multiplied" in r.output and "(2, 3, 224, 224)" in r.output


@needs_data
def test_score_and_batch_report_the_forward_error_not_an_index_error(tmp_path, data_dir):
    mid = _badnet(tmp_path)
    quick = write_quick_benchmark(tmp_path, n_boot=5)
    r = CliRunner().invoke(main, ["score", "--model", mid, "--benchmark", str(quick),
                                  "--data-dir", str(data_dir)])
    assert r.exit_code == 2
    assert "IndexError" not in r.output
    assert "ForwardError" in r.output or "mat1 and mat2 shapes cannot be multiplied" in r.output
    assert all(ln.count(mid) == 1 for ln in r.output.splitlines() if mid in ln), r.output
    models = tmp_path / "models.txt"
    models.write_text(mid + "\n")
    r = CliRunner().invoke(main, ["batch", str(models), "--benchmark", str(quick),
                                  "--data-dir", str(data_dir), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert "IndexError" not in r.output and "mat1 and mat2 shapes cannot be multiplied" in r.output
    bench = ba.load_benchmark(str(quick), data_dir=data_dir)
    with pytest.raises(ForwardError, match=r"\(2, 3, 224, 224\).*mat1 and mat2"):
        ba.score(ba.load_model(mid), bench)


@needs_data
def test_a_v1_property_benchmark_never_gets_an_empty_default_layer_list(data_dir):
    from brainalign.errors import UnitLocationError

    tokens = ba.wrap(nn.Sequential(nn.Flatten(2), nn.Linear(16 * 16, 5)), name="tokens", input_size=16)
    assert tokens.layers == ["1"] and len(tokens.layer_info["1"].output_shape) == 2  # (channel, 5)
    bench = ba.load_benchmark("marques2020.V1-peak_sf", data_dir=data_dir)
    with pytest.raises(UnitLocationError, match="tokens: none of its default layers"):
        bench.layers_of(tokens, None)


HALFNET = ("from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), "
           "nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(100, 10))\n")  # 128 features reach it


@needs_data
def test_a_model_whose_forward_pass_fails_part_way_is_scored_in_part_and_said_so(tmp_path, data_dir):
    """Its layers before the failing module were scored with exit status 0 and nothing in the
    results: a network that cannot run got a leaderboard score. Now the pair says so, the run
    ends in status 1 naming the model, the meta records it, and the report lists it."""
    from brainalign.results.provenance import FORWARD_STOPPED

    (tmp_path / "halfnet.py").write_text(HALFNET)
    mid = f"file:{tmp_path / 'halfnet.py'}:build"
    model = ba.load_model(mid)
    with pytest.warns(UserWarning, match="layer discovery stopped"):
        assert model.layers == ["0", "1", "2"]
    assert "module '4' (Linear)" in model.forward_stopped
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["score", "--model", mid, "--benchmark", "kriegeskorte2008.hIT-rsa",
                                  "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "1 of 1 model(s) scored only in part, their forward pass failing part-way" in text and mid in text
    assert text.count("layer discovery stopped by an error in module '4' (Linear)") == 1  # at its pair, once
    meta = ba.ScoreResult.load(out).meta
    assert "module '4' (Linear)" in meta["failed_layers"][model.name][FORWARD_STOPPED]
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    html = (out / "report.html").read_text()
    said = f"not scored: {model.name} × kriegeskorte2008.hIT-rsa: {FORWARD_STOPPED}: layer discovery stopped"
    assert said in html
    # and its leaderboard cell says it was scored in part, with the reason on hover
    row = html[html.index(f'<tr data-model="{model.name}"'):]
    row = row[:row.index("</tr>")]
    assert '>in part</span>' in row and "module &#x27;4&#x27; (Linear)" in row


NANNET = ("from torch import nn\n\nclass Nan(nn.Module):\n    def forward(self, x):\n"
          "        return x * float('nan')\n\ndef build():\n"
          "    return nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), Nan(), nn.AdaptiveAvgPool2d(2), nn.Flatten())\n")


@needs_data
@pytest.mark.parametrize("command", ["score", "batch"])
@pytest.mark.parametrize("net", ["halfnet", "nannet"])
def test_layers_that_cannot_be_scored_are_said_alike_by_score_and_batch(tmp_path, data_dir, command, net):
    """A batch pair used to say "done" with exit 0 and nothing in its folder for the layers it
    could not score (a forward pass failing part-way, NaN activations): the console, the log,
    the folder's meta and the report now say what `score` says."""
    from brainalign.results.provenance import FORWARD_STOPPED, unscored_layers

    (tmp_path / f"{net}.py").write_text(HALFNET if net == "halfnet" else NANNET)
    mid = f"file:{tmp_path / net}.py:build"
    out = tmp_path / "o"
    args = ["--benchmark", "kriegeskorte2008.hIT-rsa", "--n-bootstrap", "10", "--data-dir", str(data_dir),
            "--out", str(out)]
    if command == "score":
        r = CliRunner().invoke(main, ["score", "--model", mid, *args])
    else:
        (tmp_path / "models.txt").write_text(mid + "\n")
        r = CliRunner().invoke(main, ["batch", str(tmp_path / "models.txt"), *args])
    text = " ".join(r.output.split())
    failed = unscored_layers(ba.ScoreResult.load(out).meta)
    if net == "halfnet":
        assert r.exit_code == 1, r.output
        assert "scored only in part" in text and "layer discovery stopped by an error in module '4'" in text
        assert list(failed) == [FORWARD_STOPPED]
    else:
        assert r.exit_code == 0, r.output
        assert sorted(failed) == ["1", "2"] and "NaN/inf" in failed["1"]
        assert "warning:" in text and "NaN/inf" in text
    assert CliRunner().invoke(main, ["report", str(out)]).exit_code == 0
    html = (out / "report.html").read_text()
    assert all(f"× kriegeskorte2008.hIT-rsa: {layer}: " in html for layer in failed)
    if command == "batch":
        log = [json.loads(x) for x in (out / "batch.log.jsonl").read_text().splitlines()]
        assert [e["failed_layers"] for e in log if e["event"] == "done"] == [failed]
        # Resumed, the pair is reused, and a pair scored in part is still said so (it exited 0)
        again = CliRunner().invoke(main, ["batch", str(tmp_path / "models.txt"), *args, "--resume"])
        assert again.exit_code == r.exit_code, again.output
        assert ("scored only in part" in again.output) == (net == "halfnet")


@needs_data
def test_ba_score_says_which_layers_it_could_not_score(tmp_path, data_dir):
    """From Python the NaN layers vanished from the table without a word (only the meta held them)."""
    (tmp_path / "nannet.py").write_text(NANNET)
    model = ba.load_model(f"file:{tmp_path / 'nannet.py'}:build")
    with pytest.warns(UserWarning, match=r"'1'.*NaN/inf.*failed_layers") as caught:
        res = ba.score(model, "kriegeskorte2008.hIT-rsa", data_dir=data_dir, n_bootstrap=10)
    assert sorted(res.table["layer"].unique()) == ["0"]
    assert sum("failed_layers" in str(w.message) for w in caught) == 2  # layers 1 and 2, once each
