"""A self-contained HTML report of a results root: every run in a table, and the plots.

One file with the pictures embedded as PNG data URIs and the style inline, so it
can be mailed, attached to an issue or opened from a CI artifact with nothing
next to it.
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
from dlspec_ray.results.index import RunRecord, read_index, read_summary, record_of
from dlspec_ray.results.parquet_io import atomic_write_text, read_results
from dlspec_ray.results.plots import (
    figure_png,
    plot_accuracy_throughput,
    plot_latency,
    plot_stage_breakdown,
)
from dlspec_ray.results.summary import SUMMARY_NAME

# Plots stay readable up to about this many configurations; the table lists every run.
MAX_PLOTTED = 24

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:0.85em}
th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde8e8}
.muted{color:#666}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
"""


def write_report(root: Path, out: Path | None = None) -> Path:
    """Write the report of ``root`` to ``out`` (default ``root/report.html``); returns the path."""
    root = Path(root)
    out = Path(out) if out is not None else root / "report.html"
    atomic_write_text(out, build_report(root))
    return out


def build_report(root: Path) -> str:
    root = Path(root)
    records = _records(root)
    if not records:
        raise DLSpecError(
            f"{root}: no runs to report (no index.jsonl entries and no {SUMMARY_NAME} below "
            "it); give the --out folder of `dlspec-ray sweep` or of runs"
        )
    labels = _labels(records)
    summaries = {labels[r.run_id]: read_summary(root / r.path) for r in records}
    plotted = records[-MAX_PLOTTED:]
    tables = {labels[r.run_id]: read_results(root / r.path) for r in plotted}
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
    for title, figure in figures:
        data = base64.b64encode(figure_png(figure)).decode("ascii")
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _records(root: Path) -> list[RunRecord]:
    records = read_index(root)
    if records:
        return [r for r in records if (root / r.path / SUMMARY_NAME).is_file()]
    found = []
    for summary in sorted(root.rglob(SUMMARY_NAME)):
        if not any(p.startswith(".") for p in summary.parent.relative_to(root).parts):
            found.append(record_of(summary.parent, root))
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


def _sweeps_section(root: Path) -> list[str]:
    parts: list[str] = []
    for path in sorted(root.glob("*/sweep.json")):
        try:
            sweep = json.loads(path.read_text(encoding="utf-8"))
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
