"""One evaluation, end to end: a task in, a complete run directory and a summary out.

``evaluate`` is ``Session.evaluate`` on a one-off session (or the one given):
resolve the manifests, check every input it can before Ray starts (bad input
costs milliseconds), connect, index the dataset on a node, make the ``Plan``
and execute it. The run is built beside ``out`` and renamed into place when it
is complete, so ``out`` holds a whole run or nothing, whether the run fails,
is interrupted or crashes. ``dry_run`` makes the same plan and runs nothing.
"""

from __future__ import annotations

__all__ = ["EvaluationResult", "RunOptions", "dry_run", "evaluate"]

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import UsageError
from dlspec_ray.options import RunOptions
from dlspec_ray.preflight import prepare
from dlspec_ray.results.run_result import EvaluationResult
from dlspec_ray.session import Session
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)

if TYPE_CHECKING:
    from dlspec_ray.plan import Plan


def evaluate(
    model: str | ModelManifest | None = None,
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
    resume: str | Path | None = None,
    index: bool = True,
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

    ``resume`` (the run directory of an interrupted run) finishes that run
    instead: only the shards its ledger lacks are run, and the manifests,
    artifacts and result settings must be those it started with (what is not
    given is taken from its ``run.json``).

    The finished run is added to the index of its results root, the folder that holds
    ``out`` (``dlspec-ray runs ROOT`` lists it); ``index=False`` leaves that to the caller,
    as a sweep does, which indexes its runs with their labels.
    """
    if session is not None and address is not None:
        raise UsageError("address: give it to the Session, not to evaluate(session=...)")
    task_and_run = {
        "software": software,
        "hardware": hardware,
        "reference": reference,
        "run": run,
        "out": out,
        "overwrite": overwrite,
        "manifest_roots": manifest_roots,
        "resume": resume,
        "index": index,
    }
    if session is not None:
        return session.evaluate(model, dataset, **task_and_run, **settings)
    with Session(address) as own:  # connects on first use, after every input is checked
        return own.evaluate(model, dataset, **task_and_run, **settings)


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
    downloaded, and its shards are planned when a node has indexed it. Nor is one
    whose reader is manifest code bound for a ``process`` or ``docker`` environment:
    that code runs only inside the environment, and a dry run starts none.
    """
    import os

    from dlspec_ray.plan import ClusterView, environment_kind, indexed_by_dry_run, plan

    task, options = prepare(
        model,
        dataset,
        software=software,
        hardware=hardware,
        reference=reference,
        run=run,
        out=out,
        overwrite=overwrite,
        manifest_roots=manifest_roots,
        dry_run=True,
        **settings,
    )
    if address or os.environ.get("RAY_ADDRESS"):
        with Session(address) as session:
            cluster = session.cluster()
    else:
        cluster = ClusterView.this_machine()
    index = None
    if indexed_by_dry_run(task, environment_kind(task, options.environment)):
        from dlspec_ray.artifacts import fetch_all
        from dlspec_ray.stages import read_samples

        paths = fetch_all(task.dataset.sources, options.cache_dir, allow_unverified=True)
        unverified = tuple(s.name for s in task.dataset.sources if not s.checksum)
        index = read_samples(task.dataset, paths).index(unverified).limited(options.limit)
    return plan(task, options, cluster, index)
