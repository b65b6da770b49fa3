"""Comparing two runs sample by sample: agreement, accuracy delta, divergence, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlspec_ray.results.compare import IncomparableRuns, compare_run_dirs

RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(12, 10)).astype(np.float32)
LABELS = np.argmax(LOGITS, axis=1)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_identical_runs_agree_everywhere(runs_factory):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS, LABELS, batch_size=5)  # other batching: joined on sample ids
    c = compare_run_dirs(a, b)
    assert (c.compared, c.shared, c.only_a, c.only_b) == (12, 12, 0, 0)
    assert c.agreement == {"compared": 12, "agree": 12, "rate": 1.0}
    assert c.disagreements == [] and c.disagreement_count == 0
    assert c.accuracy["top1"] == {"a": 1.0, "b": 1.0, "delta": 0.0}
    assert c.divergence["max_abs_diff"] == 0.0
    assert c.divergence["kl_max"] == pytest.approx(0.0, abs=1e-12)
    assert c.divergence["js_max"] == pytest.approx(0.0, abs=1e-12)


def test_differences_are_measured_and_listed(runs_factory):
    other = LOGITS.copy()
    other[[1, 4], LABELS[[1, 4]]] -= 10.0  # two samples lose their top class
    a = runs_factory("a", LOGITS, LABELS, wall_s=1.0)
    b = runs_factory("b", other, LABELS, wall_s=4.0)
    c = compare_run_dirs(a, b)
    assert c.agreement["agree"] == 10 and c.disagreement_count == 2
    assert [d.sample_id for d in c.disagreements] == ["1", "4"]
    assert all(d.a == d.label and d.b != d.label for d in c.disagreements)
    assert c.accuracy["top1"]["delta"] == pytest.approx(-2 / 12)
    assert c.throughput["ratio"] == pytest.approx(0.25)
    assert c.divergence["max_abs_diff"] == pytest.approx(10.0)
    p, q = softmax(LOGITS.astype(np.float64)), softmax(other.astype(np.float64))
    kl = (p * np.log(p / q)).sum(axis=1)
    m = (p + q) / 2
    js = 0.5 * (p * np.log(p / m)).sum(axis=1) + 0.5 * (q * np.log(q / m)).sum(axis=1)
    assert c.divergence["kl_mean"] == pytest.approx(kl.mean(), rel=1e-5)
    assert c.divergence["js_max"] == pytest.approx(js.max(), rel=1e-5)
    assert 0 < c.divergence["js_max"] <= math.log(2)
    text = c.format()
    assert "2 disagree" in text and "KL(A||B)" in text and "B/A 0.250x" in text


def test_a_subset_run_is_compared_on_the_shared_samples(runs_factory):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS[:5], LABELS[:5])
    c = compare_run_dirs(a, b)
    assert (c.shared, c.only_a, c.only_b) == (5, 7, 0)
    assert any("different samples" in note for note in c.notes)


def test_failed_samples_are_left_out_and_said(runs_factory):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS, LABELS, error_batches=(0,))
    c = compare_run_dirs(a, b)
    assert c.compared == 8
    assert any("4 shared sample(s) failed" in note for note in c.notes)


def test_outputs_of_different_widths_are_not_diverged(runs_factory):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS[:, :8], LABELS)
    c = compare_run_dirs(a, b)
    assert c.divergence["compared"] == 0
    assert "different widths (10 vs 8)" in c.divergence["reason"]


@pytest.mark.parametrize(
    ("b_kwargs", "shared_samples", "message"),
    [
        (
            {"dataset": "other"},
            False,
            r"dataset digits@1\.0\.0.*dataset other@1\.0\.0.*--shared-samples",
        ),
        ({"ids": [f"x{i}" for i in range(12)]}, False, "share no sample id"),
        ({"dataset": "other", "ids": [f"x{i}" for i in range(12)]}, True, "share no sample id"),
    ],
)
def test_runs_that_cannot_be_compared_are_refused(runs_factory, b_kwargs, shared_samples, message):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS, LABELS, **b_kwargs)
    with pytest.raises(IncomparableRuns, match=message) as info:
        compare_run_dirs(a, b, shared_samples=shared_samples)
    assert info.value.exit_code == 2


def test_different_datasets_compare_on_shared_ids_when_asked(runs_factory):
    a = runs_factory("a", LOGITS, LABELS)
    b = runs_factory("b", LOGITS[:6], LABELS[:6], dataset="other")
    c = compare_run_dirs(a, b, shared_samples=True)
    assert c.compared == 6
    assert any("different datasets" in note for note in c.notes)
    assert c.as_dict()["a"]["dataset"] == "digits@1.0.0"


def _rows(digests_per_batch, batch_size=2):
    """A results table of len(digests_per_batch) batches, each with its stage digests."""
    import pyarrow as pa

    from dlspec_ray.results import rows_from_batch

    batches = []
    for b, digests in enumerate(digests_per_batch):
        ids = [str(b * batch_size + i) for i in range(batch_size)]
        logits = np.eye(batch_size, 4, dtype=np.float32)
        batches.append(
            rows_from_batch(
                ids, np.zeros(batch_size, np.int64), {"top_k": np.zeros((batch_size, 1), int),
                                                       "output": logits},
                batch_id=b, shard_id=0, node_id="n", pre_ms=1, run_ms=1, post_ms=1,
                digests=digests,
            )
        )  # fmt: skip
    return pa.Table.from_batches(batches)


SAME = {"pre": "p", "run": "r", "post": "q"}


@pytest.mark.parametrize(
    ("b", "first", "identical"),
    [
        ([SAME, SAME], None, {"pre": 2, "run": 2, "post": 2}),
        ([SAME, {**SAME, "run": "x", "post": "y"}], "run", {"pre": 2, "run": 1, "post": 1}),
        ([{"pre": "z", "run": "x", "post": "y"}, SAME], "pre-process", {"pre": 1, "run": 1}),
        ([{"pre": None, "run": "r", "post": "q"}] * 2, None, {"run": 2, "post": 2}),
    ],
)
def test_the_stage_view_names_the_first_stage_where_two_runs_part(b, first, identical):
    from dlspec_ray.results.compare import stage_view

    view = stage_view(_rows([SAME, SAME]), _rows(b))
    assert view["first_difference"] == first
    for short, count in identical.items():
        assert view[short]["identical"] == count and view[short]["batches"] == 2


def test_batches_made_of_other_samples_are_not_compared_stage_by_stage():
    from dlspec_ray.results.compare import stage_view

    a = _rows([SAME, SAME], batch_size=2)
    b = _rows([SAME], batch_size=4)  # the same 4 samples in one batch
    view = stage_view(a, b)
    assert view["comparable_batches"] == 0 and "pre" not in view
