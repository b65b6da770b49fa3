"""summary.json against its schema: real runs of each kind validate, and a broken summary
is reported with the path of the field that is wrong.

The summaries are those real runs write (mnist-8 on a real local Ray, and a real LoadGen
run), so the schema is checked against the writer, not against a hand-made example.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dlspec_ray.cli import main
from dlspec_ray.results.summary_schema import (
    SUMMARY_SCHEMA_VERSION,
    check_summary,
    summary_schema,
)

REPO = Path(__file__).resolve().parents[2]
TASK = ("run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0", "--no-progress")
REFERENCE = "mnist-8-onnxruntime-reference@1.0.0"
# The model's pre-process, and one that raises on the batches whose pixel sum is a multiple
# of 5: with --batch-size 16, 6 of the first 16 batches (96 of 256 samples).
FLAKY_PRE = """      x = batch.astype(np.float32) / np.float32(255.0)"""
FAILING_PRE = """      if int(batch.sum()) % 5 == 0:
          raise ValueError("unlucky batch")
      x = batch.astype(np.float32) / np.float32(255.0)"""
FAILING_SHAPE = (
    "--limit",
    "256",
    "--batch-size",
    "16",
    "--retries",
    "0",
    "--batches-per-call",
    "1",
)


def read_summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def assert_valid(summary: dict[str, Any]) -> None:
    """Valid, and every top-level field it has is one the schema describes."""
    assert check_summary(summary) == []
    undescribed = sorted(set(summary) - set(summary_schema()["properties"]))
    assert undescribed == [], f"fields summary.schema.json does not describe: {undescribed}"


@pytest.fixture(scope="module")
def plain_summary(tmp_path_factory, ray_session) -> dict[str, Any]:
    """A plain inline run of the first 500 samples, checked against the reference log."""
    out = tmp_path_factory.mktemp("plain") / "run"
    cache = tmp_path_factory.getbasetemp() / "artifact-cache"  # as conftest's _isolated_cache
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)  # ./manifests resolves the name@version refs
        patch.setenv("DLSPEC_RAY_CACHE", str(cache))
        code = main([*TASK, "--reference", REFERENCE, "--limit", "500", "--out", str(out)])
    assert code == 0
    return read_summary(out)


def test_the_schema_is_a_valid_json_schema_of_its_version():
    schema = summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:dlspec-ray:summary:{SUMMARY_SCHEMA_VERSION}"
    assert schema["type"] == "object" and schema["additionalProperties"] is True
    assert "summary_schema_version" not in schema["required"]  # not written yet
    schema["title"] = "changed"
    assert summary_schema()["title"] != "changed"  # each call is a fresh copy


def test_a_plain_subset_run_with_a_reference_is_valid(plain_summary):
    assert plain_summary["status"] == "ok" and plain_summary["subset_of"] == 10_000
    assert plain_summary["reference"]["verdict"] == "PASS"
    assert_valid(plain_summary)


@pytest.mark.usefixtures("ray_session", "repo_cwd")
@pytest.mark.parametrize(
    ("args", "expected_code", "fields"),
    [
        pytest.param(
            ("--limit", "256", "--batch-size", "64", "--repeats", "2", "--warmup", "1"),
            0,
            {"status": "ok", "warmup_batches": 1},
            id="repeats-and-warmup",
        ),
        pytest.param(
            ("--limit", "256", "--batch-size", "64", "--trace"),
            0,
            {"status": "ok"},
            id="trace",
        ),
        pytest.param(
            (*FAILING_SHAPE, "--max-errors", "256"),
            0,
            {"status": "ok"},
            id="failures-within-max-errors",
        ),
        pytest.param(
            (*FAILING_SHAPE, "--max-errors", "0"),
            1,
            {"status": "error_budget_exceeded"},
            id="failures-past-max-errors",
        ),
    ],
)
def test_ray_runs_of_each_kind_are_valid(mnist_manifests, tmp_path, args, expected_code, fields):
    if "--max-errors" in args:
        mnist_manifests.edit("model", FLAKY_PRE, FAILING_PRE)
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args(*args, "--out", str(out))) == expected_code
    summary = read_summary(out)
    assert {k: summary[k] for k in fields} == fields
    if "--repeats" in args:
        assert summary["repeats"]["passes"] == 2
    if "--trace" in args:
        assert summary["trace"]["file"] == "trace.json"
    if "--max-errors" in args:  # the failing stage did fail, and its samples were quarantined
        assert summary["errors"]["count"] > 0 and summary["errors"]["messages"]
        assert summary["quarantine"]["samples"] > 0 and summary["quarantine"]["sample_ids"]
    assert_valid(summary)


@pytest.mark.usefixtures("ray_session", "repo_cwd")
def test_a_run_that_fails_its_reference_is_valid(mnist_manifests, tmp_path):
    reference = mnist_manifests.edit(
        "reference", '{sample: "0", top1: 7}', '{sample: "0", top1: 3}'
    )
    out = tmp_path / "run"
    args = mnist_manifests.run_args("--reference", reference, "--limit", "256", "--out", str(out))
    assert main(args) == 1
    summary = read_summary(out)
    assert summary["status"] == "reference_failed"
    assert summary["reference"]["verdict"] == "FAIL"
    assert_valid(summary)


def test_a_loadgen_run_is_valid(repo_cwd, tmp_path):
    pytest.importorskip("mlperf_loadgen", reason="the mlcommons-loadgen wheel is not installed")
    out = tmp_path / "run"
    args = [
        *TASK, "--scenario", "offline", "--mode", "both", "--limit", "256",
        "--min-duration", "0.2", "--min-query-count", "8", "--out", str(out),
    ]  # fmt: skip
    code = main(args)
    summary = read_summary(out)
    # Whether 0.2 s was long enough for LoadGen is the machine's business: VALID or not,
    # the summary is written, and is valid.
    assert (code, summary["status"]) in ((0, "ok"), (1, "loadgen_invalid"))
    assert summary["loadgen"]["mode"] == "both" and summary["loadgen"]["compliance"]["passed"]
    assert_valid(summary)


def test_a_summary_that_is_not_an_object_is_reported_under_where():
    assert check_summary([], where="runs/x/summary.json") == [
        "runs/x/summary.json: [] is not of type 'object'"
    ]


DELETE = object()

BROKEN = [
    # (path to the field, the value it is given or DELETE, the problem's path, its message)
    (("throughput_sps",), "fast", "throughput_sps", "is not of type 'number'"),
    (("accuracy", "top1"), 1.5, "accuracy.top1", "is greater than the maximum of 1"),
    (("run_id",), DELETE, "run_id", "is required"),
    (("latency_ms", "run", "p50"), -0.5, "latency_ms.run.p50", "is less than the minimum of 0"),
    (("status",), "done", "status", '"done" is not one of "ok", '),
    (("errors", "count"), -1, "errors.count", "is less than the minimum of 0"),
    (("samples",), 2.5, "samples", "is not of type 'integer'"),
    (("task", "model", "ref"), 7, "task.model.ref", "is not of type 'string'"),
    (("environment", "kind"), DELETE, "environment.kind", "is required"),
    (("reference", "verdict"), "MAYBE", "reference.verdict", '"MAYBE" is not one of'),
    (("reference", "checks", 0, "basis"), "guess", "reference.checks[0].basis", "is not one of"),
    (("accuracy_ci95", "top1", "low"), -0.1, "accuracy_ci95.top1.low", "less than the minimum"),
    (("started_at",), "yesterday", "started_at", "does not match"),
    (("subset_of",), "all", "subset_of", "is not of type 'integer', 'null'"),
    (("phases_s",), DELETE, "phases_s", "is required"),  # every run on Ray has it
    (("dlspec_ray_version",), DELETE, "dlspec_ray_version", "is required"),
    (("summary_schema_version",), 0, "summary_schema_version", "less than the minimum of 1"),
    (("errors", "messages"), [{"message": "m"}], "errors.messages[0].batch_ids", "is required"),
]


@pytest.mark.parametrize(("field", "value", "path", "message"), BROKEN, ids=[b[2] for b in BROKEN])
def test_a_broken_summary_is_reported_with_its_field_path(
    plain_summary, field, value, path, message
):
    broken = copy.deepcopy(plain_summary)
    parent = broken
    for key in field[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[field[-1]]
    else:
        parent[field[-1]] = value
    problems = check_summary(broken)
    named = [p for p in problems if p.startswith(f"{path}: ")]
    assert named and message in named[0], problems
    if path != "errors.messages[0].batch_ids":  # there, batches and samples are missing too
        assert problems == named, "one broken field, one problem"
