"""Where stage code runs, behind one small interface (start, call a stage, close)."""

from __future__ import annotations

__all__ = [
    "ENVIRONMENTS",
    "Environment",
    "InlineEnvironment",
    "StageCall",
    "StageRunner",
    "make_environment",
]

from collections.abc import Callable

from dlspec_ray.environments.base import Environment, StageCall
from dlspec_ray.environments.inline import InlineEnvironment
from dlspec_ray.environments.runner import StageRunner
from dlspec_ray.plugins import Registry
from dlspec_ray.spec.types import SoftwareManifest

ENVIRONMENTS: Registry[Callable[[SoftwareManifest | None], Environment]] = Registry(
    "environments", "environment"
)
ENVIRONMENTS.add("inline", InlineEnvironment)


def make_environment(kind: str, software: SoftwareManifest | None) -> Environment:
    """An unstarted environment of ``kind`` for ``software``."""
    return ENVIRONMENTS.get(kind)(software)
