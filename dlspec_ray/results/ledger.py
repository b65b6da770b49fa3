"""The ledger of complete shards: what a resumed run does not run again.

A shard is complete only when its Parquet file is whole (written atomically) and
its line is in ``ledger.jsonl``; the line is written after the file, so a crash
between the two leaves a file with no line, which a resume writes again. The
ledger is append-only. A crash in the middle of an append leaves a torn last
line, which is ignored; a malformed line anywhere else means the file was
edited or damaged, and is refused rather than guessed at.

On resume each entry is checked against its file (present, with the recorded
sha256), so a shard file that was removed or altered since is run again.
"""

from __future__ import annotations

__all__ = [
    "LEDGER_NAME",
    "LedgerEntry",
    "LedgerError",
    "read_ledger",
    "recorded_entries",
    "verified_entries",
]

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from dlspec_ray.errors import UsageError
from dlspec_ray.results.storage import Location, as_location

LEDGER_NAME = "ledger.jsonl"


class LedgerError(UsageError):
    """A ledger that cannot be trusted: a damaged line that is not the last."""


@dataclass(frozen=True)
class LedgerEntry:
    shard: int
    start: int
    stop: int
    rows: int
    # Samples whose batch failed (stage errors); they count against --max-errors.
    failed: int = 0
    nonfinite: int = 0
    node: str = ""
    # The shard's file in the run directory (``samples/shard-NNNNN.parquet``) and its digest.
    file: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    # False: the rows only say why the shard never ran (the run stopped early, or every
    # actor died); a resume runs such a shard again.
    ran: bool = True
    # Samples whose batch failed on every attempt: listed in the quarantine table.
    quarantined: int = 0
    attempts: int = 1

    def as_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> LedgerEntry:
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("shard", "start", "stop", "rows"):
            if not isinstance(known.get(name), int) or isinstance(known.get(name), bool):
                raise ValueError(f"{name}: expected an integer, got {known.get(name)!r}")
        return cls(**known)


def read_ledger(run_dir: Location) -> list[LedgerEntry]:
    """The ledger's entries in the order written; empty when there is no ledger."""
    location = as_location(run_dir).child(LEDGER_NAME)
    if not location.exists():
        return []
    lines = location.read_text().splitlines(keepends=True)
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            entries.append(LedgerEntry.from_dict(json.loads(line)))
        except ValueError as exc:
            torn = number == len(lines) and not line.endswith("\n")
            if torn:
                break  # the append a crash cut short: that shard is simply not complete
            raise LedgerError(
                f"{location.describe()}: line {number}: not a ledger entry ({exc}); the "
                "ledger was edited or damaged, so the run cannot be resumed from it. Start "
                "the run again with --overwrite."
            ) from None
    return entries


def recorded_entries(run_dir: Location) -> dict[int, LedgerEntry]:
    """The last entry of each shard that ran, by id, as the ledger says (files unread)."""
    latest: dict[int, LedgerEntry] = {}
    for entry in read_ledger(run_dir):
        latest[entry.shard] = entry
    return {shard: e for shard, e in latest.items() if e.ran}


def verified_entries(run_dir: Location) -> dict[int, LedgerEntry]:
    """The complete shards, by id: the recorded ones whose file is whole (read and hashed)."""
    out = as_location(run_dir)
    return {s: e for s, e in recorded_entries(out).items() if _file_is_whole(out, e)}


def _file_is_whole(out: Any, entry: LedgerEntry) -> bool:
    if entry.file is None or entry.sha256 is None:
        return False
    location = out.child(*entry.file.split("/"))
    try:
        data = location.read_bytes()
    except Exception:
        return False
    return hashlib.sha256(data).hexdigest() == entry.sha256
