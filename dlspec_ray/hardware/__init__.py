"""Hardware manifests as Ray resource requests, what a node can advertise, and host setup."""

from __future__ import annotations

__all__ = [
    "CPU_ARCH_UNIT",
    "ActorResources",
    "CommandResult",
    "GpuDetection",
    "NodeType",
    "candidate_requests",
    "compute_capability_arch",
    "describe_setup",
    "detect_gpu_archs",
    "detect_gpus",
    "host_cpu_arch",
    "node_resources",
    "node_types_from_config",
    "resource_name_problems",
    "run_setup_commands",
    "setup_failure",
]

from dlspec_ray.hardware.detect import (
    GpuDetection,
    compute_capability_arch,
    detect_gpu_archs,
    detect_gpus,
    host_cpu_arch,
    node_resources,
)
from dlspec_ray.hardware.node_types import NodeType, node_types_from_config, resource_name_problems
from dlspec_ray.hardware.resources import CPU_ARCH_UNIT, ActorResources, candidate_requests
from dlspec_ray.hardware.setup import (
    CommandResult,
    describe_setup,
    run_setup_commands,
    setup_failure,
)
