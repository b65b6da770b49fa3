"""Many runs as one table, and the per-task comparison table a sweep prints."""

from __future__ import annotations

import numpy as np

from dlspec_ray.results.combine import (
    METADATA_COLUMNS,
    combine_runs,
    format_task_table,
    run_metadata,
    task_row,
    task_table,
)
from dlspec_ray.results.index import read_summary

LOGITS = np.eye(6, dtype=np.float32)


def test_combined_rows_carry_their_runs_metadata(runs_factory):
    a = runs_factory("a", LOGITS, np.arange(6), run_id="ra")
    b = runs_factory("b", LOGITS[:3], np.arange(3), run_id="rb", software="other", batch_size=2)
    runs = [
        (a, run_metadata(read_summary(a), task="task-a", sweep_id="s")),
        (b, run_metadata(read_summary(b), task="task-b", sweep_id="s")),
    ]
    table = combine_runs(runs)
    assert table.num_rows == 9
    assert table.column_names[-len(METADATA_COLUMNS) :] == METADATA_COLUMNS.names
    rows = table.to_pylist()
    assert {r["task"] for r in rows} == {"task-a", "task-b"}
    b_rows = [r for r in rows if r["run_id"] == "rb"]
    assert b_rows[0]["software"] == "other" and b_rows[0]["config_batch_size"] == 2
    assert b_rows[0]["framework"] == "other" and b_rows[0]["framework_version"] == "1.0"
    assert len({r["environment_fingerprint"] for r in rows}) == 2


def test_combining_nothing_gives_an_empty_table_with_every_column():
    table = combine_runs([])
    assert table.num_rows == 0 and "run_id" in table.column_names and "output" in table.column_names


def test_the_task_table_shows_accuracy_latency_throughput_and_failures(runs_factory):
    a = runs_factory("a", LOGITS, np.arange(6), batch_size=3)
    common = dict(
        model="net@1", dataset="d@1", software="rt@1", hardware=None, environment="inline"
    )
    rows = [
        task_row(task="net-b3", status="ok", summary=read_summary(a), batch_size=3, **common),
        task_row(task="net-b9", status="failed", summary=None, batch_size=9,
                 error="Traceback...\nValueError: the load stage raised", **common),
    ]  # fmt: skip
    table = task_table(rows)
    assert table.num_rows == 2 and table.column("top1").to_pylist() == [1.0, None]
    text = format_task_table(table)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["task", "status", "samples", "top1", "top5"]
    assert "run ms p50/p90/p99" in lines[0]
    assert "1.0000" in lines[1] and "1.50/1.90/1.99" in lines[1]  # run_ms 1.0 and 2.0
    assert lines[2].split()[:3] == ["net-b9", "failed", "-"]
    assert lines[3] == "  net-b9: ValueError: the load stage raised"
