"""The run's output: one ledger line and one file per shard, however often a result comes."""

from __future__ import annotations

import json

import numpy as np

from dlspec_ray.results.run_identity import RunIdentity
from dlspec_ray.results.shards import ShardBuilder
from dlspec_ray.run_output import open_output
from dlspec_ray.runtime import Shard

IDS = np.array([f"s{i}" for i in range(8)])


def test_a_shard_delivered_twice_is_written_once(tmp_path):
    identity = RunIdentity(
        run_id="r1", out=str(tmp_path / "run"), driver="", created_at="", manifests={},
        artifacts={}, settings={}, layout={},
    )  # fmt: skip
    output = open_output(tmp_path / "run", overwrite=False, identity=identity)
    shard = Shard(shard_id=0, start=0, stop=4, batch_size=4)
    first = ShardBuilder().failed(shard, IDS, None, "first attempt", "node")
    again = ShardBuilder().failed(shard, IDS, None, "the retry", "node")
    assert output.add(first) is True
    assert output.add(again) is False  # a retried call whose first attempt also ended
    assert output.duplicates == 1
    ledger = (output.staging / "ledger.jsonl").read_text().splitlines()
    assert [json.loads(line)["shard"] for line in ledger] == [0]
    assert [p.name for p in (output.staging / "samples").iterdir()] == ["shard-00000.parquet"]
    assert json.loads((output.staging / "run.json").read_text())["run_id"] == "r1"
    output.discard()
