"""Who owns a leftover, written into its name, label or record.

``ray.kill`` ends a host actor without running ``__ray_shutdown__``, and a killed
process cleans nothing: what it held (a container, a shared-memory folder, a
partial download, a staging folder) outlives it. Each of those carries its
owner's host, pid and process start time, and the sweepers remove the ones whose
owner is gone. The start time tells a live owner from a later process that
happens to reuse its pid. Every layer may use this module.
"""

from __future__ import annotations

__all__ = ["HOST", "end_processes_naming", "owner_alive", "owner_token", "processes_naming"]

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

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


def processes_naming(path: str) -> list[int]:
    """This user's processes (other than this one) whose command line names ``path``."""
    found = []
    uid = os.getuid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if path in cmdline.decode("utf-8", "replace"):
            found.append(int(entry.name))
    return found


def end_processes_naming(path: str, wait_s: float = 10.0) -> list[int]:
    """SIGTERM, then SIGKILL, this user's processes whose command line names ``path``.

    Only for paths that are ours and unique (a Ray temp dir, an environment folder),
    so that nothing else can match. Returns the pids found.
    """
    pids = processes_naming(path)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.1)
        if not any(_running(p) for p in pids):
            break
    return pids


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
