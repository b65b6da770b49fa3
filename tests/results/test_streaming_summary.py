"""The streamed summary (``summarise``) equals the in-memory one (``build_summary``).

Run directories are real: Parquet shards and all, written by the results layer's
own writers, locally and in object storage (the local S3 server standing in for a
cloud bucket). Each is built to hit what the summary counts: failed batches with
many distinct messages, samples without labels, a batch with a shorter top_k,
unmeasured stage times, a batch split over two shard files, and a reference log
with accuracy checks and expected outputs (matching, wrong, failed, missing and
repeated samples).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from dlspec_ray.results.parquet_io import iter_shards, read_results, write_shard
from dlspec_ray.results.schema import SCHEMA, rows_from_batch
from dlspec_ray.results.summary import (
    MAX_ERROR_BATCHES,
    MAX_ERROR_MESSAGES,
    SummaryTally,
    build_summary,
    summarise,
)
from dlspec_ray.spec.types import AccuracyExpectation, ExpectedOutput, ReferenceLog, TaskRefs

CLASSES = 10

COMMON = {
    "run_id": "run-1",
    "task": {
        "model": {"id": "m", "ref": "net@1.0.0"},
        "dataset": {"id": "d", "ref": "digits@1.0.0"},
        "software": "rt@1.0.0",
        "hardware": None,
    },
    "environment": {"kind": "inline", "framework": {"name": "rt", "version": "1"}},
    "wall_s": 2.5,
    "batch_size": 8,
    "actors": 2,
    "started_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
    "finished_at": "2026-01-01T00:00:03+00:00",
    "version": "test",
}


def reference(expected=(), accuracy=None) -> ReferenceLog:
    return ReferenceLog(
        kind="reference",
        id="6f1c2a52-1d0e-4b8e-9a53-0d9d7f0b8c11",
        name="net-ref",
        version="1.0.0",
        description="",
        path=None,
        task=TaskRefs(model="net@1.0.0", dataset="digits@1.0.0"),
        accuracy={
            k: AccuracyExpectation(*v)
            for k, v in (
                accuracy
                or {"top1": (0.5, 0.01), "top5": (0.9, 0.01), "top7": (1.0, 0.0), "f1": (0.5, 0.1)}
            ).items()
        },
        expected_outputs=tuple(expected),
    )


def write_run(out, seed: int, *, shards: int = 3, failing: float = 0.3, split: bool = True):
    """A run directory of ``shards`` shard files of random batches; returns its rows' ids."""
    rng = np.random.default_rng(seed)
    next_id = 0
    files: list[list[pa.RecordBatch]] = [[] for _ in range(shards)]
    messages = [f"run: RuntimeError: failure kind {i}" for i in range(MAX_ERROR_MESSAGES + 2)]
    for shard_id in range(shards):
        for batch_id in range(int(rng.integers(4, 9))):
            n = int(rng.integers(1, 9))
            ids = [f"s{next_id + i}" for i in range(n)]
            next_id += n
            labels = [None if rng.random() < 0.2 else int(rng.integers(CLASSES)) for _ in range(n)]
            k = 3 if (shard_id, batch_id) == (1, 2) else 5  # one batch reports fewer classes
            top_k = np.stack([rng.permutation(CLASSES)[:k] for _ in range(n)])
            for row, label in enumerate(labels):  # mostly right, so accuracy is not ~0.1
                if label is not None and rng.random() < 0.6:
                    top_k[row, 0] = label
            error = None
            # The short batch must count, unless every batch is to fail.
            if rng.random() < failing and (k == 5 or failing >= 1.0):
                error = str(rng.choice(messages))
            times = [float(rng.gamma(2.0, 1.5)) for _ in range(3)]
            if rng.random() < 0.1:
                times[0] = None  # a stage time never measured
            files[shard_id].append(
                rows_from_batch(
                    ids,
                    labels,
                    {"top_k": top_k, "output": rng.normal(size=(n, CLASSES))},
                    batch_id=batch_id,
                    shard_id=shard_id,
                    node_id=f"node-{shard_id % 2}",
                    pre_ms=times[0],
                    run_ms=times[1],
                    post_ms=times[2],
                    error=error,
                )
            )
    if split and shards > 1:
        # A batch whose rows lie in two shard files counts once, in either summary.
        last = files[0][-1]
        files[0][-1] = last.slice(0, 1)
        files[1].insert(0, last.slice(1))
    for shard_id, batches in enumerate(files):
        write_shard(pa.Table.from_batches(batches, schema=SCHEMA), out, shard_id)
    return read_results(out).column("sample_id").to_pylist()


def expected_outputs(out) -> list[ExpectedOutput]:
    """One of each: right, wrong top1, wrong top5, failed, missing, and a repeated id."""
    table = read_results(out)
    rows = table.to_pylist()
    ok = [r for r in rows if r["error"] is None and len(r["top_k"] or []) >= 5]
    failed = next(r for r in rows if r["error"] is not None)
    right, wrong, wrong5 = ok[0], ok[1], ok[2]
    outside = next(c for c in range(CLASSES) if c not in wrong5["top_k"][:5])
    return [
        ExpectedOutput(right["sample_id"], right["prediction"], tuple(right["top_k"][:5])),
        ExpectedOutput(wrong["sample_id"], (wrong["prediction"] + 1) % CLASSES),
        ExpectedOutput(wrong5["sample_id"], wrong5["prediction"], (*wrong5["top_k"][:4], outside)),
        ExpectedOutput(failed["sample_id"], 0),
        ExpectedOutput("not-a-sample", 3),
    ]


def both(out, **kwargs):
    kwargs = {**COMMON, **kwargs}
    return summarise(out, **kwargs), build_summary(read_results(out), **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_streamed_summary_equals_the_in_memory_one(tmp_path, seed):
    out = tmp_path / "run"
    write_run(out, seed)
    ref = reference(expected_outputs(out))
    streamed, in_memory = both(out, reference=ref)
    assert streamed == in_memory
    # The run is what it was built to be, so the equality covers every part of the summary.
    assert in_memory["errors"]["count"] > 0 and in_memory["labelled_samples"] > 0
    assert in_memory["latency_ms"] and in_memory["accuracy"]["top1"] > 0
    assert "top5" not in in_memory["accuracy"]  # one batch has only three top_k entries
    checks = {c["name"]: c for c in in_memory["reference"]["checks"]}
    assert not checks["accuracy.top7"]["passed"] and "top_k" in checks["accuracy.top7"]["detail"]
    assert "measures top-K" in checks["accuracy.f1"]["detail"]
    detail = checks["expected_outputs"]["detail"]
    for part in ("expected top1", "expected top5", "failed:", "missing from the results"):
        assert part in detail
    assert checks["expected_outputs"]["actual"] == 1  # only the right one matched


def test_the_same_in_object_storage(s3_env):
    out = f"s3://{s3_env.make_bucket()}/runs/a"
    write_run(out, 7)
    ref = reference(expected_outputs(out))
    streamed, in_memory = both(out, reference=ref)
    assert streamed == in_memory and streamed["samples"] > 0


def test_without_a_reference_and_with_other_ks(tmp_path):
    out = tmp_path / "run"
    write_run(out, 11, split=False)
    for ks in [(1, 5), (1, 2, 3), (3,), (0, 1)]:
        streamed, in_memory = both(out, ks=ks)
        assert streamed == in_memory
    assert both(out, ks=(2,))[0]["accuracy"].keys() == {"top2"}


def test_many_failed_batches_keep_the_same_messages_and_ids(tmp_path):
    out = tmp_path / "run"
    write_run(out, 5, shards=4, failing=0.9)
    streamed, in_memory = both(out)
    assert streamed == in_memory
    errors = in_memory["errors"]
    assert len(errors["messages"]) == MAX_ERROR_MESSAGES  # more distinct ones were left out
    assert errors["batches"] > sum(e["batches"] for e in errors["messages"]) or any(
        len(e["batch_ids"]) == MAX_ERROR_BATCHES for e in errors["messages"]
    )


def test_a_run_where_everything_failed_or_nothing_was_labelled(tmp_path):
    failed = tmp_path / "failed"
    write_run(failed, 3, failing=1.0)
    streamed, in_memory = both(failed, reference=reference())
    assert streamed == in_memory
    assert streamed["accuracy"] == {} and streamed["latency_ms"] == {}
    assert streamed["evaluated_samples"] == 0

    unlabelled = tmp_path / "unlabelled"
    table = read_results(failed)
    write_shard(
        table.set_column(1, "label", pa.nulls(table.num_rows, pa.int64())).cast(SCHEMA),
        unlabelled,
        0,
    )
    streamed, in_memory = both(unlabelled, reference=reference())
    assert streamed == in_memory and streamed["labelled_samples"] == 0


def test_a_run_without_shards(tmp_path):
    out = tmp_path / "empty"
    (out / "samples").mkdir(parents=True)
    streamed, in_memory = both(out, reference=reference())
    assert streamed == in_memory and streamed["samples"] == 0


def test_only_the_needed_columns_are_read():
    without = SummaryTally().columns
    assert not {"output", "scores", "node_id", "sample_id", "prediction"} & set(without)
    with_outputs = SummaryTally(reference=reference([ExpectedOutput("s1", 1)])).columns
    assert {"sample_id", "prediction"} <= set(with_outputs)
    assert not {"output", "scores", "node_id"} & set(with_outputs)


def test_a_tally_fed_shard_by_shard_needs_no_reread(tmp_path):
    """What a runtime can do while writing shards: the same summary, nothing read back."""
    out = tmp_path / "run"
    write_run(out, 9)
    ref = reference(expected_outputs(out))
    tally = SummaryTally(reference=ref)
    for shard in iter_shards(out):  # whole shards, as a writer holds them
        tally.add(shard)
    kwargs = {k: v for k, v in COMMON.items()}
    assert tally.summary(**kwargs) == build_summary(read_results(out), reference=ref, **kwargs)
