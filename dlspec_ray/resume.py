"""Finishing an interrupted run: find it, check it is the same run, and say what is left.

A run interrupted by Ctrl-C, a crash or an error mid-run keeps its complete
shards: at ``--out`` (renamed there from its staging folder, without a
``summary.json``), or, after a SIGKILL, in the staging folder beside ``--out``
until the next dlspec-ray command moves it there. ``run --resume DIR`` (and
``evaluate(resume=DIR)``) runs the shards its ledger lacks and writes the
summary over all of them, so the result equals an uninterrupted run's.
"""

from __future__ import annotations

__all__ = [
    "MANIFEST_COPIES",
    "IncompleteRun",
    "ResumeMismatch",
    "check_same_run",
    "find_incomplete",
    "identity_of",
    "options_record",
    "resumed_arguments",
]

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.owner import HOST, owner_alive, owner_token
from dlspec_ray.plan import Plan
from dlspec_ray.results.ledger import LedgerEntry, verified_entries
from dlspec_ray.results.run_identity import RUN_IDENTITY_NAME, RunIdentity, manifest_digest
from dlspec_ray.results.storage import StorageLocation, as_location
from dlspec_ray.results.summary import SUMMARY_NAME

# The run settings a resume takes from run.json unless given, and must then match.
RESULT_SETTINGS = ("batch_size", "limit", "options", "environment")
# Where a run directory keeps a copy of each manifest it was run with.
MANIFEST_COPIES = "manifests"


def options_record(options: Any) -> dict[str, Any]:
    """A ``RunOptions`` as JSON: every field, paths as strings."""
    from dataclasses import asdict

    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}


class ResumeMismatch(UsageError):
    """The resume would not be the same run: different manifests, artifacts or settings."""


@dataclass(frozen=True)
class IncompleteRun:
    # Where its files are now: ``--out`` itself, a staging folder beside it, or object storage.
    location: StorageLocation
    identity: RunIdentity
    # The complete shards (their files checked against the ledger's digests), by id.
    done: dict[int, LedgerEntry]

    @property
    def in_staging(self) -> bool:
        return self.location.is_local and ".partial-" in self.location.name


def identity_of(plan: Plan, out: Any, roots: tuple[str, ...] = ()) -> RunIdentity:
    """The ``run.json`` of ``plan``: everything a resume of it must match."""
    if plan.index is None:
        raise UsageError("the plan has no dataset index; make it with Session.plan()")
    task = plan.task
    manifests = {
        kind: {
            "ref": m.ref,
            "digest": manifest_digest(m),
            "path": str(m.path or ""),
            "copy": f"{MANIFEST_COPIES}/{kind}.yaml" if m.path else "",
            "base_dir": str(Path(m.path).resolve().parent) if m.path else "",
        }
        for kind, m in task.manifests().items()
        if m is not None
    }
    artifacts = {f"model:{s.name}": s.checksum or "" for s in task.model.artifacts}
    artifacts |= {f"dataset:{s.name}": s.checksum or "" for s in task.dataset.sources}
    opts = plan.options
    settings = {
        "batch_size": opts.batch_size,
        "limit": opts.limit,
        "options": dict(opts.options),
        "environment": plan.environment,
    }
    layout = {
        "samples": plan.index.samples,
        "batch_size": opts.batch_size,
        "batches_per_call": plan.batches_per_call,
        "shards": len(plan.shards),
        "ids_digest": plan.index.ids_digest,
    }
    return RunIdentity(
        run_id=plan.run_id,
        out=str(out) if _is_remote(out) else os.path.abspath(os.path.expanduser(str(out))),
        driver=f"{HOST}/{owner_token()}",
        created_at=datetime.now(timezone.utc).isoformat(),
        manifests=manifests,
        artifacts=artifacts,
        settings=settings,
        layout=layout,
        roots=tuple(str(r) for r in roots),
        run_options=options_record(opts),
    )


def find_incomplete(resume: Any) -> IncompleteRun:
    """The interrupted run at ``resume`` (or in the staging folder beside it), checked."""
    location = resume if isinstance(resume, StorageLocation) else as_location(str(resume))
    if location.child(SUMMARY_NAME).exists():
        raise UsageError(
            f"--resume {resume}: the run there is complete (it has its {SUMMARY_NAME}); "
            "nothing to resume"
        )
    if not location.child(RUN_IDENTITY_NAME).exists():
        staged = _staged_beside(location) if location.is_local else None
        if staged is None:
            what = "does not exist" if not location.exists() else f"holds no {RUN_IDENTITY_NAME}"
            raise UsageError(
                f"--resume {resume}: {what}, so it is not an interrupted dlspec-ray run; give "
                "the --out of the run to finish (`dlspec-ray runs ROOT` lists incomplete ones)"
            )
        location = staged
    identity = RunIdentity.read(location)
    # A local run in progress lives in its staging folder; one kept at --out has stopped.
    staged = location.is_local and ".partial-" in location.name
    if (staged or not location.is_local) and _driver_running(identity):
        _, _, token = identity.driver.partition("/")
        raise UsageError(
            f"--resume {resume}: that run is still going (driver pid {token.split('.')[0]}); "
            "wait for it, or stop it first"
        )
    return IncompleteRun(location=location, identity=identity, done=verified_entries(location))


def resumed_arguments(identity: RunIdentity, given: dict[str, Any]) -> dict[str, Any]:
    """``prepare()``'s arguments for a resume: those given, the rest from ``run.json``.

    What is given and differs from the run is not overridden here: the resume is
    then refused by ``check_same_run``, naming it.
    """
    args = dict(given)
    for kind in ("model", "dataset", "software", "hardware", "reference"):
        if args.get(kind) is None and kind in identity.manifests:
            entry = identity.manifests[kind]
            path = entry.get("path")  # the file the run used, while it is there; else its ref
            args[kind] = path if path and Path(path).is_file() else entry["ref"]
    if not args.get("manifest_roots"):
        args["manifest_roots"] = list(identity.roots)
    run = args.get("run")
    for name in RESULT_SETTINGS:
        unset = run is None or getattr(run, name) == _default(name)
        if name != "environment" and name not in args and unset:
            args[name] = identity.settings[name]
    args["batches_per_call"] = identity.layout["batches_per_call"]
    return args


def check_same_run(incomplete: IncompleteRun, now: RunIdentity) -> None:
    changes = incomplete.identity.differences(now)
    if changes:
        listed = "\n".join(f"  - {c}" for c in changes)
        raise ResumeMismatch(
            f"--resume {incomplete.location.describe()}: this would not be the same run, so "
            f"its complete shards cannot be kept:\n{listed}\nResume with what the run was "
            "started with, or start a new run (another --out, or --overwrite)."
        )


def _default(name: str) -> Any:
    from dlspec_ray.options import RunOptions

    return getattr(RunOptions(), name)


def _staged_beside(location: StorageLocation) -> StorageLocation | None:
    """The newest staging folder of ``location`` left by a driver that is gone."""
    path = location.local_path
    candidates = sorted(
        (
            p
            for p in path.parent.glob(f".{path.name}.partial-*")
            if (p / RUN_IDENTITY_NAME).is_file()
        ),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for candidate in candidates:
        if not _driver_running(RunIdentity.read(candidate)):
            return as_location(str(candidate))
    return None


def _driver_running(identity: RunIdentity) -> bool:
    """Whether the driver that wrote ``identity`` may still be running the run: it is
    alive on this host, and is not this process (a notebook resuming what it stopped)."""
    host, _, token = identity.driver.partition("/")
    return host == HOST and token != owner_token() and owner_alive(token)


def _is_remote(out: Any) -> bool:
    from dlspec_ray.run_output import is_uri

    return is_uri(out) if not isinstance(out, Path) else False
