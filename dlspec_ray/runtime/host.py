"""The host actor: one environment for its whole life, serving batches stage by stage."""

from __future__ import annotations

__all__ = [
    "ALL_STAGES",
    "PRE_POST",
    "RUN_ONLY",
    "HostActor",
    "HostSpec",
    "NotAttached",
    "ShardSink",
    "check_post_output",
]

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.artifacts.provenance import provenance
from dlspec_ray.environments import Placement, make_environment
from dlspec_ray.hardware.machine import describe_machine
from dlspec_ray.hardware.setup import run_setup_commands, setup_failure
from dlspec_ray.runtime.node_data import current_node_id, hardware_limits, node_read_paths
from dlspec_ray.spec.types import HardwareManifest, ModelManifest, SoftwareManifest
from dlspec_ray.stages import Envelope, StageChain, Watchdog, build_context, format_stage_error
from dlspec_ray.stages.trace import Where, batch_events

# What a host actor serves (``HostSpec.serves``): all three stages of each batch, or, with
# pre-process actors (--pre-actors), either the model's run or the stages around it.
ALL_STAGES = ("pre-process", "run", "post-process")
RUN_ONLY = ("run",)
PRE_POST = ("pre-process", "post-process")


class NotAttached(RuntimeError):
    """A call reached a restarted host actor before the scheduler re-attached it."""


class ShardSink(Protocol):
    """Turns a shard's post-processed batches into its result rows.

    Given by the caller (the results layer's ``ShardBuilder``), so the runtime
    never imports the layer above it. It receives the node's whole ``ids`` and
    ``labels`` and slices the shard's range itself.
    """

    def build(
        self, shard: Any, ids: Any, labels: Any, envelopes: list[Envelope], node: str
    ) -> Any: ...

    def failed(self, shard: Any, ids: Any, labels: Any, message: str, node: str) -> Any: ...


@dataclass(frozen=True)
class HostSpec:
    """Everything a host actor needs to set itself up; plain data, sent once."""

    model: ModelManifest
    software: SoftwareManifest | None
    environment: str
    batch_size: int
    num_threads: int
    options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    # The hardware manifest's host setup commands, only when the user allowed them.
    setup: tuple[str, ...] = ()
    # The CPU and memory limits of a container come from it; run_id labels what it creates.
    hardware: HardwareManifest | None = None
    run_id: str = ""
    # Model folder artifacts without a checksum may be used (--allow-unverified).
    allow_unverified: bool = False
    # Local folders the dataset's sources are read from; an environment in a container
    # must see them (and the node's cache) at the same paths.
    data_roots: tuple[str, ...] = ()
    # A stage call longer than this ends the host actor (--stage-timeout); None: no limit.
    stage_timeout_s: float | None = None
    # Which stages this actor serves; only an actor that runs the model loads it.
    serves: tuple[str, ...] = ALL_STAGES
    # --keep-stage-outputs: the first batches whose stage outputs are kept and saved.
    keep_batches: int = 0

    @property
    def loads_model(self) -> bool:
        return "run" in self.serves


class HostActor:
    """Wrapped with ``ray.remote`` by the pool; plain class so it is testable without Ray."""

    def __init__(self, spec: HostSpec):
        self.spec = spec
        self.node_id = current_node_id()
        # Set by attach(); a restart (Ray's max_restarts) starts without it.
        self.data: dict[str, Any] | None = None
        self.where = Where(self.node_id, _actor_id(), spec.environment)  # rows, trace events
        self.setup_error: str | None = None
        self.setup_s = 0.0
        self.provenance: list[dict[str, Any]] = []  # the model's artifacts, as fetched here
        # On the host, before the environment exists: outside any container or task venv.
        self.host_setup = run_setup_commands(spec.setup)
        self.setup_failed_in = "load"
        self.environment = make_environment(
            spec.environment, spec.software, placement=_placement(spec, self.where.actor)
        )
        self.chain = StageChain(self.environment, Watchdog(spec.stage_timeout_s))
        started = time.perf_counter()
        try:
            self.setup_error = setup_failure(self.host_setup, len(spec.setup))
            if self.setup_error:
                self.setup_failed_in = "host setup"
            else:
                self._start()
        except Exception as exc:
            self.setup_error = format_stage_error("load", exc)
        self.setup_s = time.perf_counter() - started

    def _start(self) -> None:
        artifacts = fetch_all(
            self.spec.model.artifacts,
            Path(self.spec.cache_dir) if self.spec.cache_dir else None,
            allow_unverified=self.spec.allow_unverified,
        )
        self.provenance = provenance(self.spec.model.artifacts, artifacts)
        ctx = build_context(
            self.spec.model,
            artifacts,
            batch_size=self.spec.batch_size,
            num_threads=self.spec.num_threads,
            options=self.spec.options,
        )
        self.environment.start(self.spec.model.stages, ctx)
        if not self.spec.loads_model:
            return  # a pre-process actor: the model is loaded where it runs
        loaded = self.environment.call("load", ctx["artifacts"])
        if loaded.output:  # no shard to carry it: the worker's stderr, which Ray keeps apart
            print(f"[load]\n{loaded.output}", file=sys.stderr, end="")

    def ready(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "error": self.setup_error,
            "setup_s": self.setup_s,
            "environment": None if self.setup_error else self.environment.describe(),
            "host_setup": [r.as_dict() for r in self.host_setup],
            "failed_in": self.setup_failed_in if self.setup_error else None,
            "machine": describe_machine(),
            "artifacts": self.provenance,
        }

    # Each call carries a shard: several consecutive batches. The stage functions
    # still see one batch at a time and each batch is timed on its own; the shard
    # only amortises Ray's per-call and per-object cost over more work.

    def attach(self, node_data: Any, sink: ShardSink) -> int:
        """Use ``node_data`` (this node's copy of the dataset) and ``sink`` from now on.

        The samples are mapped from this node's object store, not copied. Returns
        how many samples the node holds.
        """
        import ray

        from dlspec_ray.runtime.node_data import local_values

        self.data = local_values(ray.get(node_data.refs.remote()))
        self.sink = sink
        self.chain.tracing = bool(getattr(sink, "trace", False))
        return len(self.data["ids"])

    def pre(self, spans: list[tuple[int, int]]) -> list[Envelope]:
        if self.data is None:
            raise NotAttached(
                "this host actor was restarted and is not attached to its node's data yet"
            )
        inputs = self.data["inputs"]
        # Out of process, all three stages go in one call: a batch's tensors would
        # otherwise leave the environment after pre-process and come back for run.
        fuse = self.environment.kind != "inline" and self.spec.serves == ALL_STAGES
        keep = self.spec.keep_batches

        def hop(batch: Any, start: int) -> Envelope:
            if start // self.spec.batch_size < keep:  # its values are kept: not fused
                return self.chain.pre(batch, keep=True)
            return self.chain.fused(batch) if fuse else self.chain.pre(batch)

        if not self.chain.tracing:
            return [hop(inputs[a:b], a) for a, b in spans]
        envelopes = []
        for a, b in spans:
            started = time.time_ns() // 1000
            batch = inputs[a:b]
            read = ("read", started, time.time_ns() // 1000)
            envelope = hop(batch, a)
            envelopes.append(replace(envelope, spans=(read, *envelope.spans)))
        return envelopes

    def run(self, envelopes: list[Envelope]) -> list[Envelope]:
        if self.spec.serves == RUN_ONLY:  # the batches came from a pre-process actor
            self.chain.tracing = any(e.spans for e in envelopes)
            return [replace(self.chain.run(e), ran_on=self.where) for e in envelopes]
        return [self.chain.run(e) for e in envelopes]

    def post(self, envelopes: list[Envelope], shard: Any) -> Any:
        """Post-process each batch, then hand the shard's rows to the sink (Arrow, maybe a file)."""
        spans = shard.spans
        outs = [self._post_one(e, b - a) for e, (a, b) in zip(envelopes, spans, strict=True)]
        ran_on = next((e.ran_on for e in envelopes if e.ran_on is not None), None)
        node = ran_on.node if ran_on is not None else self.node_id  # where the model ran
        started = time.time_ns() // 1000
        result = self.sink.build(shard, self.data["ids"], self.data["labels"], outs, node)
        if self.chain.tracing:
            result.trace = batch_events(
                shard.shard_id,
                [shard.batch_id(a) for a, _ in spans],
                [e.spans for e in outs],
                self.where,
                write=(started, time.time_ns() // 1000),
                ran_on=ran_on,
            )
        return result

    def _post_one(self, envelope: Envelope, rows: int) -> Envelope:
        out = self.chain.post(envelope)
        if out.error is None:
            problem = check_post_output(out.value, rows)
            if problem:
                return Envelope(None, out.ms, f"post-process: {problem}", out.log, out.spans)
        return out

    def close(self) -> None:
        self.environment.close()

    def __ray_shutdown__(self) -> None:
        self.close()


def check_post_output(value: Any, rows: int) -> str | None:
    """Why ``value`` breaks the post-process contract, or None when it keeps it."""
    if not isinstance(value, dict) or "top_k" not in value:
        return f"expected a dict with 'top_k' (an int array [B, k]), got {type(value).__name__}"
    for key in ("top_k", "scores", "output"):
        if key not in value:
            continue
        array = np.asarray(value[key])
        if array.ndim != 2 or array.shape[0] != rows:
            return f"expected {key!r} of shape [{rows}, k], got shape {list(array.shape)}"
    return None


def _actor_id() -> str:
    try:
        import ray

        return (ray.get_runtime_context().get_actor_id() or "") if ray.is_initialized() else ""
    except Exception:
        return ""


def _placement(spec: HostSpec, actor: str) -> Placement:
    """What the environment must know of this actor: its GPUs, its limits, its identity."""
    gpu_ids: tuple[str, ...] = ()
    try:
        import ray

        if ray.is_initialized():
            gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
    except Exception:
        pass
    return Placement(
        **hardware_limits(spec.hardware),
        gpu_ids=gpu_ids,
        labels={"run": spec.run_id, "actor": actor},
        read_only_paths=node_read_paths(spec.cache_dir, spec.data_roots),
    )
