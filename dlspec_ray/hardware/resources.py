"""From a hardware manifest to the Ray resources a host actor must request.

The rule (also in the README):
- ``cpu.ncpu`` becomes ``num_cpus``; ``memory`` becomes Ray ``memory`` (bytes).
- ``cpu.arch`` becomes the custom resource ``cpu_arch:<arch>``. Every node
  advertises 1 unit of its own architecture, and an actor asks for
  ``CPU_ARCH_UNIT`` of it: the resource works as a label, and up to 1000 actors
  fit on one node by it.
- Each ``gpu`` entry asks for ``count`` GPUs: ``num_gpus`` plus ``count`` units of
  ``gpu_arch:<arch>``. A node advertises one unit per GPU of that architecture, so
  the actor lands on a node that has that many GPUs *of that kind*.
- A manifest that lists several acceptable CPU architectures expands into one
  candidate request per architecture, in the order written; placement picks the
  first one some live node can satisfy.
"""

from __future__ import annotations

__all__ = ["CPU_ARCH_UNIT", "ActorResources", "candidate_requests"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.spec.arch import cpu_arch_resource, gpu_arch_resource
from dlspec_ray.spec.types import HardwareManifest

CPU_ARCH_UNIT = 0.001


@dataclass(frozen=True)
class ActorResources:
    """What one host actor asks Ray for."""

    num_cpus: float = 1
    num_gpus: float = 0
    memory: int | None = None
    resources: Mapping[str, float] = field(default_factory=dict)

    def as_actor_options(self) -> dict[str, Any]:
        """The keyword arguments for ``ActorClass.options(...)``."""
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory:
            options["memory"] = self.memory
        if self.resources:
            options["resources"] = dict(self.resources)
        return options

    def as_dict(self) -> dict[str, float]:
        """The request in the form a node's resource table uses, for comparison."""
        wanted: dict[str, float] = {"CPU": self.num_cpus}
        if self.num_gpus:
            wanted["GPU"] = self.num_gpus
        if self.memory:
            wanted["memory"] = self.memory
        wanted.update(self.resources)
        return wanted

    def describe(self) -> str:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in self.as_dict().items())


def candidate_requests(hardware: HardwareManifest | None) -> list[ActorResources]:
    """Every acceptable request for ``hardware``, in order of preference."""
    if hardware is None:
        return [ActorResources()]
    gpu_resources: dict[str, float] = {}
    for gpu in hardware.gpu:
        key = gpu_arch_resource(gpu.arch)
        gpu_resources[key] = gpu_resources.get(key, 0) + gpu.count
    num_gpus = sum(g.count for g in hardware.gpu)
    archs: tuple[str | None, ...] = hardware.cpu.arch or (None,)
    requests = []
    for arch in archs:
        resources = dict(gpu_resources)
        if arch is not None:
            resources[cpu_arch_resource(arch)] = CPU_ARCH_UNIT
        requests.append(
            ActorResources(
                num_cpus=hardware.cpu.ncpu,
                num_gpus=num_gpus,
                memory=hardware.memory,
                resources=resources,
            )
        )
    return requests


def _fmt(value: float) -> str:
    if value >= 2**20 and float(value).is_integer():
        return f"{value / 2**30:.1f}GiB"
    return f"{value:g}"
