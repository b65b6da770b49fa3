"""Node labels beside the resources: what a node says of its GPUs, where cluster configs put
them, and Ray's label selector rules as the placement check applies them."""

from __future__ import annotations

import re

import pytest

from dlspec_ray.hardware.labels import labels_text, node_labels, selector_matches
from dlspec_ray.hardware.node_types import advertisement_problems, node_types_from_config


@pytest.mark.parametrize(
    ("gpus", "cpu", "labels"),
    [
        ([], "amd64", {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "none"}),
        (["nvidia/sm70"], "x86_64", {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "sm_70"}),
        (["sm_90"] * 8, "aarch64", {"dlspec/cpu-arch": "aarch64", "dlspec/gpu-arch": "sm_90"}),
        (["sm_70", "sm_90"], "x86_64", {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "mixed"}),
    ],
    ids=["cpu-node", "v100", "eight-h100", "mixed-gpus"],
)
def test_a_node_labels_its_architectures_normalised(gpus, cpu, labels):
    assert node_labels(gpus, cpu) == labels


def test_labels_are_written_as_ray_start_takes_them():
    """`ray start --labels` parses "k=v,k2=v2" (ray._private.label_utils)."""
    from ray._private.label_utils import parse_node_labels_string

    labels = node_labels(["sm_70"], "x86_64")
    assert labels_text(labels) == "dlspec/cpu-arch=x86_64,dlspec/gpu-arch=sm_70"
    assert parse_node_labels_string(labels_text(labels)) == labels


@pytest.mark.parametrize(
    ("labels", "selector", "passes"),
    [
        ({"k": "none"}, {"k": "none"}, True),
        ({"k": "sm_70"}, {"k": "none"}, False),
        ({}, {"k": "none"}, False),  # an unlabelled node never matches equality
        ({}, {"k": "!sm_70"}, True),  # ... but passes a negation (measured on Ray 2.60)
        ({"k": "sm_70"}, {"k": "!sm_70"}, False),
        ({"k": "b"}, {"k": "in(a, b)"}, True),
        ({"k": "b"}, {"k": "!in(a,b)"}, False),
        ({"k": "c", "j": "1"}, {"k": "!in(a,b)", "j": "1"}, True),
    ],
)
def test_selectors_follow_rays_rules(labels, selector, passes):
    assert selector_matches(labels, selector) == passes


RAYJOB = {
    "apiVersion": "ray.io/v1",
    "kind": "RayJob",
    "spec": {
        "entrypoint": "dlspec-ray run ...",
        "rayClusterSpec": {
            "headGroupSpec": {
                "labels": {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "none"},
                "rayStartParams": {"num-cpus": "0", "resources": '"{\\"cpu_arch:x86_64\\": 1}"'},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "v100",
                    "maxReplicas": 1,
                    # Labels through ray start, for a KubeRay before group labels (1.5.1).
                    "rayStartParams": {
                        "num-gpus": "1",
                        "labels": "dlspec/cpu-arch=x86_64, dlspec/gpu-arch=sm_70",
                        "resources": '"{\\"cpu_arch:x86_64\\": 1, \\"gpu_arch:sm_70\\": 1, '
                        '\\"accelerator_type:V100\\": 1}"',
                    },
                }
            ],
        },
    },
}


def test_a_rayjobs_cluster_and_its_labels_are_read():
    head, v100 = node_types_from_config(RAYJOB)
    assert head.head and head.labels == {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "none"}
    assert v100.labels == {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "sm_70"}
    assert v100.resources["accelerator_type:V100"] == 1 and v100.can_start
    assert v100.as_node()["Labels"] == v100.labels
    assert advertisement_problems(head.resources, head.labels) == []
    assert advertisement_problems(v100.resources, v100.labels) == []


def test_launcher_node_types_carry_their_labels():
    config = {
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 0}, "labels": {"dlspec/gpu-arch": "none"}},
        },
    }
    (head,) = node_types_from_config(config)
    assert head.labels == {"dlspec/gpu-arch": "none"}


def test_bad_ray_start_labels_are_refused():
    bad = {"kind": "RayCluster", "spec": {"headGroupSpec": {"rayStartParams": {"labels": "x"}}}}
    with pytest.raises(ValueError, match=r"rayStartParams\.labels: expected key=value pairs"):
        node_types_from_config(bad)


V100 = {"CPU": 8, "GPU": 1, "cpu_arch:x86_64": 1, "gpu_arch:sm_70": 1, "accelerator_type:V100": 1}
V100_LABELS = {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "sm_70"}


@pytest.mark.parametrize(
    ("resources", "labels", "problem"),
    [
        (V100, {**V100_LABELS, "dlspec/gpu-arch": "none"}, r"dlspec/gpu-arch=sm_70 \(GPU=1"),
        (V100, {"dlspec/gpu-arch": "sm_70"}, r"expected the label dlspec/cpu-arch=x86_64"),
        (
            {"CPU": 4, "cpu_arch:x86_64": 1},
            {"dlspec/cpu-arch": "x86_64"},
            r"expected the label dlspec/gpu-arch=none",
        ),
        (
            {k: v for k, v in V100.items() if not k.startswith("accelerator_type")},
            V100_LABELS,
            r"expected one accelerator_type:<type> resource of 1",
        ),
        (
            {"CPU": 4, "cpu_arch:x86_64": 1, "accelerator_type:V100": 1},
            {"dlspec/cpu-arch": "x86_64", "dlspec/gpu-arch": "none"},
            r"a node without GPUs advertises \['accelerator_type:V100'\]",
        ),
    ],
    ids=["gpu-node-says-none", "no-cpu-label", "no-gpu-label", "no-accelerator-type",
         "accelerator-type-without-gpu"],
)  # fmt: skip
def test_labels_that_disagree_with_the_resources_are_found(resources, labels, problem):
    problems = advertisement_problems(resources, labels)
    assert len(problems) == 1 and re.search(problem, problems[0]), problems
