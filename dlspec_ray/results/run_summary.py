"""``RunSummary``: summary.json as a typed object, the one definition its readers go through.

The summary is written as JSON (its fields are the versioned JSON Schema in
``schemas/summary.schema.json``). Readers (the results index, comparisons, sweeps'
tables, plots, ``reproduce``) used to pick it apart with string keys and their own
defaults; they read this instead, so a field is named and defaulted once. Built from
any summary a dlspec-ray version wrote, LoadGen's included: a field a run does not
have is None or empty here, never a KeyError. ``check_summary`` is the strict check.
"""

from __future__ import annotations

__all__ = ["ManifestRef", "RunFacts", "RunSummary", "StageLatency"]

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlspec_ray.results.storage import Location, as_location

TASK_KINDS = ("model", "dataset", "software", "hardware", "reference")
STAGE_NAMES = ("pre", "run", "post")


@dataclass(frozen=True)
class ManifestRef:
    """One manifest of the task, as the summary names it."""

    id: str | None
    name: str | None
    version: str | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}" if self.name else str(self.id or "?")

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any] | None) -> ManifestRef | None:
        if not entry:
            return None
        return cls(entry.get("id"), entry.get("name"), entry.get("version"))


@dataclass(frozen=True)
class StageLatency:
    """One stage's latency over batches, in milliseconds."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    mean: float | None = None
    mean_per_sample: float | None = None

    def get(self, name: str) -> float | None:
        return getattr(self, name, None)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str
    task: dict[str, ManifestRef | None]
    environment: dict[str, Any]
    samples: int | None
    errors: int
    accuracy: dict[str, float]
    latency_ms: dict[str, StageLatency]
    throughput_sps: float | None
    wall_s: float | None
    batch_size: int | None
    started_at: str
    finished_at: str
    reference_verdict: str | None
    # The whole summary as written, for the fields without an attribute here.
    data: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, run_id: str = "") -> RunSummary:
        task = data.get("task") or {}
        latency = data.get("latency_ms") or {}
        reference = data.get("reference") or {}
        return cls(
            run_id=str(data.get("run_id") or run_id),
            status=str(data.get("status", "ok")),
            task={kind: ManifestRef.from_dict(task.get(kind)) for kind in TASK_KINDS},
            environment=dict(data.get("environment") or {}),
            samples=data.get("samples"),
            errors=int((data.get("errors") or {}).get("count") or 0),
            accuracy=dict(data.get("accuracy") or {}),
            latency_ms={
                stage: StageLatency(**_known(latency[stage], StageLatency))
                for stage in STAGE_NAMES
                if isinstance(latency.get(stage), Mapping)
            },
            throughput_sps=data.get("throughput_sps"),
            wall_s=data.get("wall_s"),
            batch_size=data.get("batch_size"),
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            reference_verdict=reference.get("verdict"),
            data=dict(data),
        )

    @classmethod
    def read(cls, run_dir: Location) -> RunSummary:
        """The summary of the run directory ``run_dir`` (a folder or a URI)."""
        from dlspec_ray.results.index import read_summary

        location = as_location(run_dir)
        return cls.from_dict(read_summary(location), run_id=location.name)

    def ref(self, kind: str) -> str | None:
        """``name@version`` of the task's ``kind`` manifest, or None when it has none."""
        entry = self.task.get(kind)
        return entry.ref if entry is not None else None

    @property
    def framework(self) -> dict[str, Any]:
        value = self.environment.get("framework")
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def passed(self) -> bool:
        """No reference check failed and the error budget held."""
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.data)


@dataclass(frozen=True)
class RunFacts:
    """What the runtime knows of a run and the rows do not: how it was cut up and placed,
    the Ray it ran on, what went wrong on the way. The session hands these to the run's
    output, which writes them into summary.json beside what it summarises from the rows;
    a field that does not apply (no pre-process actors, say) is left out of the file."""

    batches_per_call: int
    max_errors: int
    limit: int | None
    resources: dict[str, float]
    ray: dict[str, Any]
    shards: int
    faults: dict[str, int]
    first_result_s: float | None = None
    unverified_sources: tuple[str, ...] = ()
    pre_actors: dict[str, Any] | None = None
    stage_outputs: dict[str, Any] | None = None
    host_setup: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batches_per_call": self.batches_per_call,
            "max_errors": self.max_errors,
            "limit": self.limit,
            "resources": dict(self.resources),
            "ray": dict(self.ray),
            "shards": self.shards,
            "faults": dict(self.faults),
        }
        optional = {
            "first_result_s": self.first_result_s,
            "unverified_sources": list(self.unverified_sources) or None,
            "pre_actors": self.pre_actors,
            "stage_outputs": self.stage_outputs,
            "host_setup": self.host_setup,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data


def _known(values: Mapping[str, Any], cls: type) -> dict[str, Any]:
    names = cls.__dataclass_fields__
    return {k: v for k, v in values.items() if k in names}
