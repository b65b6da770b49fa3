"""Stage code in the host actor's own process: no isolation, no copies, least overhead."""

from __future__ import annotations

__all__ = ["InlineEnvironment"]

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from dlspec_ray.environments.base import ChainCall, StageCall
from dlspec_ray.environments.lock import installed_lock
from dlspec_ray.environments.placement import Placement
from dlspec_ray.environments.runner import StageRunner
from dlspec_ray.spec.types import SoftwareManifest, StageSource


class InlineEnvironment:
    kind = "inline"

    def __init__(
        self, software: SoftwareManifest | None = None, *, placement: Placement | None = None
    ):
        self.software = software
        self._runner: StageRunner | None = None

    def start(self, stages: Mapping[str, StageSource], ctx: Mapping[str, Any]) -> None:
        self._runner = StageRunner(stages, ctx)

    def call(self, stage: str, data: Any) -> StageCall:
        if self._runner is None:
            raise RuntimeError("the inline environment was not started")
        return self._runner.call(stage, data)

    def call_chain(self, stages: Sequence[str], data: Any) -> ChainCall:
        if self._runner is None:
            raise RuntimeError("the inline environment was not started")
        return self._runner.call_chain(stages, data)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "kind": self.kind,
            "interpreter": sys.executable,
            "python": sys.version.split()[0],
        }
        if self.software is not None:
            name = self.software.framework.name
            info["framework"] = {"name": name, "version": _installed_version(name)}
        info["lock"] = installed_lock()  # the whole list; the run writes it apart
        return info

    def close(self) -> None:
        self._runner = None


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
