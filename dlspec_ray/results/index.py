"""A results root: a folder of run directories with an index of every run in it.

The index is a JSON-lines file, one record per run, appended as runs finish. One
line per run means a run is added with a single small append (atomic on a local
file system, so concurrent sweeps writing to the same root never interleave
records), and a reader never needs the run directories to list what is there.
If the index is lost or a run directory was copied in by hand, ``rebuild_index``
recreates it from the ``summary.json`` files.
"""

from __future__ import annotations

__all__ = [
    "INDEX_NAME",
    "RunRecord",
    "UnknownRun",
    "append_to_index",
    "environment_fingerprint",
    "find_run",
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
from dlspec_ray.results.parquet_io import atomic_write_text
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


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnknownRun(
            f"{run_dir}: no {SUMMARY_NAME}; expected the --out directory of a dlspec-ray run"
        ) from None
    except (OSError, ValueError) as exc:
        raise DLSpecError(f"{path}: not a readable summary ({exc}); rerun the evaluation") from None


def record_of(run_dir: Path, root: Path, *, label: str = "", sweep_id: str = "") -> RunRecord:
    """The index record of the run in ``run_dir``, from its ``summary.json``."""
    summary = read_summary(run_dir)
    environment = dict(summary.get("environment") or {})
    task = summary.get("task") or {}
    return RunRecord(
        run_id=str(summary.get("run_id", Path(run_dir).name)),
        path=os.path.relpath(Path(run_dir).resolve(), Path(root).resolve()),
        started_at=str(summary.get("started_at", "")),
        finished_at=str(summary.get("finished_at", "")),
        status=str(summary.get("status", "ok")),
        task={kind: _manifest_of(task.get(kind)) for kind in TASK_KINDS},
        environment=environment,
        environment_fingerprint=environment_fingerprint(environment),
        batch_size=summary.get("batch_size"),
        samples=summary.get("samples"),
        accuracy=dict(summary.get("accuracy") or {}),
        throughput_sps=summary.get("throughput_sps"),
        label=label,
        sweep_id=sweep_id,
    )


def append_to_index(root: Path, record: RunRecord) -> Path:
    """Add one record; a single ``write`` of one line, so concurrent writers never interleave."""
    path = Path(root) / INDEX_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record.as_dict(), sort_keys=True, allow_nan=False) + "\n").encode()
    with _APPEND_LOCK:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return path


def read_index(root: Path) -> list[RunRecord]:
    """Every run of the results root, oldest first; an empty list when nothing was indexed."""
    root = Path(root)
    if not root.is_dir():
        raise UnknownRun(f"{root}: no such results root (a folder written by dlspec-ray sweep)")
    path = root / INDEX_NAME
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(RunRecord(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise DLSpecError(
                f"{path}:{number}: not an index record ({exc}); delete the line, or run "
                f"`dlspec-ray runs {root} --rebuild` to recreate the index from the runs"
            ) from None
    return sorted(records, key=lambda r: (r.started_at, r.run_id))


def rebuild_index(root: Path) -> list[RunRecord]:
    """Recreate the index from every ``summary.json`` under ``root``; labels are kept."""
    root = Path(root)
    old: dict[str, RunRecord] = {}
    if (root / INDEX_NAME).is_file():
        try:
            old = {r.run_id: r for r in read_index(root)}
        except DLSpecError:
            old = {}
    records = []
    for summary in sorted(root.rglob(SUMMARY_NAME)):
        run_dir = summary.parent
        if any(part.startswith(".") for part in run_dir.relative_to(root).parts):
            continue  # staging folders of runs in progress
        previous = old.get(read_summary(run_dir).get("run_id", ""))
        records.append(
            record_of(
                run_dir,
                root,
                label=previous.label if previous else "",
                sweep_id=previous.sweep_id if previous else "",
            )
        )
    records.sort(key=lambda r: (r.started_at, r.run_id))
    text = "".join(json.dumps(r.as_dict(), sort_keys=True) + "\n" for r in records)
    atomic_write_text(root / INDEX_NAME, text)
    return records


def find_run(ref: str | Path, root: Path | None = None) -> Path:
    """The run directory ``ref`` names: a path, or a run id (or unique prefix) in ``root``."""
    path = Path(ref)
    if (path / SUMMARY_NAME).is_file():
        return path
    if root is not None and (Path(root) / path / SUMMARY_NAME).is_file():
        return Path(root) / path
    if root is None:
        raise UnknownRun(
            f"{str(ref)!r}: no run directory there (no {SUMMARY_NAME}); give the --out folder "
            "of a run, or a run id with --root RESULTS_ROOT"
        )
    records = read_index(Path(root))
    matches = _matching(str(ref), records)
    if len(matches) == 1:
        return Path(root) / matches[0].path
    if not matches:
        known = ", ".join(r.run_id for r in records[-5:]) or "none"
        raise UnknownRun(
            f"{str(ref)!r}: no run with that id or label in {root}/{INDEX_NAME} (latest: {known}); "
            f"list them with `dlspec-ray runs {root}`"
        )
    ids = ", ".join(r.run_id for r in matches[:5])
    raise UnknownRun(
        f"{str(ref)!r} matches {len(matches)} runs in {root} ({ids}); give more of the id"
    )


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
