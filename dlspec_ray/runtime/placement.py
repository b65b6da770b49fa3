"""Failing fast when no node can host an actor, instead of letting Ray wait forever.

Ray queues an actor whose resources no node has and never says so. We check
every live node, one by one (cluster totals would hide that no single node has
both the GPU and the architecture), before creating any actor.

The one exception is an autoscaling cluster: when no live node fits but one
of the autoscaler's node types would, the actor is created and the caller
waits (with progress, up to a timeout) for the autoscaler to start that node.
"""

from __future__ import annotations

__all__ = [
    "Placement",
    "capacity",
    "check_capacity",
    "choose_request",
    "default_actor_count",
    "node_table",
    "node_type_table",
    "place",
    "pre_actor_nodes",
    "pre_actor_request",
    "reserve",
    "satisfies",
]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware.node_types import NodeType
from dlspec_ray.hardware.resources import ActorResources

# Ray's own bookkeeping resources; they mean nothing to a user reading the table.
_HIDDEN_PREFIXES = ("node:", "object_store_memory", "accelerator_type:")


@dataclass(frozen=True)
class Placement:
    """The request to make, and the node type the autoscaler must start for it (if any)."""

    request: ActorResources
    node_type: NodeType | None = None

    @property
    def needs_scale_up(self) -> bool:
        return self.node_type is not None


def satisfies(node_resources: Mapping[str, float], request: ActorResources) -> bool:
    return all(node_resources.get(k, 0) >= v for k, v in request.as_dict().items() if v)


def capacity(
    nodes: Sequence[Mapping[str, Any]],
    request: ActorResources,
    node_types: Sequence[NodeType] = (),
) -> int:
    """How many actors asking for ``request`` the alive nodes, and the nodes the
    autoscaler may still start, can hold at once."""
    total = sum(_fits(node.get("Resources", {}), request) for node in _alive(nodes))
    for node_type in node_types:
        if node_type.can_start:
            total += _fits(node_type.resources, request) * node_type.max_workers
    return total


def check_capacity(
    nodes: Sequence[Mapping[str, Any]],
    request: ActorResources,
    node_types: Sequence[NodeType],
    count: int,
    *,
    what: str,
    kind: str = "host actors",
    flag: str = "--actors",
) -> None:
    """Refuse more actors than the nodes (and the autoscaler's) can hold at once: Ray
    would queue the surplus forever."""
    room = capacity(nodes, request, node_types)
    if count <= room:
        return
    scaler = f"The autoscaler can start:\n{node_type_table(node_types)}\n" if node_types else ""
    raise PlacementError(
        f"{count} {kind} for {what} were asked for, but the live nodes can hold at "
        f"most {room} at once, each asking for {request.describe()}.\n"
        f"The live nodes offer:\n{node_table(_alive(nodes))}\n{scaler}Use {flag} {room} or fewer."
    )


def default_actor_count(
    candidates: Sequence[ActorResources], nodes: Sequence[Mapping[str, Any]], batches: int
) -> int:
    """As many actors as the live nodes that fit the request hold at once, but never
    more than there are batches; one when only a node still to be started fits."""
    alive = _alive(nodes)
    for request in candidates:
        if any(satisfies(n.get("Resources", {}), request) for n in alive):
            return max(1, min(batches, capacity(alive, request)))
    return 1


def place(
    candidates: Sequence[ActorResources],
    nodes: Sequence[Mapping[str, Any]],
    *,
    what: str,
    node_types: Sequence[NodeType] = (),
) -> Placement:
    """The first candidate some alive node can host; else the first some node type the
    autoscaler can start would host; else a ``PlacementError`` with both tables."""
    alive = _alive(nodes)
    for request in candidates:
        if any(satisfies(n.get("Resources", {}), request) for n in alive):
            return Placement(request)
    startable = [t for t in node_types if t.can_start]
    for request in candidates:
        for node_type in startable:
            if satisfies(node_type.resources, request):
                return Placement(request, node_type)
    asked = "\n".join(f"  - {r.describe()}" for r in candidates)
    scaler = ""
    if node_types:
        scaler = (
            "The cluster's autoscaler can start these node types, none of which fits:\n"
            f"{node_type_table(node_types)}\n"
        )
    raise PlacementError(
        f"no node of the Ray cluster can host {what}.\n"
        f"Asked for (any one of):\n{asked}\n"
        f"The live nodes offer:\n{node_table(alive)}\n{scaler}"
        "Use a hardware manifest that matches one of these nodes, or add a node that "
        "advertises the missing resources (`dlspec-ray node-resources` prints them for "
        "`ray start --resources`)."
    )


def choose_request(
    candidates: Sequence[ActorResources], nodes: Sequence[Mapping[str, Any]], *, what: str
) -> ActorResources:
    """The first candidate some alive node can host; else a ``PlacementError`` with the table."""
    return place(candidates, nodes, what=what).request


def pre_actor_request(host: ActorResources) -> ActorResources:
    """What a pre-process actor asks for: one CPU of the host actors' CPU architecture
    (its stage code and environment are theirs), and no GPU or memory of theirs."""
    arch = {k: v for k, v in host.resources.items() if k.startswith("cpu_arch:")}
    return ActorResources(num_cpus=1, resources=arch)


def pre_actor_nodes(
    nodes: Sequence[Mapping[str, Any]], request: ActorResources, count: int
) -> list[str | None]:
    """The node each of ``count`` pre-process actors is pinned to (softly), round-robin over
    the live nodes without GPUs that fit ``request``: CPU work stays off the few CPUs of a
    GPU node. None for each when there is no such node: Ray places them."""
    cpu_only = [
        str(n["NodeID"])
        for n in _alive(nodes)
        if not n.get("Resources", {}).get("GPU") and satisfies(n.get("Resources", {}), request)
    ]
    if not cpu_only:
        return [None] * count
    room = {n["NodeID"]: _fits(n.get("Resources", {}), request) for n in _alive(nodes)}
    chosen: list[str | None] = []
    while len(chosen) < count:
        free = [n for n in cpu_only if room[n] > 0]
        if not free:  # more than they hold: the rest go where Ray finds room
            chosen += [None] * (count - len(chosen))
            break
        for node in free[: count - len(chosen)]:
            room[node] -= 1
            chosen.append(node)
    return chosen


def reserve(
    nodes: Sequence[Mapping[str, Any]],
    request: ActorResources,
    on: Sequence[str | None],
) -> list[Mapping[str, Any]]:
    """``nodes`` less what one actor asking for ``request`` takes on each node of ``on``;
    an actor with no node (None), or whose node is full, takes it from the first node it
    fits, as Ray does with a soft affinity."""
    left = [{**n, "Resources": dict(n.get("Resources", {}))} for n in nodes]
    wanted = request.as_dict()
    for node_id in on:
        fitting = [n for n in _alive(left) if satisfies(n["Resources"], request)]
        target = next((n for n in fitting if n.get("NodeID") == node_id), None)
        target = target or (fitting[0] if fitting else None)
        if target is None:
            continue  # it fits nowhere: check_capacity says so
        for key, value in wanted.items():
            target["Resources"][key] = target["Resources"].get(key, 0) - value
    return left


def node_table(nodes: Sequence[Mapping[str, Any]]) -> str:
    if not nodes:
        return "  (no live nodes)"
    lines = []
    for node in nodes:
        node_id = str(node.get("NodeID", "?"))[:12]
        shown = _resources_text(node.get("Resources", {}))
        lines.append(f"  - node {node_id} ({node.get('NodeManagerAddress', '?')}): {shown}")
    return "\n".join(lines)


def node_type_table(node_types: Sequence[NodeType]) -> str:
    lines = []
    for t in node_types:
        limit = "head" if t.head else f"up to {t.max_workers}"
        lines.append(f"  - type {t.name} ({limit}): {_resources_text(t.resources)}")
    return "\n".join(lines) or "  (no node types)"


def _fits(offered: Mapping[str, float], request: ActorResources) -> int:
    fits = [int(offered.get(k, 0) // v) for k, v in request.as_dict().items() if v]
    return min(fits) if fits else 0


def _alive(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [n for n in nodes if n.get("Alive", True)]


def _resources_text(resources: Mapping[str, float]) -> str:
    shown = {k: v for k, v in sorted(resources.items()) if not k.startswith(_HIDDEN_PREFIXES)}
    return ", ".join(f"{k}={_fmt(k, v)}" for k, v in shown.items())


def _fmt(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"
