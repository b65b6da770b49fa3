"""StorageLocation: local folders and object storage behind one small, picklable value.

Object storage here is a real S3-compatible server on 127.0.0.1 (moto, the
``s3_server`` fixture), standing in for a cloud bucket: the same pyarrow S3
client, the same HTTP requests, the same errors.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest

from dlspec_ray.errors import UsageError
from dlspec_ray.results.parquet_io import iter_shards, list_shards, read_results
from dlspec_ray.results.storage import (
    PROBE_PREFIX,
    StorageError,
    StorageLocation,
    as_location,
    explain_storage_error,
    parse_storage_options,
)


@pytest.fixture
def bucket(s3_env):
    """A fresh, empty bucket on the local S3 server, with the environment pointing at it."""
    return s3_env.make_bucket()


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- naming: no server needed ------------------------------------------------------------


def test_local_paths_and_file_uris_are_local(tmp_path):
    for given in (tmp_path / "runs", str(tmp_path / "runs"), f"file://{tmp_path}/runs"):
        location = as_location(given)
        assert location.is_local and location.scheme == "file"
        assert location.local_path == tmp_path / "runs"
        assert str(location) == str(tmp_path / "runs") == location.describe()
    assert as_location("runs/a").uri == "runs/a"  # relative paths stay relative, like Path


def test_object_storage_uris_are_normalised():
    location = StorageLocation.parse("s3://bucket//runs/a/", env={})
    assert location.uri == "s3://bucket/runs/a" and not location.is_local
    assert location.name == "a"
    assert location.parent.uri == "s3://bucket/runs"
    assert location.parent.parent.uri == "s3://bucket"
    assert location.child("samples", "shard-00000.parquet").uri == (
        "s3://bucket/runs/a/samples/shard-00000.parquet"
    )
    assert (location / "x/y").uri == "s3://bucket/runs/a/x/y"
    assert location.child("x/y").relative_to(location.parent) == "a/x/y"
    assert StorageLocation.parse("gcs://b/p", env={}).uri == "gs://b/p"
    with pytest.raises(ValueError, match="leaves the folder"):
        location.child("..", "other")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3:///runs", r"no bucket; expected s3://BUCKET/PREFIX"),
        ("s3://bucket/runs?endpoint=x", r"no '\?' or '#' part.*AWS_ENDPOINT_URL"),
        ("s3://bucket/a/../b", r"'\.' and '\.\.' are not allowed"),
        ("file://otherhost/x", r"file:// URI names a local path"),
    ],
)
def test_malformed_uris_say_what_to_write(uri, message):
    with pytest.raises(UsageError, match=message):
        StorageLocation.parse(uri, env={})


def test_options_come_from_the_environment_and_explicit_ones_win():
    env = {
        "AWS_ENDPOINT_URL": "http://generic:1",
        "AWS_ENDPOINT_URL_S3": "http://s3-specific:2",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "shh",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    location = StorageLocation.parse("s3://b/p", env=env)
    assert dict(location.options) == {
        "endpoint_url": "http://s3-specific:2",  # the S3-specific variable wins
        "access_key": "AKIA",
        "secret_key": "shh",
        "region": "eu-west-1",
    }
    explicit = StorageLocation.parse(
        "s3://b/p", {"region": "us-west-2", "max-attempts": "1"}, env=env
    )
    assert dict(explicit.options)["region"] == "us-west-2"
    assert dict(explicit.options)["max_attempts"] == "1"
    # Children keep their parent's options: a shard goes where its run directory goes.
    assert explicit.child("samples").options == explicit.options
    # gs:// reads no AWS variables.
    assert StorageLocation.parse("gs://b/p", env=env).options == ()


def test_secrets_never_show_in_repr_or_describe():
    location = StorageLocation.parse(
        "s3://b/p",
        {"endpoint_url": "http://127.0.0.1:9", "access_key": "AK", "secret_key": "hunter2"},
        env={},
    )
    for text in (repr(location), location.describe(), str(location)):
        assert "hunter2" not in text
    assert "secret_key=***" in repr(location)
    assert location.describe() == "s3://b/p (endpoint http://127.0.0.1:9)"


@pytest.mark.parametrize(
    ("uri", "options", "message"),
    [
        ("s3://b", {"colour": "blue"}, r"unknown storage option\(s\) colour; s3:// takes"),
        ("s3://b", {"access_key": "AK"}, r"access_key is set but secret_key is not"),
        ("s3://b", {"connect_timeout": "soon"}, r"connect_timeout='soon': expected a number"),
        ("s3://b", {"anonymous": "maybe"}, r"anonymous='maybe': expected true or false"),
        ("s3://b", {"endpoint_url": "ftp://x"}, r"expected http\(s\)://HOST\[:PORT\]"),
        ("gs://b", {"region": "x"}, r"unknown storage option\(s\) region; gs:// takes"),
        ("runs/local", {"region": "x"}, r"apply only to object storage URIs"),
    ],
)
def test_bad_storage_options_are_named(uri, options, message):
    with pytest.raises(UsageError, match=message):
        StorageLocation.parse(uri, options, env={})


def test_local_ok_lets_a_local_argument_ignore_options(tmp_path):
    assert as_location(tmp_path, {"region": "x"}, local_ok=True).is_local


def test_parse_storage_options():
    assert parse_storage_options(None) == {}
    assert parse_storage_options(["endpoint_url=http://h:1", "region = eu-west-1", "a-b=c=d"]) == {
        "endpoint_url": "http://h:1",
        "region": "eu-west-1",
        "a_b": "c=d",
    }
    with pytest.raises(UsageError, match=r"--storage-option 'region': expected KEY=VALUE"):
        parse_storage_options(["region"])


def test_a_location_pickles_small_and_without_a_client():
    location = StorageLocation.parse("s3://b/runs/a", {"endpoint_url": "http://h:1"}, env={})
    data = pickle.dumps(location)
    assert len(data) < 400
    assert pickle.loads(data) == location


def test_explain_storage_error_tells_the_causes_apart():
    assert "bucket does not exist" in explain_storage_error(
        OSError("AWS Error NO_SUCH_BUCKET during CreateMultipartUpload operation")
    )
    assert "endpoint cannot be reached" in explain_storage_error(
        OSError("AWS Error NETWORK_CONNECTION during HeadBucket operation: curlCode: 7")
    )
    assert "AWS_ACCESS_KEY_ID" in explain_storage_error(
        OSError("AWS Error ACCESS_DENIED during HeadBucket operation: No response body.")
    )
    assert explain_storage_error(OSError("something else")) == "something else"


# -- local files -------------------------------------------------------------------------


def test_local_files_round_trip_atomically(tmp_path):
    folder = as_location(tmp_path / "run")
    folder.child("a", "b.txt").write_text("héllo\n")
    folder.child("c.bin").write_bytes(b"\x00\x01")
    assert folder.child("a", "b.txt").read_text() == "héllo\n"
    assert folder.list_files() == ["c.bin"]
    assert folder.list_files(recursive=True) == ["a/b.txt", "c.bin"]
    assert folder.list_dirs() == ["a"]
    assert folder.is_dir() and folder.child("c.bin").is_file()
    assert sorted(os.listdir(tmp_path / "run")) == ["a", "c.bin"]  # no temporary file left
    with pytest.raises(FileNotFoundError):
        folder.child("nope").read_bytes()
    folder.remove_tree()
    assert not folder.exists()
    folder.remove_tree()  # nothing there: nothing to do


def test_local_check_writable(tmp_path):
    as_location(tmp_path / "new" / "deeper").check_writable()  # creates nothing
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"is a file, not a folder\); choose another path"):
        as_location(tmp_path / "file" / "run").check_writable()


# -- object storage ----------------------------------------------------------------------


def test_files_round_trip_through_object_storage(bucket):
    folder = as_location(f"s3://{bucket}/runs/a")
    assert not folder.exists() and folder.list_files() == []
    folder.child("summary.json").write_text('{"ok": true}\n')
    folder.child("samples", "shard-00000.parquet").write_bytes(b"PAR1")
    folder.child("samples", "deeper", "x").write_bytes(b"")
    assert folder.child("summary.json").read_text() == '{"ok": true}\n'
    assert folder.child("samples", "shard-00000.parquet").read_bytes() == b"PAR1"
    assert folder.is_dir() and folder.child("summary.json").is_file()
    assert not folder.child("summary.json").is_dir()
    assert folder.list_files() == ["summary.json"]
    assert folder.list_files(recursive=True) == [
        "samples/deeper/x",
        "samples/shard-00000.parquet",
        "summary.json",
    ]
    assert folder.list_dirs() == ["samples"]
    assert as_location(f"s3://{bucket}").list_dirs() == ["runs"]
    folder.child("summary.json").write_text("replaced\n")  # a second write replaces the object
    assert folder.child("summary.json").read_text() == "replaced\n"
    with pytest.raises(FileNotFoundError, match="no such object"):
        folder.child("missing.json").read_text()
    folder.child("summary.json").remove()
    assert not folder.child("summary.json").exists()
    folder.remove_tree()
    assert not folder.exists() and as_location(f"s3://{bucket}").list_files(recursive=True) == []
    with pytest.raises(UsageError, match="refusing to delete a whole bucket"):
        as_location(f"s3://{bucket}").remove_tree()


def test_check_writable_leaves_nothing_behind(bucket):
    location = as_location(f"s3://{bucket}/runs/new")
    location.check_writable()
    assert as_location(f"s3://{bucket}").list_files(recursive=True) == []
    assert PROBE_PREFIX.startswith(".")  # hidden, should a probe ever be left


def test_check_writable_names_a_missing_bucket(s3_env):
    with pytest.raises(StorageError) as caught:
        as_location("s3://no-such-bucket/runs").check_writable()
    message = str(caught.value)
    assert message.startswith(f"s3://no-such-bucket/runs (endpoint {s3_env.endpoint}):")
    assert "bucket 'no-such-bucket' does not exist; create it" in message


def test_check_writable_fails_fast_on_an_unreachable_endpoint(s3_env, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    location = as_location("s3://bucket/runs")
    with pytest.raises(StorageError, match=r"endpoint cannot be reached.*AWS_ENDPOINT_URL") as e:
        location.check_writable()
    assert f"127.0.0.1:{port}" in str(e.value)


@pytest.fixture(scope="module")
def s3_server_with_auth():
    """A second local S3 server that checks credentials (moto's IAM auth), which the shared
    one does not: it stands in for a cloud bucket refusing unknown keys."""
    code = (
        "import time\n"
        "from moto.server import ThreadedMotoServer\n"
        "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
        "server.start()\n"
        "print(server.get_host_and_port()[1], flush=True)\n"
        "time.sleep(3600)\n"
    )
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def test_check_writable_names_refused_credentials(s3_env, s3_server_with_auth, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server_with_auth)
    with pytest.raises(StorageError, match=r"refused the credentials.*AWS_ACCESS_KEY_ID"):
        as_location("s3://bucket/runs").check_writable()


def test_a_pickled_location_writes_from_a_process_without_the_environment(bucket, s3_env):
    """As a Ray actor on another node would: no AWS_* variables, only the pickled location."""
    location = as_location(f"s3://{bucket}/from-elsewhere")
    code = (
        "import pickle, sys\n"
        "location = pickle.loads(sys.stdin.buffer.read())\n"
        "location.child('note.txt').write_text('written remotely')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    subprocess.run([sys.executable, "-c", code], input=pickle.dumps(location), env=env, check=True)
    assert location.child("note.txt").read_text() == "written remotely"


def test_a_run_directory_in_object_storage_reads_back_like_a_local_one(bucket, tmp_path, run_maker):
    make_run = run_maker
    logits = np.random.default_rng(0).normal(size=(10, 6))
    labels = np.arange(10) % 6
    local = make_run(tmp_path / "a", logits, labels, run_id="a", batch_size=3, error_batches=(1,))
    remote = make_run(
        f"s3://{bucket}/runs/a", logits, labels, run_id="a", batch_size=3, error_batches=(1,)
    )
    assert str(remote) == f"s3://{bucket}/runs/a"
    assert read_results(remote).equals(read_results(local))
    assert [sid for sid, _ in list_shards(remote)] == [0]
    shards = list(iter_shards(remote, ["error", "run_ms"]))
    assert [s.schema.names for s in shards] == [["error", "run_ms"]]
    assert shards[0].equals(read_results(local).select(["error", "run_ms"]))


def test_reading_a_run_from_a_missing_bucket_says_so(s3_env):
    with pytest.raises(StorageError, match="bucket 'nowhere' does not exist"):
        read_results("s3://nowhere/runs/a")
