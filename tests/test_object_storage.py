"""A run directory in object storage: the host actors write the shards there themselves, and
the driver writes only the ledger and summary.json. The server is a real S3-compatible one
(moto's, on 127.0.0.1: the ``s3_server`` fixture), standing in for cloud storage."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import dlspec_ray
import dlspec_ray.results.parquet_io as parquet_io
from dlspec_ray.cli import main
from dlspec_ray.results.storage import StorageLocation


def test_actors_write_the_shards_to_object_storage_and_the_driver_none(
    repo_cwd, ray_session, s3_env, capsys
):
    bucket = s3_env.make_bucket()

    def not_here(*args, **kwargs):
        raise AssertionError("the driver must not write shards to object storage")

    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        # Host actors are other processes: only a shard written by this driver would hit this.
        patch.setattr(parquet_io, "write_shard", not_here)
        for name, batch in (("a", 64), ("b", 128)):
            runs[name] = dlspec_ray.evaluate(
                "mnist-8@1.0.0",
                "mnist-test@1.0.0",
                batch_size=batch,
                limit=2000,
                progress=False,
                out=f"s3://{bucket}/runs/{name}",
            )

    run = StorageLocation.parse(f"s3://{bucket}/runs/a")
    files = run.list_files(recursive=True)
    assert "summary.json" in files and "ledger.jsonl" in files
    shards = [f for f in files if f.startswith("samples/shard-")]
    ledger = [json.loads(line) for line in run.child("ledger.jsonl").read_text().splitlines()]
    assert sorted(e["file"] for e in ledger) == sorted(shards)
    assert sum(e["rows"] for e in ledger) == 2000
    nodes = {e["node"] for e in ledger}
    assert nodes == {ray_session_node()}  # written by the actors, on their node

    table = runs["a"].table  # read back from the bucket
    assert table.num_rows == 2000
    assert sorted(map(int, table.column("sample_id").to_pylist())) == list(range(2000))
    assert runs["a"].summary["accuracy"] == runs["b"].summary["accuracy"]

    # The results commands read the runs back from the bucket.
    assert main(["runs", f"s3://{bucket}/runs", "--rebuild"]) == 0
    listing = capsys.readouterr().out
    assert runs["a"].summary["run_id"] in listing and runs["b"].summary["run_id"] in listing
    code = main(["compare", f"s3://{bucket}/runs/a", f"s3://{bucket}/runs/b"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "2,000" in printed.out  # samples compared
    assert main(["report", f"s3://{bucket}/runs"]) == 0


def test_a_bucket_that_does_not_exist_is_refused_before_any_work(repo_cwd, s3_env, capsys):
    code = main(
        ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
         "--out", "s3://no-such-bucket-here/runs/x", "--no-progress"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "no-such-bucket-here" in err and "Traceback" not in err


def ray_session_node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def test_a_shard_in_the_bucket_is_a_whole_parquet_file(repo_cwd, ray_session, s3_env):
    bucket = s3_env.make_bucket()
    result = dlspec_ray.evaluate(
        "mnist-8@1.0.0", "mnist-test@1.0.0", limit=300, progress=False, out=f"s3://{bucket}/r"
    )
    shard = StorageLocation.parse(f"s3://{bucket}/r").child("samples", "shard-00000.parquet")
    with shard.open_input_file() as f:
        assert (
            pq.read_table(f).num_rows
            == result.table.filter(result.table.column("shard_id").to_numpy() == 0).num_rows
        )


def test_storage_options_on_the_command_line_reach_the_actors(
    repo_cwd, ray_session, s3_server, monkeypatch, capsys
):
    """No AWS_* variable at all: endpoint and keys come from --storage-option alone."""
    for name in (*s3_server.env, "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    bucket = s3_server.make_bucket()
    flags = [
        f"endpoint_url={s3_server.endpoint}",
        f"access_key={s3_server.access_key}",
        f"secret_key={s3_server.secret_key}",
        f"region={s3_server.region}",
    ]
    args = ["run", "--model", "mnist-8@1.0.0", "--dataset", "mnist-test@1.0.0",
            "--limit", "256", "--no-progress", "--out", f"s3://{bucket}/r"]  # fmt: skip
    for flag in flags:
        args += ["--storage-option", flag]
    assert main(args) == 0, capsys.readouterr().err
    assert f"run directory: s3://{bucket}/r" in capsys.readouterr().out
    run = StorageLocation.parse(f"s3://{bucket}/r", dict(f.split("=", 1) for f in flags))
    assert json.loads(run.child("summary.json").read_text())["samples"] == 256
