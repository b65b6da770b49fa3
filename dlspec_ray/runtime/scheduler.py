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

__all__ = [
    "FaultCounts",
    "PreActorGroup",
    "Shard",
    "ShardOutcome",
    "chunk_batches",
    "run_shards",
]

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
# Batches per call at most when the inputs are file paths. One call per batch of JPEG
# files cost more in Ray's hops than it saved (mnist-8 on 2,000 224x224 JPEGs, 2 pre-process
# actors on a CPU node feeding 1 host actor: 2,300 samples/s at 1 batch per call, 4,950 at 4);
# each batch's decoded tensors stay in memory until the call ends, so the bound is modest.
FILE_CHUNK_BATCHES = 4
# Why shards were not run when no host actor (or no pre-process actor) was left: the run
# is then interrupted, not done.
ALL_ACTORS_LOST = "every host actor died"
ALL_PRE_ACTORS_LOST = "every pre-process actor died"
# How often the loop looks at actors whose restart it waits for.
_TICK_S = 1.0


def chunk_batches(batches: int, actors: int, batch_bytes: int | None) -> int:
    """How many batches one chained call carries.

    ``batch_bytes`` is the size of one batch of raw inputs, or None when the
    inputs are not an array (file paths): then a call carries at most
    ``FILE_CHUNK_BATCHES``, since decoded files can be far bigger than their paths.
    ``actors`` are those that pre-process: the host actors, or the pre-process actors.
    """
    by_count = math.ceil(batches / (actors * CHUNKS_PER_ACTOR))
    if batch_bytes is None:
        return max(1, min(by_count, FILE_CHUNK_BATCHES))
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


@dataclass(frozen=True)
class PreActorGroup:
    """The pre-process actors of a run (``--pre-actors``): each shard's pre-process and
    post-process go to the least busy of them, its run to a host actor."""

    actors: Sequence[Any]
    node_ids: Sequence[str]
    # Re-attaches one Ray restarted to its node's data: (index, node id) -> node id.
    recover: Callable[[int, str], str] | None = None


class _Group:
    """One kind of actor the loop feeds: which are alive, where, and how busy."""

    def __init__(self, name: str, actors: Sequence[Any], node_ids: Sequence[str], recover: Any):
        self.name = name
        self.actors = list(actors)
        self.alive = dict(enumerate(self.actors))
        self.node_of = dict(enumerate(node_ids))
        self.load = dict.fromkeys(self.alive, 0)
        self.recover = recover

    def least_busy(self) -> int:
        return min(self.alive, key=self.load.__getitem__)

    def index_of(self, actor_id: str | None) -> int | None:
        for index, actor in enumerate(self.actors):
            if actor_id is not None and actor._actor_id.hex() == actor_id:
                return index
        return None


@dataclass
class _Attempt:
    shard: Shard
    slot: int
    attempt: int
    seq: int
    # The chain's first two calls: read once they failed, so Ray does not log them as
    # unhandled errors when they are dropped.
    links: tuple[Any, ...] = ()
    # The pre-process actor of its pre-process and post-process, with --pre-actors.
    pre: int | None = None

    def settle(self) -> None:
        import ray

        for ref in self.links:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=0)

    def index_in(self, group: _Group) -> int | None:
        return self.slot if group.name == "host" else self.pre


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
    pre_actors: PreActorGroup | None = None,
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

    With ``pre_actors`` a shard's pre-process and post-process run on one of them and
    only its run on a host actor; a pre-process actor that dies is handled the same way,
    and its shards are retried on the others. ``depth`` then bounds each host actor's
    queue and each pre-process actor's.
    """
    import ray
    from ray.exceptions import RayActorError, RayError

    counts = counts if counts is not None else FaultCounts()
    queue: deque[tuple[Shard, int]] = deque((s, 0) for s in shards)
    hosts = _Group("host", actors, node_ids, recover)
    pres = None
    if pre_actors is not None:
        pres = _Group("pre", pre_actors.actors, pre_actors.node_ids, pre_actors.recover)
    groups = [hosts, *([pres] if pres else [])]
    in_flight: dict[Any, _Attempt] = {}
    recovering: dict[Any, tuple[_Group, int, float]] = {}  # ready ref -> (group, index, since)
    seq = 0

    # With more pre-process actors than host actors, each host actor queues enough shards
    # for every pre-process actor to hold ``depth`` of them.
    per_host = depth * (math.ceil(len(pres.actors) / len(hosts.actors)) if pres else 1)
    limit = {"host": max(depth, per_host), "pre": depth}

    def can_submit() -> bool:
        return all(g.alive and g.load[g.least_busy()] < limit[g.name] for g in groups)

    def submit(shard: Shard, attempt: int) -> None:
        nonlocal seq
        slot = hosts.least_busy()
        actor = hosts.alive[slot]
        pre = pres.least_busy() if pres else None
        stages = pres.alive[pre] if pres and pre is not None else actor
        before = stages.pre.remote(shard.spans)
        run = actor.run.remote(before)
        post = stages.post.remote(run, shard)
        seq += 1
        in_flight[post] = _Attempt(shard, slot, attempt, seq, (before, run), pre)
        hosts.load[slot] += 1
        if pres and pre is not None:
            pres.load[pre] += 1

    def release(attempt: _Attempt) -> None:
        for group in groups:
            index = attempt.index_in(group)
            if index is not None and index in group.alive:
                group.load[index] -= 1

    def lose(group: _Group, index: int, failed: _Attempt, error: str) -> Iterator[ShardOutcome]:
        """The actor ``index`` of ``group`` died: wait for Ray to restart it, requeue its
        shards (those it was running or had queued)."""
        group.alive.pop(index, None)
        group.load[index] = 0
        counts.actors_lost += 1
        if group.recover is not None:
            recovering[group.actors[index].ready.remote()] = (group, index, time.monotonic())
        mine = [failed, *(a for a in in_flight.values() if a.index_in(group) == index)]
        mine.sort(key=lambda a: a.seq)
        for ref in [r for r, a in in_flight.items() if a.index_in(group) == index]:
            del in_flight[ref]
        for a in mine:
            a.settle()
            if a is not failed:
                release(a)
        culprit, *behind = mine  # the oldest call was the one running: calls run in order
        for a in reversed(behind):
            queue.appendleft((a.shard, a.attempt))
        if culprit.attempt < retries:
            counts.shard_retries += 1
            queue.appendleft((culprit.shard, culprit.attempt + 1))
        else:
            node = group.node_of[index]
            yield ShardOutcome(culprit.shard, None, error, node, culprit.attempt + 1, ran=True)

    def node_of(attempt: _Attempt) -> str:
        """Where the shard's rows were built: its post-process actor's node."""
        if pres is not None and attempt.pre is not None:
            return pres.node_of[attempt.pre]
        return hosts.node_of[attempt.slot]

    while True:
        stopped = should_stop()
        while queue and not stopped and can_submit():
            submit(*queue.popleft())
        waiting_for_actor = bool(queue) and bool(recovering) and not stopped
        if not in_flight and not waiting_for_actor:
            break
        done, _ = ray.wait([*in_flight, *recovering], num_returns=1, timeout=_TICK_S)
        for ref, (_group, _index, since) in list(recovering.items()):
            if ref not in done and time.monotonic() - since > recover_timeout_s:
                del recovering[ref]  # its restart never came: the others carry on
        if not done:
            continue
        ref = done[0]
        if ref in recovering:
            group, index, _ = recovering.pop(ref)
            try:
                info = ray.get(ref)
                if info.get("error"):
                    continue  # restarted, but its environment would not start again
                node = info["node_id"]
                group.node_of[index] = group.recover(index, node) if group.recover else node
            except (RayError, DLSpecError):
                continue
            group.alive[index], group.load[index] = group.actors[index], 0
            counts.actors_recovered += 1
            continue
        attempt = in_flight.pop(ref)
        try:
            result = ray.get(ref)
        except RayError as exc:
            # Which actor died: a pre-process actor's death names it; else the host's.
            dead = exc.actor_id if isinstance(exc, RayActorError) else None
            culprit = pres.index_of(dead) if pres is not None else None
            group, index = (hosts, attempt.slot) if culprit is None else (pres, culprit)
            release(attempt)
            if index in group.alive:
                yield from lose(group, index, attempt, f"{_dead(group)} died: {exc}")
            else:  # that actor's loss was handled already: this shard just goes back
                queue.appendleft((attempt.shard, attempt.attempt))
            continue
        release(attempt)
        if attempt.attempt < retries and retry(result):
            counts.shard_retries += 1
            queue.append((attempt.shard, attempt.attempt + 1))
            continue
        yield ShardOutcome(attempt.shard, result, None, node_of(attempt), attempt.attempt + 1)
    reason = "the evaluation stopped early"
    if not recovering and not all(g.alive for g in groups):
        reason = ALL_ACTORS_LOST if not hosts.alive else ALL_PRE_ACTORS_LOST
    for shard, _ in queue:
        yield ShardOutcome(shard, None, f"not run: {reason}", "", 0, ran=False)


def _dead(group: _Group) -> str:
    return "host actor" if group.name == "host" else "pre-process actor"
