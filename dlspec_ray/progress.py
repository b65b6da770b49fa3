"""A dependency-free progress line for long work, on stderr.

On a terminal it redraws one line; elsewhere (CI logs, Ray job logs) it prints
a line at most every few seconds, so logs stay readable.
"""

from __future__ import annotations

__all__ = ["Phases", "Progress"]

import sys
import time
from typing import TextIO


class Progress:
    def __init__(
        self,
        total: int,
        label: str,
        *,
        unit: str = "samples",
        stream: TextIO | None = None,
        enabled: bool = True,
        log_every_s: float = 5.0,
        done: int = 0,
        errors: int = 0,
    ):
        """``done`` and ``errors`` count what was finished before (a resumed run's kept
        shards): shown in the bar, left out of the rate."""
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = done
        self.errors = errors
        self._before = done
        self._tty = self.stream.isatty()
        self._every = 0.1 if self._tty else log_every_s
        self._started = time.monotonic()
        self._last = float("-inf")

    def update(self, n: int, errors: int = 0) -> None:
        self.done += n
        self.errors += errors
        now = time.monotonic()
        if now - self._last >= self._every or self.done >= self.total:
            self._last = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled and self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def render(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        fraction = self.done / self.total if self.total else 1.0
        width = 24
        bar = "#" * int(fraction * width) + "-" * (width - int(fraction * width))
        rate = (self.done - self._before) / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        errors = f", {self.errors} errors" if self.errors else ""
        eta_text = f"{eta:.0f}s" if eta != float("inf") else "?"
        return (
            f"{self.label} [{bar}] {self.done}/{self.total} {self.unit} "
            f"({rate:,.0f}/s, eta {eta_text}{errors})"
        )

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        line = self.render(now)
        self.stream.write(f"\r{line}" if self._tty else f"{line}\n")
        self.stream.flush()


class Phases:
    """Wall time of each phase of a run, for the summary: where did the time go?"""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()
        self.started = self._last

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 6)
        self._last = now
