"""``runs``, ``compare``, ``report`` and the Python API on a results root in object storage.

The bucket is on a real S3-compatible server on 127.0.0.1 (moto, the ``s3_server``
fixture) standing in for cloud storage; the commands reach it as a user would,
through ``AWS_ENDPOINT_URL`` and the other ``AWS_*`` variables, or
``--storage-option``. Bad storage input exits 2 with one message and no traceback.
"""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path

import numpy as np
import pytest

import dlspec_ray
from dlspec_ray.cli import main
from dlspec_ray.results.index import append_to_index, read_index, record_of
from dlspec_ray.results.storage import StorageLocation, as_location

REPO = Path(__file__).resolve().parents[2]
LOGITS = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0], [2.0, 1.0, 0.0]])


def make_run():
    spec = importlib.util.spec_from_file_location(
        "results_run_factory_s3", REPO / "tests" / "results" / "conftest.py"
    )
    factory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(factory)
    return factory.make_run


@pytest.fixture
def s3_root(s3_env):
    """``s3://<fresh bucket>/runs`` holding two indexed runs of one dataset, ``a`` and ``b``."""
    root = f"s3://{s3_env.make_bucket()}/runs"
    make = make_run()
    a = make(f"{root}/a", LOGITS, np.array([0, 1, 2, 1]), run_id="aaaa1111", batch_size=2)
    b = make(
        f"{root}/b",
        LOGITS[:, ::-1],
        np.array([0, 1, 2, 1]),
        run_id="bbbb2222",
        batch_size=2,
        started=5,
        framework_version="2.0",
    )
    append_to_index(root, record_of(a, root, label="fast"))
    append_to_index(root, record_of(b, root, label="slow"))
    return root


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runs_lists_an_s3_results_root(s3_root, capsys):
    assert main(["runs", s3_root]) == 0
    out = capsys.readouterr().out
    assert "aaaa1111" in out and "bbbb2222" in out
    assert f"2 run(s) in {s3_root}" in out
    assert main(["runs", s3_root, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["path"], r["label"]) for r in records] == [
        ("aaaa1111", "a", "fast"),
        ("bbbb2222", "b", "slow"),
    ]


def test_runs_rebuild_recreates_the_index_in_the_bucket(s3_root, capsys):
    as_location(s3_root).child("index.jsonl").remove()
    assert main(["runs", s3_root]) == 0
    assert "no runs indexed" in capsys.readouterr().out
    assert main(["runs", s3_root, "--rebuild"]) == 0
    assert "2 run(s)" in capsys.readouterr().out
    assert [r.run_id for r in read_index(s3_root)] == ["aaaa1111", "bbbb2222"]


def test_compare_by_id_in_an_s3_root_and_by_two_uris(s3_root, capsys):
    assert main(["compare", "--root", s3_root, "fast", "bbbb"]) == 0
    out = capsys.readouterr().out
    assert "A  aaaa1111" in out and "B  bbbb2222" in out
    assert main(["compare", f"{s3_root}/a", f"{s3_root}/b", "--json"]) == 0
    comparison = json.loads(capsys.readouterr().out)
    assert comparison["a"]["path"] == f"{s3_root}/a"
    assert comparison["compared"] == 4 and comparison["divergence"]["compared"] == 4


def test_report_is_written_next_to_the_runs_or_to_a_local_file(s3_root, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", s3_root]) == 0
    assert capsys.readouterr().out.strip() == f"report: {s3_root}/report.html"
    html = as_location(s3_root).child("report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "aaaa1111" in html and "data:image/png" in html
    local = tmp_path / "report.html"
    assert main(["report", s3_root, "--out", str(local)]) == 0
    assert "bbbb2222" in local.read_text()


def test_the_python_api_reads_runs_from_object_storage(s3_root, tmp_path):
    records = dlspec_ray.list_runs(s3_root)
    assert [r.run_id for r in records] == ["aaaa1111", "bbbb2222"]
    run = dlspec_ray.load_run("slow", s3_root)
    assert isinstance(run.out_dir, StorageLocation) and run.out_dir.uri == f"{s3_root}/b"
    assert run.summary["run_id"] == "bbbb2222" and run.table.num_rows == 4
    direct = dlspec_ray.load_run(f"{s3_root}/a")
    comparison = dlspec_ray.compare(direct, run)
    assert comparison.compared == 4
    assert dlspec_ray.compare("fast", "slow", root=s3_root).agreement["compared"] == 4
    if importlib.util.find_spec("matplotlib") is not None:
        where = dlspec_ray.report(s3_root, tmp_path / "r.html")
        assert where == tmp_path / "r.html" and "aaaa1111" in where.read_text()


def test_storage_options_win_over_the_environment(s3_root, s3_env, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    option = f"endpoint_url={s3_env.endpoint}"
    assert main(["runs", s3_root, "--storage-option", option]) == 0
    assert "aaaa1111" in capsys.readouterr().out
    assert main(["compare", "--root", s3_root, "a", "b", "--storage-option", option]) == 0
    records = dlspec_ray.list_runs(s3_root, storage_options={"endpoint_url": s3_env.endpoint})
    assert len(records) == 2


def assert_exit_2(capsys, args, *needles):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "s3://no-such-bucket/runs"],
        ["runs", "s3://no-such-bucket/runs", "--rebuild"],
        ["compare", "s3://no-such-bucket/a", "s3://no-such-bucket/b"],
        ["compare", "--root", "s3://no-such-bucket/runs", "a", "b"],
        ["report", "s3://no-such-bucket/runs"],
    ],
)
def test_a_missing_bucket_exits_2_and_names_it(s3_env, capsys, args):
    if args[0] == "report":
        pytest.importorskip("matplotlib")
    assert_exit_2(capsys, args, "bucket 'no-such-bucket' does not exist", "create it")


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "s3://bucket/runs"],
        ["compare", "s3://bucket/a", "s3://bucket/b"],
        ["report", "s3://bucket/runs"],
    ],
)
def test_an_unreachable_endpoint_exits_2_and_says_what_to_check(s3_env, monkeypatch, capsys, args):
    if args[0] == "report":
        pytest.importorskip("matplotlib")
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    err = assert_exit_2(capsys, args, "endpoint cannot be reached", "AWS_ENDPOINT_URL")
    assert f"127.0.0.1:{port}" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "s3://b/runs", "--storage-option", "region"], "expected KEY=VALUE"),
        (["runs", "s3://b/runs", "--storage-option", "colour=blue"], "unknown storage option"),
        (["runs", "s3:///runs"], "no bucket; expected s3://BUCKET/PREFIX"),
        (["runs", "runs", "--storage-option", "region=x"], "apply only to object storage URIs"),
    ],
)
def test_bad_storage_arguments_exit_2(s3_env, capsys, args, message):
    assert_exit_2(capsys, args, message)
