from __future__ import annotations

import pytest

from dlspec_ray.errors import PlacementError
from dlspec_ray.hardware import ActorResources
from dlspec_ray.runtime import capacity, choose_request

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
