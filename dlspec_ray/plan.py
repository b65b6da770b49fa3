"""What a run will do, decided before anything runs: ``plan(task, options, cluster) -> Plan``.

The plan is the one place where a task and its options meet a cluster: the
environment kind, the resource request each host actor makes, how many actors,
and the shards (sample-id ranges, never data). ``Plan.describe()`` is
``--dry-run``, so a dry run checks exactly what a real run checks, and
``Session.execute(plan, out)`` carries it out.
"""

from __future__ import annotations

__all__ = ["ClusterView", "Plan", "PreActors", "Shard", "plan", "plan_shards"]

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.frameworks import check_framework
from dlspec_ray.hardware import candidate_requests, describe_setup
from dlspec_ray.hardware.node_types import NodeType
from dlspec_ray.hardware.resources import ActorResources
from dlspec_ray.options import RunOptions
from dlspec_ray.runtime.host import PRE_POST, RUN_ONLY, HostSpec
from dlspec_ray.runtime.node_data import ReadSpec
from dlspec_ray.runtime.placement import (
    check_capacity,
    default_actor_count,
    place,
    pre_actor_nodes,
    pre_actor_request,
    reserve,
)
from dlspec_ray.runtime.scheduler import Shard, chunk_batches
from dlspec_ray.spec.types import HardwareManifest
from dlspec_ray.stages import DatasetIndex
from dlspec_ray.task import Task


@dataclass(frozen=True)
class ClusterView:
    """The nodes a plan is made for, shaped like ``ray.nodes()``, plus the autoscaler's
    node types. ``live`` is False for this machine described without starting Ray."""

    nodes: tuple[Mapping[str, Any], ...]
    node_types: tuple[NodeType, ...] = ()
    live: bool = True

    @property
    def inspected(self) -> bool:
        """False for a cluster this process cannot see (a job's): placement is not checked."""
        return self.live or bool(self.nodes)

    @classmethod
    def elsewhere(cls) -> ClusterView:
        """A cluster reached only through its job server: its nodes are not known here."""
        return cls((), live=False)

    @classmethod
    def current(cls) -> ClusterView:
        """The Ray this process is connected to."""
        import ray

        from dlspec_ray.runtime import autoscaler_node_types

        nodes = tuple(ray.nodes())
        return cls(nodes, tuple(autoscaler_node_types()), live=True)

    @classmethod
    def this_machine(cls, num_cpus: int | None = None) -> ClusterView:
        """The embedded Ray that a run would start here, without starting it."""
        import os

        from dlspec_ray.hardware.detect import node_resources

        cpus = float(num_cpus or os.cpu_count() or 1)
        resources = {"CPU": cpus, **node_resources()}
        node = {"NodeID": "this-machine", "NodeManagerAddress": "127.0.0.1", "Alive": True}
        return cls(({**node, "Resources": resources},), live=False)


@dataclass(frozen=True)
class PreActors:
    """Pre-process and post-process on CPU actors of their own (``--pre-actors``).

    They read their shards' samples on their own nodes and hand each pre-processed batch
    to a host actor, which only runs the model, by object reference; the host actor hands
    it back the same way for post-process. So a GPU node's few CPUs feed its GPU instead
    of decoding images, and decoding scales with the CPU nodes.
    """

    count: int
    request: ActorResources
    # The node each one is pinned to, softly: nodes without GPUs first (None: Ray's choice).
    nodes: tuple[str | None, ...]
    host: HostSpec

    def describe(self) -> str:
        pinned = sorted({n[:12] for n in self.nodes if n})
        where = f"on nodes without GPUs ({', '.join(pinned)})" if pinned else "where Ray finds room"
        return f"{self.count}, each asking for {self.request.describe()}, {where}"

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "request": self.request.as_dict(), "nodes": list(self.nodes)}


@dataclass(frozen=True)
class Plan:
    task: Task
    options: RunOptions
    run_id: str
    environment: str
    # Every request the hardware manifest allows, in order, and the one this cluster can host.
    candidates: tuple[ActorResources, ...]
    request: ActorResources
    # The node type the autoscaler must start first, when no live node fits.
    scale_up: NodeType | None
    actors: int
    index: DatasetIndex | None
    shards: tuple[Shard, ...]
    batches_per_call: int
    host: HostSpec
    # With --pre-actors: the actors that pre- and post-process; ``host`` then only runs.
    pre_actors: PreActors | None = None
    cluster_live: bool = field(default=True, compare=False)
    cluster_inspected: bool = field(default=True, compare=False)

    @property
    def samples(self) -> int | None:
        return None if self.index is None else self.index.samples

    @property
    def read(self) -> ReadSpec:
        """How each node fetches and reads the dataset: the reader runs in this plan's
        environment (the NodeData actor's own process only for inline)."""
        opts = self.options
        return ReadSpec(
            dataset=self.task.dataset,
            cache_dir=str(opts.cache_dir) if opts.cache_dir else None,
            allow_unverified=opts.allow_unverified,
            environment=self.environment,
            software=self.task.software,
            data_roots=self.host.data_roots,
            hardware=self.task.hardware,
        )

    def as_dict(self) -> dict[str, Any]:
        """``--dry-run --json``: the same facts as ``describe()``, as data."""
        return {
            "run_id": self.run_id,
            "task": self.task.describe(),
            "environment": self.environment,
            "cluster": "ray" if self.cluster_live else "this-machine",
            "candidates": [r.as_dict() for r in self.candidates],
            "request": self.request.as_dict(),
            "scale_up": self.scale_up.name if self.scale_up else None,
            "actors": self.actors,
            "pre_actors": self.pre_actors.as_dict() if self.pre_actors else None,
            "batch_size": self.options.batch_size,
            "batches_per_call": self.batches_per_call,
            "samples": self.samples,
            "shards": [[s.start, s.stop] for s in self.shards],
            "unverified_sources": list(self.index.unverified) if self.index else [],
            "host_setup": list(self.task.hardware.setup) if self.task.hardware else [],
        }

    def describe(self) -> str:
        """``--dry-run``: the task, where it runs, what each actor asks for, the shards."""
        task, opts = self.task, self.options
        scale_up = (
            f" (once the autoscaler starts a {self.scale_up.name} node)" if self.scale_up else ""
        )
        where = "the Ray cluster" if self.cluster_live else "an embedded Ray on this machine"
        if not self.cluster_inspected:
            where = "the job's cluster (its nodes are not inspected from here)"
        lines = [
            f"task: {task.describe()}",
            f"environment: {self.environment}",
            f"cluster: {where}",
            "each host actor asks Ray for (the first that a node can host):",
            *(f"  - {r.describe()}" for r in self.candidates),
            f"chosen: {self.request.describe()}{scale_up}",
            f"host actors: {self.actors}"
            + (" (each runs the model only)" if self.pre_actors else ""),
            *(
                [f"pre-process and post-process actors: {self.pre_actors.describe()}"]
                if self.pre_actors
                else []
            ),
            f"batch size: {opts.batch_size}; batches per call: {self.batches_per_call}",
        ]
        if self.index is None:
            lines.append(
                "shards: planned when the dataset is indexed on the first node ("
                + _why_not_indexed(task, self.environment)
                + ")"
            )
        else:
            lines.append(
                f"samples: {self.index.samples:,}"
                + (f" (--limit {opts.limit})" if opts.limit is not None else "")
            )
            lines.append(f"shards: {len(self.shards)} (sample ranges {_ranges(self.shards)})")
        if self.index is not None and self.index.unverified:
            lines.append(f"unverified sources: {', '.join(self.index.unverified)}")
        lines += _setup_lines(task.hardware, opts.allow_host_setup)
        lines.append("dry run: nothing was started or run.")
        return "\n".join(lines)


def plan(
    task: Task,
    options: RunOptions,
    cluster: ClusterView,
    index: DatasetIndex | None = None,
    *,
    run_id: str | None = None,
) -> Plan:
    """Check that ``task`` can run on ``cluster`` with ``options`` and say how.

    Raises the same errors a real run would, before it starts anything: an
    unknown environment, a missing framework, a hardware request no node can
    host, more actors than the nodes hold. Host setup commands are not refused
    here, so that a dry run can show them; ``Session.execute`` refuses them.
    """
    environment = environment_kind(task, options.environment)
    check_framework(task.software, environment, task.model)
    what = task.describe()
    candidates = tuple(candidate_requests(task.hardware))
    batches = None if index is None else math.ceil(index.samples / options.batch_size)
    pre_nodes: tuple[str | None, ...] = (None,) * options.pre_actors
    if cluster.inspected:
        placement = place(candidates, cluster.nodes, what=what, node_types=cluster.node_types)
        request, scale_up = placement.request, placement.node_type
        # Pre-process actors are placed first: the host actors get what they leave.
        nodes: Sequence[Mapping[str, Any]] = cluster.nodes
        if options.pre_actors:
            pre_request = pre_actor_request(request)
            check_capacity(
                nodes, pre_request, (), options.pre_actors, what=what,
                kind="pre-process actors", flag="--pre-actors",
            )  # fmt: skip
            pre_nodes = tuple(pre_actor_nodes(nodes, pre_request, options.pre_actors))
            nodes = reserve(nodes, pre_request, pre_nodes)
        actors = options.actors or default_actor_count(candidates, nodes, batches or 1 << 30)
        kind = "host actors" + (" (beside the pre-process actors)" if options.pre_actors else "")
        check_capacity(nodes, request, cluster.node_types, actors, what=what, kind=kind)
    else:
        request, scale_up, actors = candidates[0], None, options.actors or 1
    per_call = options.batches_per_call or (
        chunk_batches(
            batches, max(actors, options.pre_actors), index.batch_bytes(options.batch_size)
        )
        if index is not None and batches
        else 1
    )
    shards = () if index is None else plan_shards(index.samples, options.batch_size, per_call)
    run_id = run_id or uuid.uuid4().hex[:12]
    host = HostSpec(
        model=task.model,
        software=task.software,
        environment=environment,
        batch_size=options.batch_size,
        num_threads=max(1, int(request.num_cpus)),
        options=dict(options.options),
        cache_dir=str(options.cache_dir) if options.cache_dir else None,
        setup=task.hardware.setup if task.hardware and options.allow_host_setup else (),
        hardware=task.hardware,
        run_id=run_id,
        allow_unverified=options.allow_unverified,
        data_roots=_data_roots(task),
        stage_timeout_s=options.stage_timeout_s,
        keep_batches=options.keep_stage_outputs,
    )
    pre_actors = None
    if options.pre_actors:
        # Host setup commands tune the hardware the model runs on: not the CPU nodes'.
        pre_host = replace(host, serves=PRE_POST, num_threads=1, setup=())
        pre_actors = PreActors(options.pre_actors, pre_actor_request(request), pre_nodes, pre_host)
        host = replace(host, serves=RUN_ONLY)
    return Plan(
        task=task,
        options=options,
        run_id=run_id,
        environment=environment,
        candidates=candidates,
        request=request,
        scale_up=scale_up,
        actors=actors,
        index=index,
        shards=shards,
        batches_per_call=per_call,
        host=host,
        pre_actors=pre_actors,
        cluster_live=cluster.live,
        cluster_inspected=cluster.inspected,
    )


def _data_roots(task: Task) -> tuple[str, ...]:
    """The host folders holding the dataset's local sources (a file's folder, or the folder)."""
    from dlspec_ray.artifacts import local_path

    roots = []
    for source in task.dataset.sources:
        if not source.is_remote:
            path = local_path(source).resolve()
            roots.append(str(path if path.is_dir() else path.parent))
    return tuple(sorted(set(roots)))


def plan_shards(samples: int, batch_size: int, batches_per_shard: int) -> tuple[Shard, ...]:
    """Consecutive sample ranges of ``batches_per_shard`` batches each; the last may be short.

    A shard is the unit of dispatch, of retry and of output: one chained
    pre -> run -> post call, one Arrow record batch, one Parquet file.
    """
    rows = batch_size * batches_per_shard
    return tuple(
        Shard(shard_id=i, start=start, stop=min(samples, start + rows), batch_size=batch_size)
        for i, start in enumerate(range(0, samples, rows))
    )


def indexed_by_dry_run(task: Task, environment: str) -> bool:
    """Whether a dry run may read the dataset in the driver to plan its shards.

    Only local sources, and only a reader the driver may run: dlspec-ray's own, or
    manifest code bound for ``inline`` (which the trusted-roots check has let through).
    A ``process`` or ``docker`` task's reader code runs inside its environment alone.
    """
    if any(s.is_remote for s in task.dataset.sources):
        return False
    return task.dataset.reader is None or environment == "inline"


def _why_not_indexed(task: Task, environment: str) -> str:
    if any(s.is_remote for s in task.dataset.sources):
        return "its sources are remote: a dry run downloads nothing"
    return (
        f"its reader is manifest code, which runs only inside the {environment} "
        "environment: a dry run starts none"
    )


def environment_kind(task: Task, override: str | None) -> str:
    from dlspec_ray.environments import ENVIRONMENTS

    kind = override or (task.software.environment if task.software else "inline")
    if kind not in ENVIRONMENTS:
        where = "--environment" if override else f"{task.software.path}: environment"
        raise UsageError(
            f"{where}: the {kind!r} environment is not built in this version of dlspec-ray; "
            f"available: {', '.join(ENVIRONMENTS.names())}."
        )
    return kind


def check_host_setup(hardware: HardwareManifest | None, *, allowed: bool) -> None:
    """Refuse a hardware manifest's host setup commands unless the user allowed them."""
    if hardware is None or not hardware.setup or allowed:
        return
    raise UsageError(
        f"{hardware.path}: setup: the hardware manifest {hardware.ref} has host setup commands. "
        "They would run on every node that holds a host actor, outside the environment, as "
        f"the Ray worker's user:\n{describe_setup(hardware.setup)}\nPass --allow-host-setup "
        "(evaluate(..., allow_host_setup=True)) to run them, or --dry-run to print them "
        "without running anything."
    )


def _setup_lines(hardware: HardwareManifest | None, allowed: bool) -> list[str]:
    setup = hardware.setup if hardware else ()
    if not setup:
        return ["host setup commands: none"]
    when = "will run" if allowed else "would run only with --allow-host-setup"
    return [
        f"host setup commands ({when}, on each node that holds a host actor, as the Ray "
        "worker's user, before the environment starts):",
        describe_setup(setup),
    ]


def _ranges(shards: Sequence[Shard], shown: int = 3) -> str:
    parts = [f"[{s.start}, {s.stop})" for s in shards[:shown]]
    if len(shards) > shown:
        parts.append(f"... [{shards[-1].start}, {shards[-1].stop})")
    return ", ".join(parts)
