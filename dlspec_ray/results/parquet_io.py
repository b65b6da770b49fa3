"""Reading and writing a run directory's files, atomically, locally or in object storage.

Every function takes the run directory as a local path, a URI (``s3://bucket/runs/a``)
or a ``StorageLocation`` (see ``storage``). Every file is written whole or not at
all: locally under a temporary name in its final folder, then renamed into place;
in object storage as one upload that appears only when complete. A reader (or a
run killed halfway) never sees a partial shard or summary.

Shards are read one at a time (``iter_shards``), and only the columns asked for,
so a summary or a plot over a large run never holds the whole table; over object
storage only those columns' bytes are fetched.
"""

from __future__ import annotations

__all__ = [
    "SAMPLES_DIR",
    "SUMMARY_NAME",
    "ShardFile",
    "atomic_write_bytes",
    "atomic_write_text",
    "iter_shards",
    "list_shards",
    "read_results",
    "shard_location",
    "shard_path",
    "write_shard",
]

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dlspec_ray.errors import DLSpecError, UsageError
from dlspec_ray.results.schema import (
    DIGEST_COLUMNS,
    READABLE_VERSIONS,
    SCHEMA,
    schema_version_of,
)
from dlspec_ray.results.storage import (
    Location,
    StorageError,
    StorageLocation,
    as_location,
    explain_storage_error,
)

SAMPLES_DIR = "samples"
# The run's summary file (``summary`` writes it; an empty object-storage run is told by it).
SUMMARY_NAME = "summary.json"
_SHARD_NAME = re.compile(r"^shard-(\d+)\.parquet$")


@dataclass(frozen=True)
class ShardFile:
    """What ``write_shard`` wrote: where, how many rows, and the file's sha256 digest.

    Enough for a ledger entry: the digest is of the exact bytes stored, so a
    reader can tell a whole file from a damaged or replaced one.
    """

    shard_id: int
    location: StorageLocation
    rows: int
    sha256: str
    size: int  # bytes

    @property
    def uri(self) -> str:
        """The file's local path or URI, as text."""
        return self.location.uri

    @property
    def path(self) -> Path:
        """The local path of the file (a local run directory only)."""
        return self.location.local_path


def shard_location(out_dir: Location, shard_id: int) -> StorageLocation:
    return as_location(out_dir).child(SAMPLES_DIR, f"shard-{shard_id:05d}.parquet")


def shard_path(out_dir: Location, shard_id: int) -> Path | StorageLocation:
    """The shard's file: a ``Path`` for a local run directory, else its ``StorageLocation``."""
    location = shard_location(out_dir, shard_id)
    return location.local_path if location.is_local else location


def write_shard(batch: pa.RecordBatch | pa.Table, out_dir: Location, shard_id: int) -> ShardFile:
    """Write one shard's rows as ``out_dir/samples/shard-NNNNN.parquet``.

    A shard that is written again (a retried shard) replaces the old file whole.
    Returns the file's location, row count and sha256 digest (``ShardFile``).
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
    location = shard_location(out_dir, shard_id)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1))
    data = memoryview(sink.getvalue())
    digest = hashlib.sha256(data).hexdigest()
    location.write_bytes(data)
    return ShardFile(
        shard_id=int(shard_id),
        location=location,
        rows=table.num_rows,
        sha256=digest,
        size=len(data),
    )


def list_shards(out_dir: Location) -> list[tuple[int, StorageLocation]]:
    """The run directory's shard files as ``(shard id, location)``, in shard order.

    Other files in ``samples/`` (temporary files of writes in progress, notes)
    are not shards and are left out.
    """
    out = as_location(out_dir)
    samples = out.child(SAMPLES_DIR)
    names = samples.list_files()
    if not names and not _is_run_without_shards(out, samples):
        out.check_bucket()
        raise DLSpecError(
            f"{out.describe()}: no {SAMPLES_DIR}/ folder with results; expected the --out "
            "directory of a `dlspec-ray run`"
        )
    return sorted(
        (int(m.group(1)), samples.child(name))
        for name in names
        if (m := _SHARD_NAME.match(name)) is not None
    )


def iter_shards(out_dir: Location, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Each shard's rows as a table, one shard at a time, in shard order.

    With ``columns``, only those columns are read (and, from object storage,
    fetched), in that order; each table has the results schema's types for them.
    """
    wanted = _schema_of(columns)
    for _, location in list_shards(out_dir):
        yield _read_shard(location, wanted)


def read_results(out_dir: Location, columns: Sequence[str] | None = None) -> pa.Table:
    """All shards of a run directory as one table, in shard order (optionally some columns)."""
    wanted = _schema_of(columns)
    tables = list(iter_shards(out_dir, columns))
    if not tables:
        return wanted.empty_table()
    return pa.concat_tables(tables)


def atomic_write_text(path: Location, text: str, encoding: str = "utf-8") -> None:
    as_location(path).write_text(text, encoding=encoding)


def atomic_write_bytes(path: Location, data: bytes) -> None:
    as_location(path).write_bytes(data)


def _is_run_without_shards(out: StorageLocation, samples: StorageLocation) -> bool:
    """An empty ``samples/``: a local folder that exists, or (object storage has no empty
    folders) a finished run directory, one with a summary."""
    if samples.is_local:
        return samples.is_dir()
    return out.child(SUMMARY_NAME).is_file()


def _schema_of(columns: Sequence[str] | None) -> pa.Schema:
    if columns is None:
        return SCHEMA
    if isinstance(columns, str):
        raise UsageError(f"columns: expected a list of column names, got the string {columns!r}")
    unknown = [c for c in columns if c not in SCHEMA.names]
    if unknown:
        raise UsageError(
            f"columns: {', '.join(map(repr, unknown))} not in the results schema; "
            f"columns are {', '.join(SCHEMA.names)}"
        )
    return pa.schema([SCHEMA.field(c) for c in columns], metadata=SCHEMA.metadata)


def _read_shard(location: StorageLocation, schema: pa.Schema = SCHEMA) -> pa.Table:
    where = location.describe()
    columns = None if schema is SCHEMA else schema.names
    try:
        with location.open_input_file() as f:
            file = pq.ParquetFile(f)
            present = file.schema_arrow.names
            # Digest columns a version 1 file lacks are added as nulls below.
            wanted = (
                None
                if columns is None
                else [c for c in columns if c in present or c not in DIGEST_COLUMNS]
            )
            table = file.read(columns=wanted)
    except pa.ArrowInvalid as exc:
        raise DLSpecError(
            f"{where}: not a readable Parquet file ({exc}); delete it or rerun the evaluation"
        ) from None
    except OSError as exc:
        if not location.is_local:
            raise StorageError(f"{where}: reading failed: {explain_storage_error(exc)}") from None
        raise DLSpecError(
            f"{where}: not a readable Parquet file ({exc}); delete it or rerun the evaluation"
        ) from None
    version = schema_version_of(table.schema)
    if version not in READABLE_VERSIONS:
        raise DLSpecError(
            f"{where}: results schema version {version!r}, this dlspec-ray reads versions "
            f"{', '.join(READABLE_VERSIONS)}; rerun the evaluation with this version"
        )
    for name in DIGEST_COLUMNS:  # version 1 had none
        if name not in table.schema.names and (columns is None or name in columns):
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    if columns is None and table.schema.names != SCHEMA.names:
        table = table.select([n for n in SCHEMA.names if n in table.schema.names])
    if columns is not None:
        missing = [c for c in columns if c not in table.schema.names]
        if missing:
            raise DLSpecError(
                f"{where}: columns {', '.join(missing)} are missing; rerun the evaluation"
            )
        table = table.select(list(columns))
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise DLSpecError(
            f"{where}: columns do not match the results schema ({exc}); rerun the evaluation"
        ) from None
