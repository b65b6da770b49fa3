from __future__ import annotations

import pytest

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware import ActorResources, NodeType
from dlspec_ray.runtime import Placement, capacity, choose_request, default_actor_count, place

X86 = {"NodeID": "a" * 40, "Alive": True, "Resources": {"CPU": 4, "cpu_arch:x86_64": 1}}
V100 = {
    "NodeID": "b" * 40,
    "Alive": True,
    "Resources": {"CPU": 8, "GPU": 2, "gpu_arch:sm_70": 2, "cpu_arch:x86_64": 1},
}
DEAD_ARM = {"NodeID": "c" * 40, "Alive": False, "Resources": {"CPU": 8, "cpu_arch:aarch64": 1}}

ARM = ActorResources(resources={"cpu_arch:aarch64": 0.001})
SM70 = ActorResources(num_gpus=1, resources={"gpu_arch:sm_70": 1})
X86_REQ = ActorResources(resources={"cpu_arch:x86_64": 0.001})


def test_first_satisfiable_candidate_wins():
    assert choose_request([ARM, X86_REQ], [X86, V100], what="t") == X86_REQ


def test_node_by_node_not_totals():
    # Two V100 nodes hold 4 sm_70 GPUs in total, but no single node has the 3 asked for.
    three = ActorResources(num_gpus=3, resources={"gpu_arch:sm_70": 3})
    other_v100 = {**V100, "NodeID": "d" * 40}
    with pytest.raises(PlacementError, match=r"(?s)GPU=3.*node dddddddddddd.*gpu_arch:sm_70=2"):
        choose_request([three], [X86, V100, other_v100], what="t")


@pytest.mark.parametrize(
    ("candidates", "nodes", "match"),
    [
        ([ARM], [X86, DEAD_ARM], r"cpu_arch:aarch64=0.001"),
        ([SM70], [X86], r"no node of the Ray cluster can host t"),
        ([X86_REQ], [], r"no live nodes"),
    ],
    ids=["dead-node-ignored", "missing-gpu", "empty-cluster"],
)
def test_unsatisfiable_requests_name_the_ask_and_the_offer(candidates, nodes, match):
    with pytest.raises(PlacementError, match=match):
        choose_request(candidates, nodes, what="t")


def test_capacity_counts_whole_actors_per_node():
    two_cpu = ActorResources(num_cpus=2, resources={"cpu_arch:x86_64": 0.001})
    assert capacity([X86, V100], two_cpu) == 2 + 4
    assert capacity([X86, V100], SM70) == 2
    assert capacity([X86, DEAD_ARM], ARM) == 0


H100_TYPE = NodeType(
    "gpu-h100",
    {"CPU": 8, "GPU": 1, "cpu_arch:x86_64": 1, "gpu_arch:sm_90": 1},
    max_workers=2,
)
HEAD_TYPE = NodeType("head", {"CPU": 2, "gpu_arch:sm_90": 1, "cpu_arch:x86_64": 1}, head=True)
SM90 = ActorResources(num_gpus=1, resources={"gpu_arch:sm_90": 1})


def test_a_live_node_wins_over_a_node_type():
    placement = place([X86_REQ], [X86], what="t", node_types=[H100_TYPE])
    assert placement == Placement(X86_REQ) and not placement.needs_scale_up


def test_a_node_type_the_autoscaler_can_start_is_waited_for():
    placement = place([ARM, SM90], [X86], what="t", node_types=[HEAD_TYPE, H100_TYPE])
    assert placement.request == SM90
    assert placement.node_type == H100_TYPE and placement.needs_scale_up


@pytest.mark.parametrize(
    ("node_types", "match"),
    [
        ([H100_TYPE], r"(?s)none of which fits:\n  - type gpu-h100 \(up to 2\): CPU=8, GPU=1"),
        ([HEAD_TYPE], r"(?s)  - type head \(head\): CPU=2"),
        ([], r"(?s)The live nodes offer:\n  - node aaaaaaaaaaaa.*\nUse a hardware manifest"),
    ],
    ids=["no-type-fits", "the-head-type-is-never-started", "no-autoscaler"],
)
def test_impossible_even_for_the_autoscaler_lists_its_node_types(node_types, match):
    with pytest.raises(PlacementError, match=match):
        place([ARM], [X86], what="t", node_types=node_types)


def test_capacity_counts_the_nodes_the_autoscaler_may_start():
    assert capacity([X86], SM90) == 0
    assert capacity([X86], SM90, [H100_TYPE, HEAD_TYPE]) == 2
    assert capacity([X86, V100], X86_REQ, [H100_TYPE]) == 4 + 8 + 8 * 2


@pytest.mark.parametrize(
    ("candidates", "nodes", "batches", "count"),
    [
        ([X86_REQ], [X86, V100], 100, 12),
        ([X86_REQ], [X86, V100], 3, 3),
        ([SM70], [X86, V100], 100, 2),
        ([ARM], [X86, V100, DEAD_ARM], 100, 1),
    ],
    ids=["all-fitting-nodes", "no-more-than-batches", "only-the-gpu-node", "none-live"],
)
def test_default_actor_count_is_what_the_fitting_nodes_hold(candidates, nodes, batches, count):
    assert default_actor_count(candidates, nodes, batches) == count
