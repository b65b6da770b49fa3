"""The part of every environment that lives next to the stage code.

``inline`` uses it in the actor's own process; environments that run stage code
elsewhere host the same runner on the far side, so stage semantics (how ``ctx``
is built up, what is timed) are defined once.
"""

from __future__ import annotations

__all__ = ["StageRunner"]

import time
from collections.abc import Callable, Mapping
from typing import Any

from dlspec_ray.environments.base import StageCall
from dlspec_ray.spec.types import StageSource


class StageRunner:
    def __init__(self, stages: Mapping[str, StageSource], ctx: Mapping[str, Any]):
        self.ctx: dict[str, Any] = dict(ctx)
        self._fns: dict[str, Callable[[Any, Any], Any]] = {
            name: source.compile() for name, source in stages.items()
        }

    def call(self, stage: str, data: Any) -> StageCall:
        fn = self._fns.get(stage)
        if fn is None:
            if stage == "load":
                return StageCall(None, 0.0)
            raise KeyError(f"the model defines no {stage!r} stage")
        started = time.perf_counter()
        value = fn(self.ctx, data)
        seconds = time.perf_counter() - started
        if stage == "load":
            self.ctx["model"] = value
        return StageCall(value, seconds)
