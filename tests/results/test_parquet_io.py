from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.parquet_io import (
    atomic_write_bytes,
    atomic_write_text,
    read_results,
    shard_path,
    write_shard,
)
from dlspec_ray.results.schema import SCHEMA, rows_from_batch, shard_table


def shard(shard_id: int, n: int = 3, error: str | None = None) -> pa.RecordBatch:
    ids = [f"{shard_id}-{i}" for i in range(n)]
    return shard_table(
        [
            rows_from_batch(
                ids,
                list(range(n)),
                {"top_k": [[i, i + 1] for i in range(n)], "scores": [[0.9, 0.1]] * n},
                batch_id=shard_id * 10,
                shard_id=shard_id,
                node_id="node",
                pre_ms=1.0,
                run_ms=2.0,
                post_ms=3.0,
                error=error,
            )
        ]
    )


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_write_shard_names_the_file_and_reads_back_equal(tmp_path):
    batch = shard(0)
    written = write_shard(batch, tmp_path, 0)
    path = written.path
    assert path == tmp_path / "samples" / "shard-00000.parquet"
    assert path == shard_path(tmp_path, 0)
    assert written.uri == str(path) and written.shard_id == 0 and written.rows == 3
    # The digest and size are of the exact bytes on disk: what a ledger records.
    assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert written.size == path.stat().st_size
    assert listing(tmp_path / "samples") == ["shard-00000.parquet"]
    back = read_results(tmp_path)
    assert back.schema.equals(SCHEMA, check_metadata=True)
    assert back.equals(pa.Table.from_batches([batch]))


def test_read_results_orders_shards_by_number_not_name(tmp_path):
    # Written out of order, and 100000 sorts before 99999 as text.
    for shard_id in (100_000, 2, 99_999, 0):
        write_shard(shard(shard_id, n=2), tmp_path, shard_id)
    table = read_results(tmp_path)
    assert table.column("shard_id").to_pylist() == [0, 0, 2, 2, 99_999, 99_999, 100_000, 100_000]
    assert table.num_rows == 8


def test_writing_a_shard_again_replaces_it(tmp_path):
    write_shard(shard(1, n=4, error="first try failed"), tmp_path, 1)
    write_shard(shard(1, n=4), tmp_path, 1)
    table = read_results(tmp_path)
    assert table.num_rows == 4
    assert table.column("error").null_count == 4
    assert listing(tmp_path / "samples") == ["shard-00001.parquet"]


def test_a_table_is_accepted_as_well_as_a_record_batch(tmp_path):
    write_shard(pa.Table.from_batches([shard(3)]), tmp_path, 3)
    assert read_results(tmp_path).num_rows == 3


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (
            {"sample_id": ["a"]},
            TypeError,
            "expects a pyarrow RecordBatch or Table, got <class 'dict'>",
        ),
        (pa.record_batch({"x": [1, 2]}), ValueError, "results schema"),
    ],
)
def test_write_shard_rejects_other_objects_and_leaves_nothing(tmp_path, bad, error, match):
    with pytest.raises(error, match=match):
        write_shard(bad, tmp_path, 0)
    samples = tmp_path / "samples"
    assert not samples.exists() or listing(samples) == []


def test_failed_text_write_leaves_no_temp_file_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, '{"ok": true}\n')
    with pytest.raises(TypeError):
        atomic_write_text(path, object())  # type: ignore[arg-type]
    assert listing(tmp_path) == ["summary.json"]
    assert path.read_text() == '{"ok": true}\n'


def test_failed_bytes_write_leaves_nothing(tmp_path):
    path = tmp_path / "blob.bin"
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert listing(tmp_path) == []


def test_atomic_text_write_creates_folders_and_reads_back(tmp_path):
    path = tmp_path / "a" / "b" / "notes.txt"
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert listing(path.parent) == ["notes.txt"]
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


def test_read_results_ignores_temporary_and_foreign_files(tmp_path):
    write_shard(shard(0), tmp_path, 0)
    samples = tmp_path / "samples"
    (samples / ".shard-00001.parquet.abc.tmp").write_bytes(b"partial")
    (samples / "README").write_text("not a shard")
    assert read_results(tmp_path).num_rows == 3


def test_read_results_of_a_run_without_shards_is_empty(tmp_path):
    (tmp_path / "samples").mkdir()
    table = read_results(tmp_path)
    assert table.num_rows == 0
    assert table.schema.equals(SCHEMA)


def test_read_results_without_samples_folder_is_bad_input(tmp_path):
    with pytest.raises(DLSpecError, match=r"no samples/ folder.*--out directory"):
        read_results(tmp_path / "nowhere")


def test_read_results_rejects_a_corrupt_shard(tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "shard-00000.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DLSpecError, match=r"shard-00000.parquet: not a readable Parquet file"):
        read_results(tmp_path)


def test_read_results_rejects_another_schema_version(tmp_path):
    table = pa.Table.from_batches([shard(0)]).replace_schema_metadata(
        {b"dlspec_ray.schema_version": b"0"}
    )
    (tmp_path / "samples").mkdir()
    pq.write_table(table, tmp_path / "samples" / "shard-00000.parquet")
    with pytest.raises(
        DLSpecError, match=r"schema version '0', this dlspec-ray reads versions 1, 2"
    ):
        read_results(tmp_path)


def test_a_version_1_run_without_stage_digests_still_reads(tmp_path):
    """Version 2 added each batch's stage digests; a version 1 shard reads with them null."""
    table = pa.Table.from_batches([shard(0)])
    old = table.drop_columns(["pre_digest", "run_digest", "post_digest"])
    old = old.replace_schema_metadata({b"dlspec_ray.schema_version": b"1"})
    (tmp_path / "samples").mkdir()
    pq.write_table(old, tmp_path / "samples" / "shard-00000.parquet")
    back = read_results(tmp_path)
    assert back.schema.names == table.schema.names
    assert back.column("run_digest").null_count == back.num_rows
    assert back.column("output").to_pylist() == table.column("output").to_pylist()
    some = read_results(tmp_path, ["sample_id", "pre_digest"])
    assert some.column("pre_digest").null_count == some.num_rows
