"""The node types of a cluster configuration, as the resources each node would offer.

An autoscaling cluster does not run every kind of node it can have: a
``gpu_arch:sm_90`` request may find no live node and still be satisfiable,
because the autoscaler can start one. Placement reads the node types from the
cluster's configuration to tell "wait for the autoscaler" from "impossible".

Three formats are read: Ray's cluster launcher YAML (``available_node_types``,
also what ``ray start --autoscaling-config`` takes), a KubeRay ``RayCluster``
(head and worker groups, resources from the container limits and
``rayStartParams``) and a KubeRay ``RayJob`` (the ``RayCluster`` spec under
``spec.rayClusterSpec``). A node type's labels come from its ``labels:`` (the
launcher's node type, KubeRay's group) and, for KubeRay, ``rayStartParams.labels``;
placement reads them to keep CPU-only tasks off GPU node types
(``hardware/labels.py``).
"""

from __future__ import annotations

__all__ = [
    "NodeType",
    "advertisement_problems",
    "kubernetes_quantity",
    "node_types_from_config",
    "resource_name_problems",
]

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.hardware.labels import (
    ACCELERATOR_TYPE_PREFIX,
    CPU_ARCH_LABEL,
    GPU_ARCH_LABEL,
    MIXED_GPUS,
    NO_GPU,
)
from dlspec_ray.spec.arch import normalize_cpu_arch, normalize_gpu_arch

_UNBOUNDED = 2**31 - 1


@dataclass(frozen=True)
class NodeType:
    """One kind of node a cluster may run, and how many of it the autoscaler may start."""

    name: str
    resources: Mapping[str, float] = field(default_factory=dict)
    min_workers: int = 0
    max_workers: int = 0
    head: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def as_node(self) -> dict[str, Any]:
        """The node as ``ray.nodes()`` would list it once started, for the placement check."""
        return {
            "NodeID": f"type:{self.name}",
            "Alive": True,
            "Resources": dict(self.resources),
            "Labels": dict(self.labels),
        }

    @property
    def can_start(self) -> bool:
        """Whether the autoscaler may start another node of this type."""
        return not self.head and self.max_workers > 0


def node_types_from_config(config: Mapping[str, Any]) -> list[NodeType]:
    """The node types of a cluster launcher config, a KubeRay ``RayCluster`` or ``RayJob``."""
    if config.get("kind") == "RayCluster":
        return _kuberay_node_types(config.get("spec") or {})
    if config.get("kind") == "RayJob":
        return _kuberay_node_types((config.get("spec") or {}).get("rayClusterSpec") or {})
    types = config.get("available_node_types")
    if not isinstance(types, Mapping):
        raise ValueError(
            "expected a cluster launcher config with `available_node_types`, or a KubeRay "
            f"RayCluster; got keys {sorted(config)}"
        )
    head = config.get("head_node_type")
    cluster_max = int(config.get("max_workers", _UNBOUNDED))
    result = []
    for name, spec in types.items():
        spec = spec or {}
        result.append(
            NodeType(
                name=str(name),
                resources={k: float(v) for k, v in (spec.get("resources") or {}).items()},
                min_workers=int(spec.get("min_workers", 0)),
                max_workers=min(int(spec.get("max_workers", cluster_max)), cluster_max),
                head=name == head,
                labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
            )
        )
    return result


def resource_name_problems(resources: Mapping[str, float]) -> list[str]:
    """What is wrong with the architecture resources a node (type) advertises.

    A node must advertise exactly one ``cpu_arch:`` and, when it has GPUs, one
    ``gpu_arch:`` unit per GPU, all spelled the way dlspec-ray spells them:
    any other spelling silently matches no request.
    """
    problems = []
    cpu = [k for k in resources if k.startswith("cpu_arch:")]
    if len(cpu) != 1:
        problems.append(f"expected exactly one cpu_arch:<arch> resource, got {sorted(cpu)}")
    gpu_units = 0.0
    for key, value in resources.items():
        prefix, _, arch = key.partition(":")
        if prefix not in ("cpu_arch", "gpu_arch"):
            continue
        normalize = normalize_cpu_arch if prefix == "cpu_arch" else normalize_gpu_arch
        try:
            canonical = normalize(arch)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            continue
        if canonical != arch:
            problems.append(f"{key}: expected the name {prefix}:{canonical}")
        if prefix == "gpu_arch":
            gpu_units += float(value)
        elif float(value) != 1:
            problems.append(f"{key}: expected 1 (a label), got {value:g}")
    gpus = float(resources.get("GPU", 0))
    if gpu_units != gpus:
        problems.append(
            f"expected gpu_arch:<arch> units to add up to GPU={gpus:g}, got {gpu_units:g}"
        )
    return problems


def advertisement_problems(resources: Mapping[str, float], labels: Mapping[str, str]) -> list[str]:
    """What is wrong with the labels and the accelerator type a node (type) advertises.

    ``dlspec/cpu-arch`` must name the node's ``cpu_arch:`` resource and ``dlspec/gpu-arch``
    its GPUs' architecture (``none`` without GPUs): a GPU node type labelled ``none``
    would take CPU-only tasks that should stay off it. A GPU node also advertises Ray's
    ``accelerator_type:<type>`` (``V100``), once, with 1, as Ray itself does.
    """
    problems = []
    cpu = sorted(k.partition(":")[2] for k in resources if k.startswith("cpu_arch:"))
    gpu = sorted({k.partition(":")[2] for k in resources if k.startswith("gpu_arch:")})
    if labels.get(CPU_ARCH_LABEL) not in cpu:
        problems.append(
            f"expected the label {CPU_ARCH_LABEL}={cpu[0] if cpu else '<arch>'} (its cpu_arch: "
            f"resource), got {labels.get(CPU_ARCH_LABEL)!r}"
        )
    gpus = float(resources.get("GPU", 0))
    wanted = NO_GPU if not gpus else (gpu[0] if len(gpu) == 1 else MIXED_GPUS)
    if labels.get(GPU_ARCH_LABEL) != wanted:
        problems.append(
            f"expected the label {GPU_ARCH_LABEL}={wanted} (GPU={gpus:g}, gpu_arch: "
            f"{gpu or 'none'}), got {labels.get(GPU_ARCH_LABEL)!r}"
        )
    kinds = {k: v for k, v in resources.items() if k.startswith(ACCELERATOR_TYPE_PREFIX)}
    if gpus and (len(kinds) != 1 or any(float(v) != 1 for v in kinds.values())):
        problems.append(
            f"expected one {ACCELERATOR_TYPE_PREFIX}<type> resource of 1 (such as "
            f"{ACCELERATOR_TYPE_PREFIX}V100), as Ray advertises on a GPU node, got {kinds}"
        )
    if not gpus and kinds:
        problems.append(f"a node without GPUs advertises {sorted(kinds)}")
    return problems


def kubernetes_quantity(text: str | float) -> float:
    """``"8"``, ``"500m"``, ``"64Gi"``, ``"16G"`` -> a number (cores or bytes)."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(m|k|K|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?\s*", str(text))
    if match is None:
        raise ValueError(f"expected a Kubernetes quantity such as 8, 500m or 64Gi, got {text!r}")
    scale = {
        None: 1,
        "m": 1e-3,
        "k": 1e3,
        "K": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
    }[match.group(2)]
    return float(match.group(1)) * scale


def _kuberay_node_types(spec: Mapping[str, Any]) -> list[NodeType]:
    """The head and worker groups of a ``RayCluster`` spec."""
    groups = [("head", spec.get("headGroupSpec") or {}, True)]
    groups += [
        (str(g.get("groupName", f"workers-{i}")), g, False)
        for i, g in enumerate(spec.get("workerGroupSpecs") or [])
    ]
    result = []
    for name, group, head in groups:
        result.append(
            NodeType(
                name=name,
                resources=_kuberay_resources(group),
                min_workers=0 if head else int(group.get("minReplicas", 0)),
                max_workers=0 if head else int(group.get("maxReplicas", 0)),
                head=head,
                labels=_kuberay_labels(group),
            )
        )
    return result


def _kuberay_resources(group: Mapping[str, Any]) -> dict[str, float]:
    """What KubeRay makes the node advertise: container limits, overridden by rayStartParams."""
    params = group.get("rayStartParams") or {}
    containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    resources: dict[str, float] = {}
    if "cpu" in limits:
        resources["CPU"] = float(int(kubernetes_quantity(limits["cpu"])))
    gpus = sum(kubernetes_quantity(v) for k, v in limits.items() if k.endswith("/gpu"))
    if gpus:
        resources["GPU"] = gpus
    if "memory" in limits:
        resources["memory"] = kubernetes_quantity(limits["memory"])
    if "num-cpus" in params:
        resources["CPU"] = float(params["num-cpus"])
    if "num-gpus" in params:
        resources["GPU"] = float(params["num-gpus"])
    if "resources" in params:
        resources.update({k: float(v) for k, v in _ray_start_json(params["resources"]).items()})
    return resources


def _kuberay_labels(group: Mapping[str, Any]) -> dict[str, str]:
    """The Ray node labels of a group: ``rayStartParams.labels`` (``"k=v,k2=v2"``, what
    ``ray start --labels`` takes), overridden by the group's own ``labels`` (KubeRay 1.5)."""
    labels: dict[str, str] = {}
    text = str((group.get("rayStartParams") or {}).get("labels") or "").strip().strip("'\"")
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"rayStartParams.labels: expected key=value pairs, got {text!r}")
        labels[key.strip()] = value.strip()
    labels.update({str(k): str(v) for k, v in (group.get("labels") or {}).items()})
    return labels


def _ray_start_json(text: Any) -> dict[str, Any]:
    """KubeRay writes ``--resources`` JSON quoted for a shell: ``'"{\\"a\\": 1}"'``."""
    if isinstance(text, Mapping):
        return dict(text)
    value = str(text).strip()
    while len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    value = value.replace('\\"', '"')
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"rayStartParams.resources: expected JSON, got {text!r}: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"rayStartParams.resources: expected a JSON object, got {text!r}")
    return parsed
