from __future__ import annotations

import pytest

from dlspec_ray.runtime import plan_batches


@pytest.mark.parametrize(
    ("samples", "batch", "per_shard", "sizes", "shards"),
    [
        (10, 4, 2, [4, 4, 2], [0, 0, 1]),
        (8, 4, 1, [4, 4], [0, 1]),
        (1, 64, 3, [1], [0]),
    ],
)
def test_plan_covers_every_sample_once(samples, batch, per_shard, sizes, shards):
    plan = plan_batches(samples, batch, per_shard)
    assert [b.rows for b in plan] == sizes
    assert [b.shard_id for b in plan] == shards
    covered = [i for b in plan for i in range(b.start, b.stop)]
    assert covered == list(range(samples))
