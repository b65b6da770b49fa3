"""One evaluation, end to end: a task in, a complete run directory and a summary out.

The run is built in a staging folder beside ``out`` and renamed into place when
it is complete, so ``out`` either holds a whole run or nothing: never a
half-written one, whether the run fails, is interrupted or crashes.
"""

from __future__ import annotations

__all__ = ["EvaluationResult", "RunOptions", "check_host_setup", "evaluate"]

import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.environments import prepare_environment
from dlspec_ray.errors import UsageError
from dlspec_ray.frameworks import check_framework
from dlspec_ray.hardware import candidate_requests
from dlspec_ray.progress import Progress
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)
from dlspec_ray.stages import Samples
from dlspec_ray.task import Task, resolve_task

if TYPE_CHECKING:
    import pyarrow as pa

    from dlspec_ray.session import Session

# Enough batches per shard that a shard file is worth its overhead, few enough
# that an actor's results reach disk while the run is still going.
_SHARDS_PER_ACTOR = 2


@dataclass(frozen=True)
class RunOptions:
    """How to run a task; checked when built, so a bad value fails before anything starts."""

    batch_size: int = 64
    actors: int | None = None
    limit: int | None = None
    max_errors: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    environment: str | None = None
    cache_dir: Path | None = None
    progress: bool = True
    batches_per_call: int | None = None
    depth: int = 2
    ready_timeout_s: float = 300.0
    allow_host_setup: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "actors", "limit", "batches_per_call", "depth"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{name}: expected a positive integer, got {value!r}")
        if not isinstance(self.max_errors, int) or self.max_errors < 0:
            raise UsageError(f"max_errors: expected 0 or more, got {self.max_errors!r}")
        if self.ready_timeout_s <= 0:
            raise UsageError(f"ready_timeout_s: expected seconds > 0, got {self.ready_timeout_s}")


@dataclass
class EvaluationResult:
    summary: dict[str, Any]
    out_dir: Path

    @property
    def passed(self) -> bool:
        """No reference check failed and the error budget held."""
        return self.summary["status"] == "ok"

    @cached_property
    def table(self) -> pa.Table:
        from dlspec_ray.results import read_results

        return read_results(self.out_dir)

    def to_pandas(self):
        return self.table.to_pandas()

    def format(self) -> str:
        from dlspec_ray.results import format_summary_table

        return format_summary_table(self.summary)

    def plot_latency(self, stage: str = "run", **kwargs: Any) -> Any:
        """Box plot of one stage's per-batch latency (matplotlib Figure)."""
        from dlspec_ray.results.plots import plot_latency

        return plot_latency({self.summary["run_id"]: self.table}, stage, **kwargs)

    def plot_stage_breakdown(self, **kwargs: Any) -> Any:
        """Stacked bar of pre/run/post time per sample (matplotlib Figure)."""
        from dlspec_ray.results.plots import plot_stage_breakdown

        return plot_stage_breakdown({self.summary["run_id"]: self.summary}, **kwargs)


def evaluate(
    model: str | ModelManifest,
    dataset: str | DatasetManifest | None = None,
    *,
    software: str | SoftwareManifest | None = None,
    hardware: str | HardwareManifest | None = None,
    reference: str | ReferenceLog | None = None,
    batch_size: int = 64,
    actors: int | None = None,
    limit: int | None = None,
    max_errors: int = 0,
    options: Mapping[str, Any] | None = None,
    environment: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    cache_dir: str | Path | None = None,
    progress: bool = True,
    batches_per_call: int | None = None,
    depth: int = 2,
    ready_timeout_s: float = 300.0,
    address: str | None = None,
    session: Session | None = None,
    allow_host_setup: bool = False,
) -> EvaluationResult:
    """Evaluate ``model`` on ``dataset`` on Ray and write a run directory.

    Manifests are paths, ``name@version`` refs, ids or already-loaded manifests;
    what is not given comes from the reference log. Without ``session``, a
    one-off session connects to ``address`` (else ``RAY_ADDRESS``, else a Ray
    this process already joined, else an embedded local Ray) and ends its host
    actors, and any Ray it started, on return. ``batches_per_call`` (default:
    chosen from the data) and ``depth`` (chained calls queued per actor) tune how
    work is fed to the actors.
    """
    run = RunOptions(
        batch_size=batch_size,
        actors=actors,
        limit=limit,
        max_errors=max_errors,
        options=dict(options or {}),
        environment=environment,
        cache_dir=Path(cache_dir) if cache_dir else None,
        progress=progress,
        batches_per_call=batches_per_call,
        depth=depth,
        ready_timeout_s=ready_timeout_s,
        allow_host_setup=allow_host_setup,
    )
    if session is not None and address is not None:
        raise UsageError("address: give it to the Session, not to evaluate(session=...)")
    phases = _Phases()
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    env_kind = _environment_kind(task, run.environment)
    check_framework(task.software, env_kind, task.model)
    run_id = uuid.uuid4().hex[:12]
    out_dir = Path(out) if out is not None else Path("runs") / run_id
    _check_out_dir(out_dir, overwrite)
    check_host_setup(task.hardware, allowed=run.allow_host_setup)
    phases.mark("resolve")

    from dlspec_ray.session import Session

    own_session = session is None
    session = session or Session(address)  # connects on first use, not here

    # Every input is checked before Ray starts: bad input costs milliseconds.
    fetch_all(task.model.artifacts, run.cache_dir)
    samples = session.samples(task.dataset, run.cache_dir)
    if run.limit is not None:
        samples = samples.head(run.limit)
    if len(samples) == 0:
        raise UsageError(f"{task.dataset.path}: the dataset has no samples to evaluate")
    # A missing image, an unreachable engine or a bad interpreter fails here, not in each actor.
    prepare_environment(env_kind, task.software)
    phases.mark("prepare")

    staging = out_dir.parent / f".{out_dir.name}.partial-{run_id}"
    staging.mkdir(parents=True)
    try:
        summary = _run(task, samples, staging, run, session, run_id, env_kind, phases)
        _publish(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if own_session:
            session.close()
    return EvaluationResult(summary=summary, out_dir=out_dir)


def _run(
    task: Task,
    samples: Samples,
    staging: Path,
    run: RunOptions,
    session: Session,
    run_id: str,
    env_kind: str,
    phases: _Phases,
) -> dict[str, Any]:
    """Start (or reuse) host actors, stream every batch through them, write shards and summary."""
    import ray

    from dlspec_ray.results import build_summary, read_results, write_summary
    from dlspec_ray.runtime import HostSpec, chunk_batches, plan_batches, run_batches

    started_at = datetime.now(timezone.utc)
    connection = session.connection
    phases.mark("connect")
    requests = candidate_requests(task.hardware)
    batches_total = math.ceil(len(samples) / run.batch_size)
    count = run.actors or _default_actors(requests, batches_total)
    spec = HostSpec(
        model=task.model,
        software=task.software,
        environment=env_kind,
        batch_size=run.batch_size,
        num_threads=max(1, int(requests[0].num_cpus)),
        options=dict(run.options),
        cache_dir=str(run.cache_dir) if run.cache_dir else None,
        setup=task.hardware.setup if task.hardware and run.allow_host_setup else (),
        hardware=task.hardware,
        run_id=run_id,
    )
    pool = session.pool(
        spec, requests, count, what=task.describe(), ready_timeout_s=run.ready_timeout_s
    )
    phases.mark("start_actors")

    per_shard = max(1, math.ceil(batches_total / (count * _SHARDS_PER_ACTOR)))
    batches = plan_batches(len(samples), run.batch_size, per_shard)
    per_call = run.batches_per_call or chunk_batches(
        len(batches), count, _batch_bytes(samples.inputs, run.batch_size)
    )
    writer = _ShardWriter(staging, samples, batches)
    bar = Progress(len(samples), task.model.name, enabled=run.progress)
    wall_started = time.perf_counter()
    outcomes = run_batches(
        pool.actors,
        pool.node_ids,
        samples.inputs,
        batches,
        per_call=per_call,
        depth=run.depth,
        should_stop=lambda: writer.failed_samples > run.max_errors,
    )
    first_result_at = None
    for outcome in outcomes:
        first_result_at = first_result_at or time.perf_counter()
        writer.add(outcome)
        bar.update(outcome.batch.rows, outcome.batch.rows if outcome.error else 0)
    wall_s = time.perf_counter() - wall_started
    bar.close()
    phases.mark("stream")

    summary = build_summary(
        read_results(staging),
        run_id=run_id,
        task=task.manifests(),
        environment={**pool.environment, "nodes": sorted(set(pool.node_ids))},
        wall_s=wall_s,
        batch_size=run.batch_size,
        actors=count,
        started_at=started_at,
        finished_at=datetime.now(timezone.utc),
        reference=task.reference,
    )
    summary["batches_per_call"] = per_call
    # From the evaluate() call to the first batch's result: what a user waits before any.
    if first_result_at is not None:
        summary["first_result_s"] = round(first_result_at - phases.started, 6)
    summary["max_errors"] = run.max_errors
    summary["status"] = _status(summary, run.max_errors)
    summary["resources"] = pool.request.as_dict()
    if spec.setup:
        summary["host_setup"] = {"commands": list(spec.setup), "actors": pool.host_setup}
    summary["ray"] = {"embedded": connection.embedded, "version": ray.__version__}
    phases.mark("summarise")
    summary["phases_s"] = phases.seconds
    write_summary(staging, summary)
    return summary


class _ShardWriter:
    """Turns batch outcomes into rows and writes each shard as soon as all its batches are in."""

    def __init__(self, out_dir: Path, samples: Samples, batches: Sequence[Any]):
        self.out_dir = out_dir
        self.samples = samples
        self.failed_samples = 0
        self._missing: dict[int, int] = {}
        for b in batches:
            self._missing[b.shard_id] = self._missing.get(b.shard_id, 0) + 1
        self._rows: dict[int, list[Any]] = {}

    def add(self, outcome: Any) -> None:
        from dlspec_ray.results import rows_from_batch, shard_table, write_shard

        b = outcome.batch
        labels = self.samples.labels
        rows = rows_from_batch(
            self.samples.ids[b.start : b.stop],
            None if labels is None else labels[b.start : b.stop],
            outcome.value,
            batch_id=b.batch_id,
            shard_id=b.shard_id,
            node_id=outcome.node_id,
            pre_ms=outcome.ms.get("pre"),
            run_ms=outcome.ms.get("run"),
            post_ms=outcome.ms.get("post"),
            error=outcome.error,
        )
        if outcome.error:
            self.failed_samples += b.rows
        parts = self._rows.setdefault(b.shard_id, [])
        parts.append((b.batch_id, rows))
        self._missing[b.shard_id] -= 1
        if self._missing[b.shard_id] == 0:
            ordered = [r for _, r in sorted(self._rows.pop(b.shard_id), key=lambda p: p[0])]
            write_shard(shard_table(ordered), self.out_dir, b.shard_id)


class _Phases:
    """Wall time of each phase of a run, for the summary: where did the time go?"""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()
        self.started = self._last

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 6)
        self._last = now


def _status(summary: Mapping[str, Any], max_errors: int) -> str:
    if summary["errors"]["count"] > max_errors:
        return "error_budget_exceeded"
    reference = summary.get("reference")
    if reference and reference["verdict"] != "PASS":
        return "reference_failed"
    return "ok"


def _batch_bytes(inputs: Any, batch_size: int) -> int | None:
    import numpy as np

    if not isinstance(inputs, np.ndarray) or len(inputs) == 0:
        return None
    return inputs.nbytes // len(inputs) * batch_size


def _default_actors(requests: Sequence[Any], batches: int) -> int:
    """As many actors as the nodes that fit the request hold, but never more than batches.

    Counted node by node: on a cluster of several kinds of node, the CPUs of
    nodes the request does not fit would only make the placement check refuse.
    """
    import ray

    from dlspec_ray.runtime import default_actor_count

    return default_actor_count(requests, ray.nodes(), batches)


def check_host_setup(hardware: HardwareManifest | None, *, allowed: bool) -> None:
    """Refuse a hardware manifest's host setup commands unless the user allowed them."""
    if hardware is None or not hardware.setup or allowed:
        return
    from dlspec_ray.hardware import describe_setup

    raise UsageError(
        f"{hardware.path}: setup: the hardware manifest {hardware.ref} has host setup commands. "
        "They would run on every node that holds a host actor, outside the environment, as "
        f"the Ray worker's user:\n{describe_setup(hardware.setup)}\nPass --allow-host-setup "
        "(evaluate(..., allow_host_setup=True)) to run them, or --dry-run to print them "
        "without running anything."
    )


def _environment_kind(task: Task, override: str | None) -> str:
    from dlspec_ray.environments import ENVIRONMENTS

    kind = override or (task.software.environment if task.software else "inline")
    if kind not in ENVIRONMENTS:
        where = "--environment" if override else f"{task.software.path}: environment"
        raise UsageError(
            f"{where}: the {kind!r} environment is not built yet in this version of "
            f"dlspec-ray; available: {', '.join(ENVIRONMENTS.names())}."
        )
    return kind


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work, an --out the finished run could not be published to."""
    from dlspec_ray.results.run_dir import check_out_dir

    check_out_dir(out_dir, overwrite)


def _publish(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished run into place, replacing only a previous run; never loses the run."""
    from dlspec_ray.results.run_dir import publish

    publish(staging, out_dir, overwrite)
