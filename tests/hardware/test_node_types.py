from __future__ import annotations

import pytest

from dlspec_ray.hardware import NodeType, node_types_from_config, resource_name_problems
from dlspec_ray.hardware.node_types import kubernetes_quantity

LAUNCHER = {
    "max_workers": 3,
    "head_node_type": "head",
    "available_node_types": {
        "head": {"resources": {"CPU": 0, "cpu_arch:x86_64": 1}, "node_config": {}},
        "v100": {
            "min_workers": 0,
            "max_workers": 2,
            "resources": {"CPU": 8, "GPU": 1, "cpu_arch:x86_64": 1, "gpu_arch:sm_70": 1},
        },
        "arm": {"resources": {"CPU": 4, "cpu_arch:aarch64": 1}},
    },
}

KUBERAY = {
    "apiVersion": "ray.io/v1",
    "kind": "RayCluster",
    "spec": {
        "headGroupSpec": {
            "rayStartParams": {"num-cpus": "0", "resources": '"{\\"cpu_arch:x86_64\\": 1}"'},
            "template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "4"}}}]}},
        },
        "workerGroupSpecs": [
            {
                "groupName": "h100",
                "minReplicas": 0,
                "maxReplicas": 2,
                "rayStartParams": {
                    "resources": '"{\\"cpu_arch:x86_64\\": 1, \\"gpu_arch:sm_90\\": 1}"'
                },
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "resources": {
                                    "limits": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": 1}
                                }
                            }
                        ]
                    }
                },
            }
        ],
    },
}


def test_launcher_node_types_keep_resources_and_limits():
    types = {t.name: t for t in node_types_from_config(LAUNCHER)}
    assert types["head"] == NodeType(
        "head", {"CPU": 0, "cpu_arch:x86_64": 1}, max_workers=3, head=True
    )
    assert types["v100"].max_workers == 2 and types["v100"].can_start
    # A type without its own max_workers may use the cluster's.
    assert types["arm"].max_workers == 3
    capped = {**LAUNCHER, "max_workers": 1}
    assert [t.max_workers for t in node_types_from_config(capped)] == [1, 1, 1]
    assert not types["head"].can_start


def test_kuberay_node_types_come_from_limits_and_ray_start_params():
    head, h100 = node_types_from_config(KUBERAY)
    assert head.head and head.resources == {"CPU": 0.0, "cpu_arch:x86_64": 1.0}
    assert (h100.name, h100.min_workers, h100.max_workers) == ("h100", 0, 2)
    assert h100.resources == {
        "CPU": 16.0,
        "GPU": 1.0,
        "memory": 64 * 2**30,
        "cpu_arch:x86_64": 1.0,
        "gpu_arch:sm_90": 1.0,
    }


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"cluster_name": "x"}, "expected a cluster launcher config with `available_node_types`"),
        (
            {
                "kind": "RayCluster",
                "spec": {"headGroupSpec": {"rayStartParams": {"resources": "{"}}},
            },
            "rayStartParams.resources: expected JSON",
        ),
    ],
    ids=["not-a-cluster-config", "bad-kuberay-resources"],
)
def test_unreadable_configs_say_what_was_expected(config, match):
    with pytest.raises(ValueError, match=match):
        node_types_from_config(config)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8.0), ("500m", 0.5), ("64Gi", 64 * 2**30), ("16G", 16e9), (2, 2.0)],
)
def test_kubernetes_quantities(text, value):
    assert kubernetes_quantity(text) == value


def test_a_bad_kubernetes_quantity_is_refused():
    with pytest.raises(ValueError, match="expected a Kubernetes quantity such as 8, 500m or 64Gi"):
        kubernetes_quantity("lots")


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ({"CPU": 8, "cpu_arch:x86_64": 1}, None),
        ({"CPU": 8, "GPU": 2, "cpu_arch:x86_64": 1, "gpu_arch:sm_90": 2}, None),
        ({"CPU": 8}, r"expected exactly one cpu_arch:<arch> resource, got \[\]"),
        ({"cpu_arch:amd64": 1}, "cpu_arch:amd64: expected the name cpu_arch:x86_64"),
        ({"cpu_arch:x86_64": 1, "GPU": 1, "gpu_arch:sm70": 1}, "expected the name gpu_arch:sm_70"),
        ({"cpu_arch:sparc": 1}, "unknown CPU architecture 'sparc'"),
        ({"cpu_arch:x86_64": 1, "GPU": 2, "gpu_arch:sm_90": 1}, "add up to GPU=2, got 1"),
        ({"cpu_arch:x86_64": 4}, r"expected 1 \(a label\), got 4"),
    ],
    ids=["cpu", "gpus", "no-arch", "alias", "gpu-alias", "unknown", "gpu-count", "not-a-label"],
)
def test_resource_names_are_the_ones_the_code_asks_for(resources, problem):
    problems = resource_name_problems(resources)
    if problem is None:
        assert problems == []
    else:
        assert any(__import__("re").search(problem, p) for p in problems), problems
