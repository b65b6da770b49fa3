"""One evaluation, end to end: a task in, a complete run directory and a summary out.

``evaluate`` resolves the manifests, checks every input it can before Ray
starts (bad input costs milliseconds), connects, indexes the dataset on a node,
makes the ``Plan`` and has a ``Session`` execute it. The run is built beside
``out`` and renamed into place when it is complete, so ``out`` holds a whole
run or nothing, whether the run fails, is interrupted or crashes.
"""

from __future__ import annotations

__all__ = ["EvaluationResult", "RunOptions", "dry_run", "evaluate", "preflight"]

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import UsageError
from dlspec_ray.options import RunOptions
from dlspec_ray.progress import Phases
from dlspec_ray.results.run_result import EvaluationResult
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)
from dlspec_ray.task import resolve_task

if TYPE_CHECKING:
    from dlspec_ray.plan import Plan
    from dlspec_ray.session import Session


def evaluate(
    model: str | ModelManifest,
    dataset: str | DatasetManifest | None = None,
    *,
    software: str | SoftwareManifest | None = None,
    hardware: str | HardwareManifest | None = None,
    reference: str | ReferenceLog | None = None,
    run: RunOptions | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    address: str | None = None,
    session: Session | None = None,
    **settings: Any,
) -> EvaluationResult:
    """Evaluate ``model`` on ``dataset`` on Ray and write a run directory.

    Manifests are paths, ``name@version`` refs, ids or already-loaded manifests;
    what is not given comes from the reference log. How to run is ``run`` (a
    ``RunOptions``), or its fields as keywords (``batch_size=256, limit=2000``),
    which override ``run``'s. ``out`` is a folder or an object-storage URI
    (``s3://bucket/runs/x``); default ``runs/<run id>``. Without ``session``, a
    one-off session connects to ``address`` (else ``RAY_ADDRESS``, else a Ray
    this process already joined, else an embedded local Ray) and ends its host
    actors, and any Ray it started, on return.
    """
    options = (run or RunOptions()).with_settings(**settings)
    if session is not None and address is not None:
        raise UsageError("address: give it to the Session, not to evaluate(session=...)")
    phases = Phases()
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    run_id = uuid.uuid4().hex[:12]
    out = out if out is not None else Path("runs") / run_id
    # Everything that can be checked without Ray is checked here, in milliseconds.
    preflight(task, options, out, overwrite)
    phases.mark("resolve")

    from dlspec_ray.session import Session

    own_session = session is None
    session = session or Session(address)  # connects on first use, not here
    try:
        plan = session.plan(task, options, run_id=run_id)
        if plan.index.samples == 0:
            raise UsageError(f"{task.dataset.path}: the dataset has no samples to evaluate")
        phases.mark("plan")
        return session.execute(plan, out, overwrite=overwrite, phases=phases)
    finally:
        if own_session:
            session.close()


def preflight(
    task: Any,
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

    kind = environment_kind(task, options.environment)
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


def dry_run(
    model: str | ModelManifest,
    dataset: str | DatasetManifest | None = None,
    *,
    software: str | SoftwareManifest | None = None,
    hardware: str | HardwareManifest | None = None,
    reference: str | ReferenceLog | None = None,
    run: RunOptions | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    address: str | None = None,
    **settings: Any,
) -> Plan:
    """The ``Plan`` that ``evaluate`` with the same arguments would carry out; runs nothing.

    It checks what ``evaluate`` checks before it starts. The cluster is the one
    at ``address`` (or ``RAY_ADDRESS``), else this machine as the embedded Ray
    would see it, without starting it. A dataset whose sources are all local is
    indexed here, so the shards are known; one with remote sources is not
    downloaded, and its shards are planned when a node has indexed it.
    """
    import os

    from dlspec_ray.plan import ClusterView, plan

    options = (run or RunOptions()).with_settings(**settings)
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    preflight(task, options, out, overwrite, dry_run=True)
    if address or os.environ.get("RAY_ADDRESS"):
        from dlspec_ray.session import Session

        with Session(address) as session:
            cluster = session.cluster()
    else:
        cluster = ClusterView.this_machine()
    index = None
    if not any(s.is_remote for s in task.dataset.sources):
        from dlspec_ray.artifacts import fetch_all
        from dlspec_ray.stages import read_samples

        paths = fetch_all(task.dataset.sources, options.cache_dir, allow_unverified=True)
        unverified = tuple(s.name for s in task.dataset.sources if not s.checksum)
        index = read_samples(task.dataset, paths).index(unverified).limited(options.limit)
    return plan(task, options, cluster, index)
