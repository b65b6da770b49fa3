"""``dlspec-ray run --scenario``: a LoadGen run of a task, as a run directory.

The same preflight as an ordinary run (manifests, artifacts, trust, ``--out``), then
``run_loadgen`` in this process, then a run directory that is whole or absent: built
in a staging folder beside ``--out`` and renamed into place, with ``summary.json``
(its ``loadgen`` section is ``LoadGenResult.as_dict()``) and LoadGen's own logs under
``loadgen/``. Stage code runs next to LoadGen in this process, so a LoadGen run is an
``inline`` run, and the trusted-roots check applies to it whatever the software says.
"""

from __future__ import annotations

__all__ = ["evaluate_loadgen"]

import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import UsageError
from dlspec_ray.loadgen.run import LoadGenResult, run_loadgen
from dlspec_ray.loadgen.settings import LoadGenSettings
from dlspec_ray.options import RunOptions

if TYPE_CHECKING:
    from dlspec_ray.results.run_result import EvaluationResult


def evaluate_loadgen(
    model: Any,
    dataset: Any = None,
    *,
    settings: LoadGenSettings,
    software: Any = None,
    hardware: Any = None,
    reference: Any = None,
    run: RunOptions | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
) -> EvaluationResult:
    """Run ``settings`` on the task and write its run directory; see the module docstring.

    Its ``summary["status"]`` is ``loadgen_invalid`` when LoadGen found the run INVALID,
    ``noncompliant`` when the performance run's answers differ from accuracy mode's, else
    ``ok``; the CLI exits 1 for the first two, as for a failed reference check.
    """
    from dlspec_ray.inflight import forget, remember
    from dlspec_ray.plan import environment_kind
    from dlspec_ray.preflight import preflight
    from dlspec_ray.results.run_dir import publish
    from dlspec_ray.results.run_result import EvaluationResult
    from dlspec_ray.results.summary import write_summary
    from dlspec_ray.run_output import is_uri, staging_path
    from dlspec_ray.task import resolve_task
    from dlspec_ray.trust import check_trusted

    options = run or RunOptions()
    if reference is not None:
        raise UsageError(
            "--reference with --scenario: checking a LoadGen run against a reference log is "
            "not built; run the task without --scenario to check it"
        )
    if options.pre_actors:
        raise UsageError(
            "--pre-actors with --scenario: LoadGen runs every stage beside itself in one "
            "process (no Ray hop per query), so there are no actors to move pre-process to; "
            "drop --pre-actors"
        )
    if out is not None and is_uri(out):
        raise UsageError(
            f"--out {out}: a LoadGen run writes a local run directory only (object storage "
            "is not built for --scenario)"
        )
    run_id = uuid.uuid4().hex[:12]
    final = Path(os.path.abspath(os.path.expanduser(out or Path("runs") / run_id)))
    task = resolve_task(model, dataset, software, hardware, extra_roots=manifest_roots)
    kind = environment_kind(task, options.environment)
    if kind != "inline":
        raise UsageError(
            f"--scenario with the {kind} environment: LoadGen drives the stage code in its "
            "own process (no Ray hop per query), so a LoadGen run is inline; running the "
            "system under test in a process or docker environment is not built. Drop "
            "--environment, or use the inline software manifest"
        )
    preflight(task, options, final, overwrite)
    check_trusted(task, "inline", trust=options.trust)
    started_at = datetime.now(timezone.utc)
    staging = staging_path(final, run_id)
    record = remember("staging", staging)
    try:
        staging.mkdir(parents=True)
        result = run_loadgen(
            task, settings, staging, batch_size=options.batch_size, limit=options.limit,
            options=dict(options.options), cache_dir=options.cache_dir,
            allow_unverified=options.allow_unverified,
        )  # fmt: skip
        summary = _summary(result, run_id, task, started_at)
        write_summary(staging, summary)
        publish(staging, final, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        forget(record)
    from dlspec_ray.results.index import index_run

    why_not = index_run(final)
    if why_not:
        print(f"dlspec-ray: {why_not}", file=sys.stderr)
    return EvaluationResult(summary=summary, out_dir=final)


def _summary(result: LoadGenResult, run_id: str, task: Any, started_at: datetime) -> dict[str, Any]:
    """summary.json of a LoadGen run: the fields every run has, and the ``loadgen`` section."""
    from dlspec_ray.results.metrics import accuracy_intervals
    from dlspec_ray.results.schema import SCHEMA_VERSION
    from dlspec_ray.results.summary import manifest_entry

    accuracy: dict[str, float] = {}
    scored = 0
    if result.accuracy is not None:
        scored = result.accuracy.samples
        accuracy = {
            k: v
            for k, v in (("top1", result.accuracy.top1), ("top5", result.accuracy.top5))
            if v is not None
        }
    perf = result.performance
    if perf is not None and not perf.valid:
        status = "loadgen_invalid"
    elif result.compliance is not None and not result.compliance.passed:
        status = "noncompliant"
    else:
        status = "ok"
    throughput = perf.metric if perf is not None and perf.metric_unit == "samples_per_s" else None
    return {
        "run_id": run_id,
        "status": status,
        "results_schema_version": SCHEMA_VERSION,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "task": {
            kind: manifest_entry(m) if m is not None else None
            for kind, m in task.manifests().items()
        },
        "environment": {"kind": "inline", "where": result.where},
        "samples": result.samples,
        "labelled_samples": scored,
        "errors": {"count": 0, "batches": 0, "messages": []},
        "accuracy": accuracy,
        "accuracy_ci95": accuracy_intervals(accuracy, scored),
        "latency_ms": {},
        "throughput_sps": throughput or 0.0,
        "wall_s": sum(result.phases_s.get(m, 0.0) for m in ("accuracy", "performance")),
        "batch_size": result.batch_size,
        "actors": 1,
        "reference": None,
        "loadgen": result.as_dict(),
    }
