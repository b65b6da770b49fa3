"""Failing fast when no node can host an actor, instead of letting Ray wait forever.

Ray queues an actor whose resources no node has and never says so. We check
every live node, one by one (cluster totals would hide that no single node has
both the GPU and the architecture), before creating any actor.
"""

from __future__ import annotations

__all__ = ["capacity", "choose_request", "node_table", "satisfies"]

from collections.abc import Mapping, Sequence
from typing import Any

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware.resources import ActorResources

# Ray's own bookkeeping resources; they mean nothing to a user reading the table.
_HIDDEN_PREFIXES = ("node:", "object_store_memory", "accelerator_type:")


def satisfies(node_resources: Mapping[str, float], request: ActorResources) -> bool:
    return all(node_resources.get(k, 0) >= v for k, v in request.as_dict().items() if v)


def capacity(nodes: Sequence[Mapping[str, Any]], request: ActorResources) -> int:
    """How many actors asking for ``request`` the alive nodes can hold at once."""
    total = 0
    for node in _alive(nodes):
        offered = node.get("Resources", {})
        fits = [int(offered.get(k, 0) // v) for k, v in request.as_dict().items() if v]
        total += min(fits) if fits else 0
    return total


def choose_request(
    candidates: Sequence[ActorResources], nodes: Sequence[Mapping[str, Any]], *, what: str
) -> ActorResources:
    """The first candidate some alive node can host; else a ``PlacementError`` with the table."""
    alive = _alive(nodes)
    for request in candidates:
        if any(satisfies(n.get("Resources", {}), request) for n in alive):
            return request
    asked = "\n".join(f"  - {r.describe()}" for r in candidates)
    raise PlacementError(
        f"no node of the Ray cluster can host {what}.\n"
        f"Asked for (any one of):\n{asked}\n"
        f"The live nodes offer:\n{node_table(alive)}\n"
        "Use a hardware manifest that matches one of these nodes, or add a node that "
        "advertises the missing resources (see `ray start --resources`)."
    )


def _alive(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [n for n in nodes if n.get("Alive", True)]


def node_table(nodes: Sequence[Mapping[str, Any]]) -> str:
    if not nodes:
        return "  (no live nodes)"
    lines = []
    for node in nodes:
        node_id = str(node.get("NodeID", "?"))[:12]
        resources = {
            k: v
            for k, v in sorted(node.get("Resources", {}).items())
            if not k.startswith(_HIDDEN_PREFIXES)
        }
        shown = ", ".join(f"{k}={_fmt(k, v)}" for k, v in resources.items())
        lines.append(f"  - node {node_id} ({node.get('NodeManagerAddress', '?')}): {shown}")
    return "\n".join(lines)


def _fmt(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"
