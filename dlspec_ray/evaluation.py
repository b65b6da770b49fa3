"""One evaluation, end to end: a task in, a complete run directory and a summary out.

The run is built in a staging folder beside ``out`` and renamed into place when
it is complete, so ``out`` either holds a whole run or nothing: never a
half-written one, whether the run fails, is interrupted or crashes.
"""

from __future__ import annotations

__all__ = ["EvaluationResult", "evaluate"]

import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.errors import UsageError
from dlspec_ray.hardware import candidate_requests
from dlspec_ray.progress import Progress
from dlspec_ray.spec.types import (
    DatasetManifest,
    HardwareManifest,
    ModelManifest,
    ReferenceLog,
    SoftwareManifest,
)
from dlspec_ray.stages import read_samples
from dlspec_ray.task import Task, resolve_task

if TYPE_CHECKING:
    import pyarrow as pa

# Enough batches per shard that a shard file is worth its overhead, few enough
# that an actor's results reach disk while the run is still going.
_SHARDS_PER_ACTOR = 2


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


def evaluate(
    model: str | ModelManifest,
    dataset: str | DatasetManifest,
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
    address: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    manifest_roots: Sequence[str | Path] = (),
    cache_dir: str | Path | None = None,
    progress: bool = True,
    depth: int = 4,
    ready_timeout_s: float = 300.0,
) -> EvaluationResult:
    """Evaluate ``model`` on ``dataset`` on Ray and write a run directory.

    Manifests are paths, ``name@version`` refs, ids or already-loaded manifests.
    Without ``address`` (or ``RAY_ADDRESS``), a local Ray is started in-process
    and shut down afterwards; a Ray this process already joined is reused.
    """
    phases = _Phases()
    _check_positive(batch_size=batch_size, actors=actors, limit=limit, depth=depth)
    if max_errors < 0:
        raise UsageError(f"max_errors: expected 0 or more, got {max_errors}")
    task = resolve_task(model, dataset, software, hardware, reference, extra_roots=manifest_roots)
    env_kind = _environment_kind(task, environment)
    run_id = uuid.uuid4().hex[:12]
    out_dir = Path(out) if out is not None else Path("runs") / run_id
    _check_out_dir(out_dir, overwrite)
    cache = Path(cache_dir) if cache_dir else None

    phases.mark("resolve")
    # Every input is checked before Ray starts: bad input costs milliseconds.
    fetch_all(task.model.artifacts, cache)
    samples = read_samples(task.dataset, fetch_all(task.dataset.sources, cache))
    if limit is not None:
        samples = samples.head(limit)
    if len(samples) == 0:
        raise UsageError(f"{task.dataset.path}: the dataset has no samples to evaluate")
    phases.mark("prepare")

    staging = out_dir.parent / f".{out_dir.name}.partial-{run_id}"
    staging.mkdir(parents=True)
    try:
        summary = _run(
            task,
            samples,
            staging,
            run_id=run_id,
            env_kind=env_kind,
            batch_size=batch_size,
            actors=actors,
            max_errors=max_errors,
            options=dict(options or {}),
            address=address,
            cache=cache,
            show_progress=progress,
            depth=depth,
            ready_timeout_s=ready_timeout_s,
            phases=phases,
        )
        _publish(staging, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return EvaluationResult(summary=summary, out_dir=out_dir)


def _run(
    task: Task,
    samples: Any,
    staging: Path,
    *,
    run_id: str,
    env_kind: str,
    batch_size: int,
    actors: int | None,
    max_errors: int,
    options: dict[str, Any],
    address: str | None,
    cache: Path | None,
    show_progress: bool,
    depth: int,
    ready_timeout_s: float,
    phases: _Phases,
) -> dict[str, Any]:
    from dlspec_ray.results import (
        build_summary,
        read_results,
        rows_from_batch,
        shard_table,
        write_shard,
        write_summary,
    )
    from dlspec_ray.runtime import HostSpec, connect, plan_batches, run_batches, start_pool

    started_at = datetime.now(timezone.utc)
    connection = connect(address)
    phases.mark("connect")
    pool = None
    try:
        import ray

        requests = candidate_requests(task.hardware)
        num_threads = max(1, int(requests[0].num_cpus))
        batches_total = math.ceil(len(samples) / batch_size)
        count = actors or _default_actors(requests[0].num_cpus, batches_total)
        spec = HostSpec(
            model=task.model,
            software=task.software,
            environment=env_kind,
            batch_size=batch_size,
            num_threads=num_threads,
            options=options,
            cache_dir=str(cache) if cache else None,
        )
        pool = start_pool(
            spec, requests, count, what=task.describe(), ready_timeout_s=ready_timeout_s
        )
        phases.mark("start_actors")
        per_shard = max(1, math.ceil(batches_total / (count * _SHARDS_PER_ACTOR)))
        batches = plan_batches(len(samples), batch_size, per_shard)
        shard_sizes: dict[int, int] = {}
        for b in batches:
            shard_sizes[b.shard_id] = shard_sizes.get(b.shard_id, 0) + 1
        pending: dict[int, list[Any]] = {}
        failed = {"samples": 0}
        bar = Progress(len(samples), task.model.name, enabled=show_progress)
        wall_started = time.perf_counter()
        for outcome in run_batches(
            pool.actors,
            pool.node_ids,
            samples.inputs,
            batches,
            depth=depth,
            should_stop=lambda: failed["samples"] > max_errors,
        ):
            b = outcome.batch
            labels = None if samples.labels is None else samples.labels[b.start : b.stop]
            rows = rows_from_batch(
                samples.ids[b.start : b.stop],
                labels,
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
                failed["samples"] += b.rows
            bar.update(b.rows, b.rows if outcome.error else 0)
            pending.setdefault(b.shard_id, []).append(rows)
            if len(pending[b.shard_id]) == shard_sizes[b.shard_id]:
                parts = sorted(pending.pop(b.shard_id), key=lambda r: r["batch_id"][0].as_py())
                write_shard(shard_table(parts), staging, b.shard_id)
        wall_s = time.perf_counter() - wall_started
        bar.close()
        phases.mark("stream")
        table = read_results(staging)
        summary = build_summary(
            table,
            run_id=run_id,
            task=task.manifests(),
            environment={**pool.environment, "nodes": sorted(set(pool.node_ids))},
            wall_s=wall_s,
            batch_size=batch_size,
            actors=count,
            started_at=started_at,
            finished_at=datetime.now(timezone.utc),
            reference=task.reference,
        )
        summary["max_errors"] = max_errors
        summary["status"] = _status(summary, max_errors)
        summary["resources"] = pool.request.as_dict()
        summary["ray"] = {"embedded": connection.embedded, "version": ray.__version__}
        phases.mark("summarise")
        summary["phases_s"] = phases.seconds
        write_summary(staging, summary)
        return summary
    finally:
        if pool is not None:
            pool.close()
        connection.close()


class _Phases:
    """Wall time of each phase of a run, for the summary: where did the time go?"""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

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


def _default_actors(ncpu: float, batches: int) -> int:
    """As many actors as the cluster's CPUs hold, but never more than there are batches."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 1)
    return max(1, min(batches, int(cpus // max(ncpu, 1e-9))))


def _environment_kind(task: Task, override: str | None) -> str:
    from dlspec_ray.environments import ENVIRONMENTS

    kind = override or (task.software.environment if task.software else "inline")
    if kind not in ENVIRONMENTS:
        source = "--environment" if override else f"{task.software.path}: environment"
        raise UsageError(
            f"{source}: the {kind!r} environment is not built yet in this version of "
            f"dlspec-ray; available: {', '.join(ENVIRONMENTS.names())}."
        )
    return kind


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise UsageError(
            f"--out {out_dir}: the directory already holds files; choose another --out, or "
            "pass --overwrite to replace it"
        )


def _publish(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished run into place; an old run is only removed once the new one is whole."""
    trash = None
    if out_dir.exists():
        if any(out_dir.iterdir()) and not overwrite:
            raise UsageError(f"--out {out_dir}: appeared while the run was going; not replaced")
        trash = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(trash)
    staging.rename(out_dir)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _check_positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise UsageError(f"{name}: expected a positive integer, got {value}")
