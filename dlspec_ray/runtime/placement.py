"""Failing fast when no node can host an actor, instead of letting Ray wait forever.

Ray queues an actor whose resources no node has and never says so. We check
every live node, one by one (cluster totals would hide that no single node has
both the GPU and the architecture), before creating any actor.

The one exception is an autoscaling cluster: when no live node fits but one
of the autoscaler's node types would, the actor is created and the caller
waits (with progress, up to a timeout) for the autoscaler to start that node.

CPU-only requests stay off GPU nodes. Every GPU node also advertises ``cpu_arch:<arch>``,
so by resources alone a CPU task could take a V100's CPUs. Nodes label themselves
``dlspec/gpu-arch=<arch>`` or ``=none`` (``hardware/labels.py``), and ``place`` gives a
request without GPUs the label selector ``{"dlspec/gpu-arch": "none"}`` whenever some
node that says "no GPU" (live, or a node type the autoscaler can start) fits it; the
request then reaches Ray as an actor option (``LabeledRequest.as_actor_options``, the one
conversion). Nodes without labels (set up before labels, or by hand) never match that
selector, so when no labelled CPU node fits, the request carries no selector and goes
wherever it fits, as before: an unlabelled cluster, or one of GPU nodes only (a GPU
laptop), still runs CPU tasks. A cluster labelled in part confines CPU tasks to its
labelled CPU nodes.
"""

from __future__ import annotations

__all__ = [
    "LabeledRequest",
    "Placement",
    "capacity",
    "check_capacity",
    "choose_request",
    "confined",
    "default_actor_count",
    "hosts",
    "node_table",
    "node_type_table",
    "place",
    "pre_actor_nodes",
    "pre_actor_request",
    "reserve",
    "satisfies",
]

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware.labels import cpu_only_selector, selector_matches
from dlspec_ray.hardware.node_types import NodeType
from dlspec_ray.hardware.resources import ActorResources

# Ray's own bookkeeping resources; they mean nothing to a user reading the table.
_HIDDEN_PREFIXES = ("node:", "object_store_memory", "accelerator_type:")


@dataclass(frozen=True, eq=False)
class LabeledRequest(ActorResources):
    """A request with the label selector placement chose for it (empty: none).

    A request that already is a ``LabeledRequest`` keeps its selector when placed again;
    ``pre_actor_request`` makes one with none on purpose (its actors are pinned softly).
    With no selector it equals the plain ``ActorResources`` of the same resources.
    """

    label_selector: Mapping[str, str] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorResources):
            return NotImplemented
        mine = (self.num_cpus, self.num_gpus, self.memory, dict(self.resources))
        theirs = (other.num_cpus, other.num_gpus, other.memory, dict(other.resources))
        selector = dict(getattr(other, "label_selector", None) or {})
        return mine == theirs and dict(self.label_selector) == selector

    __hash__ = ActorResources.__hash__

    def as_actor_options(self) -> dict[str, Any]:
        """``ActorResources.as_actor_options`` plus Ray's ``label_selector``."""
        options = super().as_actor_options()
        if self.label_selector:
            options["label_selector"] = dict(self.label_selector)
        return options

    def describe(self) -> str:
        text = super().describe()
        if self.label_selector:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(self.label_selector.items()))
            text += f", on nodes labelled {labels}"
        return text


def confined(request: ActorResources) -> LabeledRequest:
    """``request`` kept off GPU nodes: with the CPU-only selector when it asks for no GPU."""
    if isinstance(request, LabeledRequest):
        return request
    selector = {} if request.num_gpus else cpu_only_selector()
    return LabeledRequest(**asdict(request), label_selector=selector)


@dataclass(frozen=True)
class Placement:
    """The request to make, and the node type the autoscaler must start for it (if any)."""

    request: ActorResources
    node_type: NodeType | None = None

    @property
    def needs_scale_up(self) -> bool:
        return self.node_type is not None

    @property
    def unconfined(self) -> bool:
        """A CPU-only request placed without the CPU-only selector: a node type the
        autoscaler can start might still take it, off the GPU nodes."""
        return _confinable(self.request)


def satisfies(node_resources: Mapping[str, float], request: ActorResources) -> bool:
    """Whether resources alone (no labels) hold one actor asking for ``request``."""
    return all(node_resources.get(k, 0) >= v for k, v in request.as_dict().items() if v)


def hosts(node: Mapping[str, Any], request: ActorResources) -> bool:
    """Whether ``node`` (as ``ray.nodes()`` lists it) fits ``request`` by its resources and,
    for a request with a label selector, by its labels."""
    return satisfies(node.get("Resources", {}), request) and _labels_pass(node, request)


def capacity(
    nodes: Sequence[Mapping[str, Any]],
    request: ActorResources,
    node_types: Sequence[NodeType] = (),
) -> int:
    """How many actors asking for ``request`` the alive nodes, and the nodes the
    autoscaler may still start, can hold at once."""
    total = sum(_fits_node(node, request) for node in _alive(nodes))
    for node_type in node_types:
        if node_type.can_start:
            total += _fits_node(node_type.as_node(), request) * node_type.max_workers
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
    more than there are batches; one when only a node still to be started fits. The
    request is the one ``place`` chooses on the live nodes (confined to CPU nodes, for a
    CPU-only request, where there are labelled ones)."""
    alive = _alive(nodes)
    for request in _live_choices(candidates):
        if any(hosts(n, request) for n in alive):
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
    autoscaler can start would host; else a ``PlacementError`` with both tables.

    A CPU-only candidate is first tried confined to the nodes labelled "no GPU", live and
    then startable, and only then as it is (see the module's docstring).
    """
    alive = _alive(nodes)
    startable = [t for t in node_types if t.can_start]
    labelled = [confined(r) for r in candidates if _confinable(r)]
    for requests in (labelled, candidates):
        for request in requests:
            if any(hosts(n, request) for n in alive):
                return Placement(request)
        for request in requests:
            for node_type in startable:
                if hosts(node_type.as_node(), request):
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
    # No label selector: they are pinned softly to the CPU nodes (``pre_actor_nodes``), and
    # go elsewhere when those are full.
    return LabeledRequest(num_cpus=1, resources=arch)


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
        fitting = [n for n in _alive(left) if hosts(n, request)]
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
        shown = _resources_text(node.get("Resources", {})) + _labels_text(node.get("Labels"))
        lines.append(f"  - node {node_id} ({node.get('NodeManagerAddress', '?')}): {shown}")
    return "\n".join(lines)


def node_type_table(node_types: Sequence[NodeType]) -> str:
    lines = []
    for t in node_types:
        limit = "head" if t.head else f"up to {t.max_workers}"
        shown = _resources_text(t.resources) + _labels_text(t.labels)
        lines.append(f"  - type {t.name} ({limit}): {shown}")
    return "\n".join(lines) or "  (no node types)"


def _confinable(request: ActorResources) -> bool:
    """A request ``place`` may confine: no GPU, and no selector chosen for it already."""
    return not request.num_gpus and not isinstance(request, LabeledRequest)


def _live_choices(candidates: Sequence[ActorResources]) -> list[ActorResources]:
    """The requests ``place`` tries on live nodes, in its order."""
    return [*(confined(r) for r in candidates if _confinable(r)), *candidates]


def _labels_pass(node: Mapping[str, Any], request: ActorResources) -> bool:
    selector = getattr(request, "label_selector", None)
    return not selector or selector_matches(node.get("Labels") or {}, selector)


def _fits_node(node: Mapping[str, Any], request: ActorResources) -> int:
    return _fits(node.get("Resources", {}), request) if _labels_pass(node, request) else 0


def _fits(offered: Mapping[str, float], request: ActorResources) -> int:
    fits = [int(offered.get(k, 0) // v) for k, v in request.as_dict().items() if v]
    return min(fits) if fits else 0


def _alive(nodes: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [n for n in nodes if n.get("Alive", True)]


def _resources_text(resources: Mapping[str, float]) -> str:
    shown = {k: v for k, v in sorted(resources.items()) if not k.startswith(_HIDDEN_PREFIXES)}
    return ", ".join(f"{k}={_fmt(k, v)}" for k, v in shown.items())


def _labels_text(labels: Mapping[str, str] | None) -> str:
    """`` [dlspec/gpu-arch=none]``: the labels placement reads (not Ray's own ``ray.io/``)."""
    shown = {k: v for k, v in sorted((labels or {}).items()) if not k.startswith("ray.io/")}
    if not shown:
        return ""
    return " [" + ", ".join(f"{k}={v}" for k, v in shown.items()) + "]"


def _fmt(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"
