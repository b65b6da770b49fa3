"""What a sweep returns, and what ``load_sweep`` reads back from disk later."""

from __future__ import annotations

__all__ = ["SweepResult", "load_sweep"]

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import DLSpecError
from dlspec_ray.sweeps.files import RESULTS_FILE, SWEEP_FILE, TASKS_FILE

if TYPE_CHECKING:
    import pyarrow as pa

    from dlspec_ray.evaluation import EvaluationResult
    from dlspec_ray.results.compare import RunComparison


@dataclass
class SweepResult:
    """A finished sweep: ``summary`` is its ``sweep.json``, ``out_dir`` its folder."""

    summary: dict[str, Any]
    out_dir: Path

    @cached_property
    def table(self) -> pa.Table:
        """Every run's per-sample rows, with run metadata columns (``results.parquet``)."""
        import pyarrow.parquet as pq

        return pq.read_table(self.out_dir / RESULTS_FILE)

    @cached_property
    def tasks(self) -> pa.Table:
        """One row per task: status, accuracy, latency percentiles per stage, throughput."""
        import pyarrow.parquet as pq

        return pq.read_table(self.out_dir / TASKS_FILE)

    def to_pandas(self):
        return self.table.to_pandas()

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [t for t in self.summary["tasks"] if t["status"] == "failed"]

    @cached_property
    def runs(self) -> dict[str, EvaluationResult]:
        """The finished tasks' runs by task label."""
        from dlspec_ray.evaluation import EvaluationResult
        from dlspec_ray.results.index import read_summary

        out = {}
        for task in self.summary["tasks"]:
            if task.get("run_dir"):
                run_dir = self.out_dir / task["run_dir"]
                out[task["label"]] = EvaluationResult(
                    summary=read_summary(run_dir), out_dir=run_dir
                )
        return out

    def format(self) -> str:
        from dlspec_ray.results.combine import format_task_table

        header = (
            f"sweep {self.summary['name']} ({self.summary['sweep_id']}): "
            f"{len(self.summary['tasks'])} task(s), {self.summary['failed']} failed, "
            f"{self.summary['wall_s']:.1f} s, up to {self.summary['concurrency']} at once\n\n"
        )
        return header + format_task_table(self.tasks)

    def compare(self, a: str, b: str, *, shared_samples: bool = False) -> RunComparison:
        """Compare two of the sweep's tasks, by label."""
        from dlspec_ray.results.compare import compare_run_dirs

        runs = self.runs
        for label in (a, b):
            if label not in runs:
                raise DLSpecError(
                    f"{label!r} is not a finished task of this sweep; tasks: {', '.join(runs)}"
                )
        return compare_run_dirs(runs[a].out_dir, runs[b].out_dir, shared_samples=shared_samples)

    def plot_latency(self, stage: str = "run", **kwargs: Any) -> Any:
        from dlspec_ray.results.plots import plot_latency

        return plot_latency({k: r.table for k, r in self.runs.items()}, stage, **kwargs)

    def plot_accuracy_throughput(self, metric: str = "top1", **kwargs: Any) -> Any:
        from dlspec_ray.results.plots import plot_accuracy_throughput

        return plot_accuracy_throughput(
            {k: r.summary for k, r in self.runs.items()}, metric, **kwargs
        )

    def plot_stage_breakdown(self, **kwargs: Any) -> Any:
        from dlspec_ray.results.plots import plot_stage_breakdown

        return plot_stage_breakdown({k: r.summary for k, r in self.runs.items()}, **kwargs)


def load_sweep(path: str | Path) -> SweepResult:
    """A sweep written earlier: its folder, or a results root (then its latest sweep)."""

    path = Path(path)
    if (path / SWEEP_FILE).is_file():
        folder = path
    else:
        found = sorted(path.glob(f"*/{SWEEP_FILE}"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise DLSpecError(
                f"{path}: no {SWEEP_FILE} here or in its sub-folders; give the folder a "
                "`dlspec-ray sweep --out` wrote"
            )
        folder = found[-1].parent
    try:
        summary = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DLSpecError(f"{folder / SWEEP_FILE}: not a readable sweep summary ({exc})") from None
    return SweepResult(summary=summary, out_dir=folder)
