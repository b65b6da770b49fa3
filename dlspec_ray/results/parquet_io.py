"""Reading and writing a run directory's files, atomically.

Every file is written under a temporary name in its final folder and renamed
into place, so a reader (or a run killed halfway) never sees a partial shard or
summary: a file either is complete or does not exist.
"""

from __future__ import annotations

__all__ = [
    "SAMPLES_DIR",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_results",
    "shard_path",
    "write_shard",
]

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from dlspec_ray.errors import DLSpecError
from dlspec_ray.results.schema import SCHEMA, SCHEMA_VERSION, schema_version_of

SAMPLES_DIR = "samples"
_SHARD_NAME = re.compile(r"^shard-(\d+)\.parquet$")


def shard_path(out_dir: Path, shard_id: int) -> Path:
    return Path(out_dir) / SAMPLES_DIR / f"shard-{shard_id:05d}.parquet"


def write_shard(batch: pa.RecordBatch | pa.Table, out_dir: Path, shard_id: int) -> Path:
    """Write one shard's rows as ``out_dir/samples/shard-NNNNN.parquet``; returns the path.

    A shard that is written again (a retried shard) replaces the old file whole.
    """
    if not isinstance(batch, (pa.RecordBatch, pa.Table)):
        raise TypeError(f"write_shard expects a pyarrow RecordBatch or Table, got {type(batch)}")
    if not batch.schema.equals(SCHEMA):
        raise ValueError(
            f"write_shard expects rows in the results schema (see rows_from_batch), got:\n"
            f"{batch.schema}"
        )
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    table = table.replace_schema_metadata(SCHEMA.metadata)
    path = shard_path(out_dir, shard_id)
    with _atomic_file(path, "wb") as f:
        pq.write_table(table, f, row_group_size=max(table.num_rows, 1))
    return path


def read_results(out_dir: Path) -> pa.Table:
    """All shards of a run directory as one table, in shard order."""
    out_dir = Path(out_dir)
    samples = out_dir / SAMPLES_DIR
    if not samples.is_dir():
        raise DLSpecError(
            f"{out_dir}: no {SAMPLES_DIR}/ folder with results; expected the --out directory "
            "of a `dlspec-ray run`"
        )
    shards = sorted(
        (int(m.group(1)), p)
        for p in samples.iterdir()
        if (m := _SHARD_NAME.match(p.name)) is not None
    )
    tables = [_read_shard(p) for _, p in shards]
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    with _atomic_file(Path(path), "w", encoding=encoding) as f:
        f.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _atomic_file(Path(path), "wb") as f:
        f.write(data)


def _read_shard(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DLSpecError(
            f"{path}: not a readable Parquet file ({exc}); delete it or rerun the evaluation"
        ) from None
    version = schema_version_of(table.schema)
    if version != SCHEMA_VERSION:
        raise DLSpecError(
            f"{path}: results schema version {version!r}, this dlspec-ray reads version "
            f"{SCHEMA_VERSION!r}; rerun the evaluation with this version"
        )
    try:
        return table.cast(SCHEMA)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise DLSpecError(
            f"{path}: columns do not match the results schema ({exc}); rerun the evaluation"
        ) from None


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str, encoding: str | None = None) -> Iterator[IO]:
    """A file opened under a hidden temporary name, renamed to ``path`` on success only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
