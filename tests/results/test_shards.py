"""A shard's rows as the host actor builds them: one pass when every batch succeeded, batch
by batch otherwise, the same rows either way."""

from __future__ import annotations

import numpy as np
import pytest

import dlspec_ray.results.shards as shards
from dlspec_ray.results.shards import ShardBuilder
from dlspec_ray.runtime import Shard
from dlspec_ray.stages import Envelope

IDS = np.asarray([str(i) for i in range(1000)])
LABELS = np.arange(1000) % 10


def envelopes(shard: Shard, errors: dict[int, str] | None = None) -> list[Envelope]:
    rng = np.random.default_rng(shard.start)
    out = []
    for i, (a, b) in enumerate(shard.spans):
        logits = rng.standard_normal((b - a, 10)).astype(np.float32)
        value = {
            "top_k": np.argsort(-logits, axis=1)[:, :3],
            "scores": logits[:, :3],
            "output": logits,
        }
        error = (errors or {}).get(i)
        out.append(
            Envelope(None if error else value, {"pre": 1.0 + i, "run": 2.0, "post": 0.5}, error)
        )
    return out


@pytest.mark.parametrize("errors", [None, {1: "run: ValueError: boom"}], ids=["ok", "one-failed"])
def test_the_one_pass_rows_equal_the_batch_by_batch_rows(monkeypatch, errors):
    shard = Shard(shard_id=2, start=130, stop=300, batch_size=64)
    built = ShardBuilder().build(shard, IDS, LABELS, envelopes(shard, errors), "n1")
    monkeypatch.setattr(shards, "_merged", lambda *args: None)
    slow = ShardBuilder().build(shard, IDS, LABELS, envelopes(shard, errors), "n1")
    assert built.table.equals(slow.table)
    assert built.table.column("batch_id").to_pylist()[::64] == [2, 3, 4]
    assert built.failed == (64 if errors else 0)
    assert built.table.column("sample_id").to_pylist() == [str(i) for i in range(130, 300)]


def test_a_shard_that_never_ran_keeps_its_ids_and_says_why():
    shard = Shard(shard_id=0, start=0, stop=100, batch_size=64)
    result = ShardBuilder().failed(shard, IDS, None, "not run: the evaluation stopped early", "")
    assert result.failed == result.rows == 100
    assert set(result.table.column("error").to_pylist()) == {
        "not run: the evaluation stopped early"
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"top_k": np.zeros((3, 1)), "output": np.array([[1.0], [np.nan], [np.inf]])}, 2),
        ({"top_k": np.zeros((2, 1)), "scores": np.array([[0.5], [-np.inf]])}, 1),
        ({"top_k": np.zeros((2, 1)), "output": np.ones((2, 4))}, 0),
        ({"top_k": np.zeros((2, 1)), "output": np.ones((2, 4), dtype=np.int64)}, 0),
        (None, 0),
    ],
)
def test_nonfinite_rows_counts_samples_not_values(value, expected):
    assert shards.nonfinite_rows(value) == expected
