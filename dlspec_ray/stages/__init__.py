"""Stage code put to work: the ``ctx`` it sees, and the timed pre/run/post chain."""

from __future__ import annotations

__all__ = [
    "STAGE_TIMEOUT_EXIT",
    "DatasetIndex",
    "Envelope",
    "ReaderError",
    "Samples",
    "StageChain",
    "Watchdog",
    "build_context",
    "format_stage_error",
    "read_samples",
]

from dlspec_ray.stages.chain import Envelope, StageChain, format_stage_error
from dlspec_ray.stages.context import build_context
from dlspec_ray.stages.reader import DatasetIndex, ReaderError, Samples, read_samples
from dlspec_ray.stages.watchdog import STAGE_TIMEOUT_EXIT, Watchdog
