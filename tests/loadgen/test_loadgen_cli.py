"""``dlspec-ray run --scenario``: a LoadGen run as a whole run directory, from the CLI."""

from __future__ import annotations

import json

import pytest

from dlspec_ray.cli import main

TASK = ("run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0")
SHORT = ("--min-duration", "0.2", "--min-query-count", "8")


def test_both_modes_give_the_verdict_accuracy_and_compliance(repo_cwd, tmp_path, capsys):
    out = tmp_path / "run"
    # A target far above this machine's throughput: the one offline query (target x 0.2 s
    # of samples) then always outlasts min_duration, however loaded the machine is.
    args = [*TASK, "--scenario", "offline", "--mode", "both", "--limit", "500", *SHORT,
            "--target-qps", "200000"]  # fmt: skip
    assert main([*args, "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "summary.json").read_text())
    section = summary["loadgen"]
    assert (summary["status"], section["scenario"], section["mode"]) == ("ok", "offline", "both")
    assert section["result"] == "VALID" and section["metric"]["name"] == "samples_per_s"
    assert summary["accuracy"]["top1"] == 0.986  # the first 500, as an ordinary run scores them
    low, high = summary["accuracy_ci95"]["top1"].values()
    assert low < 0.986 < high
    assert section["compliance"]["passed"] is True
    for mode in ("accuracy", "performance"):
        assert (out / "loadgen" / mode / "mlperf_log_summary.txt").is_file()
    # No staging folder left; the run is in the index of the folder that holds it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", "run"]


def test_an_invalid_run_is_written_and_fails_with_loadgens_reasons(repo_cwd, tmp_path, capsys):
    conf = tmp_path / "user.conf"
    conf.write_text("*.MultiStream.target_latency = 50\n")
    out = tmp_path / "run"
    args = [*TASK, "--scenario", "multi-stream", "--limit", "64", "--batch-size", "8",
            "--min-duration", "0.05", "--min-query-count", "8",
            "--loadgen-conf", str(conf)]  # fmt: skip
    assert main([*args, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "result: INVALID" in captured.out
    assert "LoadGen found the multi-stream run INVALID (" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "loadgen_invalid" and summary["loadgen"]["reasons"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--environment", "process"), r"--scenario with the process environment: LoadGen "),
        (("--reference", "mnist-8-onnxruntime-reference@1.0.0"), r"--reference with --scenario"),
        (("--out", "s3://bucket/run"), r"a LoadGen run writes a local run directory only"),
        (("--dry-run",), r"--scenario: --resume and --dry-run are not built"),
        (("--min-duration", "-1"), r"min_duration_s"),
    ],
)
def test_what_a_loadgen_run_refuses(repo_cwd, tmp_path, capsys, extra, message):
    import re

    assert main([*TASK, "--scenario", "offline", *extra]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err
