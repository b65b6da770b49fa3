"""What a node advertises to Ray: custom resources and node labels, found on the node.

One function for every way a node joins: the embedded Ray (``cluster.py``), the local head
of ``dlspec-ray up`` (``head.py``) and ``ray start`` on a cluster node (``dlspec-ray
node-resources`` prints both halves). The names are ``hardware/``'s: ``cpu_arch:<arch>``
and one ``gpu_arch:<arch>`` unit per GPU (``hardware/detect.py``), the labels
``dlspec/cpu-arch`` and ``dlspec/gpu-arch`` (``hardware/labels.py``), and Ray's own
``accelerator_type:<type>`` for a GPU node.

The accelerator type is named the way Ray names it (``V100``, ``H100``), by Ray's own
NVML-based detection: Ray adds the same resource itself when it starts on a GPU node, so
the two agree. Without NVML (GPUs found only by ``nvidia-smi``), it is left out unless
given.
"""

from __future__ import annotations

__all__ = ["Advertisement", "advertised", "ray_accelerator_type"]

from dataclasses import dataclass, field

from dlspec_ray.hardware.detect import GpuDetection, detect_gpus, host_cpu_arch, node_resources
from dlspec_ray.hardware.labels import accelerator_type_resource, node_labels


@dataclass(frozen=True)
class Advertisement:
    """A node's custom resources (for ``--resources``) and labels (for ``--labels``)."""

    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    gpus: GpuDetection | None = None


def advertised(
    gpus: GpuDetection | None = None, *, accelerator_type: str | None = None
) -> Advertisement:
    """This node's advertisement; ``gpus`` and ``accelerator_type`` default to detection."""
    gpus = detect_gpus() if gpus is None else gpus
    resources = node_resources(list(gpus.archs))
    if gpus.archs:
        kind = accelerator_type or ray_accelerator_type()
        if kind:
            resources[accelerator_type_resource(kind)] = 1.0
    return Advertisement(resources, node_labels(gpus.archs, host_cpu_arch()), gpus)


def ray_accelerator_type() -> str | None:
    """The accelerator type Ray detects on this node (``V100``); None when it finds none."""
    try:
        from ray._private.accelerators import NvidiaGPUAcceleratorManager

        return NvidiaGPUAcceleratorManager.get_current_node_accelerator_type() or None
    except Exception:  # NVML missing or failing: Ray would find none either
        return None
