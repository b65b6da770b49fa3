"""The bounds on fetching and unpacking, each a keyword argument or an environment variable.

- ``DLSPEC_RAY_DOWNLOAD_DEADLINE_S`` (default 1800 s): the most one artifact's
  download may take, all its retries and waits included, on top of the connect and
  read timeouts (which only bound one connection attempt and one read). A server
  that sends a byte every few seconds never trips a read timeout; the deadline ends it.
- ``DLSPEC_RAY_MAX_UNPACKED_BYTES`` (default 64 GiB): the most one archive may unpack
  to. Larger than the datasets an evaluation usually reads (ImageNet's validation set
  is 6.4 GB, COCO's train images 18 GB), smaller than the free disk of a typical node,
  so an archive that would fill the disk fails first; raise it for bigger datasets.
- ``DLSPEC_RAY_MAX_COMPRESSION_RATIO`` (default 200): the most an archive may unpack
  to per byte of archive, once it has unpacked more than ``RATIO_FLOOR`` bytes. Real
  data rarely compresses beyond 20:1 (text about 10:1, images and audio about 1:1),
  while a deflate bomb of zeros is about 1000:1.

A keyword given to ``fetch``/``safe_unpack`` wins over the variable; bad values are
usage errors (exit code 2) that name the variable.
"""

from __future__ import annotations

__all__ = [
    "DEADLINE_ENV",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_UNPACKED_BYTES",
    "MAX_RATIO_ENV",
    "MAX_UNPACKED_ENV",
    "RATIO_FLOOR",
    "download_deadline_s",
    "format_bytes",
    "max_compression_ratio",
    "max_unpacked_bytes",
]

import math
import os
import re

from dlspec_ray.errors import UsageError

DEADLINE_ENV = "DLSPEC_RAY_DOWNLOAD_DEADLINE_S"
MAX_UNPACKED_ENV = "DLSPEC_RAY_MAX_UNPACKED_BYTES"
MAX_RATIO_ENV = "DLSPEC_RAY_MAX_COMPRESSION_RATIO"

DEFAULT_DEADLINE_S = 30 * 60.0
DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024**3
DEFAULT_MAX_RATIO = 200.0
# Below this many unpacked bytes the ratio is not checked: a 2 KB archive of a
# 1 MB mostly-empty file is harmless, whatever its ratio.
RATIO_FLOOR = 16 * 1024**2

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def download_deadline_s(value: float | None = None) -> float:
    """``value``, else ``$DLSPEC_RAY_DOWNLOAD_DEADLINE_S``, else 30 minutes."""
    if value is None:
        value = _env_float(DEADLINE_ENV, DEFAULT_DEADLINE_S, "seconds, e.g. 1800")
        where = DEADLINE_ENV
    else:
        where = "deadline_s"
    if not value > 0 or math.isinf(value):
        raise UsageError(f"{where} must be a positive number of seconds, got {value!r}.")
    return float(value)


def max_unpacked_bytes(value: int | None = None) -> int:
    """``value``, else ``$DLSPEC_RAY_MAX_UNPACKED_BYTES`` (bytes, or with KiB/MiB/GiB/TiB)."""
    if value is None:
        text = os.environ.get(MAX_UNPACKED_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_UNPACKED_BYTES
        match = _SIZE.match(text)
        if not match or float(match.group(1)) * _UNITS[match.group(2).lower()] < 1:
            raise UsageError(
                f"{MAX_UNPACKED_ENV}={text!r} is not a size; write a number of bytes, "
                "optionally with a unit, e.g. 68719476736 or 64GiB."
            )
        return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"max_unpacked_bytes must be a positive whole number, got {value!r}.")
    return value


def max_compression_ratio(value: float | None = None) -> float:
    """``value``, else ``$DLSPEC_RAY_MAX_COMPRESSION_RATIO``, else 200."""
    if value is None:
        value = _env_float(MAX_RATIO_ENV, DEFAULT_MAX_RATIO, "a ratio, e.g. 200")
        where = MAX_RATIO_ENV
    else:
        where = "max_compression_ratio"
    if not value >= 1 or math.isnan(value):
        raise UsageError(f"{where} must be a number >= 1, got {value!r}.")
    return float(value)


def format_bytes(count: float) -> str:
    """``1.0 MiB``, ``64.0 GiB``: sizes in the units people set limits in."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:g} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def _env_float(name: str, default: float, expected: str) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number; write {expected}.") from None
