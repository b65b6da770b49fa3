"""Connecting to Ray: an existing cluster, or the embedded local instance.

With no address, one machine needs no setup: a local Ray starts in this process,
in a temp dir of its own (so it never collides with another instance on a shared
machine), advertising this node's architecture as custom resources.
"""

from __future__ import annotations

__all__ = ["RayConnection", "connect"]

import os
import shutil
import tempfile
from dataclasses import dataclass

from dlspec_ray.hardware.detect import node_resources


@dataclass
class RayConnection:
    address: str | None
    embedded: bool
    temp_dir: str | None = None
    owned: bool = False

    def close(self) -> None:
        """Shut Ray down only if this connection started it."""
        if not self.owned:
            return
        import ray

        ray.shutdown()
        if self.temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.owned = False


def connect(address: str | None = None, *, num_cpus: int | None = None) -> RayConnection:
    """Use the Ray this process is already connected to, else join ``address``, else embed."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return RayConnection(address=address, embedded=address is None, owned=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=True, logging_level="WARNING")
        return RayConnection(address=address, embedded=False, owned=True)
    # An embedded instance has no other clients, so token auth would only add a file in ~.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp_dir = tempfile.mkdtemp(prefix="dlspec-ray-")
    ray.init(
        num_cpus=num_cpus,
        resources=node_resources(),
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level="WARNING",
        log_to_driver=True,
    )
    return RayConnection(address=None, embedded=True, temp_dir=temp_dir, owned=True)
