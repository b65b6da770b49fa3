"""mnist-8 on the real MNIST test set, evaluated on a real local Ray."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import dlspec_ray
from dlspec_ray.cli import main

pytestmark = pytest.mark.usefixtures("ray_session")

# What a whole run directory holds: the run, and what describes it (run.json, the manifest
# copies, the environment and the artifacts' provenance).
RUN_FILES = [
    "artifacts.json",
    "environment.json",
    "ledger.jsonl",
    "manifests",
    "run.json",
    "samples",
    "summary.json",
]
SUMMARY_FIELDS = {
    "run_id",
    "task",
    "environment",
    "samples",
    "errors",
    "accuracy",
    "latency_ms",
    "throughput_sps",
    "wall_s",
    "reference",
}


def test_full_test_set_reproduces_the_zoo_and_passes_the_reference(repo_cwd, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--model", "mnist-8@1.0.0",
            "--dataset", "mnist-test@1.0.0",
            "--software", "onnxruntime-cpu@1.0.0",
            "--hardware", "x86-64-cpu@1.0.0",
            "--reference", "mnist-8-onnxruntime-reference@1.0.0",
            "--batch-size", "256",
            "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "0.9890" in printed.out and "PASS" in printed.out
    assert "10000/10000 samples" in printed.err  # the progress line

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_FIELDS
    assert summary["samples"] == 10_000
    assert summary["accuracy"]["top1"] == pytest.approx(0.989, abs=1e-12)
    assert summary["reference"]["verdict"] == "PASS"
    assert summary["task"]["model"]["ref"] == "mnist-8@1.0.0"
    assert summary["environment"]["kind"] == "inline"
    assert summary["environment"]["framework"]["name"] == "onnxruntime"
    for stage in ("pre", "run", "post"):
        assert set(summary["latency_ms"][stage]) >= {"p50", "p90", "p99", "mean"}
    assert summary["throughput_sps"] > 0

    # Nothing but the run itself, and no staging folders beside it; the run is in the
    # index of the folder that holds it.
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", "run"]
    table = pq.read_table(out / "samples")
    assert table.num_rows == 10_000
    assert sorted(table.column("sample_id").to_pylist(), key=int) == [str(i) for i in range(10_000)]
    assert table.column("node_id").null_count == 0
    assert set(table.column("node_id").to_pylist()) == set(summary["environment"]["nodes"])
    assert table.column("error").null_count == 10_000


def test_every_batch_size_gives_the_same_outputs(repo_cwd, tmp_path):
    """The graph's batch dimension was fixed at 1; the derived graph must not change a bit."""
    outputs = {}
    with dlspec_ray.Session() as session:
        for batch_size in (1, 7, 64):
            result = session.evaluate(
                "mnist-8@1.0.0",
                "mnist-test@1.0.0",
                batch_size=batch_size,
                limit=300,
                out=tmp_path / f"b{batch_size}",
                progress=False,
            )
            table = result.table.sort_by([("batch_id", "ascending")])
            outputs[batch_size] = np.array(table.column("output").to_pylist(), dtype=np.float32)
            assert result.summary["samples"] == 300
    assert outputs[1].shape == (300, 10)
    assert np.array_equal(outputs[1], outputs[7])
    assert np.array_equal(outputs[1], outputs[64])


def test_a_session_reuses_its_warm_host_actors(repo_cwd, tmp_path):
    with dlspec_ray.Session() as session:
        kwargs = dict(limit=500, batch_size=100, progress=False)
        first = session.evaluate("mnist-8@1.0.0", "mnist-test@1.0.0", out=tmp_path / "a", **kwargs)
        pool = next(iter(session._pools.values()))
        second = session.evaluate("mnist-8@1.0.0", "mnist-test@1.0.0", out=tmp_path / "b", **kwargs)
        assert next(iter(session._pools.values())) is pool  # the same actors, not new ones
        assert second.summary["environment"]["nodes"] == first.summary["environment"]["nodes"]
        session.evaluate(
            "mnist-8@1.0.0", "mnist-test@1.0.0", out=tmp_path / "c", **{**kwargs, "batch_size": 50}
        )
        assert next(iter(session._pools.values())) is not pool
        assert len(session._pools) == 1


FLAKY_PRE = """      x = batch.astype(np.float32) / np.float32(255.0)"""
FAILING_PRE = """      if int(batch.sum()) % 5 == 0:
          raise ValueError("unlucky batch")
      x = batch.astype(np.float32) / np.float32(255.0)"""


def expected_failures(batch_size: int, limit: int) -> set[str]:
    """Sample ids of the batches the FAILING_PRE stage raises on, computed here independently."""
    from dlspec_ray.artifacts import fetch_all
    from dlspec_ray.spec import load_manifest
    from dlspec_ray.stages import read_samples

    dataset = load_manifest("manifests/datasets/mnist-test.yaml")
    images = read_samples(dataset, fetch_all(dataset.sources)).inputs[:limit]
    failed = set()
    for start in range(0, limit, batch_size):
        if int(images[start : start + batch_size].sum()) % 5 == 0:
            failed.update(str(i) for i in range(start, min(limit, start + batch_size)))
    return failed


def test_a_failing_stage_is_recorded_in_its_batch_rows(repo_cwd, mnist_manifests, tmp_path):
    mnist_manifests.edit("model", FLAKY_PRE, FAILING_PRE)
    expected = expected_failures(10, 1000)
    assert 0 < len(expected) < 1000
    result = dlspec_ray.evaluate(
        mnist_manifests.path("model"),
        "mnist-test@1.0.0",
        batch_size=10,
        limit=1000,
        max_errors=1000,
        out=tmp_path / "run",
        progress=False,
    )
    rows = result.table.to_pylist()
    failed = {r["sample_id"] for r in rows if r["error"]}
    assert failed == expected
    message = next(r["error"] for r in rows if r["error"])
    assert message.startswith("pre-process: ValueError: unlucky batch (at ")
    assert "mnist-8.yaml:" in message
    assert all(r["prediction"] is None for r in rows if r["error"])
    assert all(r["prediction"] is not None for r in rows if not r["error"])
    assert result.summary["errors"]["count"] == len(expected)
    assert result.summary["status"] == "ok"


def test_too_many_errors_stop_the_run_with_exit_1_and_a_whole_run_directory(
    repo_cwd, mnist_manifests, tmp_path, capsys
):
    mnist_manifests.edit("model", FLAKY_PRE, FAILING_PRE)
    out = tmp_path / "run"
    code = main(
        mnist_manifests.run_args(
            "--batch-size",
            "10",
            "--limit",
            "2000",
            "--max-errors",
            "5",
            "--batches-per-call",
            "1",
            "--out",
            str(out),
        )
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "more than --max-errors 5" in err and "unlucky batch" in err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "error_budget_exceeded"
    assert summary["errors"]["count"] > 5
    table = pq.read_table(out / "samples")
    assert table.num_rows == summary["samples"] == 2000  # unrun batches are rows with a reason
    assert "not run: the evaluation stopped early" in set(table.column("error").to_pylist())
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("manifests", "index.jsonl")] == [
        "run"
    ]


def test_a_reference_mismatch_fails_with_exit_1(repo_cwd, mnist_manifests, tmp_path, capsys):
    mnist_manifests.edit("reference", "top1: {value: 0.989", "top1: {value: 0.995")
    code = main(
        mnist_manifests.run_args(
            "--reference", mnist_manifests.path("reference"), "--out", str(tmp_path / "run"),
        )
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL" in captured.out
    assert "does not match the reference log mnist-8-onnxruntime-reference@1.0.0" in captured.err


def test_a_subset_never_fails_the_accuracy_check_but_still_checks_its_outputs(
    repo_cwd, mnist_manifests, tmp_path, capsys
):
    """--limit 500 scores 0.986 against the log's 0.989 for all 10,000: no false FAIL."""
    args = ("--reference", mnist_manifests.path("reference"), "--limit", "500", "--json")
    assert main(mnist_manifests.run_args(*args, "--out", str(tmp_path / "run"))) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["limit"], summary["subset_of"], summary["samples"]) == (500, 10_000, 500)
    accuracy_check, outputs_check = summary["reference"]["checks"]
    assert summary["reference"]["verdict"] == "PASS"
    assert accuracy_check["basis"] == "skipped" and accuracy_check["actual"] == 0.986
    assert accuracy_check["detail"].startswith("skipped (a subset of 500 of 10,000 samples)")
    low, high = summary["accuracy_ci95"]["top1"].values()
    assert low < 0.986 < high
    assert (outputs_check["basis"], outputs_check["passed"]) == ("exact", True)
    # A wrong expected output within the subset still fails it.
    mnist_manifests.edit("reference", '{sample: "3", top1: 0}', '{sample: "3", top1: 6}')
    assert main(mnist_manifests.run_args(*args, "--out", str(tmp_path / "again"))) == 1


def test_a_run_interrupted_before_any_shard_leaves_nothing_in_out(repo_cwd, tmp_path, monkeypatch):
    from dlspec_ray import runtime

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(runtime, "run_shards", interrupt)
    with pytest.raises(KeyboardInterrupt):
        dlspec_ray.evaluate("mnist-8@1.0.0", "mnist-test@1.0.0", out=tmp_path / "run", limit=500)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_is_only_replaced_with_overwrite(repo_cwd, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text('{"run_id": "previous"}')  # a previous run's
    (out / "keep.txt").write_text("mine")
    args = ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0", "--limit", "64"]
    assert main([*args, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").exists()
    assert main([*args, "--out", str(out), "--overwrite", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES


NAN_RUN = 'return ctx["model"].run(None, {ctx["inputs"][0]["name"]: data})[0] * float("nan")'


def test_nan_outputs_are_counted_flagged_and_fail_the_reference(
    repo_cwd, mnist_manifests, tmp_path, capsys
):
    mnist_manifests.edit(
        "model", 'return ctx["model"].run(None, {ctx["inputs"][0]["name"]: data})[0]', NAN_RUN
    )
    args = mnist_manifests.run_args(
        "--reference", mnist_manifests.path("reference"), "--out", str(tmp_path / "run")
    )
    assert main(args) == 1
    printed = capsys.readouterr()
    assert "non-finite" in printed.out and "NaN or inf" in printed.out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["nonfinite_samples"] == summary["samples"] == 10_000
    assert summary["status"] == "reference_failed"
    finite = [c for c in summary["reference"]["checks"] if c["name"] == "finite outputs"]
    assert finite == [
        {
            "name": "finite outputs",
            "expected": 0,
            "actual": 10_000,
            "delta": 10_000.0,
            "tolerance": 0.0,
            "passed": False,
            "basis": "tolerance",
            "detail": "10000 sample(s) have NaN or inf in their outputs",
        }
    ]


def test_stage_prints_go_to_the_stage_log_and_json_stays_json(
    repo_cwd, mnist_manifests, tmp_path, capsys
):
    mnist_manifests.edit(
        "model",
        "      batch = np.asarray(data)\n",
        '      batch = np.asarray(data)\n      print("hello from pre-process", len(batch))\n',
    )
    out = tmp_path / "run"
    assert main(mnist_manifests.run_args("--limit", "128", "--json", "--out", str(out))) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["samples"] == 128  # nothing else on stdout
    assert "hello from pre-process" not in printed.err
    log = (out / "stage.log").read_text()
    assert log.count("hello from pre-process 64") == 2 and "[pre-process]" in log

    verbose = tmp_path / "verbose"
    args = mnist_manifests.run_args("--limit", "64", "--json", "--verbose", "--out", str(verbose))
    assert main(args) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["samples"] == 64
    assert "hello from pre-process 64" in printed.err


def test_a_stage_that_never_returns_ends_its_actor_not_the_run(
    repo_cwd, mnist_manifests, tmp_path, capsys
):
    """Every pre-process call hangs: the run still ends, each hung shard reported."""
    mnist_manifests.edit(
        "model",
        "      batch = np.asarray(data)\n",
        "      batch = np.asarray(data)\n      __import__('time').sleep(100000)\n",
    )
    out = tmp_path / "run"
    args = mnist_manifests.run_args(
        "--limit", "128", "--batch-size", "64", "--stage-timeout", "20", "--retries", "0",
        "--max-errors", "1000", "--out", str(out),
    )  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 128
    assert summary["errors"]["count"] == 128  # both shards hung: each reported, none lost
    messages = " ".join(m["message"] for m in summary["errors"]["messages"])
    assert "--stage-timeout 20s" in messages


def test_a_trace_has_each_batchs_spans_with_its_node_actor_and_environment(repo_cwd, tmp_path):
    result = dlspec_ray.evaluate(
        "mnist-8@1.0.0", "mnist-test@1.0.0", limit=1000, batch_size=100, actors=2,
        batches_per_call=2, trace=True, out=tmp_path / "run", progress=False,
    )  # fmt: skip
    events = json.loads((tmp_path / "run" / "trace.json").read_text())
    assert result.summary["trace"] == {"file": "trace.json", "events": len(events)}
    spans = [e for e in events if e["ph"] == "X"]
    hops: dict[tuple[int, int], set[str]] = {}
    for e in spans:
        if "batch" in e["args"]:
            hops.setdefault((e["args"]["shard"], e["args"]["batch"]), set()).add(e["name"])
    assert len(hops) == 10  # every batch, each with its four hops
    assert all({"read", "pre-process", "run", "post-process"} <= names for names in hops.values())
    assert any("transfer" in names for names in hops.values())
    writes = [e for e in spans if e["name"] == "write"]
    assert len(writes) == result.summary["shards"] == 5
    assert {e["args"]["environment"] for e in spans} == {"inline"}
    assert len({e["args"]["actor"] for e in spans}) == 2
    assert {e["args"]["node"] for e in spans} == set(result.summary["environment"]["nodes"])
    assert all(e["dur"] >= 0 for e in spans)
    untraced = dlspec_ray.evaluate(
        "mnist-8@1.0.0", "mnist-test@1.0.0", limit=200, out=tmp_path / "plain", progress=False
    )
    assert "trace" not in untraced.summary and not (tmp_path / "plain" / "trace.json").exists()


def test_repeats_time_more_passes_and_write_the_results_once(repo_cwd, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0", "--limit",
            "1000", "--repeats", "3", "--warmup", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "repeats" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    repeats = summary["repeats"]
    assert repeats["passes"] == 3 and len(repeats["throughput_sps"]["values"]) == 3
    assert repeats["throughput_sps"]["values"][0] == summary["throughput_sps"]  # the first pass
    assert all(v > 0 for v in repeats["throughput_sps"]["values"])
    assert set(repeats["latency_ms"]) == {"pre", "run", "post"}
    assert summary["samples"] == 1000 and summary["accuracy"]["top1"] == 0.984
    assert pq.read_table(out / "samples").num_rows == 1000  # one pass's rows, not three
