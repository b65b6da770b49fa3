"""The node types the connected cluster's autoscaler can start, when it has one.

Ray has no public call that lists them, so they are looked up, in order:
1. ``DLSPEC_RAY_AUTOSCALER_CONFIG``: the path of the cluster's config (a cluster
   launcher YAML or a KubeRay ``RayCluster``), for a driver that runs away from
   the head;
2. the cluster config the autoscaler reports to Ray's GCS (KubeRay and
   autoscaler v2 setups report one);
3. the ``--autoscaling-config`` of the autoscaler process serving this cluster,
   when it runs on this machine: the head of a ``ray up`` or ``ray start --head
   --autoscaling-config`` cluster, which is where a submitted job's driver runs.

None found means "no autoscaler that dlspec-ray knows of": placement then
fails fast as on a fixed cluster.
"""

from __future__ import annotations

__all__ = ["AUTOSCALER_CONFIG_ENV", "autoscaler_node_types", "monitor_config_path"]

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

import yaml

from dlspec_ray.errors import UsageError
from dlspec_ray.hardware.node_types import NodeType, node_types_from_config

AUTOSCALER_CONFIG_ENV = "DLSPEC_RAY_AUTOSCALER_CONFIG"
_UNBOUNDED = 2**31 - 1
_MONITORS = ("autoscaler/_private/monitor.py", "autoscaler/v2/monitor.py")


def autoscaler_node_types(gcs_address: str | None = None) -> list[NodeType]:
    """The node types of the connected cluster's autoscaler; empty when none is known."""
    path = os.environ.get(AUTOSCALER_CONFIG_ENV)
    if path:
        return _read_config(Path(path), f"{AUTOSCALER_CONFIG_ENV}={path}")
    import ray

    gcs_address = gcs_address or ray.get_runtime_context().gcs_address
    reported = _reported_node_types()
    if reported:
        return reported
    monitor = monitor_config_path(gcs_address)
    if monitor is not None:
        return _read_config(monitor, f"the autoscaler's --autoscaling-config {monitor}")
    return []


def monitor_config_path(gcs_address: str, proc: Path = Path("/proc")) -> Path | None:
    """The ``--autoscaling-config`` of a Ray autoscaler on this machine serving ``gcs_address``."""
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not any(a.endswith(_MONITORS) for a in args):
            continue
        options = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        config = options.get("autoscaling-config")
        if not config or not _same_gcs(options.get("gcs-address", ""), gcs_address):
            continue
        path = Path(os.path.expanduser(config))
        if not path.is_absolute():
            try:
                path = Path(os.readlink(entry / "cwd")) / path
            except OSError:
                continue
        return path
    return None


def _read_config(path: Path, origin: str) -> list[NodeType]:
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{origin}: cannot read the cluster config: {exc}") from None
    try:
        return node_types_from_config(config or {})
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"{origin}: not a cluster config dlspec-ray can read: {exc}") from None


def _reported_node_types() -> list[NodeType]:
    """Node groups of the cluster config in Ray's GCS (an internal API: any failure is none)."""
    try:
        from ray._private.state import state

        config: Any = state.get_cluster_config()
    except Exception:
        return []
    if config is None:
        return []
    types = []
    for group in config.node_group_configs:
        max_count = int(group.max_count)
        types.append(
            NodeType(
                name=group.name,
                resources={k: float(v) for k, v in group.resources.items()},
                min_workers=int(group.min_count),
                max_workers=_UNBOUNDED if max_count < 0 else max_count,
            )
        )
    return types


def _same_gcs(a: str, b: str) -> bool:
    host_a, _, port_a = a.rpartition(":")
    host_b, _, port_b = b.rpartition(":")
    if not port_a or port_a != port_b:
        return False
    return host_a == host_b or (_is_local(host_a) and _is_local(host_b))


def _is_local(host: str) -> bool:
    """Whether ``host`` names this machine: loopback, or an address of one of its interfaces."""
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host.strip("[]")))
    except (OSError, ValueError):
        return False
    if address.is_loopback:
        return True
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind((str(address), 0))
        finally:
            probe.close()
    except OSError:
        return False
    return True
