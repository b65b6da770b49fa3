"""Removing what killed host actors left behind: containers and shared-memory folders.

``ray.kill`` (and a crash) skips an actor's ``__ray_shutdown__``, so its
environment is never closed. Everything an environment creates names its owner
process (see ``owner``); whatever names an owner that no longer runs on this
host is an orphan. The sweep runs when an environment starts and on ``dlspec-ray
env gc``; with ``everything`` it removes all of dlspec-ray's, live or not.
"""

from __future__ import annotations

__all__ = ["SweepReport", "sweep", "sweep_once"]

import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.environments.engine import LABEL
from dlspec_ray.environments.shm import env_dir_owner, shm_root
from dlspec_ray.owner import HOST, end_processes_naming, owner_alive


@dataclass
class SweepReport:
    folders: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    # Agent processes of dead owners (a process environment whose actor was killed while
    # a stage ran), ended by PID.
    agents: list[int] = field(default_factory=list)
    # Why containers were not looked at (no engine), if they were not.
    docker_skipped: str | None = None


def sweep(*, everything: bool = False, containers: bool = True) -> SweepReport:
    report = SweepReport()
    root = shm_root()
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        token = env_dir_owner(path.name)
        if token is None or not path.is_dir():
            continue
        if everything or not owner_alive(token):
            # The folder is unique to one environment: only its agent names it.
            report.agents += end_processes_naming(str(path))
            shutil.rmtree(path, ignore_errors=True)
            report.folders.append(str(path))
    if containers:
        _sweep_containers(report, everything)
    return report


def _sweep_containers(report: SweepReport, everything: bool) -> None:
    from dlspec_ray.environments.engine import docker_client
    from dlspec_ray.environments.errors import EnvironmentUnavailable

    try:
        client = docker_client()
    except EnvironmentUnavailable as exc:
        report.docker_skipped = str(exc)
        return
    found = client.containers.list(all=True, filters={"label": f"{LABEL}.managed=1"})
    for container in found:
        labels = container.labels
        mine = labels.get(f"{LABEL}.host") == HOST
        orphan = mine and not owner_alive(labels.get(f"{LABEL}.owner", "")) and settled(container)
        if everything or orphan:
            try:
                container.remove(force=True)
            except Exception:
                continue  # removed meanwhile by its owner
            report.containers.append(container.name)


# A container still being created (docker-py creates, inspects, then starts it) is left
# alone this long: its owner is mid-launch, and removing it there fails that launch.
CREATING_GRACE_S = 120.0


def settled(container: Any) -> bool:
    """Not a container its owner is creating right now."""
    if container.status != "created":
        return True
    created = _epoch(container.attrs.get("Created"))
    if created is None:
        return True  # no creation time to go by: judge by the owner alone
    return time.time() - created > CREATING_GRACE_S


def _epoch(created: Any) -> float | None:
    """Docker's creation time: epoch seconds (a listing) or RFC 3339 (an inspect)."""
    if isinstance(created, (int, float)):
        return float(created)
    if isinstance(created, str) and len(created) >= 19:
        from datetime import datetime, timezone

        try:
            moment = datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
        return moment.replace(tzinfo=timezone.utc).timestamp()
    return None


_swept: set[bool] = set()


def sweep_once(*, containers: bool) -> None:
    """The start-up sweep: at most once per process for each scope."""
    if containers in _swept:
        return
    _swept.add(containers)
    sweep(containers=containers)
