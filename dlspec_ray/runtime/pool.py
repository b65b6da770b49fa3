"""Starting the host actors of one evaluation, and noticing fast when they cannot start."""

from __future__ import annotations

__all__ = ["HostPool", "start_pool"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.errors import DLSpecError, PlacementError
from dlspec_ray.hardware.resources import ActorResources
from dlspec_ray.runtime.host import HostActor, HostSpec
from dlspec_ray.runtime.placement import capacity, choose_request, node_table


class HostSetupError(DLSpecError):
    """A host actor could not set up its environment (artifacts, ``load`` stage)."""


@dataclass
class HostPool:
    actors: list[Any]
    node_ids: list[str]
    request: ActorResources
    environment: dict[str, Any]
    setup_s: list[float] = field(default_factory=list)

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
    import ray

    refs = [a.ready.remote() for a in actors]
    done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    if len(done) < len(refs):
        raise PlacementError(
            f"{len(refs) - len(done)} of {len(refs)} host actors for {what} were not ready "
            f"within {timeout_s:.0f}s. Each asked for {request.describe()}; the resources may "
            f"be held by other work, or the model's load stage may be slower than that.\n"
            f"The live nodes offer:\n{node_table(ray.nodes())}\n"
            "Ask for fewer actors (--actors), or wait longer (--ready-timeout)."
        )
    return ray.get(refs)
