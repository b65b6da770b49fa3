"""The environment interface: where a host actor's stage code runs.

An environment is started once per host actor and closed when the actor ends.
It is deliberately tiny (start, call a stage or a chain of them, close) so that an in-process
interpreter, a separate interpreter and a framework container can all stand
behind it, and the runtime never needs to know which one it talks to.
"""

from __future__ import annotations

__all__ = ["ChainCall", "Environment", "StageCall"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from dlspec_ray.spec.types import StageSource


@dataclass(frozen=True)
class StageCall:
    """A stage's return value, and how long the stage itself took, measured where it ran."""

    value: Any
    seconds: float
    # What the stage printed (stdout and stderr), captured where it ran; capped.
    output: str = ""
    # The digest of its value, taken where it ran (``digest.output_digest``); None: not an array.
    digest: str | None = None


@dataclass(frozen=True)
class ChainCall:
    """Stages called one after another inside the environment, each on the last one's value.

    ``calls`` are the stages that returned, in order; only the last carries its value
    back (the others' stayed where they ran). ``failed`` names the stage that raised,
    and ``error`` is what it raised; both are None when every stage returned.
    """

    calls: tuple[StageCall, ...]
    failed: str | None = None
    error: BaseException | None = None


@runtime_checkable
class Environment(Protocol):
    kind: str

    def start(self, stages: Mapping[str, StageSource], ctx: Mapping[str, Any]) -> None:
        """Compile ``stages`` and keep ``ctx`` for every later call."""

    def call(self, stage: str, data: Any) -> StageCall:
        """Run one stage on ``data``; a ``load`` stage's value becomes ``ctx["model"]``."""

    def call_chain(self, stages: Sequence[str], data: Any) -> ChainCall:
        """Run ``stages`` in order on ``data``, keeping the values between them inside."""

    def describe(self) -> dict[str, Any]:
        """Kind, interpreter or image, and framework versions, as seen from inside."""

    def close(self) -> None:
        """Release everything ``start`` acquired; safe to call twice."""
