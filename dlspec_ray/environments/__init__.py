"""Where stage code runs, behind one small interface (start, call a stage, close).

``inline`` runs it in the host actor's process, ``process`` in a separate
interpreter, ``docker`` in a framework container; the last two share one agent
and one wire protocol (``agent``, ``wire``, ``shm``).
"""

from __future__ import annotations

__all__ = [
    "ENVIRONMENTS",
    "DockerEnvironment",
    "Environment",
    "EnvironmentDied",
    "EnvironmentUnavailable",
    "InlineEnvironment",
    "Placement",
    "ProcessEnvironment",
    "RemoteStageError",
    "RestartingEnvironment",
    "StageCall",
    "StageRunner",
    "make_environment",
    "prepare_environment",
]

from collections.abc import Callable

from dlspec_ray.environments.base import Environment, StageCall
from dlspec_ray.environments.container import DockerEnvironment
from dlspec_ray.environments.errors import (
    EnvironmentDied,
    EnvironmentUnavailable,
    RemoteStageError,
)
from dlspec_ray.environments.inline import InlineEnvironment
from dlspec_ray.environments.placement import Placement
from dlspec_ray.environments.process import ProcessEnvironment
from dlspec_ray.environments.restart import RestartingEnvironment
from dlspec_ray.environments.runner import StageRunner
from dlspec_ray.plugins import Registry
from dlspec_ray.spec.types import SoftwareManifest

# A factory takes the software manifest and, as a keyword, the actor's Placement.
ENVIRONMENTS: Registry[Callable[..., Environment]] = Registry("environments", "environment")
ENVIRONMENTS.add("inline", InlineEnvironment)
ENVIRONMENTS.add("process", ProcessEnvironment)
ENVIRONMENTS.add("docker", DockerEnvironment)


def make_environment(
    kind: str, software: SoftwareManifest | None, *, placement: Placement | None = None
) -> Environment:
    """An unstarted environment of ``kind`` for ``software``.

    One whose stage code runs in another process can die under it; it comes
    wrapped so that a death restarts it and retries the call, a bounded number
    of times.
    """
    factory = ENVIRONMENTS.get(kind)

    def make() -> Environment:
        if placement is None:
            return factory(software)
        return factory(software, placement=placement)

    if getattr(factory, "restartable", False):
        return RestartingEnvironment(make)
    return make()


def prepare_environment(kind: str, software: SoftwareManifest | None) -> str:
    """Check (and build what is missing for) ``kind`` before any actor starts.

    Bad input here (a missing image, an unreachable engine, a bad interpreter,
    packages that cannot be installed) fails in the driver with exit code 2,
    rather than in every host actor. Returns what will run the stage code
    (an interpreter, an image), for messages.
    """
    prepare = getattr(ENVIRONMENTS.get(kind), "prepare", None)
    return str(prepare(software) or "") if prepare is not None else ""
