"""What the runtime tells an environment about the host actor that owns it.

The environments layer never imports Ray: the host actor reads its GPU ids and
its own id from Ray and hands them over here, with the hardware manifest's
limits, so a container gets exactly the actor's devices and share of the node.
"""

from __future__ import annotations

__all__ = ["Placement"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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

    def shared_folders(self, ctx: Mapping[str, Any]) -> list[Path]:
        """The host folders stage code reads, each once: the node's artifact cache, the
        ``read_only_paths``, and the folder of each of the model's artifacts. A confined
        environment (a container, a sandbox) binds exactly these, read-only."""
        from dlspec_ray.artifacts.cache import default_cache_dir

        found = [default_cache_dir(), *(Path(p) for p in self.read_only_paths)]
        for path in (ctx.get("artifacts") or {}).values():
            resolved = Path(path).resolve()
            found.append(resolved if resolved.is_dir() else resolved.parent)
        unique: list[Path] = []
        for path in found:
            if path.is_dir() and path not in unique:
                unique.append(path)
        return unique
