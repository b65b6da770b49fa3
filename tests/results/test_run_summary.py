"""``RunSummary``: summary.json read through one typed definition, whatever wrote it."""

from __future__ import annotations

import numpy as np

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
