"""CPU-only requests stay off GPU nodes by node labels, and unlabelled nodes still work.

Nodes are shaped as ``ray.nodes()`` lists them (``Labels`` beside ``Resources``); the
multi-node check on a real cluster is in test_placement_cluster.py.
"""

from __future__ import annotations

import pytest

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware import ActorResources, NodeType
from dlspec_ray.hardware.labels import node_labels
from dlspec_ray.runtime.placement import (
    LabeledRequest,
    capacity,
    check_capacity,
    default_actor_count,
    hosts,
    place,
    pre_actor_request,
)

CPU_LABELS = node_labels([], "x86_64")
V100_LABELS = node_labels(["sm_70"], "x86_64")
NONE = {"dlspec/gpu-arch": "none"}


def node(name: str, cpus: int, gpus: int = 0, labels: dict | None = None) -> dict:
    resources = {"CPU": cpus, "cpu_arch:x86_64": 1}
    if gpus:
        resources |= {"GPU": gpus, "gpu_arch:sm_70": gpus, "accelerator_type:V100": 1}
    found = {"NodeID": name * 40, "Alive": True, "Resources": resources}
    return found if labels is None else {**found, "Labels": {"ray.io/node-id": "x", **labels}}


CPU = node("a", 1, labels=CPU_LABELS)
V100 = node("b", 8, gpus=1, labels=V100_LABELS)
OLD_CPU = node("c", 4)  # no labels: started before labels, or by hand
OLD_V100 = node("d", 8, gpus=1)
X86 = ActorResources(resources={"cpu_arch:x86_64": 0.001})
SM70 = ActorResources(num_gpus=1, resources={"gpu_arch:sm_70": 1})


@pytest.mark.parametrize(
    ("nodes", "selector"),
    [
        ([CPU, V100], NONE),  # labelled: only the CPU node, though the V100 has more CPUs
        ([OLD_CPU, OLD_V100], None),  # unlabelled: as before labels, anywhere it fits
        ([V100], None),  # GPU nodes only (a GPU laptop): the CPU task still runs
        ([CPU, OLD_CPU, OLD_V100], NONE),  # labelled in part: the labelled CPU nodes
    ],
    ids=["labelled", "unlabelled", "gpu-nodes-only", "labelled-in-part"],
)
def test_a_cpu_only_request_is_confined_where_a_labelled_cpu_node_fits(nodes, selector):
    placement = place([X86], nodes, what="t")
    options = placement.request.as_actor_options()
    assert options.get("label_selector") == selector
    assert placement.unconfined == (selector is None)
    if selector is None:
        assert placement.request == X86  # the request as it was, no selector
    else:
        assert [n["NodeID"] for n in nodes if hosts(n, placement.request)] == [CPU["NodeID"]]


def test_a_gpu_request_gets_no_selector():
    placement = place([SM70], [CPU, V100], what="t")
    assert placement.request == SM70 and "label_selector" not in SM70.as_actor_options()
    assert not placement.unconfined


def test_the_actor_options_carry_the_selector_beside_the_resources():
    request = place([X86], [CPU, V100], what="t").request
    assert request.as_actor_options() == {
        "num_cpus": 1,
        "num_gpus": 0,
        "resources": {"cpu_arch:x86_64": 0.001},
        "label_selector": {"dlspec/gpu-arch": "none"},
    }
    assert request.as_dict() == X86.as_dict()  # what summary.json records is unchanged
    assert request.describe().endswith(", on nodes labelled dlspec/gpu-arch=none")
    # Placed again, it keeps its selector: it fits only where a node says "no GPU".
    assert place([request], [CPU, OLD_V100], what="t").request is request
    with pytest.raises(PlacementError, match=r"on nodes labelled dlspec/gpu-arch=none"):
        place([request], [OLD_CPU], what="t")


def test_the_capacity_counts_only_the_nodes_the_selector_lets_in():
    confined = place([X86], [CPU, V100], what="t").request
    assert capacity([CPU, V100], X86) == 1 + 8
    assert capacity([CPU, V100], confined) == 1
    assert default_actor_count([X86], [CPU, V100], batches=100) == 1
    assert default_actor_count([X86], [OLD_CPU, OLD_V100], batches=100) == 4 + 8
    with pytest.raises(PlacementError, match=r"(?s)at most 1 at once.*\[dlspec/cpu-arch="):
        check_capacity([CPU, V100], confined, (), 2, what="t")


CPU_TYPE = NodeType(
    "cpu-x86-64", {"CPU": 8, "cpu_arch:x86_64": 1}, max_workers=2, labels=CPU_LABELS
)
V100_TYPE = NodeType(
    "gpu-v100",
    {"CPU": 8, "GPU": 1, "cpu_arch:x86_64": 1, "gpu_arch:sm_70": 1},
    max_workers=2,
    labels=V100_LABELS,
)
UNLABELLED_CPU_TYPE = NodeType("cpu", {"CPU": 8, "cpu_arch:x86_64": 1}, max_workers=2)


@pytest.mark.parametrize(
    ("nodes", "types", "node_type", "selector"),
    [
        # A GPU node is up (another job's), but the autoscaler can start a CPU node.
        ([V100], [CPU_TYPE, V100_TYPE], CPU_TYPE, NONE),
        ([], [V100_TYPE, CPU_TYPE], CPU_TYPE, NONE),
        # Node types without labels (as Ray's GCS reports KubeRay's): no selector, live first.
        ([V100], [UNLABELLED_CPU_TYPE], None, None),
        ([], [UNLABELLED_CPU_TYPE], UNLABELLED_CPU_TYPE, None),
    ],
    ids=["labelled-type-over-a-live-gpu-node", "labelled-type", "unlabelled-types-live",
         "unlabelled-type"],
)  # fmt: skip
def test_the_autoscaler_starts_a_labelled_cpu_type_for_a_cpu_task(
    nodes, types, node_type, selector
):
    placement = place([X86], nodes, what="t", node_types=types)
    assert placement.node_type == node_type
    assert placement.request.as_actor_options().get("label_selector") == selector


def test_pre_actors_are_pinned_softly_and_carry_no_selector():
    host = place([X86], [CPU, V100], what="t").request
    pre = pre_actor_request(host)
    assert isinstance(pre, LabeledRequest) and not pre.label_selector
    assert place([pre], [CPU, V100], what="t").request is pre
    assert "label_selector" not in pre.as_actor_options()


def test_the_embedded_ray_labels_its_node_and_an_actor_lands_by_the_selector(ray_session):
    """The shared embedded Ray advertises what `node-resources` finds here, labels too; a
    CPU-only actor placed on it carries the selector, and Ray schedules it."""
    import ray

    from dlspec_ray.hardware import detect_gpus, host_cpu_arch

    (node,) = [n for n in ray.nodes() if n["Alive"]]
    assert node["Labels"]["dlspec/cpu-arch"] == host_cpu_arch()
    if detect_gpus().archs:
        pytest.skip("this host has GPUs: its node is not labelled gpu-arch=none")
    assert node["Labels"]["dlspec/gpu-arch"] == "none"
    request = place([X86], ray.nodes(), what="t").request
    assert request.as_actor_options()["label_selector"] == NONE

    @ray.remote
    class Where:
        def node(self) -> str:
            return ray.get_runtime_context().get_node_id()

    actor = Where.options(**request.as_actor_options()).remote()
    try:
        assert ray.get(actor.node.remote(), timeout=120) == node["NodeID"]
    finally:
        ray.kill(actor)
