"""Sweeps: vary one aspect of a task (framework, batch size, hardware) and compare.

A sweep file names lists or globs of manifests; the plan is their cross product
less what cannot run; the runner evaluates the tasks concurrently on one Ray and
writes one run directory per task, a combined table and an index entry per run.
"""

from __future__ import annotations

__all__ = [
    "SWEEP_KEYS",
    "DroppedTask",
    "EmptySweep",
    "ExcludeRule",
    "SweepPlan",
    "SweepResult",
    "SweepSpec",
    "SweepTask",
    "load_sweep",
    "load_sweep_spec",
    "plan_sweep",
    "run_sweep",
    "sweep",
    "sweep_spec_from",
]

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from dlspec_ray.sweeps.plan import DroppedTask, EmptySweep, SweepPlan, SweepTask, plan_sweep
from dlspec_ray.sweeps.result import SweepResult, load_sweep
from dlspec_ray.sweeps.runner import run_sweep
from dlspec_ray.sweeps.spec import (
    SWEEP_KEYS,
    ExcludeRule,
    SweepSpec,
    load_sweep_spec,
    sweep_spec_from,
)


def sweep(
    spec: str | Path | Mapping[str, Any] | SweepSpec,
    out: str | Path = "runs",
    *,
    concurrency: int | None = None,
    address: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    manifest_roots: Sequence[str | Path] = (),
    cache_dir: str | Path | None = None,
) -> SweepResult:
    """Plan and run a sweep; ``spec`` is a sweep file, a mapping of its keys, or a SweepSpec.

    Bad input (unknown keys, patterns that match nothing, an empty product) raises
    a ``DLSpecError`` before Ray starts. ``out`` is the results root (default ``runs``).
    """
    if isinstance(spec, SweepSpec):
        checked = spec
    elif isinstance(spec, Mapping):
        checked = sweep_spec_from(spec)
    else:
        checked = load_sweep_spec(spec)
    from dlspec_ray.environments import ENVIRONMENTS

    plan = plan_sweep(
        checked,
        manifest_roots=manifest_roots,
        available_environments=ENVIRONMENTS.names(),
    )
    return run_sweep(
        plan,
        out,
        concurrency=concurrency,
        address=address,
        progress=progress,
        stream=stream,
        cache_dir=cache_dir,
    )
