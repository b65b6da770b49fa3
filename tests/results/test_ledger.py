"""The ledger: append-only, a torn last line ignored, a damaged one refused, entries
trusted only when their file is whole."""

from __future__ import annotations

import hashlib

import pytest

from dlspec_ray.results.ledger import (
    LEDGER_NAME,
    LedgerEntry,
    LedgerError,
    read_ledger,
    verified_entries,
)


def entry(shard: int, data: bytes = b"", **kw) -> LedgerEntry:
    digest = hashlib.sha256(data).hexdigest()
    file = f"samples/shard-{shard:05d}.parquet"
    return LedgerEntry(shard=shard, start=shard * 10, stop=shard * 10 + 10, rows=10,
                       file=file, sha256=digest, bytes=len(data), **kw)  # fmt: skip


def write(run, entries, tail: str = "") -> None:
    (run / LEDGER_NAME).write_text("".join(e.as_line() for e in entries) + tail)
    (run / "samples").mkdir(exist_ok=True)
    for e in entries:
        (run / e.file).write_bytes(f"rows of {e.shard}".encode())


def test_entries_round_trip_and_a_torn_last_line_is_ignored(tmp_path):
    entries = [entry(0, b"rows of 0"), entry(1, b"rows of 1")]
    write(tmp_path, entries, tail='{"shard": 2, "start": 20, "st')
    assert read_ledger(tmp_path) == entries
    assert set(verified_entries(tmp_path)) == {0, 1}


def test_no_ledger_is_no_entries(tmp_path):
    assert read_ledger(tmp_path) == [] and verified_entries(tmp_path) == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json\n", r"line 1: not a ledger entry \(Expecting value"),
        ('{"shard": "one", "start": 0, "stop": 1, "rows": 1}\n', r"shard: expected an integer"),
        ("[1, 2]\n", r"expected a JSON object, got list"),
    ],
)
def test_a_damaged_line_that_is_not_the_last_is_refused(tmp_path, line, message):
    (tmp_path / LEDGER_NAME).write_text(line + entry(1).as_line())
    with pytest.raises(LedgerError, match=message):
        read_ledger(tmp_path)


def test_an_entry_counts_only_when_its_file_is_whole_and_it_ran(tmp_path):
    entries = [entry(0, b"rows of 0"), entry(1, b"rows of 1"), entry(2, b"rows of 2", ran=False)]
    write(tmp_path, entries)
    (tmp_path / "samples" / "shard-00001.parquet").write_bytes(b"rows of 1, changed")
    assert set(verified_entries(tmp_path)) == {0}
    (tmp_path / "samples" / "shard-00000.parquet").unlink()
    assert verified_entries(tmp_path) == {}


def test_the_last_entry_of_a_shard_wins(tmp_path):
    first, again = entry(0, b"old"), entry(0, b"rows of 0", attempts=2)
    write(tmp_path, [first, again])
    assert verified_entries(tmp_path)[0].attempts == 2
