"""``dlspec-ray validate``: each file on its own, then every manifest the files name."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dlspec_ray.cli import main

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "references/mobilenet-v1-0.25-128-quant-tflite.yaml"


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped manifests and sweeps, validated from a folder of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DLSPEC_RAY_MANIFEST_PATH", raising=False)
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    shutil.copytree(REPO / "sweeps", tmp_path / "sweeps")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_shipped_manifests_and_sweeps_validate(repo_cwd, capsys):
    assert main(["validate", "manifests/", "sweeps/"]) == 0
    out = capsys.readouterr().out
    assert out == "22 manifest(s) valid, 2 sweep file(s) valid; every reference resolves\n"


# (file edited, old, new, the stdout line it must give)
BROKEN = [
    (
        f"manifests/{REFERENCE}",
        "litert-cpu@1.0.0",
        "litert-cpuu@1.0.0",
        r"^\S+mobilenet-v1-0\.25-128-quant-tflite\.yaml:9: task\.software: no software manifest "
        r"matches 'litert-cpuu@1\.0\.0' .*; did you mean 'litert-cpu@1\.0\.0'\?$",
    ),
    (
        "manifests/references/mnist-8-onnxruntime.yaml",
        "dataset: mnist-test@1.0.0",
        "dataset: mnist-test@1.1.0",
        r"mnist-8-onnxruntime\.yaml:8: task\.dataset: .*did you mean 'mnist-test@1\.0\.0'\?$",
    ),
    (
        "sweeps/mnist-frameworks.yaml",
        "models: [mnist-8, mnist-8-onnx-reference]",
        "models: [mnist-8, mnist-8-onnx-refernce]",
        r"^sweeps/mnist-frameworks\.yaml:6: models\[1\]: no model manifest matches "
        r"'mnist-8-onnx-refernce'.*did you mean 'mnist-8-onnx-reference'\?$",
    ),
    (
        "sweeps/imagenet-frameworks.yaml",
        "efficientnet-lite0-*",
        "efficientnet-lite9-*",
        r"^sweeps/imagenet-frameworks\.yaml:7: models\[0\]: 'efficientnet-lite9-\*' matches no "
        r"model manifest; did you mean 'efficientnet-lite0-onnx' or",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "line"),
    BROKEN,
    ids=["ref-typo", "ref-version", "sweep-name", "sweep-glob"],
)
def test_an_unresolved_reference_exits_2_naming_file_field_and_nearest(
    zoo, capsys, file, old, new, line
):
    edit(zoo / file, old, new)
    assert main(["validate", "manifests", "sweeps"]) == 2
    captured = capsys.readouterr()
    [problem] = captured.out.splitlines()
    assert re.search(line, problem), problem
    assert captured.err == "1 problem(s) in 1 file(s)\n"


def test_roots_add_the_folders_where_refs_resolve(zoo, capsys):
    logs = zoo / "logs"
    logs.mkdir()
    shutil.move(zoo / "manifests" / REFERENCE, logs / "log.yaml")
    shutil.move(zoo / "manifests", zoo / "elsewhere")  # no ./manifests to fall back on
    assert main(["validate", str(logs)]) == 2
    assert "task.model: no model manifest matches" in capsys.readouterr().out
    assert main(["validate", str(logs), "--roots", str(zoo / "elsewhere")]) == 0
    assert capsys.readouterr().out == "1 manifest(s) valid; every reference resolves\n"


def test_cross_references_wait_until_every_file_is_valid(zoo, capsys):
    edit(zoo / "manifests/software/litert-cpu.yaml", 'version: "1.0.0"', 'version: "1.0"')
    assert main(["validate", "manifests"]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "litert-cpu.yaml" in captured.out
    assert "cross-references were not checked: fix the problems above first" in captured.err


def test_quiet_keeps_the_problems_and_drops_the_notes(zoo, capsys):
    edit(zoo / f"manifests/{REFERENCE}", "litert-cpu@1.0.0", "litert-cpuu@1.0.0")
    assert main(["-q", "validate", "manifests"]) == 2
    captured = capsys.readouterr()
    assert "litert-cpuu@1.0.0" in captured.out and captured.err == ""


def test_a_sweep_file_with_a_bad_key_is_a_problem_of_its_line(zoo, capsys):
    edit(zoo / "sweeps/mnist-frameworks.yaml", "batch_sizes:", "batchsizes:")
    assert main(["validate", "sweeps"]) == 2
    out = capsys.readouterr().out
    assert re.search(r"mnist-frameworks\.yaml:10: batchsizes: .*did you mean 'batch_sizes'", out)
