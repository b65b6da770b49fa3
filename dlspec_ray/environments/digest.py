"""A digest of a stage's output, taken where the stage ran: do two runs agree bit for bit?

Each batch records one digest per stage (pre-process, run, post-process), so a comparison
of two runs can say at which stage they first part: the same pre-processed tensors and
different logits point at the framework, different tensors at the pre-processing.

It must cost little beside a fast model's stages, and be the same in every environment
(standard library only). SHA-256 cost 15 % of mnist-8's stage time (0.16 ms a batch of 64,
benchmarks/bench_digest.py); so it is CRC-32 (zlib's, about 5.6 GB/s here) of each half
of the bytes, after the dtype and shape: 16 hex digits. Two different outputs share a
digest with a chance of about one in 2**32 per half: it tells which batches agree, it is
not a seal against forgery.
"""

from __future__ import annotations

__all__ = ["output_digest"]

import zlib
from typing import Any


def output_digest(value: Any) -> str | None:
    """The digest of an array, or of a dict of arrays (a post-process's ``top_k``, ``scores``,
    ``output``), or None for anything else (a list of file paths, say)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        arrays = [("", value)]
    elif (
        isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values())
    ):
        arrays = sorted(value.items())
    else:
        return None
    first = second = 0
    for key, array in arrays:
        array = np.ascontiguousarray(array)
        head = f"{key}|{array.dtype.str}|{array.shape}|".encode()
        data = memoryview(array).cast("B") if array.size else memoryview(b"")
        half = len(data) // 2
        first = zlib.crc32(data[:half], zlib.crc32(head, first))
        second = zlib.crc32(data[half:], zlib.crc32(head, second ^ 0xFFFFFFFF))
    return f"{first:08x}{second:08x}"
