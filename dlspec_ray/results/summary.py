"""``summary.json``: what one run measured, and the table ``dlspec-ray run`` prints.

The summary takes the task as plain mappings (or spec manifests) rather than the
runtime's own types, so that results/ can be used, and tested, without Ray.
Everything in it is plain JSON: a summary written by one version can be read
back and compared by another.

``build_summary`` summarises a table in memory. ``summarise`` computes the same
summary from a run directory (local or in object storage) by streaming over its
shards, reading only the columns it needs and keeping counters and one value
per batch (``SummaryTally``), so the driver's memory does not grow with the
dataset. A runtime that has each shard's rows at hand can feed a ``SummaryTally``
as it writes them and never read the shards back.
"""

from __future__ import annotations

__all__ = [
    "MAX_ERROR_BATCHES",
    "MAX_ERROR_MESSAGES",
    "SUMMARY_NAME",
    "ErrorTally",
    "SummaryTally",
    "build_summary",
    "error_summary",
    "format_summary_table",
    "manifest_entry",
    "summarise",
    "write_summary",
]

import functools
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
    AccuracyTally,
    LatencyTally,
    accuracy,
    accuracy_intervals,
    evaluated_samples,
    labelled_samples,
    latency_summary,
    throughput,
)
from dlspec_ray.results.parquet_io import SUMMARY_NAME, iter_shards
from dlspec_ray.results.reference import ReferenceTally, check_reference
from dlspec_ray.results.run_summary import RunSummary
from dlspec_ray.results.schema import SCHEMA_VERSION
from dlspec_ray.results.storage import Location, StorageLocation, as_location
from dlspec_ray.spec.types import Manifest, ReferenceLog

TASK_KINDS = ("model", "dataset", "software", "hardware")
# The columns ``ErrorTally`` reads.
ERROR_COLUMNS = ("error", "shard_id", "batch_id", "batch_size")
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
    warmup: int = 0,
    subset_of: int | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` of a run whose per-sample rows are ``table``.

    ``task`` maps ``model``/``dataset``/``software``/``hardware`` (and optionally
    ``reference``) to a manifest, a mapping such as ``{"id": ..., "ref": ...}``, or a
    ref string. Accuracy covers ``ks`` plus any topK the reference log names, so
    the log's checks never fail for want of a metric the run could compute.
    Throughput counts samples evaluated without an error. ``warmup``: batches left out
    of the latency figures; ``subset_of``: the dataset's size when the rows are only the
    first samples of it (``--limit``), so that the reference's accuracy is not checked.
    """
    wanted_ks = _wanted_ks(ks, reference)
    measured = accuracy(table, wanted_ks)
    verdict = (
        check_reference(reference, measured, table, subset_of=subset_of)
        if reference is not None
        else None
    )
    return _assemble(
        samples=table.num_rows,
        evaluated=evaluated_samples(table),
        labelled=labelled_samples(table),
        errors=error_summary(table),
        measured=measured,
        latency=latency_summary(table, warmup),
        warmup=warmup,
        subset_of=subset_of,
        verdict=verdict.as_dict() if verdict is not None else None,
        run_id=run_id,
        task=task,
        environment=environment,
        wall_s=wall_s,
        batch_size=batch_size,
        actors=actors,
        started_at=started_at,
        finished_at=finished_at,
        reference=reference,
        version=version,
    )


def summarise(
    out_dir: Location,
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
    warmup: int = 0,
    subset_of: int | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` of the run directory ``out_dir``, streamed shard by shard.

    Equal to ``build_summary(read_results(out_dir), ...)`` with the same keyword
    arguments, but holds one shard's needed columns at a time (see ``SummaryTally``).
    ``out_dir`` is a local path, a URI such as ``s3://bucket/runs/a``, or a
    ``StorageLocation``.
    """
    tally = SummaryTally(reference=reference, ks=ks, warmup=warmup, subset_of=subset_of)
    for shard in iter_shards(out_dir, tally.columns):
        tally.add(shard)
    return tally.summary(
        run_id=run_id,
        task=task,
        environment=environment,
        wall_s=wall_s,
        batch_size=batch_size,
        actors=actors,
        started_at=started_at,
        finished_at=finished_at,
        version=version,
    )


class SummaryTally:
    """A run's summary built from its shards fed one at a time (``add``), in shard order.

    Holds counters, one size and three stage times per successful batch, one
    key per failed batch, the first few distinct error messages, and the rows of
    the samples the reference log expects outputs for: never the rows
    themselves. ``columns`` are the result columns ``add`` needs; a shard table
    may have more. ``summary(...)`` takes the rest of ``build_summary``'s keyword
    arguments and returns what ``build_summary`` returns for the same rows.
    """

    def __init__(
        self,
        *,
        reference: ReferenceLog | None = None,
        ks: Iterable[int] = (1, 5),
        warmup: int = 0,
        subset_of: int | None = None,
    ):
        self.reference = reference
        self.warmup = warmup
        self.subset_of = subset_of
        self.samples = 0
        self.evaluated = 0
        self._accuracy = AccuracyTally(_wanted_ks(ks, reference))
        self._latency = LatencyTally(warmup)
        self._errors = ErrorTally()
        self._reference = ReferenceTally(reference) if reference is not None else None

    @property
    def columns(self) -> list[str]:
        wanted = [*self._accuracy.columns, *self._latency.columns, *ErrorTally.columns]
        if self._reference is not None:
            wanted += self._reference.columns
        return list(dict.fromkeys(wanted))

    def add(self, table: pa.Table) -> None:
        """Count one shard's rows (the shards of a run, in order)."""
        self.samples += table.num_rows
        self.evaluated += table.column("error").null_count
        self._accuracy.add(table)
        self._latency.add(table)
        self._errors.add(table)
        if self._reference is not None:
            self._reference.add(table)

    def summary(
        self,
        *,
        run_id: str,
        task: Mapping[str, Manifest | Mapping[str, Any] | str | None],
        environment: Mapping[str, Any],
        wall_s: float,
        batch_size: int,
        actors: int,
        started_at: datetime | str,
        finished_at: datetime | str,
        version: str | None = None,
    ) -> dict[str, Any]:
        measured = self._accuracy.result()
        verdict = None
        if self.reference is not None and self._reference is not None:
            evidence = self._reference.evidence(self._accuracy.scored)
            verdict = check_reference(
                self.reference, measured, evidence, subset_of=self.subset_of
            ).as_dict()
        return _assemble(
            samples=self.samples,
            evaluated=self.evaluated,
            labelled=self._accuracy.scored,
            errors=self._errors.result(),
            measured=measured,
            latency=self._latency.result(),
            warmup=self.warmup,
            subset_of=self.subset_of,
            verdict=verdict,
            run_id=run_id,
            task=task,
            environment=environment,
            wall_s=wall_s,
            batch_size=batch_size,
            actors=actors,
            started_at=started_at,
            finished_at=finished_at,
            reference=self.reference,
            version=version,
        )


def _wanted_ks(ks: Iterable[int], reference: ReferenceLog | None) -> list[int]:
    wanted = set(ks)
    if reference is not None:
        wanted |= {int(m.group(1)) for n in reference.accuracy if (m := _TOP_K_NAME.match(n))}
    return sorted(wanted)


def _assemble(
    *,
    samples: int,
    evaluated: int,
    labelled: int,
    errors: dict[str, Any],
    measured: dict[str, float],
    latency: dict[str, dict[str, float]],
    warmup: int,
    subset_of: int | None,
    verdict: dict[str, Any] | None,
    run_id: str,
    task: Mapping[str, Manifest | Mapping[str, Any] | str | None],
    environment: Mapping[str, Any],
    wall_s: float,
    batch_size: int,
    actors: int,
    started_at: datetime | str,
    finished_at: datetime | str,
    reference: ReferenceLog | None,
    version: str | None,
) -> dict[str, Any]:
    task_out = {kind: _task_entry(task.get(kind)) for kind in TASK_KINDS}
    task_out["reference"] = _task_entry(task.get("reference") or reference)
    for kind, value in task.items():
        task_out.setdefault(str(kind), _task_entry(value))
    summary: dict[str, Any] = {
        "run_id": str(run_id),
        "dlspec_ray_version": version or _package_version(),
        "results_schema_version": SCHEMA_VERSION,
        "started_at": _iso(started_at),
        "finished_at": _iso(finished_at),
        "task": task_out,
        "environment": dict(environment),
        "samples": int(samples),
        "evaluated_samples": int(evaluated),
        "labelled_samples": int(labelled),
        "errors": errors,
        "accuracy": measured,
        "accuracy_ci95": accuracy_intervals(measured, labelled),
        "subset_of": subset_of,
        "latency_ms": latency,
        "warmup_batches": int(warmup),
        "throughput_sps": throughput(evaluated, wall_s),
        "wall_s": float(wall_s),
        "batch_size": int(batch_size),
        "actors": int(actors),
        "reference": verdict,
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


class ErrorTally:
    """``error_summary`` over shards fed one at a time; ``result()`` is equal to it.

    Keeps the failed-sample count, one key per failed batch, and the first
    ``MAX_ERROR_MESSAGES`` distinct messages with their first batch ids.
    """

    columns = ERROR_COLUMNS

    def __init__(self) -> None:
        self.count = 0
        self._seen: set[tuple[int, int]] = set()
        self._messages: dict[str, dict[str, Any]] = {}

    def add(self, table: pa.Table) -> None:
        failed = table.filter(pc.is_valid(table.column("error")))
        if failed.num_rows == 0:
            return
        self.count += failed.num_rows
        shard_ids = failed.column("shard_id").to_numpy()
        batch_ids = failed.column("batch_id").to_numpy()
        _, first = np.unique(np.stack([shard_ids, batch_ids], axis=1), axis=0, return_index=True)
        first.sort()
        sizes = failed.column("batch_size").to_numpy()
        errors = failed.column("error").take(pa.array(first)).to_pylist()
        for i, message in zip(first.tolist(), errors, strict=True):
            key = (int(shard_ids[i]), int(batch_ids[i]))
            if key in self._seen:  # a batch split over two shard files counts once
                continue
            self._seen.add(key)
            entry = self._messages.get(message)
            if entry is None:
                if len(self._messages) == MAX_ERROR_MESSAGES:
                    continue
                entry = self._messages[message] = {
                    "message": message[:_MAX_MESSAGE_CHARS],
                    "batches": 0,
                    "samples": 0,
                    "batch_ids": [],
                }
            entry["batches"] += 1
            entry["samples"] += int(sizes[i])
            if len(entry["batch_ids"]) < MAX_ERROR_BATCHES:
                entry["batch_ids"].append(int(batch_ids[i]))

    def result(self) -> dict[str, Any]:
        if self.count == 0:
            return {"count": 0, "batches": 0, "messages": []}
        return {
            "count": self.count,
            "batches": len(self._seen),
            "messages": [dict(e, batch_ids=list(e["batch_ids"])) for e in self._messages.values()],
        }


def write_summary(
    out_dir: Location, summary: RunSummary | Mapping[str, Any]
) -> Path | StorageLocation:
    """Write ``out_dir/summary.json`` atomically; strict JSON (no NaN).

    Returns the file: a ``Path`` for a local run directory, else its ``StorageLocation``.
    """
    data = summary.as_dict() if isinstance(summary, RunSummary) else summary
    location = as_location(out_dir).child(SUMMARY_NAME)
    location.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return location.local_path if location.is_local else location


def format_summary_table(summary: RunSummary | Mapping[str, Any]) -> str:
    """The human-readable report of a summary, for a terminal (plain text, aligned)."""
    s = summary if isinstance(summary, RunSummary) else RunSummary.from_dict(summary)
    lines: list[str] = []
    version = f"  (dlspec-ray {s.version})" if s.version else ""
    lines.append(f"dlspec-ray run {s.run_id or '?'}{version}")
    lines.append("")
    rows = [[kind, ref.label] for kind in TASK_KINDS if (ref := s.task.get(kind)) is not None]
    if s.environment:
        rows.append(["environment", _environment_line(s.environment)])
    rows.append(["started", s.started_at or "-"])
    rows.append(["finished", s.finished_at or "-"])
    lines += _render(rows, "ll", indent=2)
    lines.append("")

    samples = s.samples or 0
    rows = [
        ["samples", _int(samples), ""],
        ["errors", _int(s.errors), _errors_note(s.errors, s.error_batches, samples)],
    ]
    if s.nonfinite_samples:
        rows.append(
            [
                "non-finite",
                _int(s.nonfinite_samples),
                "samples with NaN or inf outputs: the model's numbers are not to be trusted",
            ]
        )
    if s.subset_of:
        rows.append(
            [
                "subset",
                f"{_int(samples)} of {_int(s.subset_of)}",
                "--limit: the accuracy is this subset's, not the dataset's",
            ]
        )
    ordered = sorted(s.accuracy.items(), key=lambda kv: _metric_order(kv[0]))
    for i, (name, value) in enumerate(ordered):
        notes = []
        if name in s.accuracy_ci95:
            low, high = s.accuracy_ci95[name]["low"], s.accuracy_ci95[name]["high"]
            notes.append(f"95% CI [{low:.4f}, {high:.4f}]")
        if i == 0 and s.labelled_samples is not None:
            notes.append(f"over {_int(s.labelled_samples)} labelled samples")
        rows.append([name, f"{value:.4f}", ", ".join(notes)])
    if not s.accuracy:
        rows.append(["accuracy", "-", "no labelled sample without an error"])
    rows.append(["throughput", f"{s.throughput_sps or 0.0:,.1f}", "samples/s"])
    rows += _repeat_rows(s.repeats)
    rows.append(["wall time", f"{s.wall_s or 0.0:,.3f}", "s"])
    if s.batch_size is not None:
        rows.append(["batch size", _int(s.batch_size), ""])
    if s.actors is not None:
        rows.append(["actors", _int(s.actors), ""])
    lines += _render(rows, "lrl", indent=2)

    lines.append("")
    lines += _latency_lines(s)
    if s.error_messages:
        lines += ["", "  first errors"]
    for entry in s.error_messages:
        ids = ", ".join(str(b) for b in entry.get("batch_ids", []))
        more = entry.get("batches", 0) - len(entry.get("batch_ids", []))
        if more > 0:
            ids += f", +{more} more"
        first_line = _last_line(entry.get("message", ""))
        noun = "batch" if entry.get("batches", 0) == 1 else "batches"
        lines.append(f"    {noun} {ids}: {first_line}")

    lines.append("")
    lines += _reference_lines(s.reference)
    return "\n".join(lines) + "\n"


def _repeat_rows(repeats: Mapping[str, Any] | None) -> list[list[str]]:
    if not repeats:
        return []
    tp = repeats["throughput_sps"]
    rows = [
        [
            "repeats",
            _int(repeats["passes"]),
            f"passes; throughput median {tp['median']:,.1f} samples/s (min {tp['min']:,.1f}, "
            f"max {tp['max']:,.1f}, spread {tp['spread']:.1%})",
        ]
    ]
    run_p50 = repeats["latency_ms"].get("run", {}).get("p50")
    if run_p50:
        rows.append(
            [
                "",
                "",
                f"run p50 median {run_p50['median']:.3f} ms (min {run_p50['min']:.3f}, max "
                f"{run_p50['max']:.3f})",
            ]
        )
    return rows


def _latency_lines(s: RunSummary) -> list[str]:
    if not s.latency_ms:
        if s.warmup_batches:
            return [f"  latency: no batch past the first {s.warmup_batches:,} (--warmup)"]
        return ["  latency: no batch completed"]
    rows = [["latency (ms)", "p50", "p90", "p99", "mean", "mean/sample"]]
    for stage in STAGES:
        st = s.latency_ms.get(stage)
        if st is None:
            continue
        times = (_num(st.get(q), 3) for q in ("p50", "p90", "p99", "mean"))
        rows.append([stage, *times, _num(st.mean_per_sample, 4)])
    after = f" after the first {s.warmup_batches:,} (--warmup)" if s.warmup_batches else ""
    return [
        *_render(rows, "lrrrrr", indent=2),
        f"  (percentiles over batches{after}; mean/sample = stage time per sample)",
    ]


def _reference_lines(ref: Mapping[str, Any] | None) -> list[str]:
    if not ref:
        return ["  reference: none given"]
    lines = [f"  reference {ref.get('reference', '')}: {ref.get('verdict', '?')}"]
    checks = ref.get("checks") or []
    if not checks:
        return lines
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
                _check_result(c),
            ]
        )
        if c.get("detail") and (not c.get("passed") or c.get("basis") == "skipped"):
            details.append(f"{c.get('name', '?')}: {c['detail']}")
    lines += _render(rows, "lrrrrl", indent=4)
    lines += [f"    - {detail}" for detail in details]
    return lines


def _check_result(check: Mapping[str, Any]) -> str:
    if check.get("basis") == "skipped":
        return "skipped"
    return "PASS" if check.get("passed") else "FAIL"


def _task_entry(value: Manifest | Mapping[str, Any] | str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Manifest):
        return manifest_entry(value)
    if isinstance(value, Mapping):
        return dict(value)
    return {"ref": str(value)}


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


def _errors_note(count: int, batches: int, samples: int) -> str:
    if not count:
        return ""
    share = count / samples if samples else 0.0
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


@functools.cache
def _package_version() -> str:
    """Read once a process: ``importlib.metadata`` scans the installed distributions, which
    took 112 ms of five warm 0.3 s evaluations' summaries (pyinstrument), up to 100 ms once."""
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
