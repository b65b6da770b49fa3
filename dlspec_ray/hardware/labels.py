"""The Ray node labels a node advertises beside its resources, and Ray's accelerator type.

Custom resources say what a node *has*, so a request for ``gpu_arch:sm_70`` lands on a
V100 node; they cannot say what a node *lacks*. A CPU-only task asks for
``cpu_arch:x86_64``, which the GPU nodes advertise too, so Ray could put it on the CPUs of
a V100 or H100 node and keep that GPU idle for the evaluation's length. A node label can
say "no GPU": every node advertises ``dlspec/gpu-arch`` (its GPUs' architecture, or
``none``) and ``dlspec/cpu-arch``, and placement (``runtime/placement.py``) gives a
CPU-only request the label selector ``{"dlspec/gpu-arch": "none"}`` when the cluster has
such a node.

Labels are plain ``key=value`` strings (Kubernetes syntax; ``ray start --labels
"k=v,k2=v2"``, ``ray.init(labels=...)``, a node type's ``labels:``), and a key may not
start with ``ray.io/``, Ray's own prefix. Ray itself labels GPU nodes with
``ray.io/accelerator-type`` and advertises the resource ``accelerator_type:<type>``
(``V100``, ``H100``: ``ray.util.accelerators``) when it detects them; cluster configs
declare that resource too, so the autoscaler knows which node type brings it.
"""

from __future__ import annotations

__all__ = [
    "ACCELERATOR_TYPE_PREFIX",
    "CPU_ARCH_LABEL",
    "GPU_ARCH_LABEL",
    "MIXED_GPUS",
    "NO_GPU",
    "accelerator_type_resource",
    "cpu_only_selector",
    "labels_text",
    "node_labels",
    "selector_matches",
]

from collections.abc import Iterable, Mapping

from dlspec_ray.spec.arch import normalize_cpu_arch, normalize_gpu_arch

GPU_ARCH_LABEL = "dlspec/gpu-arch"
CPU_ARCH_LABEL = "dlspec/cpu-arch"
NO_GPU = "none"
# A node whose GPUs are of more than one architecture (rare): a label holds one value.
MIXED_GPUS = "mixed"
# Ray's own resource for the accelerator model: "accelerator_type:V100".
ACCELERATOR_TYPE_PREFIX = "accelerator_type:"


def node_labels(gpu_archs: Iterable[str], cpu_arch: str) -> dict[str, str]:
    """The labels of a node with these GPUs (one arch per GPU; none for a CPU node)."""
    archs = sorted({normalize_gpu_arch(a) for a in gpu_archs})
    gpu = archs[0] if len(archs) == 1 else (MIXED_GPUS if archs else NO_GPU)
    return {CPU_ARCH_LABEL: normalize_cpu_arch(cpu_arch), GPU_ARCH_LABEL: gpu}


def cpu_only_selector() -> dict[str, str]:
    """The label selector that keeps an actor on the nodes that say they have no GPU."""
    return {GPU_ARCH_LABEL: NO_GPU}


def labels_text(labels: Mapping[str, str]) -> str:
    """``{"a": "1", "b": "2"}`` -> ``"a=1,b=2"``: what ``ray start --labels`` takes."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def accelerator_type_resource(accelerator_type: str) -> str:
    """``"V100"`` -> ``"accelerator_type:V100"``: the resource Ray gives a GPU node."""
    return f"{ACCELERATOR_TYPE_PREFIX}{accelerator_type}"


def selector_matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    """Whether a node with ``labels`` passes Ray's label selector ``selector``.

    Ray's rules (``ray._private.label_utils``), checked against Ray 2.60: ``value`` is
    equality; ``!value`` and ``!in(a, b)`` also pass a node without the key; ``in(a, b)``
    needs one of the values. The placement check uses it so that it counts only the
    nodes Ray would schedule on.
    """
    for key, expression in selector.items():
        negated = expression.startswith("!")
        body = expression[1:] if negated else expression
        if body.startswith("in(") and body.endswith(")"):
            values = {v.strip() for v in body[3:-1].split(",")}
        else:
            values = {body}
        present = key in labels and labels[key] in values
        if present == negated:
            return False
    return True
