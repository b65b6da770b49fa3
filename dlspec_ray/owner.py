"""Who owns a leftover, written into its name, label or record.

``ray.kill`` ends a host actor without running ``__ray_shutdown__``, and a killed
process cleans nothing: what it held (a container, a shared-memory folder, a
partial download, a staging folder) outlives it. Each of those carries its
owner's host, pid and process start time, and the sweepers remove the ones whose
owner is gone. The start time tells a live owner from a later process that
happens to reuse its pid. Every layer may use this module.
"""

from __future__ import annotations

__all__ = ["HOST", "owner_alive", "owner_token"]

import os
import socket

HOST = socket.gethostname()


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else None


def owner_token(pid: int | None = None) -> str:
    """``PID.START`` for ``pid`` (default: this process); ``PID.0`` where /proc is missing."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_start_ticks(pid) or 0}"


def owner_alive(token: str) -> bool:
    """Whether the process a token names still runs (on this host)."""
    pid_text, _, start = token.partition(".")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    current = _start_ticks(pid)
    if current is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return start == "0"
    return start in ("0", current)
