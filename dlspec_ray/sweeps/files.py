"""The files of a sweep's folder, named once for the runner that writes them and the
result that reads them."""

from __future__ import annotations

__all__ = ["RESULTS_FILE", "SWEEP_FILE", "TASKS_FILE"]

# The sweep's summary: its tasks, their status and where each run went.
SWEEP_FILE = "sweep.json"
# Every sample of every run, with run metadata columns.
RESULTS_FILE = "results.parquet"
# One row per task.
TASKS_FILE = "tasks.parquet"
