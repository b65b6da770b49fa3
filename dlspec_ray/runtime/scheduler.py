"""Feeding batches to host actors so that none waits idle, and collecting what comes back.

Per batch the driver submits three calls at once (pre -> run -> post), passing
object references between them, so the batch's tensors go from stage to stage
through the object store without the driver touching them. Each actor keeps
``depth`` batches queued, so while the driver handles one result the actor is
already working on the next.
"""

from __future__ import annotations

__all__ = ["Batch", "BatchOutcome", "plan_batches", "run_batches"]

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.stages import Envelope


@dataclass(frozen=True)
class Batch:
    batch_id: int
    shard_id: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class BatchOutcome:
    batch: Batch
    value: Any
    ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    node_id: str = ""


def plan_batches(samples: int, batch_size: int, batches_per_shard: int) -> list[Batch]:
    """Consecutive batches; ``batches_per_shard`` of them make one shard (one Parquet file)."""
    count = math.ceil(samples / batch_size)
    return [
        Batch(
            batch_id=i,
            shard_id=i // batches_per_shard,
            start=i * batch_size,
            stop=min(samples, (i + 1) * batch_size),
        )
        for i in range(count)
    ]


def run_batches(
    actors: Sequence[Any],
    node_ids: Sequence[str],
    inputs: Any,
    batches: Sequence[Batch],
    *,
    depth: int = 4,
    retries: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[BatchOutcome]:
    """Yield one outcome per batch, in completion order.

    A batch whose actor died is retried on another actor up to ``retries``
    times, then reported with the error; the remaining actors carry on.
    """
    import numpy as np
    import ray
    from ray.exceptions import RayActorError

    # An array goes into the object store once, and each pre-process call slices
    # a zero-copy view of it; anything else is sliced here, one batch per call.
    shared = ray.put(inputs) if isinstance(inputs, np.ndarray) else None
    queue: deque[tuple[Batch, int]] = deque((b, 0) for b in batches)
    alive = dict(enumerate(actors))
    load = dict.fromkeys(alive, 0)
    in_flight: dict[Any, tuple[Batch, int, int]] = {}

    def submit(slot: int, batch: Batch, attempt: int) -> None:
        actor = alive[slot]
        if shared is not None:
            pre = actor.pre.remote(shared, batch.start, batch.stop)
        else:
            pre = actor.pre.remote(inputs[batch.start : batch.stop])
        post = actor.post.remote(actor.run.remote(pre), batch.rows)
        in_flight[post] = (batch, slot, attempt)
        load[slot] += 1

    while queue or in_flight:
        while queue and alive and not should_stop():
            slot = min(alive, key=load.__getitem__)
            if load[slot] >= depth:
                break
            submit(slot, *queue.popleft())
        if not in_flight:
            break
        done, _ = ray.wait(list(in_flight), num_returns=1)
        batch, slot, attempt = in_flight.pop(done[0])
        load[slot] -= 1
        try:
            envelope: Envelope = ray.get(done[0])
        except RayActorError as exc:
            alive.pop(slot, None)
            if attempt < retries and alive:
                queue.appendleft((batch, attempt + 1))
                continue
            yield BatchOutcome(batch, None, {}, f"host actor died: {exc}", node_ids[slot])
            continue
        yield BatchOutcome(batch, envelope.value, envelope.ms, envelope.error, node_ids[slot])
    reason = "the evaluation stopped early" if alive else "every host actor died"
    for batch, _ in queue:
        yield BatchOutcome(batch, None, {}, f"not run: {reason}", "")
