"""``brainalign score --out D`` into a folder that holds ``brainalign compare``'s table removes it,
as ``brainalign batch`` does, once it has scored something (the table compared the scores before);
a score that scores nothing leaves it in place."""

from __future__ import annotations

from click.testing import CliRunner

from brainalign.cli import main
from brainalign.runner import ModelEntry, run_batch
from brainalign.runner.progress import BatchProgress
from tests.batch_models import write_quick_benchmark
from tests.conftest import needs_data


@needs_data
def test_score_out_removes_a_comparison_of_the_scores_before_only_when_it_scored(data_dir, tmp_path):
    bench = write_quick_benchmark(tmp_path, n_boot=20)
    out = tmp_path / "out"
    models = [ModelEntry(factory="tests.batch_models:tiny_cnn", seed=s, label=f"tiny-{s}", layers=("0", "2"))
              for s in (0, 1)]
    with open(tmp_path / "progress.txt", "w") as log:
        assert run_batch(models, [str(bench)], out, data_dir=data_dir, progress=BatchProgress(log)).ok
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    compare = out / "compare.csv"
    assert compare.is_file()
    removed = f"removed {compare}: it compared the scores before this run; run `brainalign compare {out}` again"

    # Every model fails: the scores did not change, so the comparison is still of them.
    r = CliRunner().invoke(main, ["score", "--model", "torchvision:no_such_net", "--benchmark", str(bench),
                                  "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert compare.is_file() and "removed" not in r.output

    r = CliRunner().invoke(main, ["score", "--model", "zoo:lenet5", "--layers", "conv1", "--benchmark", str(bench),
                                  "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert not compare.exists() and removed in r.output
    # What the message says to do works, on the scores now in the folder.
    r = CliRunner().invoke(main, ["compare", str(out)])
    assert r.exit_code == 0, r.output
    assert "zoo:lenet5" in compare.read_text()
