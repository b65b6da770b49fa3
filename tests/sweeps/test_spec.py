"""Sweep files are checked like manifests: every problem at once, with line and fix."""

from __future__ import annotations

import pytest

from dlspec_ray.errors import ManifestError
from dlspec_ray.sweeps import ExcludeRule, load_sweep_spec, sweep_spec_from

GOOD = """\
kind: sweep
name: frameworks
models: [mnist-8, "mnist-8*"]
datasets: mnist-test
software: [onnxruntime-cpu]
batch_sizes: [16, 64]
environments: inline
limit: 100
concurrency: 3
options: {top_k: 3}
exclude:
  - {model: mnist-8, batch_size: 16}
"""


def test_a_valid_sweep_file_loads(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    spec = load_sweep_spec(path)
    assert spec.name == "frameworks" and spec.models == ("mnist-8", "mnist-8*")
    assert spec.datasets == ("mnist-test",) and spec.environments == ("inline",)
    assert spec.batch_sizes == (16, 64) and spec.limit == 100 and spec.concurrency == 3
    assert spec.options == {"top_k": 3}
    assert spec.exclude == (ExcludeRule(model="mnist-8", batch_size=16),)
    assert spec.base_dir == tmp_path and spec.file == str(path)


def test_defaults_and_the_name_from_the_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("models: mnist-8\ndatasets: mnist-test\n")
    spec = load_sweep_spec(path)
    assert spec.name == "tiny" and spec.batch_sizes == (64,) and spec.concurrency == 2
    assert spec.software == () and spec.references == "auto" and spec.limit is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "modles: [mnist-8]\ndatasets: [d]\n",
            r"s\.yaml:1: modles: unknown key 'modles'; did you mean 'models'\?",
        ),
        (
            "models: [m]\ndatasets: [d]\nbatch_size: [4]\n",
            r":3: batch_size: unknown key.*did you mean 'batch_sizes'",
        ),
        ("datasets: [d]\n", r"missing required key 'models'"),
        (
            "models: [m]\ndatasets: [d]\nbatch_sizes: [0]\n",
            r"batch_sizes\[0\]: expected an integer >= 1, got 0",
        ),
        ("models: []\ndatasets: [d]\n", r"models: expected at least 1 item, got an empty list"),
        (
            "models: [m]\ndatasets: [d]\nenvironments: [dokcer]\n",
            r"environments\[0\]: expected one of inline, process, docker.*did you mean 'docker'",
        ),
        (
            "models: [m]\ndatasets: [d]\nexclude: [{}]\n",
            r"exclude\[0\]: expected at least one of model",
        ),
        (
            "models: [m]\ndatasets: [d]\nexclude: [{modle: m}]\n",
            r"exclude\[0\]\.modle: unknown key 'modle'; did you mean 'model'",
        ),
        (
            "models: [m]\ndatasets: [d]\nreferences: always\n",
            r"references: expected one of auto, none",
        ),
        ("- models\n", r"expected a mapping with models and datasets"),
        ("models: [m\n", r"invalid YAML"),
    ],
)
def test_bad_sweep_files_are_refused_with_line_and_fix(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message) as info:
        load_sweep_spec(path)
    assert info.value.exit_code == 2


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("modles: [m]\ndatasets: [d]\nconcurency: 2\n")
    with pytest.raises(ManifestError) as info:
        load_sweep_spec(path)
    assert sorted(p.field for p in info.value.problems) == ["concurency", "models", "modles"]
    assert "missing required key 'models'" in str(info.value)


def test_a_mapping_is_checked_the_same_way():
    spec = sweep_spec_from({"models": "mnist-8", "datasets": ["mnist-test"]}, name="nb")
    assert spec.name == "nb" and spec.models == ("mnist-8",)
    with pytest.raises(ManifestError, match=r"<sweep>: concurrency: expected an integer >= 1"):
        sweep_spec_from({"models": "m", "datasets": "d", "concurrency": 0})


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the sweep file"):
        load_sweep_spec(tmp_path / "missing.yaml")
