"""``RunSummary``: summary.json as a typed object, the one definition its readers and its
writer go through.

The summary is written as JSON (its fields are the versioned JSON Schema in
``schemas/summary.schema.json``). Readers (the results index, comparisons, sweeps'
tables, plots, the terminal table, ``reproduce``) used to pick it apart with string
keys and their own defaults; they read this instead, so a field is named and
defaulted once. Built from any summary a dlspec-ray version wrote, LoadGen's
included: a field a run does not have is None or empty here, never a KeyError.
``check_summary`` is the strict check.

A run's summary is written in three parts, each from the layer that knows it: what
the rows measured (``results.summary.summarise``), what the runtime knows of the run
(``RunFacts``) and how the run ended (``RunOutcome``). ``RunSummary.compose`` is the
one place they meet, and it decides the run's ``status``; ``as_dict`` is what
``summary.json`` holds.
"""

from __future__ import annotations

__all__ = ["ManifestRef", "RunFacts", "RunOutcome", "RunSummary", "StageLatency", "run_status"]

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
    # The ref as written, which names the manifest where the summary has only a ref.
    given: str | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        if self.name:
            return f"{self.name}@{self.version}"
        return str(self.given or self.id or "?")

    @property
    def label(self) -> str:
        """The ref, and the manifest's id where that says more (a terminal's task lines)."""
        return f"{self.ref}  ({self.id})" if self.id and self.id != self.ref else self.ref

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any] | None) -> ManifestRef | None:
        if not entry:
            return None
        return cls(entry.get("id"), entry.get("name"), entry.get("version"), entry.get("ref"))


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
    version: str | None = None
    evaluated_samples: int | None = None
    labelled_samples: int | None = None
    subset_of: int | None = None
    actors: int | None = None
    warmup_batches: int = 0
    nonfinite_samples: int = 0
    error_batches: int = 0
    # The first distinct error messages: {"message", "batches", "samples", "batch_ids"}.
    error_messages: tuple[dict[str, Any], ...] = ()
    # {"low", "high"} per accuracy metric.
    accuracy_ci95: dict[str, dict[str, float]] = field(default_factory=dict)
    # The reference check as written: {"reference", "verdict", "checks": [...]}.
    reference: dict[str, Any] | None = None
    # --repeats: {"passes", "throughput_sps": {...}, "latency_ms": {...}}.
    repeats: dict[str, Any] | None = None
    # The whole summary as written, for the fields without an attribute here.
    data: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, run_id: str = "") -> RunSummary:
        task = data.get("task") or {}
        latency = data.get("latency_ms") or {}
        reference = data.get("reference") or {}
        errors = data.get("errors") or {}
        return cls(
            run_id=str(data.get("run_id") or run_id),
            status=str(data.get("status", "ok")),
            task={kind: ManifestRef.from_dict(task.get(kind)) for kind in TASK_KINDS},
            environment=dict(data.get("environment") or {}),
            samples=data.get("samples"),
            errors=int(errors.get("count") or 0),
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
            version=data.get("dlspec_ray_version"),
            evaluated_samples=data.get("evaluated_samples"),
            labelled_samples=data.get("labelled_samples"),
            subset_of=data.get("subset_of"),
            actors=data.get("actors"),
            warmup_batches=int(data.get("warmup_batches") or 0),
            nonfinite_samples=int(data.get("nonfinite_samples") or 0),
            error_batches=int(errors.get("batches") or 0),
            error_messages=tuple(dict(m) for m in errors.get("messages") or ()),
            accuracy_ci95=dict(data.get("accuracy_ci95") or {}),
            reference=dict(reference) if reference else None,
            repeats=dict(data["repeats"]) if data.get("repeats") else None,
            data=dict(data),
        )

    @classmethod
    def compose(
        cls, measured: Mapping[str, Any], facts: RunFacts, outcome: RunOutcome
    ) -> RunSummary:
        """A finished run's summary: what its rows measured, then what the runtime knows of
        it, then how it ended. The status is decided here, from all three."""
        from dlspec_ray.results.reference import with_finite_check

        data: dict[str, Any] = {**measured, **facts.as_dict(), **outcome.as_dict()}
        if data.get("reference"):
            data["reference"] = with_finite_check(data["reference"], outcome.nonfinite_samples)
        data["status"] = run_status(data, facts.max_errors)
        return cls.from_dict(data)

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


def run_status(summary: Mapping[str, Any], max_errors: int) -> str:
    """``ok``, or why the run failed: its error budget, then its reference check."""
    if int((summary.get("errors") or {}).get("count") or 0) > max_errors:
        return "error_budget_exceeded"
    reference = summary.get("reference")
    if reference and reference.get("verdict") != "PASS":
        return "reference_failed"
    return "ok"


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as its output (``RunOutput``) saw it: the passes beyond the first,
    what was kept from an earlier attempt or dropped as a duplicate, what went to
    quarantine, where the time went, and its trace."""

    nonfinite_samples: int
    quarantine: dict[str, Any]
    phases_s: dict[str, float]
    repeats: dict[str, Any] | None = None
    resumed: dict[str, int] | None = None
    duplicate_results_dropped: int = 0
    trace: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nonfinite_samples": self.nonfinite_samples,
            "quarantine": dict(self.quarantine),
        }
        optional = {
            "repeats": self.repeats,
            "resumed": self.resumed,
            "duplicate_results_dropped": self.duplicate_results_dropped or None,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        data["phases_s"] = dict(self.phases_s)
        if self.trace is not None:
            data["trace"] = dict(self.trace)
        return data


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
