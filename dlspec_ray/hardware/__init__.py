"""Hardware manifests as Ray resource requests, and what a node can advertise."""

from __future__ import annotations

__all__ = [
    "CPU_ARCH_UNIT",
    "ActorResources",
    "candidate_requests",
    "detect_gpu_archs",
    "host_cpu_arch",
    "node_resources",
]

from dlspec_ray.hardware.detect import detect_gpu_archs, host_cpu_arch, node_resources
from dlspec_ray.hardware.resources import CPU_ARCH_UNIT, ActorResources, candidate_requests
