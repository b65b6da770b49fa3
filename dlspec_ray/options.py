"""``RunOptions``: the one object of run settings.

The CLI, sweeps, ``submit`` and the Python API all build one of these instead
of passing a list of keyword arguments along, so a setting is named once: here.
It is checked when built, so a bad value fails before anything starts.
"""

from __future__ import annotations

__all__ = ["RunOptions"]

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError


@dataclass(frozen=True)
class RunOptions:
    """How to run a task (not which task, and not where its results go)."""

    batch_size: int = 64
    # Host actors; None: as many as the nodes that fit the hardware request can hold.
    actors: int | None = None
    # Evaluate only the first N samples of the dataset.
    limit: int | None = None
    # Failed samples tolerated before no new batches are started.
    max_errors: int = 0
    # Overrides of the model's options (ctx["options"]).
    options: Mapping[str, Any] = field(default_factory=dict)
    # Overrides the software manifest's environment kind (inline, process, docker).
    environment: str | None = None
    # The artifact cache on each node; None: DLSPEC_RAY_CACHE, else ~/.cache/dlspec-ray.
    cache_dir: Path | None = None
    progress: bool = True
    # Batches per chained pre/run/post call, and so per shard; None: chosen from the data.
    batches_per_call: int | None = None
    # Chained calls queued per host actor.
    depth: int = 2
    ready_timeout_s: float = 300.0
    allow_host_setup: bool = False
    # Use folder sources that carry no checksum (marked unverified in summary.json).
    allow_unverified: bool = False
    # Run code from manifests outside the trusted roots with the user's rights (see trust).
    trust: bool = False
    # Echo what stage code prints to stderr too (it always goes to the run's stage.log).
    verbose: bool = False
    # A stage call that runs longer ends its host actor; its shard is reported, and the
    # others go on. Generous: a load or a first batch may compile kernels for minutes.
    stage_timeout_s: float | None = 3600.0
    # Times a shard is run again after its host actor died under it (killed, its node lost,
    # a stage past stage_timeout_s) or some of its batches failed; then its samples are
    # quarantined: reported by id, and the run goes on within max_errors.
    retries: int = 2
    # Batches left out of the latency figures, at the start of the run: they pay for
    # caches, allocators and lazy initialisation rather than for the model.
    warmup: int = 0
    # Timed passes over the dataset: the first writes the results, each later one is timed
    # only (its rows are dropped), and summary.json reports the median and spread.
    repeats: int = 1
    # Write DIR/trace.json: each batch's read, pre-process, transfer, run, post-process and
    # write spans, per node and host actor, for Perfetto or chrome://tracing.
    trace: bool = False
    # CPU actors that pre- and post-process on their own, handing tensors to the host
    # actors (which then only run the model) by object reference; 0: the host actors do all.
    pre_actors: int = 0
    # Save the pre-process, run and post-process outputs of the first N batches to
    # DIR/stage_outputs/batch-<id>.npz, to look into where two runs part.
    keep_stage_outputs: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "actors", "limit", "batches_per_call", "depth", "repeats"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise UsageError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("retries", "warmup", "pre_actors", "keep_stage_outputs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"{name}: expected 0 or more, got {value!r}")
        if isinstance(self.max_errors, bool) or not isinstance(self.max_errors, int):
            raise UsageError(f"max_errors: expected 0 or more, got {self.max_errors!r}")
        if self.max_errors < 0:
            raise UsageError(f"max_errors: expected 0 or more, got {self.max_errors!r}")
        timeout = self.stage_timeout_s
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise UsageError(f"stage_timeout_s: expected seconds > 0, got {timeout!r}")
        if not isinstance(self.ready_timeout_s, (int, float)) or self.ready_timeout_s <= 0:
            raise UsageError(f"ready_timeout_s: expected seconds > 0, got {self.ready_timeout_s!r}")
        if not isinstance(self.options, Mapping):
            raise UsageError(
                f"options: expected a mapping of model options, got {type(self.options).__name__}"
            )
        if self.environment is not None:
            _check_environment(self.environment)
        object.__setattr__(self, "options", dict(self.options))
        if self.cache_dir is not None and not isinstance(self.cache_dir, Path):
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def with_settings(self, **settings: Any) -> RunOptions:
        """A copy with ``settings`` changed; an unknown name suggests the nearest one."""
        unknown = [name for name in settings if name not in self.names()]
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"{name}: not a run setting{hint} The settings are: {', '.join(self.names())}."
            )
        return replace(self, **settings) if settings else self


def _check_environment(kind: str) -> None:
    from dlspec_ray.environments import ENVIRONMENTS

    if kind not in ENVIRONMENTS:
        close = difflib.get_close_matches(kind, ENVIRONMENTS.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UsageError(
            f"--environment {kind}: no such environment{hint} "
            f"Available: {', '.join(ENVIRONMENTS.names())}."
        )
