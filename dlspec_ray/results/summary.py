"""``summary.json``: what one run measured, and the table ``dlspec-ray run`` prints.

The summary takes the task as plain mappings (or spec manifests) rather than the
runtime's own types, so that results/ can be used, and tested, without Ray.
Everything in it is plain JSON: a summary written by one version can be read
back and compared by another.
"""

from __future__ import annotations

__all__ = [
    "MAX_ERROR_BATCHES",
    "MAX_ERROR_MESSAGES",
    "SUMMARY_NAME",
    "build_summary",
    "error_summary",
    "format_summary_table",
    "manifest_entry",
    "write_summary",
]

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dlspec_ray.results.metrics import (
    STAGES,
    accuracy,
    evaluated_samples,
    labelled_samples,
    latency_summary,
    throughput,
)
from dlspec_ray.results.parquet_io import atomic_write_text
from dlspec_ray.results.reference import check_reference
from dlspec_ray.results.schema import SCHEMA_VERSION
from dlspec_ray.spec.types import Manifest, ReferenceLog

SUMMARY_NAME = "summary.json"
TASK_KINDS = ("model", "dataset", "software", "hardware")
# Distinct error messages kept in the summary, and failed batch ids listed per message:
# enough to diagnose, while the Parquet rows keep every one.
MAX_ERROR_MESSAGES = 5
MAX_ERROR_BATCHES = 10
_MAX_MESSAGE_CHARS = 2000
_TOP_K_NAME = re.compile(r"^top(\d+)$")


def manifest_entry(manifest: Manifest) -> dict[str, str]:
    """How a summary names a manifest: its id and ``name@version``."""
    return {
        "id": manifest.id,
        "name": manifest.name,
        "version": manifest.version,
        "ref": manifest.ref,
    }


def build_summary(
    table: pa.Table,
    *,
    run_id: str,
    task: Mapping[str, Manifest | Mapping[str, Any] | str | None],
    environment: Mapping[str, Any],
    wall_s: float,
    batch_size: int,
    actors: int,
    started_at: datetime | str,
    finished_at: datetime | str,
    reference: ReferenceLog | None = None,
    ks: Iterable[int] = (1, 5),
    version: str | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` of a run whose per-sample rows are ``table``.

    ``task`` maps ``model``/``dataset``/``software``/``hardware`` (and optionally
    ``reference``) to a manifest, a mapping such as ``{"id": ..., "ref": ...}``, or a
    ref string. Accuracy covers ``ks`` plus any topK the reference log names, so
    the log's checks never fail for want of a metric the run could compute.
    Throughput counts samples evaluated without an error.
    """
    wanted_ks = set(ks)
    if reference is not None:
        wanted_ks |= {int(m.group(1)) for n in reference.accuracy if (m := _TOP_K_NAME.match(n))}
    measured = accuracy(table, sorted(wanted_ks))
    verdict = check_reference(reference, measured, table) if reference is not None else None
    task_out = {kind: _task_entry(task.get(kind)) for kind in TASK_KINDS}
    task_out["reference"] = _task_entry(task.get("reference") or reference)
    for kind, value in task.items():
        task_out.setdefault(str(kind), _task_entry(value))
    evaluated = evaluated_samples(table)
    summary: dict[str, Any] = {
        "run_id": str(run_id),
        "dlspec_ray_version": version or _package_version(),
        "results_schema_version": SCHEMA_VERSION,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "task": task_out,
        "environment": dict(environment),
        "samples": table.num_rows,
        "evaluated_samples": evaluated,
        "labelled_samples": labelled_samples(table),
        "errors": error_summary(table),
        "accuracy": measured,
        "latency_ms": latency_summary(table),
        "throughput_sps": throughput(evaluated, wall_s),
        "wall_s": float(wall_s),
        "batch_size": int(batch_size),
        "actors": int(actors),
        "reference": verdict.as_dict() if verdict is not None else None,
    }
    return _jsonable(summary)


def error_summary(table: pa.Table) -> dict[str, Any]:
    """Failed samples and batches, with the first distinct messages and their batch ids."""
    failed = table.filter(pc.is_valid(table.column("error")))
    if failed.num_rows == 0:
        return {"count": 0, "batches": 0, "messages": []}
    shard_ids = failed.column("shard_id").to_numpy()
    batch_ids = failed.column("batch_id").to_numpy()
    _, first = np.unique(np.stack([shard_ids, batch_ids], axis=1), axis=0, return_index=True)
    first.sort()
    messages: dict[str, dict[str, Any]] = {}
    sizes = failed.column("batch_size").to_numpy()
    errors = failed.column("error").take(pa.array(first)).to_pylist()
    for i, message in zip(first.tolist(), errors, strict=True):
        entry = messages.get(message)
        if entry is None:
            if len(messages) == MAX_ERROR_MESSAGES:
                continue
            entry = messages[message] = {
                "message": message[:_MAX_MESSAGE_CHARS],
                "batches": 0,
                "samples": 0,
                "batch_ids": [],
            }
        entry["batches"] += 1
        entry["samples"] += int(sizes[i])
        if len(entry["batch_ids"]) < MAX_ERROR_BATCHES:
            entry["batch_ids"].append(int(batch_ids[i]))
    return {
        "count": failed.num_rows,
        "batches": len(first),
        "messages": list(messages.values()),
    }


def write_summary(out_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``out_dir/summary.json`` atomically; strict JSON (no NaN)."""
    path = Path(out_dir) / SUMMARY_NAME
    atomic_write_text(path, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return path


def format_summary_table(summary: Mapping[str, Any]) -> str:
    """The human-readable report of a summary, for a terminal (plain text, aligned)."""
    lines: list[str] = []
    run_id = summary.get("run_id", "?")
    version = summary.get("dlspec_ray_version")
    lines.append(f"dlspec-ray run {run_id}" + (f"  (dlspec-ray {version})" if version else ""))
    lines.append("")
    task = summary.get("task") or {}
    env = summary.get("environment") or {}
    rows = [[kind, _ref_of(task.get(kind))] for kind in TASK_KINDS if task.get(kind)]
    if env:
        rows.append(["environment", _environment_line(env)])
    rows.append(["started", f"{summary.get('started_at', '-')}"])
    rows.append(["finished", f"{summary.get('finished_at', '-')}"])
    lines += _render(rows, "ll", indent=2)
    lines.append("")

    errors = summary.get("errors") or {}
    samples = summary.get("samples", 0)
    error_count = errors.get("count", 0)
    acc = summary.get("accuracy") or {}
    rows = [
        ["samples", _int(samples), ""],
        ["errors", _int(error_count), _errors_note(errors, samples)],
    ]
    for i, (name, value) in enumerate(sorted(acc.items(), key=lambda kv: _metric_order(kv[0]))):
        note = ""
        if i == 0 and "labelled_samples" in summary:
            note = f"over {_int(summary['labelled_samples'])} labelled samples"
        rows.append([name, f"{value:.4f}", note])
    if not acc:
        rows.append(["accuracy", "-", "no labelled sample without an error"])
    rows.append(["throughput", f"{summary.get('throughput_sps', 0.0):,.1f}", "samples/s"])
    rows.append(["wall time", f"{summary.get('wall_s', 0.0):,.3f}", "s"])
    if "batch_size" in summary:
        rows.append(["batch size", _int(summary["batch_size"]), ""])
    if "actors" in summary:
        rows.append(["actors", _int(summary["actors"]), ""])
    lines += _render(rows, "lrl", indent=2)

    latency = summary.get("latency_ms") or {}
    lines.append("")
    if latency:
        header = ["latency (ms)", "p50", "p90", "p99", "mean", "mean/sample"]
        rows = [header]
        for stage in STAGES:
            st = latency.get(stage)
            if not st:
                continue
            rows.append(
                [
                    stage,
                    *(f"{st[q]:.3f}" for q in ("p50", "p90", "p99", "mean")),
                    f"{st.get('mean_per_sample', math.nan):.4f}",
                ]
            )
        lines += _render(rows, "lrrrrr", indent=2)
        lines.append("  (percentiles over batches; mean/sample = stage time per sample)")
    else:
        lines.append("  latency: no batch completed")

    messages = errors.get("messages") or []
    if messages:
        lines += ["", "  first errors"]
    for entry in messages:
        ids = ", ".join(str(b) for b in entry.get("batch_ids", []))
        more = entry.get("batches", 0) - len(entry.get("batch_ids", []))
        if more > 0:
            ids += f", +{more} more"
        first_line = _last_line(entry.get("message", ""))
        noun = "batch" if entry.get("batches", 0) == 1 else "batches"
        lines.append(f"    {noun} {ids}: {first_line}")

    ref = summary.get("reference")
    lines.append("")
    if ref:
        lines.append(f"  reference {ref.get('reference', '')}: {ref.get('verdict', '?')}")
        checks = ref.get("checks") or []
        if checks:
            rows = [["check", "expected", "actual", "delta", "tolerance", "result"]]
            details: list[str] = []
            for c in checks:
                digits = _digits(c.get("tolerance"))
                rows.append(
                    [
                        c.get("name", "?"),
                        _num(c.get("expected"), digits),
                        _num(c.get("actual"), digits),
                        _num(c.get("delta"), digits, signed=True),
                        _num(c.get("tolerance"), digits),
                        "PASS" if c.get("passed") else "FAIL",
                    ]
                )
                if c.get("detail") and not c.get("passed"):
                    details.append(f"{c.get('name', '?')}: {c['detail']}")
            lines += _render(rows, "lrrrrl", indent=4)
            for detail in details:
                lines.append(f"    - {detail}")
    else:
        lines.append("  reference: none given")
    return "\n".join(lines) + "\n"


def _task_entry(value: Manifest | Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Manifest):
        return manifest_entry(value)
    if isinstance(value, Mapping):
        return dict(value)
    return {"ref": str(value)}


def _ref_of(entry: Any) -> str:
    if isinstance(entry, Mapping):
        ref = entry.get("ref") or entry.get("id") or "?"
        if entry.get("id") and entry.get("id") != ref:
            return f"{ref}  ({entry['id']})"
        return str(ref)
    return str(entry)


def _environment_line(env: Mapping[str, Any]) -> str:
    parts = [str(env["kind"])] if "kind" in env else []
    for key, value in env.items():
        if key == "kind" or value is None:
            continue
        if isinstance(value, Mapping):
            text = " ".join(str(v) for v in value.values() if v is not None)
        elif isinstance(value, (list, tuple)):
            # Long lists (node ids) would drown the line: say how many there are.
            short = len(value) <= 3 and all(len(str(v)) <= 20 for v in value)
            text = ",".join(map(str, value)) if short else str(len(value))
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return "  ".join(parts)


def _errors_note(errors: Mapping[str, Any], samples: int) -> str:
    count = errors.get("count", 0)
    if not count:
        return ""
    share = count / samples if samples else 0.0
    batches = errors.get("batches", 0)
    noun = "batch" if batches == 1 else "batches"
    return f"{share:.2%} of samples, in {_int(batches)} {noun}"


def _metric_order(name: str) -> tuple[int, str]:
    m = _TOP_K_NAME.match(name)
    return (int(m.group(1)) if m else 1 << 30, name)


def _digits(tolerance: Any) -> int:
    """Decimals that show a difference one tenth of the tolerance, at least four."""
    if isinstance(tolerance, (int, float)) and tolerance > 0 and not isinstance(tolerance, bool):
        return min(10, max(4, math.ceil(-math.log10(tolerance)) + 1))
    return 4


def _num(value: Any, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _last_line(text: str, limit: int = 160) -> str:
    stripped = text.strip()
    line = stripped.splitlines()[-1] if stripped else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _render(rows: list[list[str]], align: str, indent: int = 0) -> list[str]:
    """Rows padded into columns: ``l`` left-aligns a column, ``r`` right-aligns it."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(align))]
    out = []
    for row in rows:
        cells = [
            cell.rjust(w) if a == "r" else cell.ljust(w)
            for cell, w, a in zip(row, widths, align, strict=True)
        ]
        out.append((" " * indent + "  ".join(cells)).rstrip())
    return out


def _iso(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _package_version() -> str:
    try:
        return metadata.version("dlspec-ray")
    except metadata.PackageNotFoundError:
        return "unknown"


def _jsonable(value: Any) -> Any:
    """``value`` with only JSON types: numpy scalars unwrapped, paths as text, NaN as null."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
