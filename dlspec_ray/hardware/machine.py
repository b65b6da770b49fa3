"""The machine a run ran on, in the words a reader compares: CPU model, GPU model, driver.

A hardware manifest says what a task asks for; this says what it got, so a run
directory that moved to another machine still tells where its figures came from.
Read on the host actor's node. GPUs come from ``nvidia-smi`` when it is on the PATH
(an empty list otherwise, as on every machine this project was tested on).
"""

from __future__ import annotations

__all__ = ["describe_machine"]

import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

_GPU_QUERY = "--query-gpu=name,driver_version,memory.total,compute_cap"


@functools.cache
def describe_machine(timeout_s: float = 10) -> dict[str, Any]:
    """``{"cpu_model", "cpu_arch", "cpus", "memory_bytes", "os", "gpus": [...]}``."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "gpus": _gpus(timeout_s),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _gpus(timeout_s: float) -> list[dict[str, str]]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, _GPU_QUERY, "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(dict(zip(("name", "driver", "memory", "compute_cap"), parts, strict=True)))
    return gpus
