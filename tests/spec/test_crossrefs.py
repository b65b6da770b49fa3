"""Cross-references: a reference log's and a sweep's refs resolve, or say the nearest one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dlspec_ray.spec import Catalog, load_manifest
from dlspec_ray.spec.crossrefs import Ref, check_refs, pattern_refs, reference_refs, unresolved

REPO = Path(__file__).resolve().parents[2]
REFERENCE = "references/mobilenet-v1-0.25-128-quant-tflite.yaml"
LITERT_ID = "5c92cbac-3d70-4bb4-8982-ec05432410eb"


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped manifests, and a working folder without ./manifests."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "zoo"
    shutil.copytree(REPO / "manifests", root)
    return root


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_shipped_reference_logs_resolve(zoo):
    catalog = Catalog([zoo])
    logs = [m for m in catalog.manifests if m.kind == "reference"]
    refs = [ref for log in logs for ref in reference_refs(log)]
    assert len(logs) == 4 and len(refs) == 16
    assert check_refs(refs, catalog) == []


# (field, old text, new text, what the message must say)
BROKEN_REFERENCES = [
    (
        "task.software",
        "litert-cpu@1.0.0",
        "litert-cpuu@1.0.0",
        r"no software manifest matches 'litert-cpuu@1\.0\.0' \(searched: .*zoo\); "
        r"did you mean 'litert-cpu@1\.0\.0'\?$",
    ),
    (
        "task.model",
        "mobilenet-v1-0.25-128-quant-tflite@1.0.0",
        "mobilenet-v1-0.25-128-quant-tflite@2.0.0",
        r"did you mean 'mobilenet-v1-0\.25-128-quant-tflite@1\.0\.0'\?",
    ),
    (
        "task.dataset",
        "imagenet-samples@1.0.0",
        "zzzz@9.9.9",
        r"no dataset manifest matches 'zzzz@9\.9\.9'.*; known dataset manifests: "
        r"imagenet-samples@1\.0\.0, mnist-test@1\.0\.0$",
    ),
    (
        "task.hardware",
        "x86-64-cpu@1.0.0",
        LITERT_ID,
        rf"expected a hardware manifest, got software: '{LITERT_ID}'",
    ),
]


@pytest.mark.parametrize(
    ("field", "old", "new", "match"),
    BROKEN_REFERENCES,
    ids=["typo", "missing-version", "unknown-name", "other-kind"],
)
def test_an_unresolved_reference_ref_names_file_field_line_and_nearest(zoo, field, old, new, match):
    path = edit(zoo / REFERENCE, old, new)
    catalog = Catalog([zoo])
    [problem] = check_refs(reference_refs(load_manifest(path)), catalog)
    assert (problem.file, problem.field) == (str(path), field)
    assert problem.line == line_of(path, new)
    assert re.search(match, problem.message), problem.message


def test_a_ref_to_a_manifest_that_does_not_validate_says_so(zoo):
    edit(zoo / "software/litert-cpu.yaml", "environment: inline", "environment: inlin")
    catalog = Catalog([zoo])
    refs = reference_refs(load_manifest(zoo / REFERENCE))
    [problem] = check_refs(refs, catalog)
    assert problem.field == "task.software"
    assert "'litert-cpu@1.0.0' names a software manifest that cannot be used" in problem.message
    assert "litert-cpu.yaml" in problem.message and "environment" in problem.message


def test_a_log_without_software_and_hardware_names_only_model_and_dataset(zoo):
    path = zoo / REFERENCE
    edit(path, "  software: litert-cpu@1.0.0\n", "")
    edit(path, "  hardware: x86-64-cpu@1.0.0\n", "")
    refs = reference_refs(load_manifest(path))
    assert [(r.field, r.kind) for r in refs] == [
        ("task.model", "model"),
        ("task.dataset", "dataset"),
    ]


def test_an_id_resolves_like_a_name_at_version(zoo):
    catalog = Catalog([zoo])
    model = catalog.resolve("mnist-8@1.0.0", "model")
    assert unresolved(Ref("f", "task.model", "model", model.id), catalog) is None
    assert unresolved(Ref("f", "task.model", "model", model.id.upper()), catalog) is None


# (pattern, kind, None when it resolves, else what the message must say)
SWEEP_PATTERNS = [
    ("mnist-8", "model", None),
    ("mnist-8@1.0.0", "model", None),
    ("efficientnet-lite0-*", "model", None),
    ("models/mnist-8.yaml", "model", None),
    ("models/*.yaml", "model", None),
    ("hardware/x86-64-*.yaml", "hardware", None),
    ("mnist-9", "model", r"no model manifest matches 'mnist-9'.*did you mean 'mnist-8'\?"),
    (
        "efficientnet-lite9-*",
        "model",
        r"'efficientnet-lite9-\*' matches no model manifest; did you mean "
        r"'efficientnet-lite0-onnx' or 'efficientnet-lite0-pytorch'\?",
    ),
    ("models/nope.yaml", "model", r"'models/nope\.yaml' matches no file \(relative to .*zoo\)"),
    ("models/*.yml", "model", r"'models/\*\.yml' matches no file"),
    ("software/litert-cpu.yaml", "model", r"expected a model manifest, got software"),
    ("x86-64-cpu", "software", r"expected a software manifest, got hardware"),
]


@pytest.mark.parametrize(("pattern", "kind", "match"), SWEEP_PATTERNS)
def test_sweep_patterns_resolve_as_a_sweep_plan_resolves_them(zoo, pattern, kind, match):
    catalog = Catalog([zoo])
    [ref] = pattern_refs(str(zoo / "s.yaml"), "models", kind, [pattern], zoo)
    message = unresolved(ref, catalog)
    if match is None:
        assert message is None
    else:
        assert message is not None and re.search(match, message), message


def test_sweep_refs_carry_their_list_index_and_line(zoo):
    sweep = zoo.parent / "sweep.yaml"
    sweep.write_text(
        "name: s\nmodels: [mnist-8, mnist-9]\ndatasets:\n  - mnist-test\n  - mnist-tset\n"
    )
    refs = [
        *pattern_refs(str(sweep), "models", "model", ["mnist-8", "mnist-9"], sweep.parent),
        *pattern_refs(
            str(sweep), "datasets", "dataset", ["mnist-test", "mnist-tset"], sweep.parent
        ),
    ]
    problems = check_refs(refs, Catalog([zoo]))
    assert [(p.field, p.line) for p in problems] == [("models[1]", 2), ("datasets[1]", 5)]
    assert "did you mean 'mnist-test'?" in problems[1].message
