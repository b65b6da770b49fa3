"""LoadGen's own logs, read back into a typed report.

LoadGen is the authority on a scenario's metric and on VALID/INVALID, so nothing
here recomputes them: the headline metric and the verdict come from
``mlperf_log_summary.txt`` (what a submitter reads), and the numbers and reasons
behind them from ``mlperf_log_detail.txt``, whose ``:::MLLOG`` lines are JSON.
"""

from __future__ import annotations

__all__ = ["LOG_FILES", "PerformanceReport", "read_detail", "read_performance", "read_summary"]

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOG_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json")

# Which summary line is each scenario's metric, and in what unit it is reported.
_METRIC_LINE = {
    "Offline": (re.compile(r"^Samples per second\s*:\s*(\S+)"), "samples_per_s", 1.0),
    "SingleStream": (re.compile(r"^([\d.]+)th percentile latency \(ns\)\s*:\s*(\S+)"), "ms", 1e-6),
    "MultiStream": (re.compile(r"^([\d.]+)th percentile latency \(ns\)\s*:\s*(\S+)"), "ms", 1e-6),
    "Server": (re.compile(r"^Completed samples per second\s*:\s*(\S+)"), "samples_per_s", 1.0),
}
_CONSTRAINT = re.compile(r"^\s+(.+?)\s*:\s*(Yes|NO)\s*$")


@dataclass(frozen=True)
class PerformanceReport:
    """One performance-mode LoadGen test, as its logs report it.

    ``metric`` is the scenario's MLPerf metric: offline samples/s, single-stream 90th and
    multi-stream 99th percentile latency (ms, the percentile the settings asked for),
    and for the server the completed samples/s, which counts only when ``latency_bound_met``.
    """

    scenario: str
    valid: bool
    result: str  # "VALID" or "INVALID", LoadGen's word
    reasons: tuple[str, ...]
    metric_name: str
    metric: float | None
    metric_unit: str
    latency_ms: dict[str, float]
    query_count: int | None
    samples_per_s: float | None
    scheduled_qps: float | None = None
    completed_qps: float | None = None
    latency_bound_met: bool | None = None
    early_stopping_ms: float | None = None
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["warnings"] = list(self.warnings)
        out["errors"] = list(self.errors)
        return {k: v for k, v in out.items() if v is not None}


def read_summary(path: Path) -> dict[str, Any]:
    """The summary's ``key : value`` lines of its first section, and the constraint lines
    (``Min duration satisfied : NO``) as ``{constraint: bool}`` under ``"constraints"``."""
    values: dict[str, Any] = {"constraints": {}, "recommendations": [], "metric_line": None}
    section = 0
    in_recommendations = False
    for line in path.read_text().splitlines():
        if line.startswith("===="):
            section += 1
            continue
        if section > 2:
            break
        constraint = _CONSTRAINT.match(line)
        if constraint:
            values["constraints"][constraint[1]] = constraint[2] == "Yes"
            continue
        if line.startswith("Recommendations:"):
            in_recommendations = True
            continue
        if in_recommendations:
            if line.startswith(" * "):
                values["recommendations"].append(line[3:].strip())
                continue
            in_recommendations = False
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            values[key.strip()] = value.strip()
            if values.get("metric_line") is None and key.strip() not in (
                "SUT name",
                "Scenario",
                "Mode",
            ):
                values["metric_line"] = line
    return values


def read_detail(path: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """``{key: value}`` of the detail log's entries (the last one wins), its error and its
    warning messages."""
    entries: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith(":::MLLOG "):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG ") :])
        except json.JSONDecodeError:
            continue
        key, value = entry.get("key"), entry.get("value")
        entries[key] = value
        meta = entry.get("metadata") or {}
        if meta.get("is_error"):
            errors.append(f"{key}: {value}")
        elif meta.get("is_warning") and not str(value).startswith("Logging allocation"):
            warnings.append(f"{key}: {value}")
    return entries, errors, warnings


def read_performance(log_dir: Path, scenario: str) -> PerformanceReport:
    """The report of the performance test whose logs are in ``log_dir`` (LoadGen's
    scenario name)."""
    summary = read_summary(log_dir / "mlperf_log_summary.txt")
    detail, errors, warnings = read_detail(log_dir / "mlperf_log_detail.txt")
    result = str(summary.get("Result is") or detail.get("result_validity") or "INVALID")
    metric_name, metric, unit = _metric(summary, scenario)
    reasons = [f"{name}: NO" for name, ok in summary["constraints"].items() if not ok]
    reasons += summary["recommendations"]
    invalid = str(detail.get("result_invalid_reason") or "").strip()
    if invalid and invalid not in reasons and invalid.rstrip(". ") not in " ".join(reasons):
        reasons.append(invalid)
    reasons += errors
    latency = {
        _percentile_name(k): v * 1e-6
        for k, v in detail.items()
        if isinstance(k, str) and re.fullmatch(r"result_[\d.]+_percentile_latency_ns", k)
    }
    for name in ("min", "max", "mean"):
        if f"result_{name}_latency_ns" in detail:
            latency[name] = detail[f"result_{name}_latency_ns"] * 1e-6
    samples_per_s = detail.get("result_samples_per_second")
    if samples_per_s is None:
        samples_per_s = detail.get("result_completed_samples_per_sec")
    if samples_per_s is None and "result_qps_with_loadgen_overhead" in detail:
        samples_per_s = detail["result_qps_with_loadgen_overhead"]
    early = detail.get("early_stopping_latency_ss") or detail.get("early_stopping_latency_ms")
    server = scenario == "Server"
    return PerformanceReport(
        scenario=scenario,
        valid=result == "VALID",
        result=result,
        reasons=tuple(dict.fromkeys(reasons)),
        metric_name=metric_name,
        metric=metric,
        metric_unit=unit,
        latency_ms=latency,
        query_count=detail.get("result_query_count"),
        samples_per_s=None if samples_per_s is None else float(samples_per_s),
        scheduled_qps=_float(detail.get("result_scheduled_samples_per_sec")) if server else None,
        completed_qps=_float(detail.get("result_completed_samples_per_sec")) if server else None,
        latency_bound_met=bool(detail.get("result_perf_constraints_met")) if server else None,
        early_stopping_ms=None if not early or scenario != "SingleStream" else early * 1e-6,
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


def _metric(summary: dict[str, Any], scenario: str) -> tuple[str, float | None, str]:
    pattern, unit, scale = _METRIC_LINE[scenario]
    line = summary.get("metric_line") or ""
    match = pattern.match(line)
    if match is None:
        for text in summary:
            if isinstance(text, str) and pattern.match(f"{text} : {summary[text]}"):
                match = pattern.match(f"{text} : {summary[text]}")
                break
    if match is None:
        return _metric_name(scenario, None), None, unit
    groups = match.groups()
    value = _float(groups[-1])
    percentile = groups[0] if len(groups) == 2 else None
    return _metric_name(scenario, percentile), None if value is None else value * scale, unit


def _metric_name(scenario: str, percentile: str | None) -> str:
    if scenario == "Offline":
        return "samples_per_s"
    if scenario == "Server":
        return "completed_samples_per_s"
    return f"p{float(percentile):g}_latency_ms" if percentile else "latency_ms"


def _percentile_name(key: str) -> str:
    value = float(key.split("_")[1])
    return f"p{value:g}"


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
