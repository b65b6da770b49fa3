"""Starting the host actors of one evaluation, and noticing fast when they cannot start."""

from __future__ import annotations

__all__ = ["HostPool", "start_pool"]

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.errors import DLSpecError, PlacementError
from dlspec_ray.hardware.resources import ActorResources
from dlspec_ray.runtime.host import HostActor, HostSpec
from dlspec_ray.runtime.placement import capacity, choose_request, node_table

# How often a wait for host actors says what it is waiting for.
_WAIT_NOTE_S = 10.0


class HostSetupError(DLSpecError):
    """A host actor could not set up its environment (artifacts, ``load`` stage)."""


@dataclass
class HostPool:
    actors: list[Any]
    node_ids: list[str]
    request: ActorResources
    environment: dict[str, Any]
    setup_s: list[float] = field(default_factory=list)

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

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


def start_pool(
    spec: HostSpec,
    candidates: Sequence[ActorResources],
    count: int,
    *,
    what: str,
    ready_timeout_s: float = 300.0,
) -> HostPool:
    """``count`` ready host actors, or an error that says why not.

    An actor that no node can host is refused before it is created, and more
    actors than the nodes can hold at once are refused too: Ray would queue the
    surplus forever. One that could be hosted but stays pending (resources held
    by other work) fails after ``ready_timeout_s`` with the node table.
    """
    import ray

    nodes = ray.nodes()
    request = choose_request(candidates, nodes, what=what)
    room = capacity(nodes, request)
    if count > room:
        raise PlacementError(
            f"{count} host actors for {what} were asked for, but the live nodes can hold at "
            f"most {room} at once, each asking for {request.describe()}.\n"
            f"The live nodes offer:\n{node_table(nodes)}\nUse --actors {room} or fewer."
        )
    remote_cls = ray.remote(HostActor)
    actors = [
        remote_cls.options(**request.as_actor_options(), max_concurrency=1).remote(spec)
        for _ in range(count)
    ]
    pool = HostPool(actors=actors, node_ids=[], request=request, environment={})
    try:
        infos = _wait_ready(actors, request, ready_timeout_s, what)
    except BaseException:
        pool.close()
        raise
    failed = [i for i in infos if i["error"]]
    if failed:
        pool.close()
        raise HostSetupError(
            f"the host actor for {what} could not start on node {failed[0]['node_id'][:12]}: "
            f"{failed[0]['error']}\nCheck the model's artifacts and its load stage, and that "
            "the framework the model needs is installed where the actor runs."
        )
    pool.node_ids = [i["node_id"] for i in infos]
    pool.environment = infos[0]["environment"]
    pool.setup_s = [i["setup_s"] for i in infos]
    return pool


def _wait_ready(
    actors: list[Any], request: ActorResources, timeout_s: float, what: str
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
            f"CPU={free.get('CPU', 0):g}, GPU={free.get('GPU', 0):g}",
            file=sys.stderr,
        )
    raise PlacementError(
        f"{len(refs) - len(done)} of {len(refs)} host actors for {what} were not ready "
        f"within {timeout_s:.0f}s. Each asked for {request.describe()}; the resources may "
        f"be held by other work, or the model's load stage may be slower than that.\n"
        f"The live nodes offer:\n{node_table(ray.nodes())}\n"
        "Ask for fewer actors (--actors), or wait longer (--ready-timeout)."
    )
