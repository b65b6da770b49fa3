"""The part of every environment that lives next to the stage code.

``inline`` uses it in the actor's own process; environments that run stage code
elsewhere host the same runner on the far side, so stage semantics (how ``ctx``
is built up, what is timed) are defined once.
"""

from __future__ import annotations

__all__ = ["OUTPUT_LIMIT", "StageRunner", "capped"]

import contextlib
import io
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from dlspec_ray.environments.base import ChainCall, StageCall
from dlspec_ray.environments.digest import output_digest
from dlspec_ray.spec.types import StageSource

# What one stage call may print and still have it kept in the stage log.
OUTPUT_LIMIT = 64 * 1024


class StageRunner:
    """``tee``: a stream that also gets what stage code prints, as it prints it. The agent
    passes its own log, so a stage that kills its process still leaves its last words."""

    def __init__(
        self,
        stages: Mapping[str, StageSource],
        ctx: Mapping[str, Any],
        tee: TextIO | None = None,
    ):
        self.tee = tee
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
        printed = io.StringIO() if self.tee is None else _Tee(self.tee)
        # Stage code's prints belong to the run's stage log, not to the driver's stdout
        # (which may be carrying --json): they come back with the call.
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            started = time.perf_counter()
            value = fn(self.ctx, data)
            seconds = time.perf_counter() - started
        if stage == "load":
            self.ctx["model"] = value
            return StageCall(value, seconds, capped(printed.getvalue()))
        return StageCall(value, seconds, capped(printed.getvalue()), output_digest(value))

    def call_chain(
        self,
        stages: Sequence[str],
        data: Any,
        starting: Callable[[str], object] | None = None,
    ) -> ChainCall:
        """``call`` each stage on the last one's value, stopping at the first that raises;
        ``starting(stage)`` is told before each (the agent tells the host)."""
        calls: list[StageCall] = []
        value = data
        for stage in stages:
            if starting is not None:
                starting(stage)
            try:
                call = self.call(stage, value)
            except Exception as exc:
                return ChainCall(tuple(calls), stage, exc)
            calls.append(call)
            value = call.value
        return ChainCall(tuple(calls))


class _Tee(io.StringIO):
    def __init__(self, also: TextIO):
        super().__init__()
        self.also = also

    def write(self, text: str) -> int:
        self.also.write(text)
        self.also.flush()
        return super().write(text)


def capped(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text``, or its first ``limit`` characters and a note of how much was dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters not kept]\n"
