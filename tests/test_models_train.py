"""Training in brainalign: determinism, checkpoints, early stopping, scoring over training, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from matplotlib.figure import Figure

import brainalign as ba
from brainalign.errors import CheckpointMismatchError, RunFolderError, UnknownModelError
from brainalign.models.train import augment, load_training_data
from brainalign.models.train import train as ba_train
from tests.conftest import needs_data
from tests.models_helpers import few_bootstraps, one_thread

FAST = {"input_size": 32, "batch_size": 64, "progress": False}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lenet-run")
    return ba.train("lenet5", out, epochs=3, seed=0, dropout=0.1, **FAST)


def test_checkpoints_per_epoch_load_with_weights_only_and_training_learns(run):
    assert [p.name for p in run.checkpoints] == [f"epoch_{k:03d}.pt" for k in range(4)]
    ckpt = torch.load(run.checkpoints[2], weights_only=True)
    assert set(ckpt) == {"state_dict", "meta"} and ckpt["meta"]["epoch"] == 2
    assert ckpt["meta"]["arch"] == "zoo:lenet5" and ckpt["meta"]["arch_options"]["dropout"] == 0.1
    model = ba.load_model(f"file:{run.checkpoints[2]}")
    assert model.weights_hash == run.history["weights_hash"][2] == ckpt["meta"]["metrics"]["weights_hash"]
    assert model.layers == ba.load_model("zoo:lenet5", in_channels=1, input_size=32).layers
    h = run.history
    assert list(h["epoch"]) == [0, 1, 2, 3] and (run.run_dir / "history.csv").is_file()
    # Ten classes: chance is 0.1. Three epochs on the digits reach far above it.
    assert h["val_acc"].iloc[0] < 0.3 < 0.8 < h["val_acc"].iloc[-1]
    assert h["val_loss"].iloc[-1] < h["val_loss"].iloc[0]
    # Each epoch's row gives the rate it trained at (cosine from 0.05 over 3 epochs); it gave the
    # next epoch's, which put 0 on the last one.
    np.testing.assert_allclose(h["lr"], [0.05, 0.05, 0.05 * (1 + np.cos(np.pi / 3)) / 2,
                                         0.05 * (1 + np.cos(2 * np.pi / 3)) / 2], rtol=1e-12)


def test_same_seed_same_checkpoints_other_seed_differs(run, tmp_path):
    again = ba.train("lenet5", tmp_path / "a", epochs=3, seed=0, dropout=0.1, **FAST)
    other = ba.train("lenet5", tmp_path / "b", epochs=1, seed=1, dropout=0.1, **FAST)
    assert list(again.history["weights_hash"]) == list(run.history["weights_hash"])
    assert other.history["weights_hash"][1] != run.history["weights_hash"][1]
    assert other.history["weights_hash"][0] != run.history["weights_hash"][0]


def test_trained_model_matches_a_plain_forward_on_its_data(run):
    data = load_training_data("digits", 32)
    model = ba.load_model(f"file:{run.checkpoints[-1]}")
    net = model.module.eval()
    with torch.no_grad():
        acc = (net(data.x).argmax(1) == data.y).float().mean().item()
    assert acc > 0.8
    # The model's preprocessing of a digit image equals the training normalisation.
    from sklearn.datasets import load_digits

    img = (load_digits().images[0] / 16.0).astype(np.float32)
    np.testing.assert_allclose(model.preprocess(img).numpy(), data.x[0].numpy(), atol=1e-5)


def test_early_stopping_and_adam(tmp_path):
    # A learning rate of zero never improves the validation loss: patience 1 stops after epoch 1.
    res = ba.train("mlp", tmp_path, epochs=5, optimizer="adam", lr=0.0, patience=1, **FAST)
    assert res.stopped_early and len(res.checkpoints) == 2 and res.best_epoch == 0


def test_augmentation_is_seeded_and_changes_images():
    x = load_training_data("digits", 32).x[:8]
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.allclose(a, x)
    assert a.min() >= x.min() - 1e-5  # background stays the data's blank value


def test_bad_training_requests():
    with pytest.raises(UnknownModelError, match="zoo:lenet5"):
        ba.train("lenet", "unused")
    with pytest.raises(ValueError, match="dropout"):
        ba.train("cornet_rt", "unused", dropout=0.5)
    with pytest.raises(ValueError, match="optimizer"):
        ba.train("mlp", "unused", optimizer="rmsprop")


@needs_data
def test_score_over_training_and_plot(run, hit_benchmark, tmp_path):
    bench = few_bootstraps(hit_benchmark)
    res = ba.score_checkpoints(run.run_dir, bench, layers=["conv2", "fc2"])
    t = res.table
    assert list(t["epoch"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert t.groupby("epoch")["weights_hash"].nunique().eq(1).all()
    assert t["weights_hash"].nunique() == 4 and list(t["weights_hash"][::2]) == list(run.history["weights_hash"])
    # Each row equals scoring that checkpoint on its own.
    alone = ba.score(ba.load_model(f"file:{run.checkpoints[2]}"), bench, layers=["fc2"]).table
    assert t[(t["epoch"] == 2) & (t["layer"] == "fc2")]["raw"].iloc[0] == pytest.approx(alone["raw"].iloc[0])
    fig = ba.plot_training(t, path=tmp_path / "training.png", history=run.history)
    assert isinstance(fig, Figure) and (tmp_path / "training.png").stat().st_size > 1000
    assert {line.get_label() for line in fig.axes[0].get_lines()} >= {"conv2", "fc2"}


def test_score_checkpoints_of_another_architecture_is_a_mismatch(run, tmp_path):
    other = ba.load_model("zoo:mlp", in_channels=1, input_size=16)
    bad = tmp_path / "epoch_009.pt"
    torch.save({"state_dict": other.module.state_dict(), "meta": {"epoch": 9}}, bad)
    bench = _CountingBenchmark()
    with pytest.raises(CheckpointMismatchError, match="conv1.weight"):
        ba.score_checkpoints([run.checkpoints[0], bad], bench)
    assert bench.calls == 1  # the first checkpoint was scored; the second failed as it loaded


class _CountingBenchmark(ba.benchmarks.Benchmark):
    """Needs no data: counts the models it is shown and returns an empty table."""

    id = "counting"  # no YAML spec to read it from

    def __init__(self):
        self.calls = 0

    def __call__(self, model, layers=None, **kw):
        self.calls += 1
        return ba.ScoreResult(pd.DataFrame({"layer": [], "raw": []}))


def test_cli_train(tmp_path):
    from brainalign.cli import main

    out = tmp_path / "cli-run"
    r = CliRunner().invoke(main, ["train", "--arch", "mlp", "--out", str(out), "--epochs", "2",
                                  "--input-size", "8", "--optimizer", "adam", "--lr", "0.01",
                                  "--no-augment", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "best epoch" in r.output and (out / "epoch_002.pt").is_file() and (out / "run.json").is_file()
    bad = CliRunner().invoke(main, ["train", "--arch", "lenet", "--out", str(out)])
    assert bad.exit_code == 2 and "zoo:lenet5" in bad.output


def test_cli_train_into_an_earlier_run_refuses_or_replaces_it_whole(tmp_path):
    """A second run into the folder of a longer one would leave its later checkpoints beside the
    new ones (scored as if one run): refused unless --overwrite, which deletes the old run first."""
    from brainalign.cli import main

    out = tmp_path / "run"
    args = ["train", "--arch", "mlp", "--out", str(out), "--input-size", "8", "--no-augment"]
    assert CliRunner().invoke(main, [*args, "--epochs", "2"]).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    r = CliRunner().invoke(main, [*args, "--epochs", "1"])
    assert r.exit_code == 2 and "holds an earlier training run" in r.output and "--overwrite" in r.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "notes.txt"} == before
    r = CliRunner().invoke(main, [*args, "--epochs", "1", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "replacing the earlier run" in r.output and "3 checkpoint(s)" in r.output
    assert sorted(p.name for p in out.glob("epoch_*.pt")) == ["epoch_000.pt", "epoch_001.pt"]
    assert json.loads((out / "run.json").read_text())["epochs"] == 1 and (out / "notes.txt").is_file()
    with pytest.raises(RunFolderError, match="earlier training run"):
        ba_train("mlp", out, epochs=1, input_size=8, progress=False)


@needs_data
def test_two_checkpoints_of_one_run_in_one_score_run_are_refused_by_name(run, data_dir, tmp_path):
    """Two epochs of one training run carry the same model name: scored together their rows were
    one model's (one summary name, a plot of one epoch, a report of the other, nothing to
    compare). ba.score, brainalign score and a batch list refuse them by name before any work
    (the names read from the checkpoints' metadata)."""
    from brainalign.cli import main
    from brainalign.errors import BatchSpecError, DuplicateModelNameError
    from brainalign.runner.batch import read_models

    a, b = (ba.load_model(f"file:{run.checkpoints[k]}") for k in (0, 2))
    assert a.name == b.name
    with pytest.raises(DuplicateModelNameError, match=rf"model 1 is named '{a.name}', as model 0"):
        ba.score([a, b], "kriegeskorte2008.hIT-rsa", data_dir=data_dir)
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["score", "--model", f"file:{run.checkpoints[0]}", "--model",
                                  f"file:{run.checkpoints[2]}", "--benchmark", "kriegeskorte2008.hIT-rsa",
                                  "--layers", "fc2", "--n-bootstrap", "10", "--data-dir", str(data_dir),
                                  "--out", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, r.output
    assert (f"--model 'file:{run.checkpoints[2]}' is named '{a.name}', as --model 'file:{run.checkpoints[0]}' "
            "of this run is (checkpoints of one training run load under its name)") in text
    assert "--label" in text and "reading the data" not in text and not out.exists()
    listed = tmp_path / "models.yaml"
    listed.write_text("models:\n  - zoo:lenet5\n" + "".join(f"  - {{id: 'file:{run.checkpoints[k]}'}}\n"
                                                           for k in (0, 2)))
    said = rf"models\[2\]\.id 'file:.*' is named '{a.name}', as models\[1\]\.id 'file:"
    with pytest.raises(BatchSpecError, match=said):
        read_models(listed)
    with pytest.raises(BatchSpecError, match="load under its name"):
        ba.run_batch([f"file:{run.checkpoints[k]}" for k in (0, 2)], ["kriegeskorte2008.hIT-rsa"], tmp_path / "b")
    listed.write_text("models:\n" + "".join(f"  - {{id: 'file:{run.checkpoints[k]}', label: e{k}}}\n"
                                             for k in (0, 2)))
    assert [e.name for e in read_models(listed)] == ["e0", "e2"]
    # --label, one per --model, keeps both apart; the meta says which id each label stands for
    args = ["score", "--model", f"file:{run.checkpoints[0]}", "--label", "epoch-a", "--model",
            f"file:{run.checkpoints[2]}", "--label", "epoch-c", "--benchmark", "kriegeskorte2008.hIT-rsa",
            "--layers", "fc2", "--n-bootstrap", "10", "--data-dir", str(data_dir), "--out", str(tmp_path / "l")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "l" / "scores.csv")
    assert set(t["model"]) == {"epoch-a", "epoch-c"} and t.groupby("model")["weights_hash"].nunique().eq(1).all()
    assert t.set_index("model")["weights_hash"].nunique() == 2
    meta = json.loads((tmp_path / "l" / "scores.meta.json").read_text())
    ids = {name: m["model_id"] for name, m in meta["models"].items()}  # one benchmark: the flat form
    assert ids == {"epoch-a": f"file:{run.checkpoints[0]}", "epoch-c": f"file:{run.checkpoints[2]}"}
    bad = CliRunner().invoke(main, args[:7] + args[9:])  # two models, one label
    assert bad.exit_code == 2 and "1 --label for 2 --model" in bad.output
