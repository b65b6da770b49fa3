"""What this node offers, as the custom resources a Ray node should advertise.

The embedded local Ray advertises these, and ``ray start --resources`` can take
them on a cluster node, so a hardware manifest's request finds a matching node.
"""

from __future__ import annotations

__all__ = ["detect_gpu_archs", "host_cpu_arch", "node_resources"]

import platform
import shutil
import subprocess
from collections import Counter

from dlspec_ray.spec.arch import cpu_arch_resource, gpu_arch_resource, normalize_cpu_arch


def host_cpu_arch() -> str:
    return normalize_cpu_arch(platform.machine())


def detect_gpu_archs(timeout_s: float = 10) -> list[str]:
    """One ``sm_XY`` per NVIDIA GPU, from ``nvidia-smi``; empty when there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [parse_compute_capability(line) for line in out.split() if line.strip()]


def parse_compute_capability(text: str) -> str:
    """``"9.0"`` -> ``"sm_90"``."""
    major, _, minor = text.strip().partition(".")
    return f"sm_{int(major)}{int(minor or 0)}"


def node_resources() -> dict[str, float]:
    """Custom resources for this node: one unit of its CPU arch, one per GPU of each arch."""
    resources: dict[str, float] = {cpu_arch_resource(host_cpu_arch()): 1.0}
    for arch, count in Counter(detect_gpu_archs()).items():
        resources[gpu_arch_resource(arch)] = float(count)
    return resources
