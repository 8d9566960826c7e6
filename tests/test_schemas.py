"""Declared schemas (issue 11): benchmark YAML per kind, dataset manifests, batch model lists.

A misspelt or unknown key anywhere is a named error naming the file and the key's path, raised when
the file is loaded (before any data or model is touched); the key reference in the docs is
generated from the same schemas.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
import yaml
from pydantic import Field

import brainalign as ba
from brainalign.benchmarks.base import Benchmark
from brainalign.benchmarks.registry import KINDS
from brainalign.benchmarks.schemas import BenchmarkSchema
from brainalign.benchmarks.spec import benchmark_paths, parse_benchmark
from brainalign.data.manifest import list_datasets, load_manifest, parse_manifest
from brainalign.errors import BatchSpecError, BenchmarkDefinitionError, ManifestError
from brainalign.runner.batch import read_models
from brainalign.schema import DOCS_PATH, StrictModel, key_reference


def _bench(tmp_path, bid: str, edit) -> str:
    raw = yaml.safe_load(benchmark_paths()[bid].read_text())
    edit(raw)
    p = tmp_path / f"{bid}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return str(p)


def _raises(path: str, pattern: str):
    """The error must start with the file, then the key path."""
    import re

    return pytest.raises(BenchmarkDefinitionError, match=re.escape(path) + ": " + pattern)


def test_every_bundled_definition_validates_with_its_kind_schema():
    for bid, path in benchmark_paths().items():
        spec = parse_benchmark(path)
        assert spec.id == bid and issubclass(KINDS[spec.kind].schema, BenchmarkSchema)
    for d in list_datasets():
        assert load_manifest(d).id == d


def test_issue_examples_misspelt_statistics_and_comparator(tmp_path):
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r.update(statistics={"bootstrapp": {"n": 10}}))
    with _raises(p, r"statistics\.bootstrapp: unknown key \(did you mean 'bootstrap'\?\)"):
        ba.load_benchmark(p)
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r["statistics"]["bootstrap"].update(seeed=3))
    with _raises(p, r"statistics\.bootstrap\.seeed: unknown key \(did you mean 'seed'\?\); allowed: ci, n, seed"):
        ba.load_benchmark(p)
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r["metric"].update(compare="spearmann"))
    with _raises(p, r"metric\.compare: 'spearmann' is not allowed; it should be 'spearman'"):
        ba.load_benchmark(p)


def test_every_problem_is_one_line_naming_file_and_key_path(tmp_path):
    def edit(r):
        r["metric"]["cv"] = "five"
        r["ceiling"]["method"] = "splithalf"
        r["sessions"][0]["stimuli"] = {"expectd": 1200}
        r["time_bin"] = {"start": 70}

    p = _bench(tmp_path, "cowley2023.V4-ridge", edit)
    with pytest.raises(BenchmarkDefinitionError) as info:
        parse_benchmark(p)
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"{p}: ") for line in lines), lines
    keys = [line[len(p) + 2:].split(":")[0] for line in lines]
    assert keys == ["metric.cv", "ceiling.method", "time_bin.stop"], lines
    # Reader sections are checked against the reader's own parameters (after the fields are fixed).
    p = _bench(tmp_path, "cowley2023.V4-ridge", lambda r: r["sessions"][0].update(stimuli={"expectd": 1}))
    with _raises(p, r"sessions\[0\]\.stimuli\.expectd: unknown key for reader 'zip_images' "
                    r"\(did you mean 'expected'\?\)"):
        parse_benchmark(p)
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r["stimuli"].pop("variable"))
    with _raises(p, r"stimuli\.variable: missing field \(reader 'mat_images' needs it\)"):
        parse_benchmark(p)
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r["target"].update(reader="mat_rdm"))
    with _raises(p, r"target\.reader: unknown reader 'mat_rdm'"):
        parse_benchmark(p)


def test_keys_of_one_kind_are_refused_in_another(tmp_path):
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r.update(sessions=[{"name": "a"}]))
    with _raises(p, r"sessions: unknown key"):
        parse_benchmark(p)
    p = _bench(tmp_path, "kriegeskorte2008.hIT-rsa", lambda r: r.update(kind="rsaa"))
    with _raises(p, r"kind: unknown kind 'rsaa'; known kinds: rsa, regression"):
        parse_benchmark(p)
    p = _bench(tmp_path, "marques2020.V1-properties", lambda r: r["stimuli"].update(orientatons=[0, 90]))
    with _raises(p, r"stimuli\.orientatons: unknown key \(did you mean 'orientations'\?\)"):
        parse_benchmark(p)
    p = _bench(tmp_path, "marques2020.V1-peak_sf", lambda r: r["target"]["properties"].update(
        peak_sff=r["target"]["properties"]["peak_sf"]))
    with _raises(p, r"target\.properties: unknown property \['peak_sff'\]"):
        parse_benchmark(p)


def test_v1_experiment_schema_lists_exactly_the_experiment_settings():
    import dataclasses

    from brainalign.benchmarks.schemas import V1Experiment
    from brainalign.insilico.experiments import ExperimentSettings

    settings = {f.name for f in dataclasses.fields(ExperimentSettings)}
    assert set(V1Experiment.model_fields) == {"experiment"} | settings


def test_enumerated_values_are_the_metrics_own():
    from typing import get_args

    from brainalign.benchmarks.schemas import Comparator, Distance
    from brainalign.metrics.rsa import COMPARATORS, DISTANCES

    assert get_args(Comparator) == COMPARATORS and get_args(Distance) == DISTANCES


def test_keys_the_code_reads_are_accepted_and_keep_their_values(tmp_path):
    # metric.seed is read by the regression kind (the fold assignment): once refused, now declared.
    p = _bench(tmp_path, "antolik2016.V1-ridge", lambda r: r["metric"].update(seed=7, dtype="float32"))
    spec = parse_benchmark(p)
    assert spec.metric["seed"] == 7 and spec.metric["dtype"] == "float32"
    # Only the keys the file sets reach the kind (its documented defaults apply to the rest).
    assert "alphas" not in spec.metric and spec.statistics["bootstrap"] == {"n": 1000, "ci": 0.95, "seed": 0}
    assert spec.extra["sessions"][0] == {"name": "region1", "trials": {"file": "region1/raw_validation_set.npy"}}
    # `splits` was accepted but read by nothing: now refused.
    p = _bench(tmp_path, "antolik2016.V1-ridge", lambda r: r.update(splits=5))
    with _raises(p, "splits: unknown key"):
        parse_benchmark(p)


class ToyMetric(StrictModel):
    """`metric` of the toy kind."""

    name: Literal["toy"] = Field(description="The toy metric.")
    strength: float = Field(1.0, description="How strong.")


class ToySchema(BenchmarkSchema):
    """`kind: toy`."""

    kind: Literal["toy"] = Field(description="`toy`.")
    metric: ToyMetric = Field(description="The toy metric.")


class ToyBenchmark(Benchmark):
    schema: ClassVar[type[BenchmarkSchema]] = ToySchema


def test_a_new_kind_is_one_class_one_kinds_line_one_schema(tmp_path, monkeypatch):
    monkeypatch.setitem(KINDS, "toy", ToyBenchmark)

    def edit(r):
        r.update(kind="toy", metric={"name": "toy", "strength": 2})

    bench = ba.load_benchmark(_bench(tmp_path, "kriegeskorte2008.mIT-rsa", edit))
    assert isinstance(bench, ToyBenchmark) and bench.spec.metric == {"name": "toy", "strength": 2.0}
    p = _bench(tmp_path, "kriegeskorte2008.mIT-rsa",
               lambda r: r.update(kind="toy", metric={"name": "toy", "x": 1}))
    with _raises(p, r"metric\.x: unknown key; allowed: name, strength"):
        ba.load_benchmark(p)
    assert "Benchmark kind `toy` (ToyBenchmark)" in key_reference()


def test_key_reference_in_the_docs_is_generated_and_up_to_date():
    text = key_reference()
    for key in ("bootstrap", "rdm_distance", "member_of", "factory", "reader `npy_assembly`", "resample_mask"):
        assert key in text
    assert DOCS_PATH.read_text() == text, "docs/benchmark-keys.md is stale: run `python -m brainalign.schema`"


# ----- manifests ------------------------------------------------------------------------------------

def _manifest(tmp_path, files: dict, **top) -> str:
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({"id": "mine", "licence": "CC0", "citation": "me", "files": files, **top}))
    return str(p)


def test_manifest_problems_name_file_and_key_path(tmp_path):
    import re

    p = _manifest(tmp_path, {"a.npy": {"url": "https://x/a.npy", "sha265": "0" * 64}}, licnce="x")
    with pytest.raises(ManifestError) as info:
        parse_manifest(p)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{p}: files.a.npy.sha265: unknown key (did you mean 'sha256'?); allowed: " \
                       "description, format, member, member_of, sha1, sha256, size, url, verified"
    assert lines[1].startswith(f"{p}: licnce: unknown key (did you mean 'licence'?)")
    p = _manifest(tmp_path, {"a.npy": {"sha256": "ABC"}})
    with pytest.raises(ManifestError, match=re.escape(p) + r": files\.a\.npy\.sha256: string should match"):
        parse_manifest(p)
    p = _manifest(tmp_path, {"a.mat": {"member_of": "b.zip"}})
    with pytest.raises(ManifestError, match=r"files\.a\.mat\.member_of: 'b\.zip' is not a file of this manifest"):
        parse_manifest(p)
    p = _manifest(tmp_path, {"../a.mat": {}})
    with pytest.raises(ManifestError, match=r"files\.\.\./a\.mat: the file name climbs out"):
        parse_manifest(p)
    assert isinstance(ManifestError("x"), BenchmarkDefinitionError)  # one family of definition errors


def test_local_only_manifest_entry_needs_no_url(tmp_path):
    m = parse_manifest(_manifest(tmp_path, {"a.npy": {"sha256": "0" * 64}, "b.npy": None}))
    assert m.files["a.npy"].url is None and m.files["a.npy"].verified
    assert m.files["b.npy"].sha256 is None and not m.files["b.npy"].verified


# ----- batch model lists ----------------------------------------------------------------------------

def test_model_list_problems_name_file_and_key_path(tmp_path):
    p = tmp_path / "models.yaml"
    p.write_text("models:\n  - zoo:mlp\n  - {id: zoo:lenet5, wieghts: pretrained}\n")
    with pytest.raises(BatchSpecError,
                       match=rf"{p}: models\[1\]\.wieghts: unknown key \(did you mean 'weights'\?\)"):
        read_models(p)
    p.write_text("models:\n  - {id: zoo:lenet5, factory: 'm:f'}\n")
    with pytest.raises(BatchSpecError, match=r"models\[0\]: give exactly one of 'id'"):
        read_models(p)
    p.write_text("model:\n  - zoo:mlp\n")
    with pytest.raises(BatchSpecError, match=r"model: unknown key \(did you mean 'models'\?\)"):
        read_models(p)
    p.write_text("models:\n  - zoo:mlp\n  - {source: zoo, name: lenet5, layers: conv1, seed: 3}\n")
    entries = read_models(p)
    assert [e.id for e in entries] == ["zoo:mlp", "zoo:lenet5"]
    assert entries[1].layers == ("conv1",) and entries[1].seed == 3
    p.write_text("- zoo:mlp\n- {id: zoo:lenet5, label: le}\n")  # a bare list reads the same way
    assert [e.name for e in read_models(p)] == ["zoo:mlp", "le"]
    txt = tmp_path / "models.txt"
    txt.write_text("zoo:mlp  # a comment\n\nzoo:lenet5\n")
    assert [e.id for e in read_models(txt)] == ["zoo:mlp", "zoo:lenet5"]
