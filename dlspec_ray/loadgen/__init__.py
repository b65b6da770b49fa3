"""MLPerf LoadGen scenarios: LoadGen generates the traffic, dlspec-ray's stage code answers.

``run_loadgen`` runs one task under LoadGen (offline, single-stream, multi-stream or
server; accuracy, performance or both) in this process, next to the loaded model,
so a query pays no Ray hop; ``run_loadgen_in_actor`` does the same inside one Ray
actor placed like dlspec-ray's host actors. Neither ``mlperf_loadgen`` nor ``ray``
is imported until a run starts.
"""

from __future__ import annotations

__all__ = [
    "MODES",
    "SCENARIOS",
    "AccuracyScore",
    "ComplianceCheck",
    "LoadGenResult",
    "LoadGenSettings",
    "PerformanceReport",
    "SUTFailed",
    "evaluate_loadgen",
    "read_performance",
    "run_loadgen",
    "run_loadgen_in_actor",
]

from dlspec_ray.loadgen.accuracy import AccuracyScore, ComplianceCheck
from dlspec_ray.loadgen.actor import run_loadgen_in_actor
from dlspec_ray.loadgen.evaluate import evaluate_loadgen
from dlspec_ray.loadgen.logs import PerformanceReport, read_performance
from dlspec_ray.loadgen.run import LoadGenResult, SUTFailed, run_loadgen
from dlspec_ray.loadgen.settings import MODES, SCENARIOS, LoadGenSettings
