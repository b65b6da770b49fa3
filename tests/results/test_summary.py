from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dlspec_ray.results.parquet_io import read_results, write_shard
from dlspec_ray.results.schema import SCHEMA, rows_from_batch, shard_table
from dlspec_ray.results.summary import (
    MAX_ERROR_BATCHES,
    MAX_ERROR_MESSAGES,
    build_summary,
    error_summary,
    format_summary_table,
    manifest_entry,
    write_summary,
)
from dlspec_ray.spec.types import (
    AccuracyExpectation,
    DatasetManifest,
    ExpectedOutput,
    ModelManifest,
    ReferenceLog,
    TaskRefs,
)

MODEL = ModelManifest(
    kind="model",
    id="0b6f3f0e-3c1e-4a55-8a38-5a3f3e3c1b01",
    name="mnist-8",
    version="1.0.0",
    description="",
    path=None,
)
DATASET = DatasetManifest(
    kind="dataset",
    id="9d2c4c1a-7d7e-4f1b-b1a2-6f6a8c2e0d02",
    name="mnist-test",
    version="1.0.0",
    description="",
    path=None,
)
REFERENCE = ReferenceLog(
    kind="reference",
    id="5e7a1b3c-2f4d-4e6a-8b9c-1d2e3f4a5b03",
    name="mnist-8-ref",
    version="1.0.0",
    description="",
    path=None,
    task=TaskRefs(model="mnist-8@1.0.0", dataset="mnist-test@1.0.0"),
    accuracy={
        "top1": AccuracyExpectation(0.75, 0.0005),
        "top2": AccuracyExpectation(1.0, 0.0),
    },
    expected_outputs=(ExpectedOutput("0", 0), ExpectedOutput("9", 10)),
)
STARTED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
FINISHED = datetime(2025, 1, 2, 3, 4, 7, 500000, tzinfo=timezone.utc)


def run_table() -> pa.Table:
    """Three batches of 4 on two shards; batch 1 failed. Of the 8 evaluated samples,
    6 are right at top1 and all 8 at top2: top1 = 0.75, top2 = 1.0."""
    labels = np.arange(12) % 10
    predictions = labels.copy()
    predictions[[2, 9]] += 1
    top_k = np.stack([predictions, labels, labels + 20], axis=1)

    def batch(b, error=None):
        s = slice(4 * b, 4 * b + 4)
        return rows_from_batch(
            [str(i) for i in range(4 * b, 4 * b + 4)],
            labels[s],
            {"top_k": top_k[s]},
            batch_id=b,
            shard_id=b // 2,
            node_id="node-1",
            pre_ms=1.0 + b,
            run_ms=10.0 * (b + 1),
            post_ms=0.25,
            error=error,
        )

    return pa.Table.from_batches(
        [batch(0), batch(1, error="Traceback\nValueError: bad shape"), batch(2)], schema=SCHEMA
    )


def summary_of(table=None, reference=REFERENCE, **overrides):
    kwargs = dict(
        run_id="run-42",
        task={"model": MODEL, "dataset": DATASET, "software": "onnxruntime-cpu@1.32.0"},
        environment={
            "kind": "inline",
            "python": "3.11.9",
            "path": Path("/usr/bin"),
            "framework": {"name": "onnxruntime", "version": np.str_("1.20.1")},
            "nodes": ["a" * 56, "b" * 56],
        },
        wall_s=2.0,
        batch_size=4,
        actors=2,
        started_at=STARTED,
        finished_at=FINISHED,
        reference=reference,
    )
    kwargs.update(overrides)
    return build_summary(run_table() if table is None else table, **kwargs)


def test_summary_has_every_design_field_and_is_strict_json():
    s = summary_of()
    for key in (
        "run_id",
        "task",
        "environment",
        "samples",
        "errors",
        "accuracy",
        "latency_ms",
        "throughput_sps",
        "wall_s",
        "batch_size",
        "actors",
        "reference",
        "started_at",
        "finished_at",
        "dlspec_ray_version",
    ):
        assert key in s, key
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert s["run_id"] == "run-42"
    assert s["samples"] == 12
    assert s["evaluated_samples"] == 8
    assert s["labelled_samples"] == 8
    assert s["throughput_sps"] == pytest.approx(4.0)
    assert (s["wall_s"], s["batch_size"], s["actors"]) == (2.0, 4, 2)
    assert s["started_at"] == "2025-01-02T03:04:05+00:00"
    assert s["finished_at"] == "2025-01-02T03:04:07.500000+00:00"
    assert s["environment"] == {
        "kind": "inline",
        "python": "3.11.9",
        "path": "/usr/bin",
        "framework": {"name": "onnxruntime", "version": "1.20.1"},
        "nodes": ["a" * 56, "b" * 56],
    }
    assert s["dlspec_ray_version"]


def test_summary_task_names_each_manifest():
    task = summary_of()["task"]
    assert task["model"] == {
        "id": MODEL.id,
        "name": "mnist-8",
        "version": "1.0.0",
        "ref": "mnist-8@1.0.0",
    }
    assert task["dataset"]["ref"] == "mnist-test@1.0.0"
    assert task["software"] == {"ref": "onnxruntime-cpu@1.32.0"}
    assert task["hardware"] is None
    assert task["reference"] == manifest_entry(REFERENCE)
    assert summary_of(reference=None)["task"]["reference"] is None
    # A task mapping whose reference slot is empty still names the reference checked.
    with_slot = summary_of(task={"model": MODEL, "dataset": DATASET, "reference": None})
    assert with_slot["task"]["reference"]["ref"] == "mnist-8-ref@1.0.0"


def test_summary_metrics_and_verdict():
    s = summary_of()
    # top2 is named by the reference log, so it is measured besides top1 and top5.
    assert s["accuracy"] == pytest.approx({"top1": 0.75, "top2": 1.0})
    assert s["latency_ms"]["run"] == pytest.approx(
        {"p50": 20.0, "p90": 28.0, "p99": 29.8, "mean": 20.0, "mean_per_sample": 5.0}
    )
    assert set(s["latency_ms"]) == {"pre", "run", "post"}
    ref = s["reference"]
    assert ref["verdict"] == "PASS"
    assert ref["reference"] == "mnist-8-ref@1.0.0"
    assert [c["name"] for c in ref["checks"]] == [
        "accuracy.top1",
        "accuracy.top2",
        "expected_outputs",
    ]


def test_summary_without_reference_has_null_verdict():
    s = summary_of(reference=None)
    assert s["reference"] is None
    assert set(s["accuracy"]) == {"top1"}  # top_k has 3 entries: no top5


def test_error_summary_groups_distinct_messages_with_batch_ids():
    batches = []
    for b in range(30):
        error = None if b % 3 == 0 else f"Error kind {b % 2}" if b < 20 else f"Error {b}"
        batches.append(
            rows_from_batch(
                [f"{b}-{i}" for i in range(2)],
                None,
                {"top_k": [[0], [0]]},
                batch_id=b,
                shard_id=0,
                node_id="n",
                pre_ms=1.0,
                run_ms=1.0,
                post_ms=1.0,
                error=error,
            )
        )
    errors = error_summary(pa.Table.from_batches(batches, schema=SCHEMA))
    assert errors["count"] == 2 * 20
    assert errors["batches"] == 20
    assert len(errors["messages"]) == MAX_ERROR_MESSAGES
    first = errors["messages"][0]
    assert first["message"] == "Error kind 1"
    assert first["batch_ids"] == [1, 5, 7, 11, 13, 17, 19][:MAX_ERROR_BATCHES]
    assert (first["batches"], first["samples"]) == (7, 14)
    assert errors["messages"][1]["batch_ids"] == [2, 4, 8, 10, 14, 16]
    assert [m["message"] for m in errors["messages"][2:]] == ["Error 20", "Error 22", "Error 23"]


def test_error_summary_of_a_clean_run():
    table = run_table().filter(pc.is_null(run_table().column("error")))
    assert error_summary(table) == {"count": 0, "batches": 0, "messages": []}


def test_summary_of_a_run_that_produced_nothing():
    s = summary_of(SCHEMA.empty_table(), reference=None, wall_s=0.0)
    assert s["samples"] == 0
    assert s["accuracy"] == {} and s["latency_ms"] == {}
    assert s["throughput_sps"] == 0.0
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert "no batch completed" in format_summary_table(s)


def test_write_summary_is_atomic_and_reads_back(tmp_path):
    s = summary_of()
    path = write_summary(tmp_path, s)
    assert path == tmp_path / "summary.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert json.loads(path.read_text()) == s


def test_write_summary_refuses_nan_and_keeps_the_previous_file(tmp_path):
    write_summary(tmp_path, {"ok": 1})
    with pytest.raises(ValueError, match="Out of range float"):
        write_summary(tmp_path, {"bad": float("nan")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"ok": 1}


def test_summary_from_files_on_disk(tmp_path):
    table = run_table()
    write_shard(shard_table(table.slice(0, 8).to_batches()), tmp_path, 0)
    write_shard(shard_table(table.slice(8).to_batches()), tmp_path, 1)
    assert summary_of(read_results(tmp_path)) == summary_of(table)


def test_table_shows_the_numbers():
    text = format_summary_table(summary_of())
    for expected in (
        "run-42",
        "mnist-8@1.0.0",
        "mnist-test@1.0.0",
        "onnxruntime-cpu@1.32.0",
        "inline  python=3.11.9  path=/usr/bin  framework=onnxruntime 1.20.1  nodes=2",
        "12",  # samples
        "33.33% of samples, in 1 batch",
        "0.7500",  # top1
        "1.0000",  # top2
        "over 8 labelled samples",
        "4.0",  # throughput
        "2.000",  # wall time
        "20.000",  # run p50 and mean
        "28.000",  # run p90
        "29.800",  # run p99
        "5.0000",  # run per sample
        "batch 1: ValueError: bad shape",
        "reference mnist-8-ref@1.0.0: PASS",
        "accuracy.top1",
        "0.75000",
        "+0.00000",
        "0.00050",
        "expected_outputs",
    ):
        assert expected in text, expected
    assert "FAIL" not in text


def test_table_shows_failed_checks_with_deltas_and_details():
    ref = ReferenceLog(
        kind="reference",
        id=REFERENCE.id,
        name="strict",
        version="2.0.0",
        description="",
        path=None,
        accuracy={"top1": AccuracyExpectation(0.8, 0.01), "top9": AccuracyExpectation(1.0, 0.0)},
        expected_outputs=(ExpectedOutput("2", 2),),
    )
    text = format_summary_table(summary_of(reference=ref))
    assert "reference strict@2.0.0: FAIL" in text
    check_lines = {line.split()[0]: line.split() for line in text.splitlines() if "  " in line}
    assert check_lines["accuracy.top1"][1:] == ["0.8000", "0.7500", "-0.0500", "0.0100", "FAIL"]
    assert check_lines["accuracy.top9"][1:] == ["1.0000", "-", "-", "0.0000", "FAIL"]
    assert check_lines["expected_outputs"][1:] == ["1", "0", "-1", "0", "FAIL"]
    assert "- accuracy.top1: off by -0.05" in text
    assert "- accuracy.top9: top9 was not measured" in text
    assert "- expected_outputs: 1 of 1 differ: sample '2': expected top1 2, got 3" in text


def test_table_columns_are_aligned():
    lines = format_summary_table(summary_of()).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("latency (ms)"))
    block = lines[start : start + 4]
    # Right-aligned numbers: every row of the block ends in the same column,
    # and each value column ends where its header does.
    assert len({len(line) for line in block}) == 1
    for header in ("p50", "p90", "p99", "mean/sample"):
        end = block[0].index(header) + len(header)
        assert all(line[end - 1] != " " and line[end : end + 1] in (" ", "") for line in block)


def test_table_without_reference_or_errors():
    table = run_table()
    table = table.filter(pc.is_null(table.column("error")))
    text = format_summary_table(summary_of(table, reference=None))
    assert "reference: none given" in text
    assert "first errors" not in text
    assert "errors" in text


def test_table_shows_intervals_a_subset_and_the_warm_up():
    text = format_summary_table(summary_of(warmup=1, subset_of=100))
    lines = text.splitlines()
    top1 = next(line for line in lines if line.strip().startswith("top1 "))
    assert "95% CI [0.4093, 0.9285], over 8 labelled samples" in top1
    assert "12 of 100" in text and "--limit: the accuracy is this subset's" in text
    assert "(percentiles over batches after the first 1 (--warmup);" in text
    check = next(line for line in lines if "accuracy.top1" in line)
    assert check.rstrip().endswith("skipped")
    assert "- accuracy.top1: skipped (a subset of 8 of 100 samples)" in text
