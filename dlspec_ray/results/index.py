"""A results root: a folder of run directories with an index of every run in it.

The index is a JSON-lines file, one record per run, appended as runs finish. One
line per run means a run is added with a single small append (atomic on a local
file system, so concurrent sweeps writing to the same root never interleave
records), and a reader never needs the run directories to list what is there.
If the index is lost or a run directory was copied in by hand, ``rebuild_index``
recreates it from the ``summary.json`` files.

A results root is a local folder or a prefix in object storage (``s3://bucket/runs``;
see ``storage``): every function here takes either. Object storage has no append,
so there ``append_to_index`` rewrites the index object whole (one upload, so a
reader never sees half a line); two processes appending to the same root at the
same moment can lose one record, which ``rebuild_index`` restores.
"""

from __future__ import annotations

__all__ = [
    "INDEX_NAME",
    "RunRecord",
    "UnknownRun",
    "append_to_index",
    "environment_fingerprint",
    "find_run",
    "find_run_dirs",
    "index_run",
    "read_index",
    "read_summary",
    "rebuild_index",
    "record_of",
]

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.storage import Location, StorageLocation, as_location, is_uri
from dlspec_ray.results.summary import SUMMARY_NAME

INDEX_NAME = "index.jsonl"
TASK_KINDS = ("model", "dataset", "software", "hardware")
# Environment keys that name a place, not what the software is: two clones of the same
# venv, or the same image on two nodes, are the same environment.
_NOT_FINGERPRINTED = frozenset({"nodes", "interpreter", "node_id", "node_ids", "pid"})
_APPEND_LOCK = threading.Lock()


class UnknownRun(DLSpecError):
    """A run reference names no run directory of the results root."""


@dataclass(frozen=True)
class RunRecord:
    """One line of the index: enough to list, filter and find a run without opening it."""

    run_id: str
    path: str  # relative to the results root
    started_at: str
    finished_at: str
    status: str
    task: dict[str, dict[str, str] | None]
    environment: dict[str, Any]
    environment_fingerprint: str
    batch_size: int | None = None
    samples: int | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    throughput_sps: float | None = None
    label: str = ""
    sweep_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ref(self, kind: str) -> str:
        entry = self.task.get(kind) or {}
        return str(entry.get("ref") or entry.get("id") or "-")


def environment_fingerprint(environment: Mapping[str, Any]) -> str:
    """12 hex digits that change when the software a run used changes, and only then."""
    kept = {k: v for k, v in environment.items() if k not in _NOT_FINGERPRINTED}
    text = json.dumps(kept, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_summary(run_dir: Location) -> dict[str, Any]:
    """The ``summary.json`` of a run directory (a local path, a URI or a location)."""
    location = as_location(run_dir)
    path = location.child(SUMMARY_NAME)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnknownRun(
            f"{location.describe()}: no {SUMMARY_NAME}; expected the --out directory of a "
            "dlspec-ray run"
        ) from None
    except (OSError, ValueError) as exc:
        raise DLSpecError(f"{path}: not a readable summary ({exc}); rerun the evaluation") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DLSpecError(f"{path}: not a readable summary ({exc}); rerun the evaluation") from None


def record_of(
    run_dir: Location, root: Location, *, label: str = "", sweep_id: str = ""
) -> RunRecord:
    """The index record of the run in ``run_dir``, from its ``summary.json``."""
    from dlspec_ray.results.run_summary import RunSummary

    run, base = as_location(run_dir), as_location(root)
    summary = RunSummary.read(run)
    task = summary.data.get("task") or {}
    return RunRecord(
        run_id=summary.run_id,
        path=run.relative_to(base),
        started_at=summary.started_at,
        finished_at=summary.finished_at,
        status=summary.status,
        task={kind: _manifest_of(task.get(kind)) for kind in TASK_KINDS},
        environment=summary.environment,
        environment_fingerprint=environment_fingerprint(summary.environment),
        batch_size=summary.batch_size,
        samples=summary.samples,
        accuracy=summary.accuracy,
        throughput_sps=summary.throughput_sps,
        label=label,
        sweep_id=sweep_id,
    )


def append_to_index(root: Location, record: RunRecord) -> Path | StorageLocation:
    """Add one record; locally a single ``write`` of one line, so concurrent writers never
    interleave. In object storage the index object is rewritten whole (see the module)."""
    base = as_location(root)
    line = json.dumps(record.as_dict(), sort_keys=True, allow_nan=False) + "\n"
    index = base.child(INDEX_NAME)
    if not base.is_local:
        with _APPEND_LOCK:
            try:
                old = index.read_text(encoding="utf-8")
            except FileNotFoundError:
                old = ""
            if old and not old.endswith("\n"):
                old += "\n"
            index.write_text(old + line)
        return index
    path = index.local_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    return path


def index_run(run_dir: Location, *, label: str = "", sweep_id: str = "") -> str | None:
    """Add the finished run in ``run_dir`` to the index of its results root: the folder or
    prefix that holds it, as ``--out runs/x`` is held by ``runs``. Returns None when it was
    added; else why not (the run itself stands). An ``index.jsonl`` there that is not a
    dlspec-ray index is left alone: it is not ours to append to."""
    run = as_location(run_dir)
    root = run.parent
    try:
        index = root.child(INDEX_NAME)
        record = record_of(run, root, label=label, sweep_id=sweep_id)
        if index.is_file():
            first = next((x for x in index.read_text(encoding="utf-8").splitlines() if x), "")
            if first:
                RunRecord(**json.loads(first))
            existing = read_index(root)
            if any(r.path == record.path for r in existing):  # --overwrite replaced that run
                kept = [r for r in existing if r.path != record.path] + [record]
                index.write_text(
                    "".join(json.dumps(r.as_dict(), sort_keys=True) + "\n" for r in kept)
                )
                return None
        append_to_index(root, record)
    except (ValueError, TypeError):
        return f"{root.child(INDEX_NAME).describe()} is not a dlspec-ray index; not added there"
    except (OSError, DLSpecError) as exc:
        return f"not added to the index of {root.describe()}: {exc}"
    return None


def read_index(root: Location) -> list[RunRecord]:
    """Every run of the results root, oldest first; an empty list when nothing was indexed."""
    base = as_location(root)
    if not base.is_dir():
        base.check_bucket()  # object storage: a missing bucket or refused keys, said as such
        raise UnknownRun(
            f"{base.describe()}: no such results root (a folder written by dlspec-ray sweep)"
        )
    index = base.child(INDEX_NAME)
    try:
        text = index.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return []
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(RunRecord(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise DLSpecError(
                f"{index}:{number}: not an index record ({exc}); delete the line, or run "
                f"`dlspec-ray runs {base} --rebuild` to recreate the index from the runs"
            ) from None
    return sorted(records, key=lambda r: (r.started_at, r.run_id))


def find_run_dirs(root: Location) -> list[StorageLocation]:
    """Every run directory below ``root`` (a folder with a ``summary.json``), the root
    itself included; staging folders of runs in progress (hidden names) are not runs."""
    base = as_location(root)
    found = []
    for name in base.list_files(recursive=True):
        parts = name.split("/")
        if parts[-1] != SUMMARY_NAME or any(p.startswith(".") for p in parts[:-1]):
            continue
        found.append(base.child(*parts[:-1]))
    return found


@dataclass(frozen=True)
class IncompleteRunEntry:
    """A run directory without its summary: interrupted, and resumable with ``--resume``."""

    location: StorageLocation
    run_id: str
    model: str
    dataset: str
    complete_shards: int
    shards: int


def find_incomplete_runs(root: Location) -> list[IncompleteRunEntry]:
    """The folders directly in ``root`` that hold a ``run.json`` but no ``summary.json``.

    Their shards are counted from the ledger without reading them: a listing must stay
    cheap over object storage; ``--resume`` checks each file's digest.
    """
    from dlspec_ray.results.ledger import LedgerError, recorded_entries
    from dlspec_ray.results.run_identity import RUN_IDENTITY_NAME, RunIdentity

    base = as_location(root)
    found = []
    for name in base.list_dirs():
        run = base.child(name)
        if name.startswith(".") or not run.child(RUN_IDENTITY_NAME).exists():
            continue
        if run.child(SUMMARY_NAME).exists():
            continue
        try:
            identity = RunIdentity.read(run)
            done = len(recorded_entries(run))
        except (DLSpecError, LedgerError):
            continue
        found.append(
            IncompleteRunEntry(
                location=run,
                run_id=identity.run_id,
                model=identity.manifests.get("model", {}).get("ref", "?"),
                dataset=identity.manifests.get("dataset", {}).get("ref", "?"),
                complete_shards=done,
                shards=int(identity.layout.get("shards", 0)),
            )
        )
    return found


def rebuild_index(root: Location) -> list[RunRecord]:
    """Recreate the index from every ``summary.json`` under ``root``; labels are kept."""
    base = as_location(root)
    base.check_writable()  # before reading every summary: the index is written at the end
    old: dict[str, RunRecord] = {}
    if base.child(INDEX_NAME).is_file():
        try:
            old = {r.run_id: r for r in read_index(base)}
        except DLSpecError:
            old = {}
    records = []
    for run_dir in find_run_dirs(base):
        previous = old.get(read_summary(run_dir).get("run_id", ""))
        records.append(
            record_of(
                run_dir,
                base,
                label=previous.label if previous else "",
                sweep_id=previous.sweep_id if previous else "",
            )
        )
    records.sort(key=lambda r: (r.started_at, r.run_id))
    text = "".join(json.dumps(r.as_dict(), sort_keys=True) + "\n" for r in records)
    base.child(INDEX_NAME).write_text(text)
    return records


def find_run(
    ref: Location,
    root: Location | None = None,
    *,
    storage_options: Mapping[str, str] | None = None,
) -> Path | StorageLocation:
    """The run directory ``ref`` names: a path or URI, or a run id (or unique prefix, or
    label) in ``root``. A ``Path`` for a local run, else its ``StorageLocation``.

    ``storage_options`` apply to whichever of ``ref`` and ``root`` is a URI.
    """
    run = as_location(ref, storage_options, local_ok=True)
    if run.child(SUMMARY_NAME).is_file():
        return _native(run)
    base = as_location(root, storage_options, local_ok=True) if root is not None else None
    if base is not None and not _is_absolute(ref):
        try:
            below = base.child(str(ref))
        except ValueError:
            below = None
        if below is not None and below.child(SUMMARY_NAME).is_file():
            return _native(below)
    if base is None:
        run.check_bucket()
        raise UnknownRun(
            f"{str(ref)!r}: no run directory there (no {SUMMARY_NAME}); give the --out folder "
            "of a run, or a run id with --root RESULTS_ROOT"
        )
    records = read_index(base)
    matches = _matching(str(ref), records)
    if len(matches) == 1:
        return _native(base.child(matches[0].path))
    if not matches:
        known = ", ".join(r.run_id for r in records[-5:]) or "none"
        raise UnknownRun(
            f"{str(ref)!r}: no run with that id or label in {base}/{INDEX_NAME} (latest: {known}); "
            f"list them with `dlspec-ray runs {base}`"
        )
    ids = ", ".join(r.run_id for r in matches[:5])
    raise UnknownRun(
        f"{str(ref)!r} matches {len(matches)} runs in {base} ({ids}); give more of the id"
    )


def _is_absolute(ref: Location) -> bool:
    if isinstance(ref, StorageLocation):
        return True
    text = os.fspath(ref) if isinstance(ref, os.PathLike) else str(ref)
    return is_uri(text) or Path(text).is_absolute()


def _native(location: StorageLocation) -> Path | StorageLocation:
    return location.local_path if location.is_local else location


def _matching(ref: str, records: Iterable[RunRecord]) -> list[RunRecord]:
    records = list(records)
    exact = [r for r in records if ref in (r.run_id, r.label, r.path)]
    if exact:
        return exact
    return [r for r in records if r.run_id.startswith(ref)]


def _manifest_of(entry: Any) -> dict[str, str] | None:
    if not isinstance(entry, Mapping):
        return None if entry is None else {"ref": str(entry)}
    return {k: str(entry[k]) for k in ("id", "name", "version", "ref") if entry.get(k) is not None}
