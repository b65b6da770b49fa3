"""The verdict of a run against a reference log: did we get the author's answer?

Every expectation of the log becomes one ``Check`` that records expected,
actual and delta, so a failure says by how much, not only that it failed.
Performance numbers of a log are recorded by the author for comparison and
are not checked: speed depends on the machine.
"""

from __future__ import annotations

__all__ = ["MAX_LISTED", "Check", "Verdict", "check_reference"]

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dlspec_ray.results.metrics import labelled_samples
from dlspec_ray.spec.types import ExpectedOutput, ReferenceLog

# How many mismatching samples a check's detail names before it says "and N more".
MAX_LISTED = 5
# Slack for the float rounding of a value written in YAML with a tolerance of exactly 0.
_EPS = 1e-12
_TOP_K_NAME = re.compile(r"^top(\d+)$")


@dataclass(frozen=True)
class Check:
    name: str
    expected: Any
    actual: Any
    delta: float | None
    tolerance: float | None
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "delta": self.delta,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: list[Check] = field(default_factory=list)
    reference: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "reference": self.reference,
            "checks": [c.as_dict() for c in self.checks],
        }


def check_reference(
    reference: ReferenceLog, accuracy: dict[str, float], table: pa.Table
) -> Verdict:
    """Compare measured accuracy and per-sample predictions with ``reference``.

    A log with nothing to check passes: it only records the task and notes.
    """
    checks = [
        _accuracy_check(name, exp.value, exp.tolerance, accuracy, table)
        for name, exp in reference.accuracy.items()
    ]
    if reference.expected_outputs:
        checks.append(_expected_outputs_check(reference.expected_outputs, table))
    return Verdict(passed=all(c.passed for c in checks), checks=checks, reference=reference.ref)


def _accuracy_check(
    name: str, value: float, tolerance: float, measured: dict[str, float], table: pa.Table
) -> Check:
    check_name = f"accuracy.{name}"
    if name not in measured:
        return Check(
            check_name, value, None, None, tolerance, False, _why_unmeasured(name, measured, table)
        )
    actual = measured[name]
    delta = actual - value
    passed = not math.isnan(delta) and abs(delta) <= tolerance + _EPS
    detail = "" if passed else f"off by {delta:+.6g}, more than the tolerance {tolerance:g}"
    return Check(check_name, value, actual, delta, tolerance, passed, detail)


def _why_unmeasured(name: str, measured: dict[str, float], table: pa.Table) -> str:
    m = _TOP_K_NAME.match(name)
    if m is None:
        have = ", ".join(sorted(measured)) or "none"
        return (
            f"{name} was not measured: dlspec-ray measures top-K accuracies (topK); "
            f"measured: {have}"
        )
    if labelled_samples(table) == 0:
        return f"{name} was not measured: no sample without an error has a label"
    k = int(m.group(1))
    ok = table.filter(pc.is_null(table.column("error")))
    shortest = pc.min(pc.list_value_length(ok.column("top_k"))).as_py() or 0
    if shortest < k:
        return (
            f"{name} was not measured: post-process returned only {shortest} top_k "
            f"entries per sample; set the model's top_k option to at least {k}"
        )
    have = ", ".join(sorted(measured)) or "none"
    return f"{name} was not computed (measured: {have})"


def _expected_outputs_check(expected: tuple[ExpectedOutput, ...], table: pa.Table) -> Check:
    wanted = pa.array([e.sample for e in expected], type=pa.string())
    found = table.filter(pc.is_in(table.column("sample_id"), value_set=wanted)).select(
        ["sample_id", "prediction", "top_k", "error"]
    )
    # The first row of a sample wins should a sample appear twice.
    got: dict[str, tuple[int | None, list[int] | None, str | None]] = {}
    for row in found.to_pylist():
        got.setdefault(row["sample_id"], (row["prediction"], row["top_k"], row["error"]))
    problems: list[str] = []
    for e in expected:
        if e.sample not in got:
            problems.append(f"sample {e.sample!r} is missing from the results")
            continue
        prediction, top_k, error = got[e.sample]
        if error is not None:
            problems.append(f"sample {e.sample!r} failed: {_shorten(error)}")
        elif prediction != e.top1:
            problems.append(f"sample {e.sample!r}: expected top1 {e.top1}, got {prediction}")
        elif e.top5 is not None and set((top_k or [])[:5]) != set(e.top5):
            problems.append(
                f"sample {e.sample!r}: expected top5 {sorted(e.top5)} (any order), got "
                f"{sorted((top_k or [])[:5])}"
            )
    total = len(expected)
    matched = total - len(problems)
    detail = ""
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = len(problems) - MAX_LISTED
        detail = f"{len(problems)} of {total} differ: {listed}" + (
            f"; and {more} more" if more > 0 else ""
        )
    return Check("expected_outputs", total, matched, matched - total, 0, not problems, detail)


def _shorten(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[-1] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 3] + "..."
