"""dlspec-ray: evaluate DLSpec deep-learning task manifests on Ray.

The names below load on first use, so ``import dlspec_ray`` stays cheap and
starts nothing.
"""

from __future__ import annotations

__all__ = [
    "DLSpecError",
    "EvaluationFailed",
    "EvaluationResult",
    "Plan",
    "RunInterrupted",
    "RunOptions",
    "Session",
    "SweepResult",
    "Task",
    "compare",
    "dry_run",
    "evaluate",
    "list_runs",
    "load_run",
    "load_sweep",
    "plan",
    "report",
    "resolve_task",
    "sweep",
]

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import DLSpecError, EvaluationFailed, RunInterrupted

if TYPE_CHECKING:
    from dlspec_ray.evaluation import dry_run, evaluate
    from dlspec_ray.options import RunOptions
    from dlspec_ray.plan import Plan, plan
    from dlspec_ray.results.run_result import EvaluationResult
    from dlspec_ray.runs import compare, list_runs, load_run, report
    from dlspec_ray.session import Session
    from dlspec_ray.sweeps import SweepResult, load_sweep, sweep
    from dlspec_ray.task import Task, resolve_task

_LAZY = {
    "evaluate": "dlspec_ray.evaluation",
    "EvaluationResult": "dlspec_ray.results.run_result",
    "RunOptions": "dlspec_ray.options",
    "Plan": "dlspec_ray.plan",
    "plan": "dlspec_ray.plan",
    "dry_run": "dlspec_ray.evaluation",
    "Session": "dlspec_ray.session",
    "Task": "dlspec_ray.task",
    "resolve_task": "dlspec_ray.task",
    "sweep": "dlspec_ray.sweeps",
    "SweepResult": "dlspec_ray.sweeps",
    "load_sweep": "dlspec_ray.sweeps",
    "compare": "dlspec_ray.runs",
    "list_runs": "dlspec_ray.runs",
    "load_run": "dlspec_ray.runs",
    "report": "dlspec_ray.runs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dlspec_ray' has no attribute {name!r}")
