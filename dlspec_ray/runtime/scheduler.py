"""Feeding shards to host actors so that none waits idle, and collecting what comes back.

The unit of dispatch is a shard: a range of consecutive samples, several
batches long. Per shard the driver submits three calls at once (pre -> run ->
post), passing object references between them, so the tensors go from stage to
stage through the object store without the driver touching them, and the
driver sends only the range: each actor reads the samples from its own node.
Each actor keeps ``depth`` shards queued, so while the driver handles one
result the actor is already working on the next.

Why chunks: on a small machine one chained hop costs about 1 ms of Ray
bookkeeping, and 2-3 ms when its tensor goes through the object store; a
batch of mnist-8 takes 2-9 ms to run. A chunk pays those costs once for
several batches (see ``chunk_batches``).
"""

from __future__ import annotations

__all__ = ["FaultCounts", "Shard", "ShardOutcome", "chunk_batches", "run_shards"]

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dlspec_ray.errors import DLSpecError


@dataclass(frozen=True)
class Shard:
    """A range of consecutive samples: one chained call, one record batch, one Parquet file."""

    shard_id: int
    start: int
    stop: int
    batch_size: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def spans(self) -> list[tuple[int, int]]:
        """The shard's batches as ``(start, stop)`` sample positions."""
        return [
            (a, min(self.stop, a + self.batch_size))
            for a in range(self.start, self.stop, self.batch_size)
        ]

    def batch_id(self, start: int) -> int:
        """Batch ids count from the dataset's first sample, whatever the shard."""
        return start // self.batch_size


@dataclass
class ShardOutcome:
    """What came back for one shard: the sink's result, or why the shard has none."""

    shard: Shard
    result: Any = None
    error: str | None = None
    node_id: str = ""
    attempts: int = 1
    # False: the shard was never run (the run stopped early, or no actor was left), so a
    # resumed run runs it; True with an error: every attempt failed (it is quarantined).
    ran: bool = True


# Chunks per actor: two keep each actor's queue full and balance the tail; more cost
# time (mnist-8, 10k images, batch 256, 2 actors: 4 per actor 41.7k samples/s,
# 2 per actor 47.5k). Big datasets still get many chunks: CHUNK_INPUT_BYTES bounds each.
CHUNKS_PER_ACTOR = 2
# A chunk's slice of the dataset stays under this, so its pre-processed tensors stay modest.
CHUNK_INPUT_BYTES = 16 * 2**20
# Why shards were not run when no host actor was left: the run is then interrupted, not done.
ALL_ACTORS_LOST = "every host actor died"
# How often the loop looks at actors whose restart it waits for.
_TICK_S = 1.0


def chunk_batches(batches: int, actors: int, batch_bytes: int | None) -> int:
    """How many batches one chained call carries.

    ``batch_bytes`` is the size of one batch of raw inputs, or None when the
    inputs are not an array (file paths): then each call carries one batch,
    since decoding files costs far more than Ray's per-call overhead.
    """
    if batch_bytes is None:
        return 1
    by_count = math.ceil(batches / (actors * CHUNKS_PER_ACTOR))
    by_bytes = max(1, CHUNK_INPUT_BYTES // max(batch_bytes, 1))
    return max(1, min(by_count, by_bytes))


@dataclass
class FaultCounts:
    """What went wrong on the way, for the summary: a run that survived faults says so."""

    # Shard attempts after the first: a dead actor's, or a result with failed batches.
    shard_retries: int = 0
    # Host actors that died under a call, and of those, the ones Ray restarted and that
    # were re-attached and took work again.
    actors_lost: int = 0
    actors_recovered: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "shard_retries": self.shard_retries,
            "actors_lost": self.actors_lost,
            "actors_recovered": self.actors_recovered,
        }


@dataclass
class _Attempt:
    shard: Shard
    slot: int
    attempt: int
    seq: int
    # The chain's first two calls: read once they failed, so Ray does not log them as
    # unhandled errors when they are dropped.
    links: tuple[Any, ...] = ()

    def settle(self) -> None:
        import ray

        for ref in self.links:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=0)


def run_shards(
    actors: Sequence[Any],
    node_ids: Sequence[str],
    shards: Sequence[Shard],
    *,
    depth: int = 2,
    retries: int = 2,
    should_stop: Callable[[], bool] = lambda: False,
    retry: Callable[[Any], bool] = lambda result: False,
    recover: Callable[[int, str], str] | None = None,
    recover_timeout_s: float = 300.0,
    counts: FaultCounts | None = None,
) -> Iterator[ShardOutcome]:
    """Yield one outcome per shard, as shards finish; never two for one shard.

    Only sample ranges travel from here: each actor reads its shard's samples
    from its own node. When a call fails because its actor died (killed, its
    node lost, a stage past its timeout), Ray restarts the actor (``max_restarts``),
    possibly on another node; once it answers ``ready`` again, ``recover(slot,
    node_id)`` re-attaches it to its node's data and returns the node, and it
    takes work again. The shard it was running is retried, on any actor, up to
    ``retries`` times; the shards queued behind it go back to the queue without
    losing an attempt. A shard whose result ``retry`` rejects (failed batches) is
    run again the same way. After its retries a shard is reported with its last
    error or result. Shards not started when ``should_stop`` turns true, or when
    no actor is left, are reported as not run.
    """
    import ray
    from ray.exceptions import RayError

    counts = counts if counts is not None else FaultCounts()
    queue: deque[tuple[Shard, int]] = deque((s, 0) for s in shards)
    alive = dict(enumerate(actors))
    node_of = dict(enumerate(node_ids))
    load = dict.fromkeys(alive, 0)
    in_flight: dict[Any, _Attempt] = {}
    recovering: dict[Any, tuple[int, float]] = {}  # ready ref -> (slot, since)
    seq = 0

    def submit(slot: int, shard: Shard, attempt: int) -> None:
        nonlocal seq
        actor = alive[slot]
        pre = actor.pre.remote(shard.spans)
        run = actor.run.remote(pre)
        post = actor.post.remote(run, shard)
        seq += 1
        in_flight[post] = _Attempt(shard, slot, attempt, seq, (pre, run))
        load[slot] += 1

    def lose(slot: int, failed: _Attempt, error: str) -> Iterator[ShardOutcome]:
        """The actor in ``slot`` died: wait for Ray to restart it, requeue its shards."""
        alive.pop(slot, None)
        load[slot] = 0
        counts.actors_lost += 1
        if recover is not None:
            recovering[actors[slot].ready.remote()] = (slot, time.monotonic())
        mine = sorted(
            [failed, *(a for a in in_flight.values() if a.slot == slot)], key=lambda a: a.seq
        )
        for ref in [r for r, a in in_flight.items() if a.slot == slot]:
            del in_flight[ref]
        for a in mine:
            a.settle()
        culprit, *behind = mine  # the oldest call was the one running: calls run in order
        for a in reversed(behind):
            queue.appendleft((a.shard, a.attempt))
        if culprit.attempt < retries:
            counts.shard_retries += 1
            queue.appendleft((culprit.shard, culprit.attempt + 1))
        else:
            yield ShardOutcome(
                culprit.shard, None, error, node_of[slot], culprit.attempt + 1, ran=True
            )

    while True:
        stopped = should_stop()
        while queue and alive and not stopped:
            slot = min(alive, key=load.__getitem__)
            if load[slot] >= depth:
                break
            submit(slot, *queue.popleft())
        waiting_for_actor = bool(queue) and bool(recovering) and not stopped
        if not in_flight and not waiting_for_actor:
            break
        done, _ = ray.wait([*in_flight, *recovering], num_returns=1, timeout=_TICK_S)
        for ref, (_slot, since) in list(recovering.items()):
            if ref not in done and time.monotonic() - since > recover_timeout_s:
                del recovering[ref]  # its restart never came: the others carry on
        if not done:
            continue
        ref = done[0]
        if ref in recovering:
            slot, _ = recovering.pop(ref)
            try:
                info = ray.get(ref)
                if info.get("error"):
                    continue  # restarted, but its environment would not start again
                node_of[slot] = recover(slot, info["node_id"]) if recover else info["node_id"]
            except (RayError, DLSpecError):
                continue
            alive[slot], load[slot] = actors[slot], 0
            counts.actors_recovered += 1
            continue
        attempt = in_flight.pop(ref)
        slot = attempt.slot
        try:
            result = ray.get(ref)
        except RayError as exc:
            if slot in alive:
                yield from lose(slot, attempt, f"host actor died: {exc}")
            else:
                queue.appendleft((attempt.shard, attempt.attempt))
            continue
        load[slot] -= 1
        if attempt.attempt < retries and retry(result):
            counts.shard_retries += 1
            queue.append((attempt.shard, attempt.attempt + 1))
            continue
        yield ShardOutcome(attempt.shard, result, None, node_of[slot], attempt.attempt + 1)
    reason = "the evaluation stopped early" if (alive or recovering) else ALL_ACTORS_LOST
    for shard, _ in queue:
        yield ShardOutcome(shard, None, f"not run: {reason}", "", 0, ran=False)
