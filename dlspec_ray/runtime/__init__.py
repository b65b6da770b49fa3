"""Ray: connecting, placing and starting host actors, and streaming batches through them."""

from __future__ import annotations

__all__ = [
    "Batch",
    "BatchOutcome",
    "HostActor",
    "HostPool",
    "HostSetupError",
    "HostSpec",
    "Placement",
    "RayConnection",
    "autoscaler_node_types",
    "capacity",
    "check_post_output",
    "choose_request",
    "chunk_batches",
    "connect",
    "default_actor_count",
    "node_table",
    "node_type_table",
    "place",
    "plan_batches",
    "run_batches",
    "start_pool",
]

from dlspec_ray.runtime.autoscaler import autoscaler_node_types
from dlspec_ray.runtime.cluster import RayConnection, connect
from dlspec_ray.runtime.host import HostActor, HostSpec, check_post_output
from dlspec_ray.runtime.placement import (
    Placement,
    capacity,
    choose_request,
    default_actor_count,
    node_table,
    node_type_table,
    place,
)
from dlspec_ray.runtime.pool import HostPool, HostSetupError, start_pool
from dlspec_ray.runtime.scheduler import (
    Batch,
    BatchOutcome,
    chunk_batches,
    plan_batches,
    run_batches,
)
