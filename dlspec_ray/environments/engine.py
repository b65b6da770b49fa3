"""The Docker engine, through docker-py: found by ``DOCKER_HOST`` like the docker CLI."""

from __future__ import annotations

__all__ = ["DEFAULT_SOCKET", "LABEL", "docker_client", "docker_host", "engine_reachable"]

import os
from typing import Any

from dlspec_ray.environments.errors import EnvironmentUnavailable

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Every container dlspec-ray starts carries labels under this prefix (see container.py).
LABEL = "dlspec-ray"

_HOW_TO_START = (
    "Start an engine (as root, `scripts/dockerd.sh start DIR` in the dlspec-ray repository "
    "starts a private one and writes the DOCKER_HOST to export to DIR/env; or `systemctl start "
    "docker`), or set DOCKER_HOST to a running engine's socket."
)
_clients: dict[str, Any] = {}


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST", "").strip() or DEFAULT_SOCKET


def docker_client() -> Any:
    """A client that has answered a ping, or a clear error saying how to get one."""
    host = docker_host()
    client = _clients.get(host)
    if client is not None:
        return client
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        raise EnvironmentUnavailable(
            "the docker environment needs the Docker SDK for Python: "
            "pip install 'dlspec-ray[docker]'"
        ) from exc
    try:
        client = docker.DockerClient(base_url=host, timeout=300)
        client.ping()
    except (DockerException, OSError) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise EnvironmentUnavailable(
            f"the Docker engine at DOCKER_HOST={host} does not answer ({reason}). {_HOW_TO_START}"
        ) from exc
    _clients[host] = client
    return client


def engine_reachable() -> str | None:
    """None when the engine answers, else why not (for skips and ``env gc``)."""
    try:
        docker_client()
    except EnvironmentUnavailable as exc:
        return str(exc)
    return None
