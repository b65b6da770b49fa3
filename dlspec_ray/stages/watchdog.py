"""A stage that never returns must not hang the run: its host actor ends itself.

A hung stage cannot be interrupted from inside its own process (it may be blocked in
C code, or in a socket read from an agent that will never answer), so a thread watches
the stage in progress and, past the deadline, ends the whole process. The runtime sees
the actor die, reports the shard with the reason, and the other actors carry on.
"""

from __future__ import annotations

__all__ = ["STAGE_TIMEOUT_EXIT", "Watchdog"]

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

# The exit code of a host actor that ended itself because a stage ran past its deadline.
STAGE_TIMEOUT_EXIT = 124


class Watchdog:
    def __init__(self, timeout_s: float | None):
        self.timeout_s = timeout_s
        self._stage: str | None = None
        self._started = 0.0
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watch(self, stage: str) -> Iterator[None]:
        if self.timeout_s is None:
            yield
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, args=(self.timeout_s,), name="stage-watchdog", daemon=True
            )
            self._thread.start()
        self._started, self._stage = time.monotonic(), stage
        try:
            yield
        finally:
            self._stage = None

    def _loop(self, timeout_s: float) -> None:
        tick = min(1.0, timeout_s / 4)
        while True:
            time.sleep(tick)
            stage = self._stage
            if stage is not None and time.monotonic() - self._started > timeout_s:
                print(
                    f"dlspec-ray: the {stage} stage ran past --stage-timeout "
                    f"{timeout_s:g}s; ending this host actor",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(STAGE_TIMEOUT_EXIT)
