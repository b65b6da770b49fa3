"""``--trace``: each batch's hops as Chrome-trace (Perfetto) events.

Host actors time each batch's hops when tracing is on (``Envelope.spans``): the read
of its samples from the node's copy, pre-process, run and post-process, and, once a
shard, the write of its rows. ``batch_events`` turns them into trace events, adding
a ``transfer`` span for each gap between two hops of a batch: the object-store hop
and the queue before the next call. The driver appends them to ``trace.json`` as
shards arrive (``results.trace.TraceFile``), so its memory does not grow with the run.

Each event's process is the node and its thread the host actor, so a viewer shows
one row per actor, grouped by node; ``args`` name the node, actor, environment,
shard and batch. Times are the actors' wall clocks, in microseconds since the epoch.
"""

from __future__ import annotations

__all__ = ["Where", "batch_events"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dlspec_ray.stages.chain import TIMED_STAGES

# The hops of a batch, in order, by the names a trace shows; a gap between two of them
# is a transfer.
_NAMES = {"read": "read", **{short: stage for stage, short in TIMED_STAGES.items()}}
_HOPS = tuple(_NAMES)


@dataclass(frozen=True)
class Where:
    """The host actor that ran a shard: a trace's process (node) and thread (actor)."""

    node: str
    actor: str
    environment: str

    def ids(self) -> dict[str, str]:
        return {"pid": self.node[:12], "tid": self.actor[:12] or "actor"}


def batch_events(
    shard_id: int,
    batch_ids: Sequence[int],
    spans: Sequence[Sequence[tuple[str, int, int]]],
    where: Where,
    write: tuple[int, int] | None = None,
    ran_on: Where | None = None,
) -> list[dict[str, Any]]:
    """The trace events of one shard: each batch's hops and transfers, then its write.
    ``ran_on``: the host actor that ran the model, when it is not ``where`` (--pre-actors)."""
    events: list[dict[str, Any]] = []
    base = {"node": where.node, "actor": where.actor, "environment": where.environment}
    for batch_id, hops in zip(batch_ids, spans, strict=True):
        args = {**base, "shard": shard_id, "batch": batch_id}
        ordered = sorted(hops, key=lambda h: _HOPS.index(h[0]))
        previous_end: int | None = None
        for name, start, end in ordered:
            at = ran_on if name == "run" and ran_on is not None else where
            if previous_end is not None and start > previous_end:
                events.append(_span("transfer", previous_end, start, at, args))
            hop_args = args if at is where else {**args, "node": at.node, "actor": at.actor}
            events.append(_span(_NAMES[name], start, end, at, hop_args))
            previous_end = end
    if write is not None:
        events.append(_span("write", write[0], write[1], where, {**base, "shard": shard_id}))
    return events


def _span(name: str, start: int, end: int, where: Where, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "cat": "batch",
        "ph": "X",
        "ts": start,
        "dur": max(0, end - start),
        **where.ids(),
        "args": args,
    }
