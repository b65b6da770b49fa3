from __future__ import annotations

import pytest

from dlspec_ray.task import TaskMismatch, resolve_task


def test_default_software_prefers_the_inline_environment(repo_cwd):
    task = resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0")
    assert task.software is not None
    assert task.software.environment == "inline"
    assert task.software.framework.name == "onnxruntime"


def test_the_reference_log_fills_in_what_is_not_given(repo_cwd):
    task = resolve_task("mnist-8", None, reference="mnist-8-onnxruntime-reference@1.0.0")
    assert task.dataset.ref == "mnist-test@1.0.0"
    assert task.hardware is not None and task.hardware.ref == "x86-64-cpu@1.0.0"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"software": "onnx-reference-cpu@1.0.0"}, r"the model needs 'onnxruntime'"),
        (
            {
                "model": "mnist-8-onnx-reference@1.0.0",
                "reference": "mnist-8-onnxruntime-reference@1.0.0",
            },
            r"reference log was made with model 'mnist-8@1.0.0'",
        ),
    ],
    ids=["framework-mismatch", "reference-for-another-model"],
)
def test_incompatible_manifests_are_refused(repo_cwd, kwargs, match):
    args = {"model": "mnist-8@1.0.0", "dataset": "mnist-test@1.0.0", **kwargs}
    with pytest.raises(TaskMismatch, match=match):
        resolve_task(args.pop("model"), args.pop("dataset"), **args)
