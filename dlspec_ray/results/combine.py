"""Many runs as one table: the per-sample rows of each, with columns saying which run.

A sweep's question is "what changed between configurations", which is a group-by
over one table; so every row carries its run's metadata (run id, task label,
manifest names and versions, framework, environment fingerprint). The one-row-
per-task table is what the printed comparison shows.
"""

from __future__ import annotations

__all__ = [
    "METADATA_COLUMNS",
    "TASK_COLUMNS",
    "combine_runs",
    "format_task_table",
    "run_metadata",
    "task_row",
    "task_table",
]

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from dlspec_ray.results.index import environment_fingerprint
from dlspec_ray.results.metrics import STAGES
from dlspec_ray.results.parquet_io import read_results
from dlspec_ray.results.run_summary import RunSummary, StageLatency
from dlspec_ray.results.storage import Location

# Added to every per-sample row of a combined table. The results schema's own
# ``batch_size`` is the size of the row's batch, so the run's setting is ``config_batch_size``.
METADATA_COLUMNS = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("task", pa.string()),
        pa.field("sweep_id", pa.string()),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("dataset_version", pa.string()),
        pa.field("software", pa.string()),
        pa.field("software_version", pa.string()),
        pa.field("hardware", pa.string()),
        pa.field("hardware_version", pa.string()),
        pa.field("framework", pa.string()),
        pa.field("framework_version", pa.string()),
        pa.field("environment", pa.string()),
        pa.field("environment_fingerprint", pa.string()),
        pa.field("config_batch_size", pa.int64()),
        pa.field("status", pa.string()),
    ]
)

TASK_COLUMNS = pa.schema(
    [
        pa.field("task", pa.string()),
        pa.field("status", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("run_dir", pa.string()),
        pa.field("model", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("software", pa.string()),
        pa.field("hardware", pa.string()),
        pa.field("environment", pa.string()),
        pa.field("batch_size", pa.int64()),
        pa.field("samples", pa.int64()),
        pa.field("errors", pa.int64()),
        pa.field("top1", pa.float64()),
        pa.field("top5", pa.float64()),
        *(
            pa.field(f"{stage}_{q}_ms", pa.float64())
            for stage in STAGES
            for q in ("p50", "p90", "p99", "mean_per_sample")
        ),
        pa.field("throughput_sps", pa.float64()),
        pa.field("wall_s", pa.float64()),
        pa.field("reference", pa.string()),
        pa.field("error", pa.string()),
    ]
)


def run_metadata(
    summary: Mapping[str, Any], *, task: str = "", sweep_id: str = "", status: str | None = None
) -> dict[str, Any]:
    """The metadata columns' values for one run, from its summary."""
    run = RunSummary.from_dict(summary)
    out: dict[str, Any] = {"run_id": run.run_id or None, "task": task, "sweep_id": sweep_id}
    for kind in ("model", "dataset", "software", "hardware"):
        entry = run.task.get(kind)
        out[kind] = entry.name if entry is not None else None
        out[f"{kind}_version"] = entry.version if entry is not None else None
    out["framework"] = run.framework.get("name")
    out["framework_version"] = run.framework.get("version")
    out["environment"] = run.environment.get("kind")
    out["environment_fingerprint"] = environment_fingerprint(run.environment)
    out["config_batch_size"] = run.batch_size
    out["status"] = status or run.status
    return out


def combine_runs(runs: Sequence[tuple[Location, Mapping[str, Any]]]) -> pa.Table:
    """The rows of every run directory (local or a URI), with its run's ``metadata`` appended."""
    tables = []
    for run_dir, metadata in runs:
        rows = read_results(run_dir)
        n = rows.num_rows
        for column in METADATA_COLUMNS:
            value = metadata.get(column.name)
            rows = rows.append_column(column, pa.array([value] * n, type=column.type))
        tables.append(rows)
    if not tables:
        from dlspec_ray.results.schema import SCHEMA

        empty = SCHEMA.empty_table()
        for column in METADATA_COLUMNS:
            empty = empty.append_column(column, pa.array([], type=column.type))
        return empty
    return pa.concat_tables(tables)


def task_row(
    *,
    task: str,
    status: str,
    summary: Mapping[str, Any] | None,
    model: str,
    dataset: str,
    software: str,
    hardware: str | None,
    environment: str,
    batch_size: int,
    run_dir: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One row of the per-task table; a failed task has only its error."""
    run = RunSummary.from_dict(summary or {})
    row: dict[str, Any] = {
        "task": task,
        "status": status,
        "run_id": run.run_id or None,
        "run_dir": run_dir,
        "model": model,
        "dataset": dataset,
        "software": software,
        "hardware": hardware,
        "environment": environment,
        "batch_size": batch_size,
        "samples": run.samples,
        "errors": run.errors if summary else None,
        "top1": run.accuracy.get("top1"),
        "top5": run.accuracy.get("top5"),
        "throughput_sps": run.throughput_sps,
        "wall_s": run.wall_s,
        "reference": run.reference_verdict,
        "error": error,
    }
    for stage in STAGES:
        latency = run.latency_ms.get(stage) or StageLatency()
        for q in ("p50", "p90", "p99", "mean_per_sample"):
            row[f"{stage}_{q}_ms"] = latency.get(q)
    return row


def task_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=TASK_COLUMNS)


def format_task_table(table: pa.Table | Sequence[Mapping[str, Any]]) -> str:
    """The comparison table a sweep prints: accuracy, latency p50/p90/p99 per stage, throughput."""
    rows = table.to_pylist() if isinstance(table, pa.Table) else [dict(r) for r in table]
    header = ["task", "status", "samples", "top1", "top5"]
    header += [f"{stage} ms p50/p90/p99" for stage in STAGES]
    header += ["samples/s"]
    cells = [header]
    for row in rows:
        cells.append(
            [
                str(row["task"]),
                str(row["status"]),
                _int(row.get("samples")),
                _fixed(row.get("top1"), 4),
                _fixed(row.get("top5"), 4),
                *(
                    "/".join(_fixed(row.get(f"{stage}_{q}_ms"), 2) for q in ("p50", "p90", "p99"))
                    for stage in STAGES
                ),
                _fixed(row.get("throughput_sps"), 1, grouped=True),
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    right = {2, 3, 4, *range(5, len(header))}
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    failed = [r for r in rows if r.get("error")]
    for row in failed:
        message = str(row["error"]).strip().splitlines()
        lines.append(f"  {row['task']}: {message[-1] if message else ''}")
    return "\n".join(lines) + "\n"


def _fixed(value: Any, digits: int, grouped: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}" if grouped else f"{value:.{digits}f}"


def _int(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"
