"""``RunSummary``: summary.json read through one typed definition, whatever wrote it."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec_ray.results.run_summary import ManifestRef, RunSummary, StageLatency


def test_a_run_directorys_summary_reads_as_typed_fields(runs_factory):
    run = runs_factory("a", np.eye(8, 4, dtype=np.float32), run_id="abcd1234")
    summary = RunSummary.read(run)
    assert summary.run_id == "abcd1234" and summary.status == "ok" and summary.passed
    assert summary.task["model"] == ManifestRef("id-net", "net", "1.0.0")
    assert summary.ref("dataset") == "digits@1.0.0" and summary.ref("reference") is None
    assert summary.samples == 8 and summary.errors == 0 and summary.batch_size == 4
    assert summary.accuracy["top1"] == summary.data["accuracy"]["top1"]
    run_stage = summary.latency_ms["run"]
    assert isinstance(run_stage, StageLatency)
    assert run_stage.p50 == summary.data["latency_ms"]["run"]["p50"]
    assert summary.framework == {"name": "rt", "version": "1.0"}
    assert summary.as_dict() == summary.data


def test_fields_a_run_does_not_have_are_empty_not_errors():
    # As a LoadGen run writes it: no latency per stage, no dlspec_ray_version.
    summary = RunSummary.from_dict(
        {"run_id": "lg", "status": "loadgen_invalid", "latency_ms": {}, "errors": {"count": 0}}
    )
    assert summary.latency_ms == {} and summary.throughput_sps is None
    assert summary.task["model"] is None and summary.reference_verdict is None
    assert not summary.passed
    assert RunSummary.from_dict({}, run_id="folder-name").run_id == "folder-name"


def test_run_facts_leave_out_what_does_not_apply():
    from dlspec_ray.results.run_summary import RunFacts

    facts = RunFacts(
        batches_per_call=2, max_errors=0, limit=None, resources={"CPU": 1.0},
        ray={"embedded": True}, shards=4, faults={"shard_retries": 0},
    )  # fmt: skip
    data = facts.as_dict()
    assert data["batches_per_call"] == 2 and data["limit"] is None and data["shards"] == 4
    for absent in ("first_result_s", "unverified_sources", "pre_actors", "stage_outputs"):
        assert absent not in data
    with_them = RunFacts(**{**facts.__dict__, "unverified_sources": ("images",)}).as_dict()
    assert with_them["unverified_sources"] == ["images"]


def _facts(max_errors: int = 0):
    from dlspec_ray.results.run_summary import RunFacts

    return RunFacts(
        batches_per_call=1, max_errors=max_errors, limit=None, resources={"CPU": 1.0},
        ray={"address": "local"}, shards=1, faults={"actors_lost": 0},
    )  # fmt: skip


def _measured(errors: int = 0, verdict: str | None = "PASS") -> dict:
    reference = None if verdict is None else {"reference": "r@1", "verdict": verdict, "checks": []}
    return {
        "run_id": "r", "samples": 8, "errors": {"count": errors, "batches": 0, "messages": []},
        "accuracy": {"top1": 0.5}, "latency_ms": {}, "reference": reference,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("errors", "max_errors", "verdict", "nonfinite", "status"),
    [
        (0, 0, "PASS", 0, "ok"),
        (0, 0, None, 0, "ok"),
        (1, 0, "PASS", 0, "error_budget_exceeded"),
        (1, 1, "PASS", 0, "ok"),
        (0, 0, "FAIL", 0, "reference_failed"),
        # NaN outputs fail the reference check, whatever the accuracy was.
        (0, 0, "PASS", 3, "reference_failed"),
        (0, 0, None, 3, "ok"),
    ],
)
def test_compose_decides_the_status_from_all_three_parts(
    errors, max_errors, verdict, nonfinite, status
):
    from dlspec_ray.results.run_summary import RunOutcome

    outcome = RunOutcome(nonfinite_samples=nonfinite, quarantine={}, phases_s={"total": 1.0})
    summary = RunSummary.compose(_measured(errors, verdict), _facts(max_errors), outcome)
    assert summary.status == status and summary.as_dict()["status"] == status
    assert summary.nonfinite_samples == nonfinite
    assert summary.data["max_errors"] == max_errors and summary.data["phases_s"]["total"] == 1.0


def test_outcome_leaves_out_what_did_not_happen():
    from dlspec_ray.results.run_summary import RunOutcome

    plain = RunOutcome(nonfinite_samples=0, quarantine={}, phases_s={}).as_dict()
    assert not {"repeats", "resumed", "duplicate_results_dropped", "trace"} & set(plain)
    resumed = RunOutcome(
        nonfinite_samples=0, quarantine={}, phases_s={},
        resumed={"shards_kept": 2, "shards_run": 1}, duplicate_results_dropped=4,
    ).as_dict()  # fmt: skip
    assert resumed["resumed"] == {"shards_kept": 2, "shards_run": 1}
    assert resumed["duplicate_results_dropped"] == 4


def test_the_terminal_table_reads_a_typed_summary_as_it_reads_the_dict(runs_factory):
    from dlspec_ray.results.summary import format_summary_table

    run = runs_factory("t", np.eye(8, 4, dtype=np.float32), run_id="table1")
    summary = RunSummary.read(run)
    text = format_summary_table(summary)
    assert text == format_summary_table(summary.as_dict())
    assert "dlspec-ray run table1" in text and "net@1.0.0  (id-net)" in text
