"""A Ray connection that carries out plans and keeps host actors and node data warm.

Starting a host actor costs a worker process, the framework's import and the
model's load: most of a second on a small machine, more than evaluating all
of MNIST. A notebook that evaluates the same model again (another dataset, a
re-run, a benchmark) should not pay it each time, so a session keeps the host
actors of its latest evaluation until the next one needs different ones, and
each node's copy of the latest dataset (when its sources are checksummed, so
its bytes cannot have changed), until it is closed.
"""

from __future__ import annotations

__all__ = ["Session"]

import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlspec_ray.errors import DLSpecError, EvaluationFailed, RunInterrupted, UsageError
from dlspec_ray.plan import ClusterView, Plan, check_host_setup, plan
from dlspec_ray.progress import Phases, Progress

# Beside summary.json: where the run ran, and what it read.
ENVIRONMENT_NAME = "environment.json"
ARTIFACTS_NAME = "artifacts.json"

if TYPE_CHECKING:
    from dlspec_ray.hardware import ActorResources
    from dlspec_ray.options import RunOptions
    from dlspec_ray.results.run_result import EvaluationResult
    from dlspec_ray.results.run_summary import RunSummary
    from dlspec_ray.resume import IncompleteRun
    from dlspec_ray.runtime import HostPool, HostSpec, RayConnection, ReadSpec
    from dlspec_ray.stages import DatasetIndex
    from dlspec_ray.task import Task


class Session:
    """Connects on first use: to ``address``, ``RAY_ADDRESS``, a Ray this process
    already joined, or else an embedded local Ray that ``close()`` shuts down.

    The latest evaluation's host actors are reused by the next one if its model,
    software, environment, batch size, options, actor count and resource
    request are all the same.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self._connection: RayConnection | None = None
        self._pools: dict[tuple[Any, ...], HostPool] = {}
        # On the local head of `dlspec-ray up`: detached pools, left warm when this ends.
        self._warm: dict[tuple[Any, ...], HostPool] = {}
        # (dataset, cache dir, allow_unverified) -> {node id: NodeData actor}
        self._data_key: tuple[Any, ...] | None = None
        self._data: dict[str, Any] = {}
        # The in-flight record of the embedded Ray this session started (see inflight.py).
        self._ray_record: Path | None = None

    def evaluate(
        self,
        model: Any = None,
        dataset: Any = None,
        *,
        out: str | Path | None = None,
        overwrite: bool = False,
        resume: Any = None,
        index: bool = True,
        **kwargs: Any,
    ) -> EvaluationResult:
        """``dlspec_ray.evaluate`` on this session's Ray, with its warm host actors.

        Every input is checked before this session connects to Ray. With ``resume``
        (an interrupted run's directory), the run is finished instead (see ``resume``).
        """
        from dlspec_ray.preflight import prepare

        if resume is not None:
            return self._resume(
                resume, model, dataset, out=out, overwrite=overwrite, index=index, **kwargs
            )
        if model is None:
            raise UsageError("model: give the model to evaluate (or resume=RUN_DIR)")
        phases = Phases()
        run_id = uuid.uuid4().hex[:12]
        out = out if out is not None else Path("runs") / run_id
        task, options = prepare(model, dataset, out=out, overwrite=overwrite, **kwargs)
        phases.mark("resolve")
        plan_ = self._plan_started(task, options, run_id, phases)
        roots = tuple(str(r) for r in kwargs.get("manifest_roots", ()))
        return self.execute(
            plan_, out, overwrite=overwrite, phases=phases, roots=roots, index=index
        )

    def _resume(
        self,
        resume: Any,
        model: Any,
        dataset: Any,
        *,
        out: Any,
        overwrite: bool,
        index: bool,
        **kwargs: Any,
    ) -> EvaluationResult:
        """Finish the interrupted run at ``resume``: only the shards its ledger lacks run."""
        from dlspec_ray.preflight import prepare
        from dlspec_ray.resume import (
            check_same_run,
            find_incomplete,
            identity_of,
            resumed_arguments,
        )

        if overwrite:
            raise UsageError("resume: a resumed run keeps its shards; it cannot also --overwrite")
        phases = Phases()
        incomplete = find_incomplete(resume)
        identity = incomplete.identity
        if out is not None and str(out) not in (str(resume), identity.out):
            raise UsageError(f"out: a resumed run stays where it is ({identity.out})")
        args = resumed_arguments(identity, {"model": model, "dataset": dataset, **kwargs})
        task, options = prepare(**args)
        phases.mark("resolve")
        plan_ = self._plan_started(task, options, identity.run_id, phases)
        check_same_run(incomplete, identity_of(plan_, identity.out, identity.roots))
        return self.execute(plan_, identity.out, phases=phases, resume=incomplete, index=index)

    def _plan_started(self, task: Task, options: RunOptions, run_id: str, phases: Phases) -> Plan:
        """The plan, with its host actors started while the first node indexes the dataset.

        Starting an actor costs a worker process, and indexing a download; neither
        needs the other. The actor count planned without the index is the one the
        index gives, except for a dataset of fewer batches than the nodes hold
        actors; execute() then starts the smaller pool.
        """
        cluster = self.cluster()
        early = plan(task, options, cluster, None, run_id=run_id)
        node, pending = self._start_index(early.read, options, early.candidates)
        self.pools(early)
        phases.mark("start_actors")
        index = self._node_index(pending, node)
        plan_ = plan(task, options, cluster, index.limited(options.limit), run_id=run_id)
        if plan_.index is None or plan_.index.samples == 0:
            raise UsageError(f"{task.dataset.path}: the dataset has no samples to evaluate")
        phases.mark("index")
        return plan_

    @property
    def connection(self) -> RayConnection:
        if self._connection is None:
            from dlspec_ray.inflight import remember, sweep_inflight
            from dlspec_ray.runtime import connect

            sweep_inflight()  # what killed drivers left: their staging folders, their Ray
            self._connection = connect(self.address, num_cpus=self.num_cpus)
            if self._connection.owned and self._connection.temp_dir:
                self._ray_record = remember("ray-temp", self._connection.temp_dir)
        return self._connection

    def cluster(self) -> ClusterView:
        self.connection  # noqa: B018 - connect first
        return ClusterView.current()

    def plan(self, task: Task, options: RunOptions, *, run_id: str | None = None) -> Plan:
        """``plan()`` for this session's cluster, with the dataset indexed on one of its nodes."""
        cluster = self.cluster()
        early = plan(task, options, cluster, None, run_id=run_id)
        index = self.index(early.read, options, early.candidates)
        return plan(task, options, cluster, index.limited(options.limit), run_id=early.run_id)

    def index(
        self, read: ReadSpec, options: RunOptions, near: Sequence[ActorResources]
    ) -> DatasetIndex:
        """The dataset's index, built on a node that can host the actors (its data stays there)."""
        node, pending = self._start_index(read, options, near)
        return self._node_index(pending, node)

    def _start_index(
        self, read: ReadSpec, options: RunOptions, near: Sequence[ActorResources]
    ) -> tuple[str, Any]:
        """Start indexing on the first node that fits ``near``: (node, its NodeData actor)."""
        import ray

        from dlspec_ray.runtime.placement import satisfies

        dataset = read.dataset
        nodes = [n for n in ray.nodes() if n.get("Alive", True)]
        fitting = [n for n in nodes if any(satisfies(n.get("Resources", {}), r) for r in near)]
        node = (fitting or nodes)[0]["NodeID"]
        remote = [s.name for s in dataset.sources if s.is_remote]
        if remote and options.progress:
            print(
                f"dlspec-ray: node {node[:12]} fetches {dataset.ref} ({', '.join(remote)}) into "
                "its cache and indexes it; the other nodes fetch their own copies",
                file=sys.stderr,
            )
        return node, self.node_data(read, [node])[node]

    def node_data(self, read: ReadSpec, nodes: Sequence[str]) -> dict[str, Any]:
        """A ``NodeData`` actor on each of ``nodes``: each fetches and reads the dataset there."""
        from dlspec_ray.runtime.node_data import start_node_data

        if read.key() != self._data_key:
            self.release_data()
            self._data_key = read.key()
        # On a local head, a dataset whose every source has a checksum is read once and
        # kept warm for later runs (warm.py); the bytes of one without may have changed.
        warm = self.connection.head and all(s.checksum for s in read.dataset.sources)
        if warm:
            from dlspec_ray.runtime.warm import end_warm_actors, warm_name

            names = {node: warm_name("data", read.key(), node[:16]) for node in nodes}
            end_warm_actors("data", keep=tuple(names.values()))
        for node in nodes:
            if node not in self._data:
                name = names[node] if warm else None
                self._data[node] = start_node_data(read, node, name=name)
        return {node: self._data[node] for node in nodes}

    def pools(self, plan: Plan) -> tuple[HostPool, HostPool | None]:
        """The plan's host actors and its pre-process actors (None without --pre-actors),
        warm ones where they are still whole; any other pool this session holds is ended."""
        what = plan.task.describe()
        timeout = plan.options.ready_timeout_s
        host = (plan.host, plan.candidates, plan.actors, None)
        pre = plan.pre_actors
        wanted = [host] if pre is None else [host, (pre.host, (pre.request,), pre.count, pre.nodes)]
        keys = [_pool_key(*w) for w in wanted]
        for key in [k for k in self._pools if k not in keys]:
            self._pools.pop(key).close()
        self._warm = {k: v for k, v in self._warm.items() if k in keys}
        if self.connection.head and pre is None:
            from dlspec_ray.runtime.warm import end_warm_actors

            end_warm_actors("pre")
        # Pre-process actors first: they are pinned, and the host actors take what is left.
        pre_pool = self.pool(*wanted[1], what=what, ready_timeout_s=timeout) if pre else None
        return self.pool(*host, what=what, ready_timeout_s=timeout), pre_pool

    def pool(
        self,
        spec: HostSpec,
        requests: Sequence[ActorResources],
        count: int,
        pinned: Sequence[str | None] | None = None,
        *,
        what: str,
        ready_timeout_s: float,
    ) -> HostPool:
        """A ready pool for ``spec``: the warm one if it is still whole, else a new one."""
        from dlspec_ray.runtime import start_pool

        self.connection  # noqa: B018 - connect before placing actors
        key = _pool_key(spec, requests, count, pinned)
        pool = (self._warm if self.connection.head else self._pools).get(key)
        if pool is not None and pool.alive():
            return pool
        if pool is not None and not self.connection.head:
            self._pools.pop(key).close()
        if self.connection.head:
            return self._warm_pool(key, spec, requests, count, pinned, what, ready_timeout_s)
        pool = start_pool(
            spec, requests, count, what=what, ready_timeout_s=ready_timeout_s, pinned=pinned
        )
        self._pools[key] = pool
        return pool

    def _warm_pool(
        self,
        key: tuple[Any, ...],
        spec: HostSpec,
        requests: Sequence[ActorResources],
        count: int,
        pinned: Sequence[str | None] | None,
        what: str,
        ready_timeout_s: float,
    ) -> HostPool:
        """On the local head of `dlspec-ray up`: the detached host actors an earlier run left
        for the same key, else new ones, left warm for the next run (one pool of each kind
        at a time: host actors, and pre-process actors)."""
        from dlspec_ray.runtime.host import PRE_POST
        from dlspec_ray.runtime.pool import find_warm_pool, start_pool
        from dlspec_ray.runtime.warm import end_warm_actors, warm_name

        kind = "pre" if spec.serves == PRE_POST else "pool"
        names = tuple(warm_name(kind, key, str(i)) for i in range(count))
        end_warm_actors(kind, keep=names)
        pool = find_warm_pool(names, requests, what)
        if pool is None:
            end_warm_actors(kind)
            pool = start_pool(
                spec,
                requests,
                count,
                what=what,
                ready_timeout_s=ready_timeout_s,
                names=names,
                pinned=pinned,
            )
        self._warm[key] = pool
        return pool

    def execute(
        self,
        plan: Plan,
        out: str | Path,
        *,
        overwrite: bool = False,
        phases: Phases | None = None,
        resume: IncompleteRun | None = None,
        roots: tuple[str, ...] = (),
        index: bool = True,
    ) -> EvaluationResult:
        """Carry out ``plan``, writing its run directory to ``out``, and add it to the index
        of the folder that holds ``out`` (unless ``index`` is False).

        The run directory is whole when this returns. When it is interrupted (Ctrl-C,
        an error, a lost cluster), the shards complete so far are kept as an incomplete
        run directory that ``resume`` finishes; with none complete, nothing is left.
        """
        from dlspec_ray.inflight import forget
        from dlspec_ray.results.run_result import EvaluationResult
        from dlspec_ray.resume import identity_of
        from dlspec_ray.run_output import open_output

        if plan.index is None:
            raise UsageError("the plan has no dataset index; make it with Session.plan()")
        check_host_setup(plan.task.hardware, allowed=plan.options.allow_host_setup)
        output = open_output(
            out,
            overwrite=overwrite,
            identity=identity_of(plan, out, roots),
            phases=phases,
            echo=plan.options.verbose,
            resume=resume,
        )
        try:
            summary = self._stream(plan, output)
            output.publish()
        except BaseException as exc:
            kept = output.keep_incomplete()
            if kept is None:
                output.discard()
                raise
            note = _kept_note(kept, output, len(plan.shards))
            if isinstance(exc, KeyboardInterrupt):
                raise RunInterrupted(note) from None
            print(f"dlspec-ray: {note}", file=sys.stderr)
            raise
        finally:
            forget(output.record)
            if not all(s.checksum for s in plan.task.dataset.sources):
                # Bytes no checksum fixes may change before the next run: read them again then.
                self.release_data()
        if index:
            from dlspec_ray.results.index import index_run

            why_not = index_run(output.final)
            if why_not:
                print(f"dlspec-ray: {why_not}", file=sys.stderr)
        return EvaluationResult(summary=summary.as_dict(), out_dir=output.final)

    def _stream(self, plan: Plan, output: Any) -> RunSummary:
        """Start (or reuse) host actors, stream every shard through them, write the summary."""
        import ray

        from dlspec_ray.results.run_summary import RunFacts
        from dlspec_ray.results.shards import ShardBuilder
        from dlspec_ray.runtime import run_shards
        from dlspec_ray.runtime.pool import HOST_ACTOR_RESTARTS
        from dlspec_ray.runtime.scheduler import (
            ALL_ACTORS_LOST,
            ALL_PRE_ACTORS_LOST,
            FaultCounts,
            PreActorGroup,
        )

        task, opts = plan.task, plan.options
        phases = output.phases
        started_at = datetime.now(timezone.utc)
        pool, pre_pool = self.pools(plan)
        readers = pre_pool or pool  # the actors that read samples and pre-process them
        data = self.node_data(plan.read, sorted(set(readers.node_ids)))
        for node, actor in data.items():
            self._node_index(actor, node, expect=plan.index)
        sink = ShardBuilder(store=output.shard_store, trace=opts.trace)
        if opts.trace:
            output.start_trace()
        attached = zip(readers.actors, readers.node_ids, strict=True)
        ray.get([actor.attach.remote(data[node], sink) for actor, node in attached])
        phases.mark("attach" if "start_actors" in phases.seconds else "start_actors")

        def reattach(actors: HostPool) -> Any:
            def recover(slot: int, node: str) -> str:
                """Re-attach an actor Ray restarted (maybe on another node) to its node's data;
                a host actor that only runs the model has no data to attach."""
                if actors is readers:
                    data.update(self.node_data(plan.read, [node]))
                    self._node_index(data[node], node, expect=plan.index)
                    ray.get(actors.actors[slot].attach.remote(data[node], sink))
                actors.node_ids[slot] = node
                return node

            return recover

        pre_group = None
        if pre_pool is not None:
            pre_group = PreActorGroup(pre_pool.actors, list(pre_pool.node_ids), reattach(pre_pool))

        kept = [e for e in output.done.values() if e.ran]
        pending = [
            s
            for s in plan.shards
            if s.shard_id not in output.done or not output.done[s.shard_id].ran
        ]
        failed = [sum(e.failed for e in kept)]  # samples in failed batches, read by should_stop
        bar = Progress(
            plan.index.samples,
            task.model.name,
            enabled=opts.progress,
            done=sum(e.rows for e in kept),
            errors=failed[0],
        )
        first_result_at = None
        wall_started = time.perf_counter()
        counts = FaultCounts()
        lost, gone = 0, ""  # shards not run because no actor of a kind was left, and which
        for outcome in run_shards(
            pool.actors,
            list(pool.node_ids),
            pending,
            depth=opts.depth,
            retries=opts.retries,
            should_stop=lambda: failed[0] > opts.max_errors,
            retry=lambda result: result.failed > 0,
            recover=reattach(pool),
            recover_timeout_s=opts.ready_timeout_s,
            counts=counts,
            pre_actors=pre_group,
        ):
            why_lost = [
                r for r in (ALL_ACTORS_LOST, ALL_PRE_ACTORS_LOST) if r in (outcome.error or "")
            ]
            if not outcome.ran and why_lost:
                lost, gone = lost + 1, why_lost[0]
                continue  # left out of the ledger: a resume runs it
            result = outcome.result
            if result is None:  # the shard never ran, or failed on every attempt: rows say why
                why = _why_not_run(outcome.error or "", opts.stage_timeout_s)
                result = _failed_rows(data, outcome, sink, why)
            first_result_at = first_result_at or time.perf_counter()
            if output.add(result, attempts=outcome.attempts, ran=outcome.ran):
                failed[0] += result.failed
                bar.update(result.rows, result.failed)
        wall_s = time.perf_counter() - wall_started
        bar.close()
        if lost:
            raise EvaluationFailed(
                f"{gone} and none came back (Ray restarts each up to "
                f"{HOST_ACTOR_RESTARTS} times, within --ready-timeout {opts.ready_timeout_s:g}s); "
                f"{lost} shard(s) did not run. Check the cluster (`ray status`) and the actors' "
                "stderr"
            )
        phases.mark("stream")
        passes = self._timed_passes(plan, pool, pre_pool, data) if opts.repeats > 1 else []
        if passes:
            phases.mark("repeats")
        stage_outputs = None
        if opts.keep_stage_outputs:
            from dlspec_ray.run_output import STAGE_OUTPUTS_DIR

            batches = -(-plan.index.samples // opts.batch_size)
            stage_outputs = {
                "batches": min(opts.keep_stage_outputs, batches),
                "folder": STAGE_OUTPUTS_DIR,
            }
        facts = RunFacts(
            batches_per_call=plan.batches_per_call,
            max_errors=opts.max_errors,
            limit=opts.limit,
            resources=pool.request.as_dict(),
            ray={
                "embedded": self.connection.embedded,
                "local_head": self.connection.head,
                "version": ray.__version__,
            },
            shards=len(plan.shards),
            faults=counts.as_dict(),
            # From the start of the call to the first shard's result: what a user waits for.
            first_result_s=(
                round(first_result_at - phases.started, 6) if first_result_at is not None else None
            ),
            unverified_sources=tuple(plan.index.unverified),
            pre_actors=None
            if pre_pool is None
            else {
                "count": len(pre_pool.actors),
                "resources": pre_pool.request.as_dict(),
                "nodes": sorted(set(pre_pool.node_ids)),
            },
            stage_outputs=stage_outputs,
            host_setup=(
                {"commands": list(plan.host.setup), "actors": pool.host_setup}
                if plan.host.setup
                else None
            ),
        )
        environment = self._describe_run(output, pool, data)
        return output.finish(
            plan,
            environment=environment,
            wall_s=wall_s,
            started_at=started_at,
            facts=facts,
            passes=passes,
        )

    def _describe_run(self, output: Any, pool: HostPool, data: dict[str, Any]) -> dict[str, Any]:
        """Write where the run ran (``environment.json``: the package lock, the machines) and
        what it read (``artifacts.json``: each artifact's source, checksum and fetch time);
        returns the summary's ``environment``, which names the lock by its digest."""
        environment = {k: v for k, v in pool.environment.items() if k != "lock"}
        environment["nodes"] = sorted(set(pool.node_ids))
        lock = pool.environment.get("lock") or {}
        if lock:
            environment["lock_digest"] = lock["digest"]
        output.write_json(
            ENVIRONMENT_NAME,
            {"environment": environment, "lock": lock, "machines": pool.machines},
        )
        output.write_json(
            ARTIFACTS_NAME, {"model": pool.artifacts, "dataset": _dataset_provenance(data)}
        )
        return environment

    def _timed_passes(
        self, plan: Plan, pool: HostPool, pre_pool: HostPool | None, data: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """``--repeats``: the passes after the first, over the same shards and warm actors.

        Their rows come back and are dropped (the first pass wrote the results), so a pass
        writes nothing; each yields its throughput, wall time and latency figures. A shard
        that fails in a pass counts no samples there: a failing pass is slower, not hidden.
        """
        import pyarrow as pa
        import ray

        from dlspec_ray.results.metrics import LatencyTally, throughput
        from dlspec_ray.results.shards import ShardBuilder
        from dlspec_ray.runtime import run_shards
        from dlspec_ray.runtime.scheduler import PreActorGroup

        opts = plan.options
        timed_only = ShardBuilder()  # rows back to the driver, never to the store; no trace
        readers = pre_pool or pool
        attached = zip(readers.actors, readers.node_ids, strict=True)
        ray.get([actor.attach.remote(data[node], timed_only) for actor, node in attached])
        pre_group = PreActorGroup(pre_pool.actors, list(pre_pool.node_ids)) if pre_pool else None
        passes = []
        for _ in range(opts.repeats - 1):
            latency, evaluated = LatencyTally(opts.warmup), 0
            started = time.perf_counter()
            for outcome in run_shards(
                pool.actors,
                list(pool.node_ids),
                plan.shards,
                depth=opts.depth,
                retries=0,
                pre_actors=pre_group,
            ):
                result = outcome.result
                if result is None or result.table is None:
                    continue
                latency.add(pa.Table.from_batches([result.table]))
                evaluated += result.rows - result.failed
            wall_s = time.perf_counter() - started
            passes.append(
                {
                    "throughput_sps": throughput(evaluated, wall_s),
                    "wall_s": wall_s,
                    "latency_ms": latency.result(),
                }
            )
        return passes

    def _node_index(
        self, actor: Any, node: str, expect: DatasetIndex | None = None
    ) -> DatasetIndex:
        import ray

        index = ray.get(actor.index.remote())
        if isinstance(index, DLSpecError):
            self.release_data()
            raise index
        if expect is not None and index.ids_digest != expect.ids_digest:
            raise DLSpecError(
                f"node {node[:12]} read a different dataset than the first node (its sample ids "
                f"differ: digest {index.ids_digest[:12]} vs {expect.ids_digest[:12]}); its sources "
                "or its reader are not deterministic. Give every source a checksum."
            )
        return index

    def release_data(self) -> None:
        """End every node's copy of the dataset."""
        import ray

        for actor in self._data.values():
            ray.kill(actor, no_restart=True)
        self._data.clear()
        self._data_key = None

    def release_pools(self) -> None:
        """End every warm host actor this session started; the next evaluation starts new
        ones. A local head's detached pool is only let go: it stays warm for the next run."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._warm.clear()

    def close(self) -> None:
        self.release_pools()
        if self._connection is not None and self._connection.head:
            self._data.clear()  # kept warm on the local head for the next run
        elif self._data:
            self.release_data()
        if self._connection is not None:
            from dlspec_ray.inflight import forget

            self._connection.close()
            self._connection = None
            forget(self._ray_record)
            self._ray_record = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dataset_provenance(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset's sources as a node that is still there fetched them; every node's copy
    has the same checksums, and a node may have been lost during the run."""
    import ray
    from ray.exceptions import RayError

    for actor in data.values():
        try:
            return ray.get(actor.provenance.remote(), timeout=60)
        except (RayError, TimeoutError):
            continue  # that node is gone
    return []


def _failed_rows(data: dict[str, Any], outcome: Any, sink: Any, why: str) -> Any:
    """The rows of a shard with no result, built by a node that still holds the data."""
    import ray
    from ray.exceptions import RayActorError

    nodes = sorted(data, key=lambda n: n != outcome.node_id)
    for node in nodes:
        try:
            return ray.get(data[node].failed_shard.remote(sink, outcome.shard, why))
        except RayActorError:
            continue  # that node is gone
    raise DLSpecError(
        f"no node holds the dataset any more, so shard {outcome.shard.shard_id} "
        f"cannot be recorded ({why})"
    )


def _kept_note(kept: str, output: Any, shards: int) -> str:
    complete = sum(1 for e in output.done.values() if e.ran)
    return (
        f"the run stopped with {complete} of {shards} shard(s) complete; they are kept in "
        f"{kept}. Finish the run with: dlspec-ray run --resume {kept}"
    )


def _why_not_run(error: str, stage_timeout_s: float | None) -> str:
    """The error a shard's rows carry; a dead actor may have ended itself on a hung stage."""
    if error.startswith("host actor died") and stage_timeout_s is not None:
        first = error.splitlines()[0][:300]
        return (
            f"{first} (if a stage ran past --stage-timeout {stage_timeout_s:g}s, the actor "
            "ended itself: its stderr says so)"
        )
    return error


def _pool_key(
    spec: HostSpec,
    requests: Sequence[ActorResources],
    count: int,
    pinned: Sequence[str | None] | None = None,
) -> tuple[Any, ...]:
    """What makes two pools interchangeable."""
    pins = tuple(pinned) if pinned else ()
    return (_spec_key(spec), tuple(r.describe() for r in requests), count, pins)


def _spec_key(spec: HostSpec) -> tuple[Any, ...]:
    return (
        spec.serves,
        spec.model.id,
        spec.model.path,
        spec.software.id if spec.software else None,
        spec.environment,
        spec.batch_size,
        spec.num_threads,
        repr(sorted(spec.options.items())),
        spec.cache_dir,
        spec.setup,
        spec.allow_unverified,
        spec.data_roots,
        spec.stage_timeout_s,
        spec.keep_batches,
    )
