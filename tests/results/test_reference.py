from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest

from dlspec_ray.results.metrics import accuracy
from dlspec_ray.results.reference import MAX_LISTED, Check, Verdict, check_reference
from dlspec_ray.results.schema import SCHEMA, rows_from_batch
from dlspec_ray.spec.types import AccuracyExpectation, ExpectedOutput, ReferenceLog, TaskRefs


def reference(accuracy=None, expected=()):
    return ReferenceLog(
        kind="reference",
        id="6f1c2a52-1d0e-4b8e-9a53-0d9d7f0b8c11",
        name="mnist-8-ref",
        version="1.0.0",
        description="",
        path=None,
        task=TaskRefs(model="mnist-8@1.0.0", dataset="mnist-test@1.0.0"),
        accuracy={k: AccuracyExpectation(*v) for k, v in (accuracy or {}).items()},
        expected_outputs=tuple(ExpectedOutput(s, t) for s, t in expected),
    )


def results(predictions, labels=None, k=5, errors=()):
    """One batch per sample, so that any sample can fail on its own."""
    batches = []
    for i, p in enumerate(predictions):
        error = "Traceback ...\nRuntimeError: out of memory" if i in errors else None
        batches.append(
            rows_from_batch(
                [str(i)],
                None if labels is None else [labels[i]],
                {"top_k": np.array([[p, *range(100, 100 + k - 1)]])},
                batch_id=i,
                shard_id=0,
                node_id="n",
                pre_ms=1.0,
                run_ms=1.0,
                post_ms=1.0,
                error=error,
            )
        )
    return pa.Table.from_batches(batches, schema=SCHEMA)


# Ten samples; predictions equal labels for samples 0..8: top1 = 0.9.
PREDICTIONS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 3]
LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
TABLE = results(PREDICTIONS, LABELS)


def verdict_for(ref, table=TABLE):
    return check_reference(ref, accuracy(table), table)


@pytest.mark.parametrize(
    ("value", "tolerance", "passed"),
    [
        (0.9, 0.0, True),
        (0.905, 0.005, True),  # |delta| equals the tolerance up to float rounding
        (0.8995, 0.0005, True),
        (0.91, 0.005, False),
        (0.85, 0.01, False),
        (1.0, 0.0, False),
    ],
)
def test_accuracy_within_tolerance(value, tolerance, passed):
    verdict = verdict_for(reference({"top1": (value, tolerance)}))
    assert verdict.passed is passed
    (check,) = verdict.checks
    assert check.name == "accuracy.top1"
    assert (check.expected, check.actual, check.tolerance) == (value, pytest.approx(0.9), tolerance)
    assert check.delta == pytest.approx(0.9 - value)
    assert check.passed is passed
    assert (check.detail == "") is passed
    if not passed:
        assert "off by" in check.detail and f"{tolerance:g}" in check.detail


def test_one_failing_check_fails_the_verdict():
    verdict = verdict_for(reference({"top1": (0.9, 0.0), "top5": (0.5, 0.01)}))
    assert [c.passed for c in verdict.checks] == [True, False]
    assert not verdict.passed


@pytest.mark.parametrize(
    ("name", "table", "why"),
    [
        ("top1", results([1, 2]), r"no sample without an error has a label"),
        ("top1", results([1, 2], [1, 2], errors={0, 1}), r"no sample without an error has a label"),
        (
            "top10",
            TABLE,
            r"only 5 top_k entries per sample; set the model's top_k option to at least 10",
        ),
        ("top3", TABLE, r"top3 was not computed \(measured: top1, top5\)"),
        ("f1", TABLE, r"f1 was not measured: dlspec-ray measures top-K accuracies"),
    ],
)
def test_metric_named_in_the_log_but_not_measured_fails(name, table, why):
    verdict = verdict_for(reference({name: (0.5, 0.1)}), table)
    (check,) = verdict.checks
    assert not verdict.passed and not check.passed
    assert check.name == f"accuracy.{name}"
    assert check.actual is None and check.delta is None
    assert check.expected == 0.5
    assert pytest.approx(check.tolerance) == 0.1
    assert re.search(why, check.detail), check.detail


def test_expected_outputs_that_match_pass():
    verdict = verdict_for(reference(expected=[("0", 7), ("9", 3), ("4", 4)]))
    assert verdict.passed
    (check,) = verdict.checks
    assert (check.name, check.expected, check.actual, check.delta) == ("expected_outputs", 3, 3, 0)
    assert check.detail == ""


def test_expected_outputs_report_mismatch_missing_and_failed_samples():
    table = results(PREDICTIONS, LABELS, errors={2})
    verdict = verdict_for(reference(expected=[("0", 7), ("1", 5), ("missing", 1), ("2", 1)]), table)
    assert not verdict.passed
    (check,) = verdict.checks
    assert (check.expected, check.actual, check.delta) == (4, 1, -3)
    assert check.detail.startswith("3 of 4 differ: ")
    assert "sample '1': expected top1 5, got 2" in check.detail
    assert "sample 'missing' is missing from the results" in check.detail
    assert "sample '2' failed: RuntimeError: out of memory" in check.detail


def test_expected_outputs_list_only_the_first_few_problems():
    n = MAX_LISTED + 3
    verdict = verdict_for(reference(expected=[(f"nope-{i}", 0) for i in range(n)]))
    detail = verdict.checks[0].detail
    assert detail.count("is missing") == MAX_LISTED
    assert detail.endswith("and 3 more")
    assert f"{n} of {n} differ" in detail


def test_a_log_with_nothing_to_check_passes():
    verdict = verdict_for(reference())
    assert verdict == Verdict(passed=True, checks=[], reference="mnist-8-ref@1.0.0")


def test_verdict_as_dict_is_json():
    verdict = verdict_for(reference({"top1": (0.9, 0.001), "top10": (0.99, 0.01)}, [("9", 3)]))
    d = verdict.as_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["verdict"] == "FAIL"
    assert d["reference"] == "mnist-8-ref@1.0.0"
    assert [c["name"] for c in d["checks"]] == [
        "accuracy.top1",
        "accuracy.top10",
        "expected_outputs",
    ]
    assert [c["passed"] for c in d["checks"]] == [True, False, True]
    assert set(d["checks"][0]) == {
        "name",
        "expected",
        "actual",
        "delta",
        "tolerance",
        "passed",
        "basis",
        "detail",
    }
    assert Verdict(passed=True).as_dict()["verdict"] == "PASS"
    assert Check("x", 1, 1, 0, 0, True).as_dict()["detail"] == ""


def test_a_subset_skips_the_accuracy_checks_and_says_where_the_log_lies():
    ref = reference({"top1": (0.99, 0.001)})
    assert not verdict_for(ref).passed  # 0.9 on the whole dataset: a real failure
    verdict = check_reference(ref, accuracy(TABLE), TABLE, subset_of=10_000)
    assert verdict.passed
    (check,) = verdict.checks
    assert (check.basis, check.passed, check.actual) == ("skipped", True, 0.9)
    assert check.detail == (
        "skipped (a subset of 10 of 10,000 samples): the log's 0.99 is the whole dataset's; it "
        "lies inside this subset's 95% interval [0.5958, 0.9821]"
    ).replace("inside", "outside")
    assert check.as_dict()["basis"] == "skipped"


def test_a_subset_still_checks_the_expected_outputs_it_covers():
    ref = reference(expected=[("3", 0), ("9", 3), ("zz-not-in-the-subset", 1)])
    verdict = check_reference(ref, accuracy(TABLE), TABLE, subset_of=10_000)
    assert verdict.passed
    (check,) = verdict.checks
    assert (check.expected, check.actual, check.basis) == (2, 2, "exact")
    assert check.detail == "1 of the log's samples are outside this subset"
    wrong = reference(expected=[("3", 5), ("zz-not-in-the-subset", 1)])
    verdict = check_reference(wrong, accuracy(TABLE), TABLE, subset_of=10_000)
    assert not verdict.passed
    assert verdict.checks[0].detail.startswith("1 of 1 differ: sample '3': expected top1 5")
    # The whole dataset: a sample the results lack is missing, not outside.
    assert not check_reference(ref, accuracy(TABLE), TABLE).passed
