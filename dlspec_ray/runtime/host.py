"""The host actor: one environment for its whole life, serving batches stage by stage."""

from __future__ import annotations

__all__ = ["HostActor", "HostSpec", "check_post_output"]

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlspec_ray.artifacts import fetch_all
from dlspec_ray.environments import Placement, make_environment
from dlspec_ray.hardware.setup import run_setup_commands, setup_failure
from dlspec_ray.spec.types import HardwareManifest, ModelManifest, SoftwareManifest
from dlspec_ray.stages import Envelope, StageChain, build_context, format_stage_error


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


class HostActor:
    """Wrapped with ``ray.remote`` by the pool; plain class so it is testable without Ray."""

    def __init__(self, spec: HostSpec):
        self.spec = spec
        self.node_id = _current_node_id()
        self.setup_error: str | None = None
        self.setup_s = 0.0
        # On the host, before the environment exists: outside any container or task venv.
        self.host_setup = run_setup_commands(spec.setup)
        self.setup_failed_in = "load"
        self.environment = make_environment(
            spec.environment, spec.software, placement=_placement(spec)
        )
        self.chain = StageChain(self.environment)
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
            self.spec.model.artifacts, Path(self.spec.cache_dir) if self.spec.cache_dir else None
        )
        ctx = build_context(
            self.spec.model,
            artifacts,
            batch_size=self.spec.batch_size,
            num_threads=self.spec.num_threads,
            options=self.spec.options,
        )
        self.environment.start(self.spec.model.stages, ctx)
        self.environment.call("load", ctx["artifacts"])

    def ready(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "error": self.setup_error,
            "setup_s": self.setup_s,
            "environment": None if self.setup_error else self.environment.describe(),
            "host_setup": [r.as_dict() for r in self.host_setup],
            "failed_in": self.setup_failed_in if self.setup_error else None,
        }

    # Each call carries a chunk: several consecutive batches. The stage functions
    # still see one batch at a time and each batch is timed on its own; the chunk
    # only amortises Ray's per-call and per-object cost over more work.

    def pre(self, inputs: Any, spans: list[tuple[int, int]] | None = None) -> list[Envelope]:
        """``inputs`` is the whole dataset array with ``spans`` into it, or a list of batches."""
        batches = inputs if spans is None else [inputs[a:b] for a, b in spans]
        return [self.chain.pre(batch) for batch in batches]

    def run(self, envelopes: list[Envelope]) -> list[Envelope]:
        return [self.chain.run(e) for e in envelopes]

    def post(self, envelopes: list[Envelope], rows: list[int]) -> list[Envelope]:
        return [self._post_one(e, n) for e, n in zip(envelopes, rows, strict=True)]

    def _post_one(self, envelope: Envelope, rows: int) -> Envelope:
        out = self.chain.post(envelope)
        if out.error is None:
            problem = check_post_output(out.value, rows)
            if problem:
                return Envelope(None, out.ms, f"post-process: {problem}")
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


def _placement(spec: HostSpec) -> Placement:
    """What the environment must know of this actor: its GPUs, its limits, its identity."""
    gpu_ids: tuple[str, ...] = ()
    actor = ""
    try:
        import ray

        if ray.is_initialized():
            gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
            actor = ray.get_runtime_context().get_actor_id() or ""
    except Exception:
        pass
    hardware = spec.hardware
    return Placement(
        cpus=hardware.cpu.ncpu if hardware else None,
        memory=hardware.memory if hardware else None,
        gpu_ids=gpu_ids,
        labels={"run": spec.run_id, "actor": actor},
    )


def _current_node_id() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:
        pass
    return "local"
