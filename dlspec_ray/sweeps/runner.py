"""Running a sweep's tasks concurrently on one Ray, and writing what they measured.

Each task is a plain ``evaluate()`` in a driver thread: Ray's client calls are
thread-safe, every evaluation creates and ends its own host actors, and the
bound on threads is the bound on tasks whose actors hold CPUs at once. A
task that fails (bad model code, an actor that cannot start) is recorded with
its error and the others go on.
"""

from __future__ import annotations

__all__ = ["SWEEP_FILE", "run_sweep"]

import json
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.run_summary import RunSummary
from dlspec_ray.sweeps.files import RESULTS_FILE, SWEEP_FILE, TASKS_FILE
from dlspec_ray.sweeps.plan import SweepPlan, SweepTask


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    *,
    concurrency: int | None = None,
    address: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    cache_dir: str | Path | None = None,
    ready_timeout_s: float = 300.0,
) -> Any:
    """Run every task of ``plan``, at most ``concurrency`` at once; returns a SweepResult.

    ``out`` is a results root: the sweep writes ``out/<name>-<sweep id>/`` (one run
    directory per task, plus ``sweep.json``, ``results.parquet`` and ``tasks.parquet``)
    and adds each finished run to ``out/index.jsonl``.
    """
    from dlspec_ray.runtime import connect
    from dlspec_ray.sweeps.result import SweepResult

    spec = plan.spec
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DLSpecError(f"--out {root}: exists and is not a directory; choose a folder")
    bound = min(concurrency or spec.concurrency, len(plan.tasks))
    sweep_id = uuid.uuid4().hex[:12]
    sweep_dir = root / f"{spec.name}-{sweep_id}"
    sweep_dir.mkdir(parents=True)
    display = _Display(len(plan.tasks), enabled=progress, stream=stream or sys.stderr)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    connection = connect(address)
    try:
        actors = spec.actors or _actors_per_task(bound)
        display.start(spec.name, bound, actors, plan, sweep_dir)
        outcomes = _run_all(plan, sweep_dir, bound, actors, display, cache_dir, ready_timeout_s)
    finally:
        connection.close()
    wall_s = time.perf_counter() - started
    summary = _write_results(
        plan, root, sweep_dir, sweep_id, outcomes, started_at, wall_s, bound, actors
    )
    display.finish(summary)
    return SweepResult(summary=summary, out_dir=sweep_dir)


def _actors_per_task(bound: int) -> int:
    """The cluster's CPUs shared out over the tasks that run at once, one actor each at least."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 1)
    return max(1, int(cpus // bound))


def _run_all(
    plan: SweepPlan,
    sweep_dir: Path,
    bound: int,
    actors: int,
    display: _Display,
    cache_dir: str | Path | None,
    ready_timeout_s: float,
) -> dict[int, dict[str, Any]]:
    outcomes: dict[int, dict[str, Any]] = {}
    pending = list(plan.tasks)
    with ThreadPoolExecutor(max_workers=bound, thread_name_prefix="dlspec-sweep") as pool:
        running: dict[Future, SweepTask] = {}
        try:
            while pending or running:
                while pending and len(running) < bound:
                    task = pending.pop(0)
                    display.task_started(task)
                    future = pool.submit(
                        _run_one, task, plan, sweep_dir, actors, cache_dir, ready_timeout_s
                    )
                    running[future] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    outcomes[task.index] = future.result()
                    display.task_finished(task, outcomes[task.index])
        except BaseException:
            # Ctrl-C: start nothing new; running evaluations end with their threads.
            pending.clear()
            for future in running:
                future.cancel()
            raise
    return outcomes


def _run_one(
    task: SweepTask,
    plan: SweepPlan,
    sweep_dir: Path,
    actors: int,
    cache_dir: str | Path | None,
    ready_timeout_s: float,
) -> dict[str, Any]:
    from dlspec_ray.evaluation import evaluate
    from dlspec_ray.options import RunOptions

    spec = plan.spec
    run_dir = sweep_dir / task.label
    started = time.perf_counter()
    try:
        result = evaluate(
            task.model,
            task.dataset,
            software=task.software,
            hardware=task.hardware,
            reference=task.reference,
            run=RunOptions(
                batch_size=task.batch_size,
                actors=actors,
                limit=spec.limit,
                max_errors=spec.max_errors,
                options=spec.options,
                environment=task.environment,
                cache_dir=Path(cache_dir) if cache_dir else None,
                progress=False,
                ready_timeout_s=ready_timeout_s,
            ),
            out=run_dir,
            index=False,  # indexed with its label by _write_results
        )
    except Exception as exc:  # one task's failure must not stop the sweep
        message = str(exc) if isinstance(exc, DLSpecError) else f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "error": message, "seconds": time.perf_counter() - started}
    return {
        "status": result.run_summary.status,
        "summary": result.summary,
        "run_dir": run_dir,
        "seconds": time.perf_counter() - started,
    }


def _write_results(
    plan: SweepPlan,
    root: Path,
    sweep_dir: Path,
    sweep_id: str,
    outcomes: dict[int, dict[str, Any]],
    started_at: datetime,
    wall_s: float,
    bound: int,
    actors: int,
) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from dlspec_ray.results import atomic_write_text
    from dlspec_ray.results.combine import combine_runs, run_metadata, task_row, task_table
    from dlspec_ray.results.index import append_to_index, record_of

    rows, runs, entries = [], [], []
    for task in plan.tasks:
        outcome = outcomes.get(task.index, {"status": "failed", "error": "not run"})
        summary = outcome.get("summary")
        run_dir = outcome.get("run_dir")
        if summary is not None and run_dir is not None:
            append_to_index(root, record_of(run_dir, root, label=task.label, sweep_id=sweep_id))
            runs.append((run_dir, run_metadata(summary, task=task.label, sweep_id=sweep_id)))
        rows.append(
            task_row(
                task=task.label,
                status=outcome["status"],
                summary=summary,
                model=task.model.ref,
                dataset=task.dataset.ref,
                software=task.software.ref,
                hardware=task.hardware.ref if task.hardware else None,
                environment=task.environment,
                batch_size=task.batch_size,
                run_dir=str(run_dir.relative_to(sweep_dir)) if run_dir else None,
                error=outcome.get("error"),
            )
        )
        entries.append(
            {
                "label": task.label,
                "index": task.index,
                "model": task.model.ref,
                "dataset": task.dataset.ref,
                "software": task.software.ref,
                "hardware": task.hardware.ref if task.hardware else None,
                "batch_size": task.batch_size,
                "environment": task.environment,
                "reference": task.reference.ref if task.reference else None,
                "status": outcome["status"],
                "error": outcome.get("error"),
                "run_id": RunSummary.from_dict(summary).run_id if summary else None,
                "run_dir": task.label if summary else None,
                "seconds": round(float(outcome.get("seconds", 0.0)), 3),
            }
        )
    pq.write_table(combine_runs(runs), sweep_dir / RESULTS_FILE)
    pq.write_table(task_table(rows), sweep_dir / TASKS_FILE)
    summary = {
        "sweep_id": sweep_id,
        "name": plan.spec.name,
        "file": plan.spec.file,
        "description": plan.spec.description,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "wall_s": wall_s,
        "concurrency": bound,
        "actors_per_task": actors,
        "limit": plan.spec.limit,
        "combinations": plan.combinations,
        "tasks": entries,
        "dropped": [d.__dict__ for d in plan.dropped],
        "failed": sum(1 for e in entries if e["status"] == "failed"),
        "root": str(root),
    }
    atomic_write_text(sweep_dir / SWEEP_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


class _Display:
    """Progress across tasks: one line when a task starts or ends, plus the overall count."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO):
        self.total = total
        self.enabled = enabled
        self.stream = stream
        self.done = 0
        self.failed = 0
        self.running: set[str] = set()
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def _write(self, line: str) -> None:
        if self.enabled:
            self.stream.write(line + "\n")
            self.stream.flush()

    def start(self, name: str, bound: int, actors: int, plan: SweepPlan, out: Path) -> None:
        self._write(
            f"sweep {name}: {self.total} task(s), up to {bound} at once, {actors} host "
            f"actor(s) each; {len(plan.dropped)} combination(s) dropped; writing {out}"
        )
        for item in plan.dropped:
            self._write(f"  dropped {item.combination}: {item.filter}: {item.reason}")

    def task_started(self, task: SweepTask) -> None:
        with self._lock:
            self.running.add(task.label)
            self._write(f"{self._count()} start  {task.label}")

    def task_finished(self, task: SweepTask, outcome: dict[str, Any]) -> None:
        with self._lock:
            self.running.discard(task.label)
            self.done += 1
            seconds = outcome.get("seconds", 0.0)
            if outcome["status"] == "failed":
                self.failed += 1
                first = (outcome.get("error") or "").strip().splitlines()
                reason = first[0] if first else ""
                self._write(f"{self._count()} FAILED {task.label} ({seconds:.1f} s): {reason}")
                return
            run = RunSummary.from_dict(outcome["summary"])
            top1 = run.accuracy.get("top1")
            acc = f"top1 {top1:.4f}  " if isinstance(top1, float) else ""
            status = "" if outcome["status"] == "ok" else f"  [{outcome['status']}]"
            self._write(
                f"{self._count()} done   {task.label}: {acc}"
                f"{run.throughput_sps or 0.0:,.0f} samples/s ({seconds:.1f} s){status}"
            )

    def _count(self) -> str:
        elapsed = time.monotonic() - self._started
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"[{self.done}/{self.total} done, {len(self.running)} running{failed}, {elapsed:.0f} s]"
        )

    def finish(self, summary: dict[str, Any]) -> None:
        wall = summary["wall_s"]
        self._write(
            f"sweep {summary['name']}: {self.done} task(s) in {wall:.1f} s"
            + (f", {self.failed} failed" if self.failed else "")
        )
