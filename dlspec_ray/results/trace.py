"""``trace.json``: the run's trace events, appended as shards arrive.

The events themselves are made on the host actors (``stages.trace``); the driver only
streams them into one file in the JSON array format of Chrome's trace viewer and
Perfetto, so its memory does not grow with the run.
"""

from __future__ import annotations

__all__ = ["TRACE_NAME", "TraceFile"]

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TRACE_NAME = "trace.json"


class TraceFile:
    """A trace file in the JSON array format, appended event by event.

    ``close`` writes the closing bracket; a file cut short by a crash lacks only it,
    which trace viewers accept.
    """

    def __init__(self, path: Path):
        self.path = path
        self.events = 0
        self._named: set[tuple[str, str]] = set()
        path.write_text("[\n", encoding="utf-8")

    def add(self, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        lines = []
        for event in events:
            for meta in self._names_of(event):
                lines.append(json.dumps(meta))
            lines.append(json.dumps(event, allow_nan=False))
        with open(self.path, "a", encoding="utf-8") as f:
            for line in lines:
                f.write(("," if self.events else "") + line + "\n")
                self.events += 1

    def _names_of(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Metadata events naming a process (node) and thread (actor) the first time."""
        key = (event["pid"], event["tid"])
        if key in self._named:
            return []
        self._named.add(key)
        args = event["args"]
        thread = f"host actor {args['actor'][:12]} ({args['environment']})"
        return [
            {"name": "process_name", "ph": "M", "pid": event["pid"],
             "args": {"name": f"node {args['node'][:12]}"}},
            {"name": "thread_name", "ph": "M", "pid": event["pid"], "tid": event["tid"],
             "args": {"name": thread}},
        ]  # fmt: skip

    def close(self) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("]\n")
