"""What a running driver holds on this machine, written down so that a killed one can be swept.

A driver killed with SIGKILL cleans nothing: its run's staging folder stays beside
``--out``, its embedded Ray's temp dir stays in ``/tmp``, and that Ray's processes
linger. While it runs, the driver keeps one small record per such thing under
``<cache>/inflight/``, naming itself (pid and start time) and the path. The record goes
when the thing is cleaned up normally. ``dlspec-ray env gc`` (and each new session) sweeps
the records whose owner is gone: it removes exactly the paths they name, and ends only the
processes of this user whose command line names that Ray's temp dir. A staging folder that
holds complete shards is not removed but kept for ``run --resume``, moved to its ``--out``
when that is free.
"""

from __future__ import annotations

__all__ = ["forget", "remember", "sweep_inflight"]

import contextlib
import json
import shutil
import uuid
from pathlib import Path

from dlspec_ray.artifacts import default_cache_dir
from dlspec_ray.owner import HOST, end_processes_naming, owner_alive, owner_token

# What a record may name, and how a path of that kind must look to be removed.
_KINDS = {"staging": ".partial-", "ray-temp": "dlspec-ray-"}


def _records_dir() -> Path:
    return default_cache_dir() / "inflight"


def remember(kind: str, path: str | Path) -> Path:
    """Write down that this process holds ``path`` (a staging folder, a Ray temp dir)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown kind of in-flight record {kind!r}")
    folder = _records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{kind}-{uuid.uuid4().hex[:12]}.json"
    data = {"kind": kind, "path": str(path), "owner": owner_token(), "host": HOST}
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(record)
    return record


def forget(record: Path | None) -> None:
    if record is not None:
        with contextlib.suppress(FileNotFoundError):
            record.unlink()


def sweep_inflight() -> list[str]:
    """Clean what dead drivers of this host left; returns what was removed or ended."""
    folder = _records_dir()
    done: list[str] = []
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if data.get("host") != HOST or owner_alive(str(data.get("owner", ""))):
            continue
        path = Path(str(data.get("path", "")))
        marker = _KINDS.get(str(data.get("kind")))
        if marker is None or marker not in path.name:
            forget(record)  # not a path of ours: never remove it
            continue
        if data["kind"] == "ray-temp":
            done += [f"ended process {pid}" for pid in end_processes_naming(str(path))]
        if data["kind"] == "staging" and (kept := _keep_resumable(path)):
            done.append(kept)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path}")
        forget(record)
    return done


def _keep_resumable(staging: Path) -> str | None:
    """A killed run's staging folder that holds complete shards is kept for ``--resume``:
    moved to its ``--out`` when that is free. Returns what was done, or None (remove it)."""
    from dlspec_ray.results.ledger import verified_entries
    from dlspec_ray.results.run_dir import keep_incomplete
    from dlspec_ray.results.run_identity import RUN_IDENTITY_NAME, RunIdentity

    if not (staging / RUN_IDENTITY_NAME).is_file():
        return None
    try:
        identity = RunIdentity.read(staging)
        if not verified_entries(staging):
            return None
    except Exception:
        return None
    staging = keep_incomplete(staging, Path(identity.out))
    return f"kept the interrupted run {staging}: finish it with `dlspec-ray run --resume {staging}`"
