"""What this node offers, as the custom resources a Ray node should advertise.

The embedded local Ray advertises these, and ``ray start --resources`` takes
them on a cluster node (``dlspec-ray node-resources`` prints them), so a
hardware manifest's request finds a matching node.

GPUs are found through the NVML bindings (``pynvml``, from the
``nvidia-ml-py`` package) when they are importable, else through
``nvidia-smi``; neither is a dependency. Both report each GPU's compute
capability, which names its architecture: 7.0 is ``sm_70``, 9.0 is ``sm_90``.
"""

from __future__ import annotations

__all__ = [
    "GpuDetection",
    "compute_capability_arch",
    "detect_gpu_archs",
    "detect_gpus",
    "host_cpu_arch",
    "node_resources",
    "parse_compute_capability",
]

import platform
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from dlspec_ray.spec.arch import cpu_arch_resource, gpu_arch_resource, normalize_cpu_arch


@dataclass(frozen=True)
class GpuDetection:
    """The architecture of each GPU found, and which tool reported it (for ``--verbose``)."""

    archs: tuple[str, ...]
    source: str
    note: str = ""


def host_cpu_arch() -> str:
    return normalize_cpu_arch(platform.machine())


def compute_capability_arch(major: int, minor: int) -> str:
    """``(9, 0)`` -> ``"sm_90"``: the name a node advertises as ``gpu_arch:<arch>``."""
    if int(major) < 1 or int(minor) < 0:
        raise ValueError(f"expected a compute capability such as 9.0, got {major}.{minor}")
    return f"sm_{int(major)}{int(minor)}"


def parse_compute_capability(text: str) -> str:
    """``"9.0"`` (what ``nvidia-smi --query-gpu=compute_cap`` prints) -> ``"sm_90"``."""
    major, _, minor = text.strip().partition(".")
    return compute_capability_arch(int(major), int(minor or 0))


def detect_gpus(
    *, nvml: ModuleType | bool | None = True, smi: str | None = None, timeout_s: float = 10
) -> GpuDetection:
    """Every NVIDIA GPU's architecture: NVML first when importable, else ``nvidia-smi``.

    ``nvml`` is the bindings module to use (True: import ``pynvml`` if present;
    None or False: skip NVML); ``smi`` is the ``nvidia-smi`` executable (default:
    the one on PATH). Both exist so tests can hand in stand-ins for a GPU.
    """
    module = _import_pynvml() if nvml is True else (nvml or None)
    notes = []
    if module is not None:
        try:
            return GpuDetection(tuple(_nvml_archs(module)), "nvml")
        except Exception as exc:  # NVML raises its own error types; any means "no answer"
            notes.append(f"NVML: {exc}")
    smi = smi or shutil.which("nvidia-smi")
    if smi is None:
        return GpuDetection((), "none", "; ".join([*notes, "nvidia-smi: not on PATH"]))
    try:
        out = subprocess.run(
            [smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
        archs = tuple(parse_compute_capability(line) for line in out.splitlines() if line.strip())
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return GpuDetection((), "none", "; ".join([*notes, f"nvidia-smi: {exc}"]))
    return GpuDetection(archs, "nvidia-smi", "; ".join(notes))


def detect_gpu_archs(timeout_s: float = 10) -> list[str]:
    """One ``sm_XY`` per NVIDIA GPU of this node; empty when there is none."""
    return list(detect_gpus(timeout_s=timeout_s).archs)


def node_resources(gpu_archs: list[str] | None = None) -> dict[str, float]:
    """Custom resources for this node: one unit of its CPU arch, one per GPU of each arch.

    Only custom resources: Ray counts CPUs, GPUs and memory itself, and
    ``ray start --resources`` refuses those names.
    """
    resources: dict[str, float] = {cpu_arch_resource(host_cpu_arch()): 1.0}
    archs = detect_gpu_archs() if gpu_archs is None else gpu_archs
    for arch, count in sorted(Counter(archs).items()):
        resources[gpu_arch_resource(arch)] = float(count)
    return resources


def _import_pynvml() -> ModuleType | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    return pynvml


def _nvml_archs(nvml: Any) -> list[str]:
    nvml.nvmlInit()
    try:
        archs = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            archs.append(compute_capability_arch(major, minor))
        return archs
    finally:
        nvml.nvmlShutdown()
