"""Planning a sweep: the cross product, what is dropped and why, labels, and empty products."""

from __future__ import annotations

import sys

import pytest

from dlspec_ray.spec.catalog import UnknownManifest
from dlspec_ray.sweeps import EmptySweep, plan_sweep, sweep_spec_from

MNIST_BOTH = {
    "models": ["mnist-8", "mnist-8-onnx-reference"],
    "datasets": ["mnist-test"],
    "software": ["onnxruntime-cpu", "onnx-reference-cpu"],
    "environments": ["inline"],
}


def plan(repo, data, **kwargs):
    return plan_sweep(sweep_spec_from(data, base_dir=repo), **kwargs)


def test_mismatched_frameworks_are_dropped_with_the_reason(repo_cwd):
    p = plan(repo_cwd, {**MNIST_BOTH, "batch_sizes": [32, 64]})
    assert p.combinations == 8
    assert [(t.model.name, t.software.name, t.batch_size) for t in p.tasks] == [
        ("mnist-8", "onnxruntime-cpu", 32),
        ("mnist-8", "onnxruntime-cpu", 64),
        ("mnist-8-onnx-reference", "onnx-reference-cpu", 32),
        ("mnist-8-onnx-reference", "onnx-reference-cpu", 64),
    ]
    assert [t.label for t in p.tasks] == [
        "mnist-8-onnxruntime-cpu-b32",
        "mnist-8-onnxruntime-cpu-b64",
        "mnist-8-onnx-reference-onnx-reference-cpu-b32",
        "mnist-8-onnx-reference-onnx-reference-cpu-b64",
    ]
    assert len(p.dropped) == 4 and {d.filter for d in p.dropped} == {"framework"}
    first = p.dropped[0]
    assert first.combination.startswith("mnist-8@1.0.0 x mnist-test@1.0.0 x onnx-reference-cpu")
    assert first.reason == "the model needs onnxruntime, the software provides onnx-reference"
    assert "drop  mnist-8@1.0.0" in p.describe()


def test_globs_and_the_default_software_list(repo_cwd):
    p = plan(
        repo_cwd, {"models": ["mnist-8*"], "datasets": ["mnist-*"], "environments": ["inline"]}
    )
    pairs = {(t.model.name, t.software.framework.name) for t in p.tasks}
    assert ("mnist-8", "onnxruntime") in pairs and (
        "mnist-8-onnx-reference",
        "onnx-reference",
    ) in pairs
    assert all(t.model.framework.name == t.software.framework.name for t in p.tasks)
    assert p.dropped == ()  # without a software list, models only meet software that fits


def test_exclude_rules_drop_what_they_match(repo_cwd):
    p = plan(
        repo_cwd,
        {**MNIST_BOTH, "batch_sizes": [32, 64],
         "exclude": [{"model": "mnist-8-onnx-*", "batch_size": 64}]},
    )  # fmt: skip
    assert len(p.tasks) == 3
    excluded = [d for d in p.dropped if d.filter == "exclude"]
    assert len(excluded) == 2 and all("batch 64" in d.combination for d in excluded)
    assert "exclude {model=mnist-8-onnx-*, batch_size=64}" in excluded[0].reason


def test_unavailable_environments_are_dropped(repo_cwd):
    p = plan(repo_cwd, {**MNIST_BOTH, "environments": ["inline", "docker"]},
             available_environments=["inline"])  # fmt: skip
    dropped = [d for d in p.dropped if d.filter == "environment"]
    assert len(dropped) == 2 and "'docker' environment is not available" in dropped[0].reason


def test_a_missing_framework_extra_names_the_pip_install(repo_cwd, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what Python does for an absent module
    data = {"models": ["efficientnet-lite0-*"], "datasets": ["imagenet-samples"],
            "software": ["pytorch-cpu", "onnxruntime-cpu"], "environments": ["inline"]}  # fmt: skip
    p = plan(repo_cwd, data)
    assert [t.label for t in p.tasks] == ["efficientnet-lite0-onnx"]
    extra = [d for d in p.dropped if d.filter == "framework extra"]
    assert len(extra) == 1
    assert "pip install 'dlspec-ray[pytorch]'" in extra[0].reason


def test_references_are_attached_only_without_a_limit(repo_cwd):
    data = {"models": ["efficientnet-lite0-onnx"], "datasets": ["imagenet-samples"],
            "software": ["onnxruntime-cpu"], "environments": ["inline"]}  # fmt: skip
    assert plan(repo_cwd, data).tasks[0].reference.name == "efficientnet-lite0-onnx-reference"
    assert plan(repo_cwd, {**data, "limit": 2}).tasks[0].reference is None
    assert plan(repo_cwd, {**data, "references": "none"}).tasks[0].reference is None


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (
            {"models": ["mnist-8"], "datasets": ["mnist-test"], "software": ["onnx-reference-cpu"]},
            EmptySweep,
            r"(?s)no task left: all 1 combination\(s\) were removed.*\n  framework: removed 1\n"
            r"    - mnist-8@1\.0\.0 x mnist-test.*the model needs onnxruntime",
        ),
        (
            {**MNIST_BOTH, "exclude": [{"dataset": "mnist-*"}]},
            EmptySweep,
            r"(?s)exclude: removed 4\n.*exclude \{dataset=mnist-\*\}",
        ),
        (
            {"models": ["resnet*"], "datasets": ["mnist-test"]},
            UnknownManifest,
            r"<sweep>: models\[0\]: 'resnet\*' matches no model manifest; known model manifests: ",
        ),
        (
            {"models": ["mnist-9"], "datasets": ["mnist-test"]},
            UnknownManifest,
            r"<sweep>: models\[0\]: no model manifest matches 'mnist-9'.*did you mean",
        ),
        (
            {"models": ["models/nope-*.yaml"], "datasets": ["mnist-test"]},
            UnknownManifest,
            r"'models/nope-\*\.yaml' matches no file",
        ),
    ],
)
def test_sweeps_that_would_run_nothing_say_why(repo_cwd, data, error, message):
    with pytest.raises(error, match=message) as info:
        plan(repo_cwd, data)
    assert info.value.exit_code == 2


def test_an_empty_product_with_a_missing_extra_names_it(repo_cwd, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    data = {"models": ["mobilenet-*"], "datasets": ["imagenet-samples"], "software": ["litert-cpu"]}
    with pytest.raises(EmptySweep, match=r"(?s)framework extra: removed 1.*dlspec-ray\[litert\]"):
        plan(repo_cwd, data)
