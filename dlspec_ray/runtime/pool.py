"""Starting the host actors of one evaluation, and noticing fast when they cannot start."""

from __future__ import annotations

__all__ = ["HostPool", "find_warm_pool", "start_pool"]

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.errors import BadInput, PlacementError
from dlspec_ray.hardware.node_types import NodeType
from dlspec_ray.hardware.resources import ActorResources
from dlspec_ray.runtime.autoscaler import autoscaler_node_types
from dlspec_ray.runtime.host import HostActor, HostSpec
from dlspec_ray.runtime.placement import (
    Placement,
    capacity,
    check_capacity,
    node_table,
    place,
)
from dlspec_ray.runtime.warm import WARM_NAMESPACE, detached

# How often a wait for host actors says what it is waiting for.
_WAIT_NOTE_S = 10.0
# How often Ray restarts a host actor that died (killed, out of memory, its node lost, a
# stage past --stage-timeout), each time in a fresh process with its environment rebuilt.
# Calls are not retried by Ray (max_task_retries=0): the scheduler retries the shard, after
# re-attaching the restarted actor to its node's data, which a restart does not keep.
HOST_ACTOR_RESTARTS = 3


class HostSetupError(BadInput):
    """A host actor could not set up its environment (artifacts, ``load`` stage)."""


@dataclass
class HostPool:
    actors: list[Any]
    node_ids: list[str]
    request: ActorResources
    environment: dict[str, Any]
    setup_s: list[float] = field(default_factory=list)
    # Per actor: its node and what each host setup command printed and returned.
    host_setup: list[dict[str, Any]] = field(default_factory=list)
    # Per node: the machine (CPU and GPU models, driver); the model's artifacts as fetched.
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)

    def alive(self, timeout_s: float = 10.0) -> bool:
        """Whether every actor still answers (a warm pool may have lost one)."""
        import ray
        from ray.exceptions import RayError

        if not self.actors:
            return False
        try:
            infos = ray.get([a.ready.remote() for a in self.actors], timeout=timeout_s)
        except (RayError, TimeoutError):
            return False
        return not any(i["error"] for i in infos)

    def close(self, timeout_s: float = 60.0) -> None:
        import ray

        # ray.kill skips __ray_shutdown__: ask each actor to close its environment first
        # (stop its container, free its shared memory); the sweeper catches what this misses.
        # A close takes well under a second; the bound is for a machine under heavy load,
        # where the 10 s this once allowed most likely ran out (a full-suite run found two
        # environment folders left by a run, later swept).
        closing = [a.close.remote() for a in self.actors]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=timeout_s)
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


def find_warm_pool(
    names: Sequence[str], candidates: Sequence[ActorResources], what: str
) -> HostPool | None:
    """The detached host actors named ``names`` (``warm.py``), when all are there and ready;
    their request is the one ``start_pool`` places for ``candidates`` on the live nodes."""
    import ray
    from ray.exceptions import RayError

    try:
        request = _place(candidates, ray.nodes(), what)[0].request
        actors = [ray.get_actor(name, namespace=WARM_NAMESPACE) for name in names]
        infos = ray.get([a.ready.remote() for a in actors], timeout=30)
    except (ValueError, RayError, TimeoutError, PlacementError):
        return None
    if any(i["error"] for i in infos):
        return None
    return _pool_of(actors, infos, request)


def start_pool(
    spec: HostSpec,
    candidates: Sequence[ActorResources],
    count: int,
    *,
    what: str,
    ready_timeout_s: float = 300.0,
    names: Sequence[str] | None = None,
    pinned: Sequence[str | None] | None = None,
) -> HostPool:
    """``count`` ready host actors, or an error that says why not.

    An actor that no node can host is refused before it is created, and more
    actors than the nodes can hold at once are refused too: Ray would queue the
    surplus forever. One that could be hosted but stays pending (resources held
    by other work) fails after ``ready_timeout_s`` with the node table. With ``names``
    the actors are detached and named (``warm.py``), so they outlive this driver and a
    later one finds them (``find_warm_pool``). ``pinned`` names a node for each actor,
    softly (Ray places it elsewhere once that node is full or gone); None: anywhere.
    """
    import ray

    nodes = ray.nodes()
    placement, node_types = _place(candidates, nodes, what)
    request = placement.request
    if count > capacity(nodes, request, node_types) and not node_types:
        node_types = autoscaler_node_types()
    check_capacity(nodes, request, node_types, count, what=what)
    waiting_for = ""
    if placement.node_type is not None:
        waiting_for = f"the autoscaler to start a node of type {placement.node_type.name}"
        print(
            f"dlspec-ray: no live node can host {what}; waiting up to {ready_timeout_s:.0f}s "
            f"for {waiting_for}",
            file=sys.stderr,
        )
    remote_cls = ray.remote(HostActor)
    actors = [
        remote_cls.options(
            **request.as_actor_options(),
            max_concurrency=1,
            max_restarts=HOST_ACTOR_RESTARTS,
            **(detached(names[i]) if names else {}),
            **(_pinned_to(pinned[i]) if pinned else {}),
        ).remote(spec)
        for i in range(count)
    ]
    pool = HostPool(actors=actors, node_ids=[], request=request, environment={})
    try:
        infos = _wait_ready(actors, request, ready_timeout_s, what, waiting_for)
    except BaseException:
        pool.close()
        raise
    failed = [i for i in infos if i["error"]]
    if failed:
        pool.close()
        hint = (
            "Fix the hardware manifest's setup commands (they run with /bin/sh on the node, as "
            "the Ray worker's user), or leave them out of the manifest."
            if failed[0].get("failed_in") == "host setup"
            else "Check the model's artifacts and its load stage, and that the framework the "
            "model needs is installed where the actor runs."
        )
        raise HostSetupError(
            f"the host actor for {what} could not start on node {failed[0]['node_id'][:12]}: "
            f"{failed[0]['error']}\n{hint}"
        )
    return _pool_of(actors, infos, request)


def _pinned_to(node_id: str | None) -> dict[str, Any]:
    if node_id is None:
        return {}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=True)}


def _pool_of(actors: list[Any], infos: list[dict[str, Any]], request: ActorResources) -> HostPool:
    """A pool of ready actors, from what each one's ``ready()`` said."""
    return HostPool(
        actors=list(actors),
        node_ids=[i["node_id"] for i in infos],
        request=request,
        environment=infos[0]["environment"],
        setup_s=[i["setup_s"] for i in infos],
        host_setup=[
            {"node_id": i["node_id"], "commands": i["host_setup"]}
            for i in infos
            if i.get("host_setup")
        ],
        machines={i["node_id"]: i.get("machine", {}) for i in infos},
        artifacts=infos[0].get("artifacts", []),
    )


def _place(
    candidates: Sequence[ActorResources], nodes: list[dict[str, Any]], what: str
) -> tuple[Placement, list[NodeType]]:
    """Placement on the live nodes; the autoscaler's node types are read only when none fits,
    or when a CPU-only request found only nodes that do not say "no GPU" (a labelled CPU
    node type would keep it off the GPU nodes)."""
    try:
        placement = place(candidates, nodes, what=what)
    except PlacementError:
        node_types = autoscaler_node_types()
        if not node_types:
            raise
        return place(candidates, nodes, what=what, node_types=node_types), node_types
    node_types = autoscaler_node_types() if placement.unconfined else []
    if not node_types:
        return placement, []
    return place(candidates, nodes, what=what, node_types=node_types), node_types


def _wait_ready(
    actors: list[Any], request: ActorResources, timeout_s: float, what: str, waiting_for: str = ""
) -> list[dict[str, Any]]:
    """Wait for every actor, saying every few seconds what it waits for."""
    import ray

    refs = [a.ready.remote() for a in actors]
    started = time.monotonic()
    while True:
        left = timeout_s - (time.monotonic() - started)
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=min(_WAIT_NOTE_S, max(left, 0)))
        if len(done) == len(refs):
            return ray.get(refs)
        waited = time.monotonic() - started
        if waited >= timeout_s:
            break
        free = ray.available_resources()
        print(
            f"dlspec-ray: waiting for host actors: {len(done)}/{len(refs)} ready after "
            f"{waited:.0f}s; each asks for {request.describe()}; free now: "
            f"CPU={free.get('CPU', 0):g}, GPU={free.get('GPU', 0):g}"
            + (f"; waiting for {waiting_for}" if waiting_for else ""),
            file=sys.stderr,
        )
    scaler = f" They waited for {waiting_for}, which did not happen in time." if waiting_for else ""
    raise PlacementError(
        f"{len(refs) - len(done)} of {len(refs)} host actors for {what} were not ready "
        f"within {timeout_s:.0f}s. Each asked for {request.describe()}; the resources may "
        f"be held by other work, or the model's load stage may be slower than that.{scaler}\n"
        f"The live nodes offer:\n{node_table(ray.nodes())}\n"
        "Ask for fewer actors (--actors), or wait longer (--ready-timeout)."
    )
