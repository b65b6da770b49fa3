"""What the runtime tells an environment about the host actor that owns it.

The environments layer never imports Ray: the host actor reads its GPU ids and
its own id from Ray and hands them over here, with the hardware manifest's
limits, so a container gets exactly the actor's devices and share of the node.
"""

from __future__ import annotations

__all__ = ["Placement"]

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Placement:
    cpus: float | None = None
    memory: int | None = None
    gpu_ids: tuple[str, ...] = ()
    # Identify the run and the actor on what the environment creates (container labels).
    labels: dict[str, str] = field(default_factory=dict)
    # Host folders stage code must read (the node's cache, a dataset's local folders): a
    # container sees each at the same path, read-only.
    read_only_paths: tuple[str, ...] = ()
