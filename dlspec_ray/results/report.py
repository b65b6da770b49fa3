"""A self-contained HTML report of a results root: every run in a table, and the plots.

One file with the pictures embedded as PNG data URIs and the style inline, so it
can be mailed, attached to an issue or opened from a CI artifact with nothing
next to it.

The results root may be a local folder or a prefix in object storage; the report
is written next to the runs (``ROOT/report.html``, an object when the root is in
object storage) unless ``out`` names another place, local or a URI. Only the
columns the latency plot needs are read from the runs' shards.
"""

from __future__ import annotations

__all__ = ["build_report", "write_report"]

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.index import (
    RunRecord,
    find_run_dirs,
    read_index,
    read_summary,
    record_of,
)
from dlspec_ray.results.parquet_io import read_results
from dlspec_ray.results.plots import (
    figure_png,
    plot_accuracy_throughput,
    plot_latency,
    plot_stage_breakdown,
)
from dlspec_ray.results.storage import Location, StorageLocation, as_location
from dlspec_ray.results.summary import SUMMARY_NAME

# Plots stay readable up to about this many configurations; the table lists every run.
MAX_PLOTTED = 24
REPORT_NAME = "report.html"
# What the latency plot reads of each run (``plots.batch_times``).
_PLOTTED_COLUMNS = ("error", "shard_id", "batch_id", "run_ms")

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:0.85em}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde8e8}
.muted{color:#666}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
"""


def write_report(root: Location, out: Location | None = None) -> Path | StorageLocation:
    """Write the report of ``root`` to ``out`` (default ``root/report.html``); returns where.

    ``root`` and ``out`` are local paths, URIs or locations; the result is a ``Path``
    when the report went to a local file, else its ``StorageLocation``.
    """
    base = as_location(root)
    target = as_location(out) if out is not None else base.child(REPORT_NAME)
    target.parent.check_writable()  # before the work: a bad bucket or endpoint fails at once
    target.write_text(build_report(base))
    return target.local_path if target.is_local else target


def build_report(root: Location) -> str:
    root = as_location(root)
    records = _records(root)
    if not records:
        raise DLSpecError(
            f"{root.describe()}: no runs to report (no index.jsonl entries and no "
            f"{SUMMARY_NAME} below it); give the --out folder of `dlspec-ray sweep` or of runs"
        )
    labels = _labels(records)
    summaries = {labels[r.run_id]: read_summary(root.child(r.path)) for r in records}
    plotted = records[-MAX_PLOTTED:]
    tables = {labels[r.run_id]: read_results(root.child(r.path), _PLOTTED_COLUMNS) for r in plotted}
    plotted_summaries = {labels[r.run_id]: summaries[labels[r.run_id]] for r in plotted}
    figures = [
        ("Latency of the run stage per configuration (per batch)", plot_latency(tables, "run")),
        ("Accuracy against throughput", plot_accuracy_throughput(plotted_summaries)),
        ("Where the time goes: stage time per sample", plot_stage_breakdown(plotted_summaries)),
    ]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>dlspec-ray report: {html.escape(str(root))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>dlspec-ray report: {html.escape(str(root))}</h1>",
        f"<p class='muted'>{len(records)} run(s); generated "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}"
        + (f"; plots show the latest {len(plotted)}" if len(plotted) < len(records) else "")
        + "</p>",
        "<h2>Runs</h2>",
        _runs_table(records, labels, summaries),
    ]
    parts += _sweeps_section(root)
    parts += _stages_section(root, plotted, labels)
    for title, figure in figures:
        data = base64.b64encode(figure_png(figure)).decode("ascii")
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _records(root: StorageLocation) -> list[RunRecord]:
    records = read_index(root)
    if records:
        return [r for r in records if root.child(r.path, SUMMARY_NAME).is_file()]
    found = [record_of(run_dir, root) for run_dir in find_run_dirs(root)]
    return sorted(found, key=lambda r: (r.started_at, r.run_id))


def _labels(records: list[RunRecord]) -> dict[str, str]:
    names = [
        r.label or f"{r.task['model']['name'] if r.task.get('model') else '?'}" for r in records
    ]
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return {
        r.run_id: name if seen[name] == 1 else f"{name} ({r.run_id[:6]})"
        for r, name in zip(records, names, strict=True)
    }


def _runs_table(
    records: list[RunRecord], labels: dict[str, str], summaries: dict[str, dict[str, Any]]
) -> str:
    header = [
        "run", "label", "started", "model", "dataset", "software", "hardware", "batch",
        "environment", "status", "top1", "top5", "run p50 ms", "run p99 ms", "samples/s",
    ]  # fmt: skip
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    for r in records:
        s = summaries[labels[r.run_id]]
        run = (s.get("latency_ms") or {}).get("run") or {}
        acc = s.get("accuracy") or {}
        cells = [
            (r.run_id, False),
            (labels[r.run_id], False),
            (r.started_at[:19].replace("T", " "), False),
            (r.ref("model"), False),
            (r.ref("dataset"), False),
            (r.ref("software"), False),
            (r.ref("hardware"), False),
            (_num(r.batch_size, 0), True),
            (_environment(r), False),
            (r.status, False),
            (_num(acc.get("top1"), 4), True),
            (_num(acc.get("top5"), 4), True),
            (_num(run.get("p50"), 3), True),
            (_num(run.get("p99"), 3), True),
            (_num(s.get("throughput_sps"), 1), True),
        ]
        klass = " class='failed'" if r.status != "ok" else ""
        rows.append(
            f"<tr{klass}>"
            + "".join(
                f"<td class='n'>{html.escape(v)}</td>" if n else f"<td>{html.escape(v)}</td>"
                for v, n in cells
            )
            + "</tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _sweeps_section(root: StorageLocation) -> list[str]:
    parts: list[str] = []
    for folder in root.list_dirs():
        try:
            sweep = json.loads(root.child(folder, "sweep.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        failed = [t for t in sweep.get("tasks", []) if t.get("status") == "failed"]
        dropped = sweep.get("dropped", [])
        if not failed and not dropped:
            continue
        parts.append(
            f"<h2>Sweep {html.escape(str(sweep.get('name')))} "
            f"({html.escape(str(sweep.get('sweep_id')))})</h2><ul>"
        )
        for task in failed:
            parts.append(
                f"<li>failed: <b>{html.escape(task['label'])}</b>: "
                f"{html.escape(str(task.get('error', '')))}</li>"
            )
        for item in dropped:
            parts.append(
                f"<li>dropped: {html.escape(item['combination'])}: {html.escape(item['filter'])}"
                f": {html.escape(item['reason'])}</li>"
            )
        parts.append("</ul>")
    return parts


def _stages_section(
    root: StorageLocation, records: list[RunRecord], labels: dict[str, str]
) -> list[str]:
    """Per dataset and batch size, each run against the first: at which stage they part."""
    from dlspec_ray.results.compare import compare_run_dirs

    first: dict[tuple[str, Any], RunRecord] = {}
    rows = []
    for record in records:
        dataset = record.ref("dataset")
        key = (dataset, record.batch_size)
        base = first.setdefault(key, record)
        if base is record:
            continue
        try:
            c = compare_run_dirs(root.child(base.path), root.child(record.path))
        except DLSpecError:
            continue
        view = c.stages
        cells = []
        for short in ("pre", "run", "post"):
            entry = view.get(short)
            cells.append(f"{entry['identical']:,} / {entry['batches']:,}" if entry else "n/a")
        agree = c.agreement.get("agree", 0)
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    labels[record.run_id],
                    labels[base.run_id],
                    dataset,
                    *cells,
                    view.get("first_difference") or "none",
                    f"{agree:,} of {c.compared:,}",
                )
            )
            + "</tr>"
        )
    if not rows:
        return []
    header = [
        "run", "against", "dataset", "pre-process identical", "run identical",
        "post-process identical", "first difference", "top-1 agrees",
    ]  # fmt: skip
    return [
        "<h2>Where runs of the same samples part (stage view)</h2>",
        "<p class='muted'>Batches whose stage outputs are bit-identical (by digest), each "
        "run against the first run of its dataset and batch size.</p>",
        "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
        *rows,
        "</table>",
    ]


def _environment(record: RunRecord) -> str:
    env = record.environment
    framework = env.get("framework") or {}
    text = str(env.get("kind", "?"))
    if isinstance(framework, dict) and framework.get("name"):
        text += f" {framework['name']} {framework.get('version') or ''}".rstrip()
    return f"{text} [{record.environment_fingerprint}]"


def _num(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"
