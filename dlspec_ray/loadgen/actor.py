"""``run_loadgen`` inside one Ray actor, placed as dlspec-ray places its host actors.

The whole LoadGen test (model, QSL, LoadGen's threads) moves into the actor, so
the per-query path is the same as in-process and Ray is crossed twice per run
(the call and its result), not once per query. The actor asks for what the
task's hardware manifest needs (``hardware.candidate_requests``: CPUs, GPUs,
memory, and the ``cpu_arch:``/``gpu_arch:`` custom resources), as a host actor does.

LoadGen's log files are written by the actor on its node: on one machine that is
``out_dir`` itself; on a cluster they stay on the actor's node (not copied back).
"""

from __future__ import annotations

__all__ = ["LoadGenActor", "run_loadgen_in_actor"]

from dataclasses import replace
from pathlib import Path
from typing import Any

from dlspec_ray.errors import PlacementError
from dlspec_ray.loadgen.run import LoadGenResult, run_loadgen
from dlspec_ray.loadgen.settings import LoadGenSettings
from dlspec_ray.task import Task


class LoadGenActor:
    """Wrapped with ``ray.remote`` by ``run_loadgen_in_actor``; a plain class otherwise."""

    def ready(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def run(
        self, task: Task, settings: LoadGenSettings, out_dir: str, kwargs: dict[str, Any]
    ) -> LoadGenResult:
        return run_loadgen(task, settings, out_dir, **kwargs)


def run_loadgen_in_actor(
    task: Task,
    settings: LoadGenSettings,
    out_dir: str | Path,
    *,
    address: str | None = None,
    ready_timeout_s: float = 300.0,
    **kwargs: Any,
) -> LoadGenResult:
    """``run_loadgen(task, settings, out_dir, **kwargs)`` in a Ray actor pinned by the task's
    hardware request; Ray is the one this process uses, else ``address``, else embedded
    (started here with its own temp dir and shut down afterwards)."""
    import ray

    from dlspec_ray.hardware import candidate_requests
    from dlspec_ray.runtime import connect

    connection = connect(address)
    try:
        request = candidate_requests(task.hardware)[0]
        kwargs.setdefault("num_threads", max(1, int(request.num_cpus)))
        actor = (
            ray.remote(LoadGenActor)
            .options(**request.as_actor_options(), max_concurrency=1)
            .remote()
        )
        try:
            try:
                node = ray.get(actor.ready.remote(), timeout=ready_timeout_s)
            except ray.exceptions.GetTimeoutError:
                raise PlacementError(
                    f"no node started the LoadGen actor within {ready_timeout_s:g} s; it asks "
                    f"for {request.describe()}. Check the hardware manifest against the cluster."
                ) from None
            result = ray.get(actor.run.remote(task, settings, str(out_dir), kwargs))
        finally:
            ray.kill(actor)
    finally:
        connection.close()
    return replace(result, where=f"ray-actor:{node}")
