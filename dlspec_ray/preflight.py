"""What a run checks before Ray starts, so that bad input costs milliseconds, not a cluster.

``evaluate`` and ``dry_run`` both start here; a dry run checks the same, but
shows host setup commands instead of refusing them.
"""

from __future__ import annotations

__all__ = ["preflight", "prepare"]

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dlspec_ray.options import RunOptions
from dlspec_ray.spec.types import DatasetManifest
from dlspec_ray.task import Task, resolve_task


def prepare(
    model: Any,
    dataset: Any = None,
    *,
    software: Any = None,
    hardware: Any = None,
    reference: Any = None,
    run: RunOptions | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    dry_run: bool = False,
    **settings: Any,
) -> tuple[Task, RunOptions]:
    """The task and its options, resolved and checked: ``evaluate()``'s arguments in."""
    options = (run or RunOptions()).with_settings(**settings)
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    preflight(task, options, out, overwrite, dry_run=dry_run)
    return task, options


def preflight(
    task: Task,
    options: RunOptions,
    out: str | Path | None,
    overwrite: bool,
    *,
    dry_run: bool = False,
) -> None:
    """What a run checks before Ray starts; a dry run checks the same, but for host setup
    commands, which it shows instead of refusing.

    The model's local artifacts are verified here (a bad checksum never reaches
    a node), and the environment is prepared (a missing image, an unreachable
    engine or a bad interpreter fails here, not in each actor). The dataset is
    not read here: each node fetches and reads it itself.
    """
    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.environments import prepare_environment
    from dlspec_ray.frameworks import check_framework
    from dlspec_ray.plan import check_host_setup, environment_kind
    from dlspec_ray.trust import check_trusted

    kind = environment_kind(task, options.environment)
    check_trusted(task, kind, trust=options.trust)
    check_framework(task.software, kind, task.model)
    if not dry_run:
        check_host_setup(task.hardware, allowed=options.allow_host_setup)
    if out is not None:
        from dlspec_ray.run_output import check_output

        check_output(out, overwrite)
    local_artifacts = [s for s in task.model.artifacts if not s.is_remote]
    fetch_all(local_artifacts, options.cache_dir, allow_unverified=options.allow_unverified)
    _check_local_dataset(task.dataset, options)
    prepare_environment(kind, task.software)


def _check_local_dataset(dataset: DatasetManifest, options: RunOptions) -> None:
    """A local source the driver can see is checked here: a bad checksum or a folder without
    one fails in milliseconds. Remote sources are left to the nodes: the driver never
    downloads the dataset."""
    from dlspec_ray.artifacts import fetch_all

    fetch_all(
        [s for s in dataset.sources if not s.is_remote],
        options.cache_dir,
        allow_unverified=options.allow_unverified,
    )
