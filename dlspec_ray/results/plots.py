"""The three pictures of a sweep: latency per configuration, accuracy against
throughput, and where each configuration's time goes.

Each function draws on a given matplotlib ``Axes`` or on a new ``Figure`` that it
returns. Figures are made without pyplot, so nothing here picks or changes the
backend: a notebook shows them inline, a script or the HTML report saves them,
and a headless machine needs no display.
"""

from __future__ import annotations

__all__ = [
    "batch_times",
    "figure_png",
    "plot_accuracy_throughput",
    "plot_latency",
    "plot_stage_breakdown",
]

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.metrics import STAGES
from dlspec_ray.results.run_summary import RunSummary

_STAGE_COLOURS = {"pre": "#4C72B0", "run": "#DD8452", "post": "#55A868"}


def _axes(ax: Any, size: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise DLSpecError(
            "plots need matplotlib, which is not installed; install it with "
            "pip install 'dlspec-ray[notebook]'"
        ) from None
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def batch_times(table: pa.Table, stage: str) -> np.ndarray:
    """One time per successful batch (stage times repeat on every row of their batch)."""
    if stage not in STAGES:
        raise DLSpecError(f"stage: expected one of {', '.join(STAGES)}, got {stage!r}")
    ok = table.filter(pc.is_null(table.column("error")))
    if ok.num_rows == 0:
        return np.empty(0)
    keys = np.stack([ok.column("shard_id").to_numpy(), ok.column("batch_id").to_numpy()], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    times = ok.column(f"{stage}_ms").to_numpy()[np.sort(first)]
    return times[~np.isnan(times)]


def plot_latency(
    runs: Mapping[str, pa.Table], stage: str = "run", *, ax: Any = None, log: bool | None = None
) -> Any:
    """Box plots of one stage's per-batch latency, one row per configuration."""
    figure, ax = _axes(ax, (7.0, max(2.5, 0.45 * len(runs) + 1.2)))
    shown = [(label, batch_times(table, stage)) for label, table in runs.items()]
    shown = [(label, times) for label, times in shown if times.size]
    if shown:
        ax.boxplot(
            [times for _, times in shown],
            tick_labels=[label for label, _ in shown],
            orientation="horizontal",
        )
        spread = max(t.max() for _, t in shown) / max(min(t.min() for _, t in shown), 1e-9)
        if log or (log is None and spread > 50):
            ax.set_xscale("log")
        ax.invert_yaxis()
    ax.set_xlabel(
        f"{stage} time per batch (ms)" + (", log scale" if ax.get_xscale() == "log" else "")
    )
    ax.set_title(f"{stage} stage latency per configuration")
    ax.grid(True, axis="x", alpha=0.3)
    return figure


def plot_accuracy_throughput(
    summaries: Mapping[str, Mapping[str, Any]], metric: str = "top1", *, ax: Any = None
) -> Any:
    """Each configuration as a point: throughput across, accuracy up."""
    figure, ax = _axes(ax, (8.0, 4.0))
    markers = "osD^vP*Xh<>"
    points = []
    for label, summary in summaries.items():
        run = RunSummary.from_dict(summary)
        value, throughput = run.accuracy.get(metric), run.throughput_sps
        if value is not None and throughput:
            points.append((label, throughput, value))
    for i, (label, throughput, value) in enumerate(points):
        ax.scatter([throughput], [value], s=45, marker=markers[i % len(markers)], label=label)
    if points:
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        if high / low > 20:
            ax.set_xscale("log")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False)
    ax.set_xlabel("throughput (samples/s)" + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(f"{metric} accuracy")
    ax.set_title(f"{metric} accuracy against throughput")
    ax.grid(True, alpha=0.3)
    return figure


def plot_stage_breakdown(
    summaries: Mapping[str, Mapping[str, Any]], *, ax: Any = None, per_sample: bool = True
) -> Any:
    """Stacked bars: how each configuration's time splits into pre, run and post."""
    labels = list(summaries)
    figure, ax = _axes(ax, (6.0, max(2.5, 0.45 * len(labels) + 1.2)))
    key = "mean_per_sample" if per_sample else "mean"
    left = np.zeros(len(labels))
    for stage in STAGES:
        values = np.array(
            [
                ((s.get("latency_ms") or {}).get(stage) or {}).get(key) or 0.0
                for s in summaries.values()
            ]
        )
        ax.barh(labels, values, left=left, label=stage, color=_STAGE_COLOURS[stage])
        left += values
    ax.set_xlabel("ms per sample" if per_sample else "ms per batch (mean)")
    ax.set_title("where the time goes, by stage")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    return figure


def figure_png(figure: Any, dpi: int = 110) -> bytes:
    """A figure's PNG bytes (for the HTML report), without any pyplot state."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
