"""Results of an evaluation: per-sample Arrow rows, Parquet files, metrics, verdict, summary.

This layer never imports Ray or Docker: it works on tables, so a finished run
directory can be analysed and compared anywhere.
"""

from __future__ import annotations

__all__ = [
    "LEDGER_NAME",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUMMARY_NAME",
    "BatchOutputError",
    "Check",
    "ShardFile",
    "StorageError",
    "StorageLocation",
    "SummaryTally",
    "Verdict",
    "accuracy",
    "as_location",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_summary",
    "check_out_dir",
    "check_reference",
    "error_summary",
    "evaluated_samples",
    "format_summary_table",
    "is_run_dir",
    "iter_shards",
    "labelled_samples",
    "latency_summary",
    "manifest_entry",
    "parse_storage_options",
    "publish",
    "read_results",
    "rows_from_batch",
    "shard_path",
    "shard_table",
    "summarise",
    "throughput",
    "write_shard",
    "write_summary",
]

from dlspec_ray.results.metrics import (
    accuracy,
    evaluated_samples,
    labelled_samples,
    latency_summary,
    throughput,
)
from dlspec_ray.results.parquet_io import (
    ShardFile,
    atomic_write_bytes,
    atomic_write_text,
    iter_shards,
    read_results,
    shard_path,
    write_shard,
)
from dlspec_ray.results.reference import Check, Verdict, check_reference
from dlspec_ray.results.run_dir import LEDGER_NAME, check_out_dir, is_run_dir, publish
from dlspec_ray.results.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    BatchOutputError,
    rows_from_batch,
    shard_table,
)
from dlspec_ray.results.storage import (
    StorageError,
    StorageLocation,
    as_location,
    parse_storage_options,
)
from dlspec_ray.results.summary import (
    SUMMARY_NAME,
    SummaryTally,
    build_summary,
    error_summary,
    format_summary_table,
    manifest_entry,
    summarise,
    write_summary,
)
