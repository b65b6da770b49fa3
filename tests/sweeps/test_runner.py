"""A real sweep on the shared test Ray: concurrent tasks, a failing one, and what is written."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import dlspec_ray
from dlspec_ray.cli import main
from dlspec_ray.results.index import read_index
from dlspec_ray.sweeps import load_sweep, sweep

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"

BROKEN_LOAD = """load: |
  def fn(ctx, data):
      raise RuntimeError("this model cannot load")
"""


@pytest.fixture(scope="module")
def swept(ray_session, tmp_path_factory):
    """mnist-8 at two batch sizes, and a copy whose load stage raises: 4 tasks, 2 at once."""
    extra = tmp_path_factory.mktemp("manifests")
    text = (MANIFESTS / "models" / "mnist-8.yaml").read_text()
    text = text.replace("../../assets/", f"{REPO}/assets/")
    text = text.replace("name: mnist-8\n", "name: broken-mnist\n")
    text = text.replace(
        "id: e0b800cb-f477-4b52-b88f-57ef5c2f8694", "id: 0f0e5b3e-58a4-4f39-9d7c-2d1b7ad4f001"
    )
    start, end = text.index("load: |"), text.index("pre-process: |")
    (extra / "broken.yaml").write_text(text[:start] + BROKEN_LOAD + text[end:])
    root = tmp_path_factory.mktemp("results")
    stream = io.StringIO()
    result = sweep(
        {
            "name": "t",
            "models": ["mnist-8", "broken-mnist"],
            "datasets": ["mnist-test"],
            "software": ["onnxruntime-cpu"],
            "environments": ["inline"],
            "batch_sizes": [32, 64],
            "limit": 96,
            "concurrency": 2,
        },
        root,
        manifest_roots=[MANIFESTS, extra],
        stream=stream,
    )
    return result, root, stream.getvalue()


def test_failed_tasks_are_recorded_and_the_others_run(swept):
    result, _, _ = swept
    status = {t["label"]: t["status"] for t in result.summary["tasks"]}
    assert status == {
        "mnist-8-b32": "ok",
        "mnist-8-b64": "ok",
        "broken-mnist-b32": "failed",
        "broken-mnist-b64": "failed",
    }
    failed = result.failed
    assert len(failed) == 2 and "this model cannot load" in failed[0]["error"]
    assert "broken.yaml" in failed[0]["error"]  # the traceback points into the manifest
    assert result.summary["concurrency"] == 2 and result.summary["actors_per_task"] == 1
    text = result.format()
    assert "broken-mnist-b32: " in text and "mnist-8-b64" in text and "failed" in text


def test_each_task_has_its_run_directory_and_one_combined_table(swept):
    result, root, _ = swept
    assert result.out_dir.parent == root and result.out_dir.name.startswith("t-")
    for label in ("mnist-8-b32", "mnist-8-b64"):
        summary = json.loads((result.out_dir / label / "summary.json").read_text())
        assert summary["samples"] == 96 and summary["status"] == "ok"
    assert not (result.out_dir / "broken-mnist-b32").exists()
    table = result.table
    assert table.num_rows == 192
    assert set(table.column("task").to_pylist()) == {"mnist-8-b32", "mnist-8-b64"}
    assert set(table.column("config_batch_size").to_pylist()) == {32, 64}
    assert set(table.column("framework").to_pylist()) == {"onnxruntime"}
    tasks = pq.read_table(result.out_dir / "tasks.parquet")
    assert tasks.num_rows == 4 and tasks.column("status").to_pylist().count("failed") == 2
    frame = result.to_pandas()
    assert len(frame) == 192


def test_the_index_and_the_progress_lines(swept):
    result, root, progress = swept
    records = read_index(root)
    assert sorted(r.label for r in records) == ["mnist-8-b32", "mnist-8-b64"]
    assert all(r.sweep_id == result.summary["sweep_id"] for r in records)
    assert len({r.environment_fingerprint for r in records}) == 1
    assert "sweep t: 4 task(s), up to 2 at once, 1 host actor(s) each" in progress
    assert "FAILED broken-mnist-b32" in progress and "[4/4 done, 0 running, 2 failed" in progress


def test_sweeps_and_runs_load_back_from_disk(swept):
    result, root, _ = swept
    again = load_sweep(root)
    assert again.summary["sweep_id"] == result.summary["sweep_id"]
    assert sorted(again.runs) == ["mnist-8-b32", "mnist-8-b64"]
    run = dlspec_ray.load_run("mnist-8-b64", root)
    assert run.summary["batch_size"] == 64 and run.table.num_rows == 96
    assert [r.label for r in dlspec_ray.list_runs(root)] == [r.label for r in read_index(root)]
    comparison = result.compare("mnist-8-b32", "mnist-8-b64")
    assert comparison.agreement["rate"] == 1.0 and comparison.divergence["max_abs_diff"] == 0.0


def test_the_cli_lists_compares_and_reports(swept, capsys):
    _, root, _ = swept
    assert main(["runs", str(root)]) == 0
    out = capsys.readouterr().out
    assert "mnist-8-b32" in out and "2 run(s) in" in out
    assert main(["compare", "--root", str(root), "mnist-8-b32", "mnist-8-b64"]) == 0
    out = capsys.readouterr().out
    assert "top-1 agree  96 of 96 (100.00%)" in out and "max |A-B| 0" in out
    assert main(["compare", "--json", "--root", str(root), "mnist-8-b32", "mnist-8-b64"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"]["compared"] == 96
    assert main(["report", str(root)]) == 0
    assert capsys.readouterr().out == f"report: {root / 'report.html'}\n"
    assert (root / "report.html").read_text().count("data:image/png;base64,") == 3
    assert main(["runs", str(root), "--rebuild", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def _leak_counts() -> dict[str, int]:
    """What a finished evaluation must not leave: live actors, environment folders, fds."""
    import ray

    from dlspec_ray.environments.shm import env_dir_owner, shm_root

    actors = ray._private.state.actors()  # the GCS's actor table
    return {
        "actors": sum(1 for a in actors.values() if a["State"] == "ALIVE"),
        "environment folders": sum(1 for p in shm_root().iterdir() if env_dir_owner(p.name)),
        "file descriptors": len(os.listdir("/proc/self/fd")),
    }


# Tasks in the leak test: 10 in `make test`; `make soak` runs 50 (about 100 s on 2 cores).
SWEEP_TASKS = int(os.environ.get("DLSPEC_RAY_SOAK_SWEEP_TASKS", "10"))


def test_a_sweep_of_tiny_tasks_loses_nothing_and_leaks_nothing(ray_session, tmp_path):
    spec = {
        "name": "tiny",
        "models": ["mnist-8"],
        "datasets": ["mnist-test"],
        "software": ["onnxruntime-cpu", "onnxruntime-cpu-process"],
        "batch_sizes": list(range(1, SWEEP_TASKS // 2 + 1)),
        "limit": 8,
        "concurrency": 2,
    }
    warm = sweep({**spec, "name": "warm", "batch_sizes": [1]}, tmp_path / "warm-up",
                 manifest_roots=[MANIFESTS], progress=False)  # fmt: skip
    assert warm.summary["failed"] == 0
    before = _leak_counts()
    result = sweep(spec, tmp_path / "results", manifest_roots=[MANIFESTS], progress=False)
    after = _leak_counts()
    assert len(result.summary["tasks"]) == SWEEP_TASKS and result.summary["failed"] == 0
    table = result.table.select(["task", "sample_id"])
    assert table.num_rows == SWEEP_TASKS * 8  # every task's every sample, once
    pairs = set(zip(table["task"].to_pylist(), table["sample_id"].to_pylist(), strict=True))
    assert len(pairs) == SWEEP_TASKS * 8
    assert after == before
