"""The per-sample Arrow schema: one row per evaluated sample.

One row per sample (not per batch) so that results of two runs can be joined on
``sample_id`` whatever batch sizes or sharding they used. Stage times are per
batch and repeated on every row of the batch; ``metrics`` dedupes them.

Rows are built column-wise from numpy arrays: a batch of 10k samples must cost
about a millisecond, since the runtime builds one per batch on its hot path.
"""

from __future__ import annotations

__all__ = [
    "DIGEST_COLUMNS",
    "READABLE_VERSIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "BatchOutputError",
    "empty_batch",
    "rows_from_batch",
    "schema_version_of",
    "shard_table",
]

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from dlspec_ray.errors import DLSpecError

SCHEMA_VERSION = "2"
# Versions this one reads: 1 had no digest columns (read as nulls).
READABLE_VERSIONS = ("1", "2")
DIGEST_COLUMNS = ("pre_digest", "run_digest", "post_digest")
SCHEMA_VERSION_KEY = b"dlspec_ray.schema_version"

SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("label", pa.int64()),
        pa.field("prediction", pa.int64()),
        pa.field("top_k", pa.list_(pa.int64())),
        pa.field("scores", pa.list_(pa.float32())),
        pa.field("output", pa.list_(pa.float32())),
        pa.field("batch_id", pa.int64(), nullable=False),
        pa.field("shard_id", pa.int64(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("pre_ms", pa.float64(), nullable=False),
        pa.field("run_ms", pa.float64(), nullable=False),
        pa.field("post_ms", pa.float64(), nullable=False),
        # Per batch, each stage's output digest (environments.digest); null: not an array.
        *(pa.field(f"{stage}_digest", pa.string()) for stage in ("pre", "run", "post")),
        pa.field("node_id", pa.string(), nullable=False),
        pa.field("error", pa.string()),
    ],
    metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION.encode()},
)


class BatchOutputError(DLSpecError):
    """A model's post-process returned something that is not ``{"top_k": [B, k], ...}``.

    It is a ``DLSpecError`` because the cause is the model manifest's code; the
    runtime may instead record it as the batch's error and carry on.
    """


def schema_version_of(schema: pa.Schema) -> str | None:
    """The results schema version a table was written with, or None if it has none."""
    raw = (schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    return raw.decode() if raw is not None else None


def empty_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=SCHEMA)


def rows_from_batch(
    sample_ids: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray | None,
    outputs: Mapping[str, Any] | None,
    *,
    batch_id: int,
    shard_id: int,
    node_id: str,
    pre_ms: float | None,
    run_ms: float | None,
    post_ms: float | None,
    error: str | None = None,
    digests: Mapping[str, str | None] | None = None,
) -> pa.RecordBatch:
    """The rows of one batch.

    ``outputs`` is what the model's post-process returned; it is ignored when
    ``error`` is a non-empty message, because a failed batch has no trustworthy
    outputs (its rows keep their ids and labels so failures trace to samples).
    A stage time that was never measured (the batch failed before it) may be
    None and is stored as NaN; metrics ignore failed batches' times anyway.
    """
    ids = _string_ids(sample_ids)
    n = len(ids)
    label_col = _labels(labels, n)
    if error:
        message = str(error)
        prediction = pa.nulls(n, pa.int64())
        top_k = pa.nulls(n, SCHEMA.field("top_k").type)
        scores = pa.nulls(n, SCHEMA.field("scores").type)
        output = pa.nulls(n, SCHEMA.field("output").type)
        error_col = pa.repeat(pa.scalar(message, pa.string()), n)
    else:
        prediction, top_k, scores, output = _output_columns(outputs, n)
        error_col = pa.nulls(n, pa.string())
    columns = [
        ids,
        label_col,
        prediction,
        top_k,
        scores,
        output,
        pa.array(np.full(n, batch_id, dtype=np.int64)),
        pa.array(np.full(n, shard_id, dtype=np.int64)),
        pa.array(np.full(n, n, dtype=np.int32)),
        *(pa.array(np.full(n, _ms(t), dtype=np.float64)) for t in (pre_ms, run_ms, post_ms)),
        *(
            pa.repeat(pa.scalar((digests or {}).get(stage), pa.string()), n)
            for stage in ("pre", "run", "post")
        ),
        pa.repeat(pa.scalar(str(node_id), pa.string()), n),
        error_col,
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def shard_table(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch:
    """The batches of one shard as a single record batch (one Parquet file, one row group)."""
    if not batches:
        return empty_batch()
    table = pa.Table.from_batches(list(batches), schema=SCHEMA).combine_chunks()
    out = table.to_batches()
    return out[0] if out else empty_batch()


def _ms(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _string_ids(sample_ids: Sequence[Any] | np.ndarray) -> pa.Array:
    if isinstance(sample_ids, pa.Array):
        arr = sample_ids
    elif isinstance(sample_ids, np.ndarray):
        arr = pa.array(sample_ids.ravel())
    else:
        try:
            arr = pa.array(list(sample_ids))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arr = pa.array([str(s) for s in sample_ids], type=pa.string())
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    if arr.null_count:
        raise BatchOutputError(
            f"sample ids: expected one id (a string or an int) per sample, got "
            f"{arr.null_count} missing id(s); make the dataset's reader return an id for "
            "every sample"
        )
    return arr


def _labels(labels: Sequence[Any] | np.ndarray | None, n: int) -> pa.Array:
    if labels is None:
        return pa.nulls(n, pa.int64())
    if isinstance(labels, np.ndarray):
        labels = labels.ravel()
        if labels.dtype.kind not in "iub":
            raise BatchOutputError(
                f"labels: expected integer class labels, got a {labels.dtype} array; make the "
                "dataset's reader return int labels"
            )
        arr = pa.array(labels.astype(np.int64, copy=False))
    else:
        try:
            arr = pa.array(list(labels), type=pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise BatchOutputError(
                f"labels: expected integer class labels (or None), got {exc}; make the "
                "dataset's reader return int labels"
            ) from None
    if len(arr) != n:
        raise BatchOutputError(
            f"labels: expected one label per sample ({n}), got {len(arr)}; make the dataset's "
            "reader return as many labels as ids"
        )
    return arr


def _output_columns(
    outputs: Mapping[str, Any] | None, n: int
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    if not isinstance(outputs, Mapping) or "top_k" not in outputs:
        got = type(outputs).__name__
        if isinstance(outputs, Mapping):
            got = f"a mapping with keys {sorted(map(str, outputs))}"
        raise BatchOutputError(
            f"post-process output: expected a mapping with 'top_k' (int array [batch, k]), got "
            f"{got}; make the model's post-process return {{'top_k': ...}}"
        )
    top_k = _rows(outputs["top_k"], "top_k", n)
    if top_k.dtype.kind not in "iu":
        raise BatchOutputError(
            f"post-process output 'top_k': expected an integer array [batch, k], got dtype "
            f"{top_k.dtype}; return class indices, e.g. np.argsort(...)[:, ::-1][:, :k]"
        )
    top_k = top_k.astype(np.int64, copy=False)
    k = top_k.shape[1]
    prediction = pa.array(top_k[:, 0]) if k else pa.nulls(n, pa.int64())
    scores_col = pa.nulls(n, SCHEMA.field("scores").type)
    if outputs.get("scores") is not None:
        scores = _rows(outputs["scores"], "scores", n)
        if scores.shape[1] != k:
            raise BatchOutputError(
                f"post-process output 'scores': expected shape [batch, k] = [{n}, {k}] to match "
                f"'top_k', got {list(scores.shape)}; return one score per top_k entry"
            )
        scores_col = _list_column(scores, np.float32, "scores")
    output_col = pa.nulls(n, SCHEMA.field("output").type)
    if outputs.get("output") is not None:
        output_col = _list_column(_rows(outputs["output"], "output", n), np.float32, "output")
    return prediction, _list_column(top_k, np.int64, "top_k"), scores_col, output_col


def _rows(value: Any, key: str, n: int) -> np.ndarray:
    """``value`` as a 2-D array of ``n`` rows: [n] becomes [n, 1], [n, a, b] becomes [n, a*b]."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise BatchOutputError(
            f"post-process output {key!r}: expected an array [batch, ...], got "
            f"{type(value).__name__} ({exc})"
        ) from None
    if arr.ndim == 0 or arr.shape[0] != n or arr.dtype.kind not in "iubf":
        raise BatchOutputError(
            f"post-process output {key!r}: expected a numeric array whose first axis is the "
            f"batch ({n} samples), got shape {list(arr.shape)} of {arr.dtype}; return one row "
            "per sample"
        )
    return arr.reshape(n, -1)


def _list_column(values: np.ndarray, dtype: type[np.generic], key: str) -> pa.ListArray:
    n, width = values.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] > np.iinfo(np.int32).max:
        raise BatchOutputError(
            f"post-process output {key!r}: {offsets[-1]} values in one batch is over the 2**31 "
            "a results column holds; use a smaller batch size or drop 'output'"
        )
    flat = pa.array(np.ascontiguousarray(values, dtype=dtype).ravel())
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), flat)
