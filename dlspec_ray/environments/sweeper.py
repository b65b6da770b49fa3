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
from dataclasses import dataclass, field

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
    # Other processes start and remove their containers meanwhile (a node's reader
    # environment is removed as soon as it has read): one gone between the listing and its
    # inspection is skipped, never an error that fails the start of this process's own.
    found = client.containers.list(
        all=True, filters={"label": f"{LABEL}.managed=1"}, ignore_removed=True
    )
    for container in found:
        labels = container.labels
        mine = labels.get(f"{LABEL}.host") == HOST
        orphan = mine and not owner_alive(labels.get(f"{LABEL}.owner", ""))
        if everything or orphan:
            try:
                container.remove(force=True)
            except Exception:
                continue  # removed meanwhile by its owner
            report.containers.append(container.name)


_swept: set[bool] = set()


def sweep_once(*, containers: bool) -> None:
    """The start-up sweep: at most once per process for each scope."""
    if containers in _swept:
        return
    _swept.add(containers)
    sweep(containers=containers)
