from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    BatchOutputError,
    empty_batch,
    rows_from_batch,
    schema_version_of,
    shard_table,
)

TIMES = {"pre_ms": 1.5, "run_ms": 7.25, "post_ms": 0.5}


def rows(ids, labels=None, outputs=None, batch_id=0, shard_id=0, error=None, **times):
    return rows_from_batch(
        ids,
        labels,
        outputs,
        batch_id=batch_id,
        shard_id=shard_id,
        node_id="node-a",
        error=error,
        **{**TIMES, **times},
    )


def test_normal_batch_has_one_row_per_sample_with_every_column():
    outputs = {
        "top_k": np.array([[3, 1, 2], [0, 9, 8]], dtype=np.int32),
        "scores": np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]]),
        "output": np.array([[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]]),
    }
    batch = rows(["a", "b"], np.array([3, 9], dtype=np.uint8), outputs, batch_id=4, shard_id=2)
    batch.validate(full=True)
    assert batch.schema.equals(SCHEMA, check_metadata=True)
    got = batch.to_pylist()
    assert [r["sample_id"] for r in got] == ["a", "b"]
    assert [r["label"] for r in got] == [3, 9]
    assert [r["prediction"] for r in got] == [3, 0]
    assert [r["top_k"] for r in got] == [[3, 1, 2], [0, 9, 8]]
    assert got[0]["scores"] == pytest.approx([0.7, 0.2, 0.1], rel=1e-6)
    assert got[1]["output"] == [4.0, 5.0, 6.0, 7.0]
    for r in got:
        assert (r["batch_id"], r["shard_id"], r["batch_size"]) == (4, 2, 2)
        assert (r["pre_ms"], r["run_ms"], r["post_ms"]) == (1.5, 7.25, 0.5)
        assert r["node_id"] == "node-a"
        assert r["error"] is None


def test_optional_outputs_and_labels_are_null():
    batch = rows([1, 2, 3], None, {"top_k": [[4], [5], [6]]})
    assert batch.column("label").null_count == 3
    assert batch.column("scores").null_count == 3
    assert batch.column("output").null_count == 3
    assert batch.column("prediction").to_pylist() == [4, 5, 6]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (np.arange(3), ["0", "1", "2"]),
        ([10, 11, 12], ["10", "11", "12"]),
        (np.array(["x", "y", "z"]), ["x", "y", "z"]),
        (["x", 1, "z"], ["x", "1", "z"]),
        (pa.array(["p", "q", "r"]), ["p", "q", "r"]),
    ],
)
def test_sample_ids_become_strings(ids, expected):
    batch = rows(ids, None, {"top_k": np.zeros((3, 1), dtype=np.int64)})
    assert batch.column("sample_id").to_pylist() == expected


def test_labels_may_contain_missing_entries():
    batch = rows(["a", "b"], [1, None], {"top_k": [[1], [1]]})
    assert batch.column("label").to_pylist() == [1, None]


def test_one_dimensional_top_k_means_k_equals_one():
    batch = rows(["a", "b"], None, {"top_k": np.array([7, 8])})
    assert batch.column("top_k").to_pylist() == [[7], [8]]
    assert batch.column("prediction").to_pylist() == [7, 8]


def test_error_batch_keeps_ids_and_labels_but_no_outputs():
    batch = rows(
        ["a", "b", "c"],
        [1, 2, 3],
        {"top_k": [[1], [2], [3]]},  # ignored: a failed batch's outputs are not trusted
        batch_id=9,
        error="ValueError: boom",
        run_ms=None,
        post_ms=None,
    )
    batch.validate(full=True)
    got = batch.to_pylist()
    assert [r["label"] for r in got] == [1, 2, 3]
    for r in got:
        assert r["error"] == "ValueError: boom"
        assert r["prediction"] is None and r["top_k"] is None
        assert r["scores"] is None and r["output"] is None
        assert r["batch_id"] == 9 and r["batch_size"] == 3
        assert r["pre_ms"] == 1.5
        assert np.isnan(r["run_ms"]) and np.isnan(r["post_ms"])


@pytest.mark.parametrize("no_error", [None, ""])
def test_only_a_non_empty_message_marks_a_batch_failed(no_error):
    batch = rows(["a"], None, {"top_k": [[1]]}, error=no_error)
    assert batch.column("error").to_pylist() == [None]
    assert batch.column("prediction").to_pylist() == [1]


def test_error_batch_needs_no_outputs():
    batch = rows(["a"], None, None, error="KeyError: 'x'")
    assert batch.column("error").to_pylist() == ["KeyError: 'x'"]


@pytest.mark.parametrize(
    ("labels", "outputs", "match"),
    [
        (None, None, r"expected a mapping with 'top_k'.*got NoneType"),
        (None, {"scores": [[1.0], [1.0]]}, r"got a mapping with keys \['scores'\]"),
        (None, {"top_k": [[1], [2], [3]]}, r"'top_k'.*batch \(2 samples\), got shape \[3, 1\]"),
        (None, {"top_k": 5}, r"'top_k'.*got shape \[\]"),
        (None, {"top_k": [[0.5], [1.5]]}, r"'top_k': expected an integer array.*float64"),
        (None, {"top_k": [["a"], ["b"]]}, r"'top_k'.*numeric array"),
        (None, {"top_k": [[1, 2], [3, 4]], "scores": [[0.1], [0.2]]}, r"'scores'.*\[2, 2\]"),
        (None, {"top_k": [[1], [2]], "output": [[1.0]]}, r"'output'.*got shape \[1, 1\]"),
        ([1, 2, 3], {"top_k": [[1], [2]]}, r"labels: expected one label per sample \(2\), got 3"),
        (np.array([0.5, 1.0]), {"top_k": [[1], [2]]}, r"labels: expected integer.*float64"),
        (["a", "b"], {"top_k": [[1], [2]]}, r"labels: expected integer class labels"),
    ],
)
def test_malformed_outputs_are_reported(labels, outputs, match):
    with pytest.raises(BatchOutputError, match=match) as info:
        rows(["a", "b"], labels, outputs)
    assert isinstance(info.value, DLSpecError)


def test_missing_sample_id_is_reported():
    with pytest.raises(BatchOutputError, match=r"1 missing id"):
        rows(["a", None], None, {"top_k": [[1], [2]]})


def test_shard_table_concatenates_batches_into_one_record_batch():
    a = rows(["a", "b"], [1, 2], {"top_k": [[1], [2]]}, batch_id=0)
    b = rows(["c"], [3], None, batch_id=1, error="boom")
    shard = shard_table([a, b])
    assert isinstance(shard, pa.RecordBatch)
    assert shard.schema.equals(SCHEMA, check_metadata=True)
    assert shard.column("sample_id").to_pylist() == ["a", "b", "c"]
    assert shard.column("batch_size").to_pylist() == [2, 2, 1]
    assert shard.column("error").to_pylist() == [None, None, "boom"]


def test_shard_table_of_nothing_is_empty():
    assert shard_table([]).num_rows == 0
    assert shard_table([]).schema.equals(SCHEMA)


def test_schema_carries_its_version():
    assert schema_version_of(SCHEMA) == SCHEMA_VERSION
    assert schema_version_of(empty_batch().schema) == SCHEMA_VERSION
    assert schema_version_of(pa.schema([("x", pa.int64())])) is None
