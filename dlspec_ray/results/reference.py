"""The verdict of a run against a reference log: did we get the author's answer?

Every expectation of the log becomes one ``Check`` that records expected,
actual and delta, so a failure says by how much, not only that it failed.
Performance numbers of a log are recorded by the author for comparison and
are not checked: speed depends on the machine.

The checks need a few facts of the run besides its accuracy (``ReferenceEvidence``):
how many samples were scored, the shortest ``top_k``, and the rows of the
samples the log names. ``ReferenceTally`` gathers them from shards fed one at a
time, keeping only those few rows.
"""

from __future__ import annotations

__all__ = [
    "MAX_LISTED",
    "Check",
    "ReferenceEvidence",
    "ReferenceTally",
    "Verdict",
    "check_reference",
]

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dlspec_ray.results.metrics import accuracy_interval, labelled_samples
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
    # What decided it: "tolerance" (|delta| within the log's tolerance), "exact" (expected
    # outputs), or "skipped": not decided, because the run measured a subset. A skipped
    # check does not fail the verdict; its detail says why, and where the log's value lies
    # against the subset's 95% interval.
    basis: str = "tolerance"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "delta": self.delta,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "basis": self.basis,
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


@dataclass(frozen=True)
class ReferenceEvidence:
    """What the checks of a reference log read from a run, besides its accuracy.

    ``labelled``: samples with a label and no error; ``shortest_top_k``: the
    fewest ``top_k`` entries of a sample without an error (0 when there is
    none); ``samples``: ``(prediction, top_k, error)`` of the first row of each
    sample id the log expects outputs for, when the run has it.
    """

    labelled: int
    shortest_top_k: int
    samples: Mapping[str, tuple[int | None, list[int] | None, str | None]]

    @classmethod
    def from_table(cls, table: pa.Table, reference: ReferenceLog) -> ReferenceEvidence:
        tally = ReferenceTally(reference)
        tally.add(table)
        return tally.evidence(labelled_samples(table))


class ReferenceTally:
    """``ReferenceEvidence`` gathered from shards fed one at a time with ``add``.

    Keeps the shortest ``top_k`` and the rows of the samples ``reference``
    expects outputs for (a handful), nothing else.
    """

    def __init__(self, reference: ReferenceLog):
        self.wanted = [e.sample for e in reference.expected_outputs]
        self._wanted = pa.array(self.wanted, type=pa.string())
        self._shortest: int | None = None
        self._samples: dict[str, tuple[int | None, list[int] | None, str | None]] = {}

    @property
    def columns(self) -> tuple[str, ...]:
        """The result columns ``add`` reads."""
        if self.wanted:
            return ("sample_id", "prediction", "top_k", "error")
        return ("top_k", "error")

    def add(self, table: pa.Table) -> None:
        ok = table.filter(pc.is_null(table.column("error")))
        if ok.num_rows:
            shortest = pc.min(pc.list_value_length(ok.column("top_k"))).as_py()
            if shortest is not None:
                self._shortest = (
                    shortest if self._shortest is None else min(self._shortest, shortest)
                )
        if not self.wanted:
            return
        found = table.filter(pc.is_in(table.column("sample_id"), value_set=self._wanted))
        # The first row of a sample wins should a sample appear twice.
        for row in found.select(["sample_id", "prediction", "top_k", "error"]).to_pylist():
            self._samples.setdefault(
                row["sample_id"], (row["prediction"], row["top_k"], row["error"])
            )

    def evidence(self, labelled: int) -> ReferenceEvidence:
        return ReferenceEvidence(
            labelled=int(labelled),
            shortest_top_k=self._shortest or 0,
            samples=dict(self._samples),
        )


def check_reference(
    reference: ReferenceLog,
    accuracy: dict[str, float],
    table: pa.Table | ReferenceEvidence,
    *,
    subset_of: int | None = None,
) -> Verdict:
    """Compare measured accuracy and per-sample predictions with ``reference``.

    ``table`` is the run's rows, or the ``ReferenceEvidence`` gathered from them
    (``ReferenceTally``) when the rows are streamed. A log with nothing to check
    passes: it only records the task and notes.

    ``subset_of``: the dataset's whole sample count when the run covered only some of
    it (``--limit``). The log's accuracy is the whole dataset's, so a subset's accuracy
    checks are skipped, never failed (a subset of 500 can honestly score 0.986 against
    0.989); each says whether the log's value lies in the subset's 95% interval. The
    expected outputs of the samples in the subset are still checked.
    """
    evidence = (
        table
        if isinstance(table, ReferenceEvidence)
        else ReferenceEvidence.from_table(table, reference)
    )
    checks = []
    for name, exp in reference.accuracy.items():
        check = _accuracy_check(name, exp.value, exp.tolerance, accuracy, evidence)
        if subset_of is not None and check.actual is not None:
            check = _skipped_for_subset(check, evidence.labelled, subset_of)
        checks.append(check)
    if reference.expected_outputs:
        checks.append(
            _expected_outputs_check(
                reference.expected_outputs, evidence, subset=subset_of is not None
            )
        )
    return Verdict(passed=all(c.passed for c in checks), checks=checks, reference=reference.ref)


def _skipped_for_subset(check: Check, labelled: int, subset_of: int) -> Check:
    low, high = accuracy_interval(check.actual, labelled)
    where = "inside" if low <= check.expected <= high else "outside"
    detail = (
        f"skipped (a subset of {labelled:,} of {subset_of:,} samples): the log's "
        f"{check.expected:g} is the whole dataset's; it lies {where} this subset's 95% "
        f"interval [{low:.4f}, {high:.4f}]"
    )
    return replace(check, passed=True, basis="skipped", detail=detail)


def _accuracy_check(
    name: str,
    value: float,
    tolerance: float,
    measured: dict[str, float],
    evidence: ReferenceEvidence,
) -> Check:
    check_name = f"accuracy.{name}"
    if name not in measured:
        return Check(
            check_name,
            value,
            None,
            None,
            tolerance,
            False,
            _why_unmeasured(name, measured, evidence),
        )
    actual = measured[name]
    delta = actual - value
    passed = not math.isnan(delta) and abs(delta) <= tolerance + _EPS
    detail = "" if passed else f"off by {delta:+.6g}, more than the tolerance {tolerance:g}"
    return Check(check_name, value, actual, delta, tolerance, passed, detail)


def _why_unmeasured(name: str, measured: dict[str, float], evidence: ReferenceEvidence) -> str:
    m = _TOP_K_NAME.match(name)
    if m is None:
        have = ", ".join(sorted(measured)) or "none"
        return (
            f"{name} was not measured: dlspec-ray measures top-K accuracies (topK); "
            f"measured: {have}"
        )
    if evidence.labelled == 0:
        return f"{name} was not measured: no sample without an error has a label"
    k = int(m.group(1))
    shortest = evidence.shortest_top_k
    if shortest < k:
        return (
            f"{name} was not measured: post-process returned only {shortest} top_k "
            f"entries per sample; set the model's top_k option to at least {k}"
        )
    have = ", ".join(sorted(measured)) or "none"
    return f"{name} was not computed (measured: {have})"


def _expected_outputs_check(
    expected: tuple[ExpectedOutput, ...], evidence: ReferenceEvidence, *, subset: bool = False
) -> Check:
    """Each expected output against the run's row of that sample. In a subset, the samples
    it does not cover are left out, not missing."""
    got = evidence.samples
    outside = [e for e in expected if e.sample not in got] if subset else []
    expected = tuple(e for e in expected if e not in outside)
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
    if outside:
        covered = f"{len(outside)} of the log's samples are outside this subset"
        detail = f"{detail}; {covered}" if detail else covered
    if subset and not expected:
        return Check("expected_outputs", 0, 0, 0, 0, True, detail, basis="skipped")
    return Check(
        "expected_outputs", total, matched, matched - total, 0, not problems, detail, "exact"
    )


def _shorten(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[-1] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 3] + "..."


def with_finite_check(verdict: Mapping[str, Any], nonfinite: int) -> dict[str, Any]:
    """``verdict`` (as in summary.json) with a check that no output was NaN or inf.

    A reference log describes a model that computes numbers; outputs that are not
    numbers fail it, whatever the accuracy happened to be. Unchanged when all are finite.
    """
    if nonfinite == 0:
        return dict(verdict)
    check = Check(
        name="finite outputs",
        expected=0,
        actual=int(nonfinite),
        delta=float(nonfinite),
        tolerance=0.0,
        passed=False,
        detail=f"{nonfinite} sample(s) have NaN or inf in their outputs",
    )
    checks = [*verdict.get("checks", []), check.as_dict()]
    return {**verdict, "verdict": "FAIL", "checks": checks}
