"""Ray: connecting, placing and starting host actors, and streaming batches through them."""

from __future__ import annotations

__all__ = [
    "HostActor",
    "HostPool",
    "HostSetupError",
    "HostSpec",
    "NodeData",
    "Placement",
    "RayConnection",
    "ReadSpec",
    "Shard",
    "ShardOutcome",
    "ShardSink",
    "autoscaler_node_types",
    "capacity",
    "check_capacity",
    "check_post_output",
    "choose_request",
    "chunk_batches",
    "connect",
    "default_actor_count",
    "node_table",
    "node_type_table",
    "place",
    "run_shards",
    "start_node_data",
    "start_pool",
]

from dlspec_ray.runtime.autoscaler import autoscaler_node_types
from dlspec_ray.runtime.cluster import RayConnection, connect
from dlspec_ray.runtime.host import HostActor, HostSpec, ShardSink, check_post_output
from dlspec_ray.runtime.node_data import NodeData, ReadSpec, start_node_data
from dlspec_ray.runtime.placement import (
    Placement,
    capacity,
    check_capacity,
    choose_request,
    default_actor_count,
    node_table,
    node_type_table,
    place,
)
from dlspec_ray.runtime.pool import HostPool, HostSetupError, start_pool
from dlspec_ray.runtime.scheduler import Shard, ShardOutcome, chunk_batches, run_shards
