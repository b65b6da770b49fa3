"""What an evaluation hands back to Python: its summary, where it is, and its rows on demand."""

from __future__ import annotations

__all__ = ["EvaluationResult"]

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from dlspec_ray.results.run_summary import RunSummary


@dataclass
class EvaluationResult:
    summary: dict[str, Any]
    # A local folder, or the StorageLocation of a run directory in object storage.
    out_dir: Path | Any

    @cached_property
    def run_summary(self) -> RunSummary:
        """``summary`` as a typed object (``results.run_summary``)."""
        return RunSummary.from_dict(self.summary)

    @property
    def passed(self) -> bool:
        """No reference check failed and the error budget held."""
        return self.run_summary.passed

    @cached_property
    def table(self) -> pa.Table:
        from dlspec_ray.results.parquet_io import read_results

        return read_results(self.out_dir)

    def to_pandas(self) -> Any:
        return self.table.to_pandas()

    def format(self) -> str:
        from dlspec_ray.results.summary import format_summary_table

        return format_summary_table(self.summary)

    def plot_latency(self, stage: str = "run", **kwargs: Any) -> Any:
        """Box plot of one stage's per-batch latency (matplotlib Figure)."""
        from dlspec_ray.results.plots import plot_latency

        return plot_latency({self.run_summary.run_id: self.table}, stage, **kwargs)

    def plot_stage_breakdown(self, **kwargs: Any) -> Any:
        """Stacked bar of pre/run/post time per sample (matplotlib Figure)."""
        from dlspec_ray.results.plots import plot_stage_breakdown

        return plot_stage_breakdown({self.run_summary.run_id: self.summary}, **kwargs)
