"""Byte sizes as people write them ("16GiB", "512MB") and as Ray wants them (int bytes)."""

from __future__ import annotations

__all__ = ["BYTE_SIZE_PATTERN", "parse_byte_size"]

import re

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

BYTE_SIZE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([KMGTkmgt]i?[Bb]|[Bb])?\s*$"
_SIZE = re.compile(BYTE_SIZE_PATTERN)


def parse_byte_size(value: int | str) -> int:
    """Bytes from an int or a string with a KB/MB/GB/TB or KiB/MiB/GiB/TiB suffix."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"expected a size of at least 0 bytes, got {value}")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"expected a size in bytes: an integer or a number with a unit such as "
            f"'512MB' or '16GiB' (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {value!r}"
        )
    number, unit = match.groups()
    scale = _UNITS[(unit or "").lower()]
    return int(number) * scale if number.isdigit() else int(float(number) * scale)
