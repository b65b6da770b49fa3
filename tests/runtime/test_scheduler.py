from __future__ import annotations

import pytest

from dlspec_ray.plan import plan_shards
from dlspec_ray.runtime import Shard, chunk_batches


@pytest.mark.parametrize(
    ("samples", "batch", "per_shard", "shard_rows", "batch_rows"),
    [
        (10, 4, 2, [8, 2], [4, 4, 2]),
        (8, 4, 1, [4, 4], [4, 4]),
        (1, 64, 3, [1], [1]),
        (130, 64, 1, [64, 64, 2], [64, 64, 2]),
    ],
)
def test_shards_cover_every_sample_once(samples, batch, per_shard, shard_rows, batch_rows):
    shards = plan_shards(samples, batch, per_shard)
    assert [s.rows for s in shards] == shard_rows
    assert [s.shard_id for s in shards] == list(range(len(shards)))
    spans = [span for s in shards for span in s.spans]
    assert [b - a for a, b in spans] == batch_rows
    assert [i for a, b in spans for i in range(a, b)] == list(range(samples))


def test_batch_ids_count_from_the_first_sample_whatever_the_shard():
    shard = Shard(shard_id=3, start=192, stop=320, batch_size=64)
    assert [shard.batch_id(a) for a, _ in shard.spans] == [3, 4]


@pytest.mark.parametrize(
    ("batches", "actors", "batch_bytes", "expected"),
    [
        (100, 2, 1000, 25),  # two shards per actor
        (100, 2, None, 4),  # files: at most FILE_CHUNK_BATCHES per call
        (6, 2, None, 2),  # ... and still two calls per actor
        (10_000, 2, 2**20, 16),  # bounded by CHUNK_INPUT_BYTES
        (1, 4, 10, 1),
    ],
)
def test_shard_size_is_chosen_from_the_data(batches, actors, batch_bytes, expected):
    assert chunk_batches(batches, actors, batch_bytes) == expected
