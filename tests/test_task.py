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


def test_a_task_resolving_a_duplicated_id_names_both_files(repo_cwd, tmp_path):
    from dlspec_ray.errors import UsageError

    original = repo_cwd / "manifests" / "models" / "mnist-8.yaml"
    edited = tmp_path / "mnist-8-edited.yaml"
    text = original.read_text().replace("../../assets/", f"{repo_cwd}/assets/")
    edited.write_text(text.replace("author: ONNX Model Zoo", "author: Someone Else"))
    # The reference log names the model by name@version: the lookup meets both files.
    with pytest.raises(UsageError, match=r"same id .* with different content.*new id$") as caught:
        resolve_task(None, None, reference="mnist-8-onnxruntime-reference@1.0.0",
                     extra_roots=[tmp_path])  # fmt: skip
    assert str(original) in str(caught.value) and str(edited) in str(caught.value)


def test_a_broken_file_in_an_extra_root_does_not_break_a_task(repo_cwd, tmp_path, capsys):
    (tmp_path / "bomb.yaml").write_text("a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b, *c]\n")
    task = resolve_task("mnist-8@1.0.0", "mnist-test@1.0.0", extra_roots=[tmp_path])
    assert task.model.ref == "mnist-8@1.0.0"
    assert f"warning: {tmp_path / 'bomb.yaml'}:3: " in capsys.readouterr().err
