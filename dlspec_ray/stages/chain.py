"""Pre-process, run and post-process as three separately timed hops over one environment.

Each hop takes and returns an ``Envelope`` so that the runtime can pass the
envelopes between hops as object references: the batch's data never returns to
the driver between stages, and a stage's failure travels down the chain as data
instead of as an exception, so the batch is recorded with its error and the
host actor keeps serving other batches.
"""

from __future__ import annotations

__all__ = ["TIMED_STAGES", "Envelope", "StageChain", "format_stage_error"]

import time
import traceback
from dataclasses import dataclass, field, replace
from typing import Any

from dlspec_ray.environments.base import Environment
from dlspec_ray.environments.errors import EnvironmentDied
from dlspec_ray.stages.watchdog import Watchdog

# Timings are reported under these short names; the manifest keys are the long ones.
TIMED_STAGES = {"pre-process": "pre", "run": "run", "post-process": "post"}


@dataclass(frozen=True)
class Envelope:
    value: Any
    ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # What the batch's stages printed, each line group headed by its stage.
    log: str = ""
    # With tracing on: (hop, start, end) in microseconds of wall clock (results/trace.py).
    spans: tuple[tuple[str, int, int], ...] = ()
    # All three stages ran (``StageChain.fused``): the later hops pass it through.
    done: bool = False
    # With pre-process actors: the host actor that ran the model (a ``trace.Where``), so
    # the rows and the trace name it rather than the actor that post-processed.
    ran_on: Any = None
    # Each stage's output digest, by short name, taken where it ran (environments.digest).
    digests: dict[str, str | None] = field(default_factory=dict)
    # --keep-stage-outputs: each stage's value, by short name, for the first batches; None
    # for the others. Such a batch is not fused, so its values leave the environment.
    kept: dict[str, Any] | None = None


class StageChain:
    def __init__(self, environment: Environment, watchdog: Watchdog | None = None):
        self.environment = environment
        self.watchdog = watchdog or Watchdog(None)
        # Record each hop's wall-clock span (--trace); off, a hop costs no clock read more.
        self.tracing = False

    def pre(self, batch: Any, *, keep: bool = False) -> Envelope:
        return self._hop("pre-process", Envelope(batch, kept={} if keep else None))

    def run(self, envelope: Envelope) -> Envelope:
        return self._hop("run", envelope)

    def post(self, envelope: Envelope) -> Envelope:
        return self._hop("post-process", envelope)

    def fused(self, batch: Any) -> Envelope:
        """Pre-process, run and post-process in one call into the environment: the
        tensors between them stay where the stages run. Each stage is still timed on its
        own, where it ran; the watchdog's limit applies to the three together."""
        started = time.time_ns() // 1000 if self.tracing else 0
        try:
            with self.watchdog.watch("pre-process, run and post-process"):
                chain = self.environment.call_chain(tuple(TIMED_STAGES), batch)
        except Exception as exc:  # the environment died: in the stage it was running
            stage = exc.stage if isinstance(exc, EnvironmentDied) and exc.stage else "pre-process"
            return Envelope(None, error=format_stage_error(stage, exc), done=True)
        ms: dict[str, float] = {}
        digests: dict[str, str | None] = {}
        log, spans, at = "", [], started
        for stage, call in zip(TIMED_STAGES, chain.calls, strict=False):
            ms[TIMED_STAGES[stage]] = call.seconds * 1e3
            digests[TIMED_STAGES[stage]] = call.digest
            log += f"[{stage}]\n{call.output}" if call.output else ""
            if self.tracing:  # laid end to end from the call's start: measured inside
                spans.append((TIMED_STAGES[stage], at, at + int(call.seconds * 1e6)))
                at = spans[-1][2]
        if chain.failed is not None:
            error = format_stage_error(chain.failed, chain.error or RuntimeError("failed"))
            return Envelope(None, ms, error, log, tuple(spans), done=True, digests=digests)
        value = chain.calls[-1].value
        return Envelope(value, ms, None, log, tuple(spans), done=True, digests=digests)

    def _hop(self, stage: str, envelope: Envelope) -> Envelope:
        if envelope.error is not None or envelope.done:
            return envelope
        started = time.time_ns() // 1000 if self.tracing else 0
        try:
            with self.watchdog.watch(stage):
                call = self.environment.call(stage, envelope.value)
        except Exception as exc:
            return replace(envelope, value=None, error=format_stage_error(stage, exc))
        log = envelope.log + (f"[{stage}]\n{call.output}" if call.output else "")
        spans = envelope.spans
        if self.tracing:
            spans = (*spans, (TIMED_STAGES[stage], started, time.time_ns() // 1000))
        short = TIMED_STAGES[stage]
        kept = envelope.kept
        if kept is not None:  # --keep-stage-outputs: this batch keeps each stage's value
            kept = {**kept, short: call.value}
        return replace(
            envelope,
            value=call.value,
            ms={**envelope.ms, short: call.seconds * 1e3},
            log=log,
            spans=spans,
            digests={**envelope.digests, short: call.digest},
            kept=kept,
        )


def format_stage_error(stage: str, exc: BaseException) -> str:
    """``stage: Type: message`` plus the innermost frame inside the manifest's own code."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_manifest = [f for f in frames if f.filename.endswith((".yaml", ".yml"))]
    frame = (in_manifest or frames or [None])[-1]
    where = f" (at {frame.filename}:{frame.lineno})" if frame else ""
    return f"{stage}: {type(exc).__name__}: {exc}{where}"
