"""Where each artifact of a run came from: its source, checksum, and when it was fetched.

A checksum says which bytes a run used; the source and the fetch time say how to get
them again, and whether the copy in a cache predates a change upstream.
"""

from __future__ import annotations

__all__ = ["provenance"]

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlspec_ray.spec.types import Source


def provenance(sources: Iterable[Source], paths: Mapping[str, Path]) -> list[dict[str, Any]]:
    """One entry per source: ``name``, ``source``, ``checksum``, ``path`` (where it was
    read on the node) and ``fetched_at`` (when that copy was made: its modification time)."""
    entries = []
    for source in sources:
        path = paths.get(source.name)
        fetched = None
        if path is not None:
            try:
                stamp = Path(path).stat().st_mtime
                fetched = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
            except OSError:
                fetched = None
        entries.append(
            {
                "name": source.name,
                "source": str(source.source),
                "checksum": source.checksum,
                "path": str(path) if path is not None else None,
                "fetched_at": fetched,
            }
        )
    return entries
