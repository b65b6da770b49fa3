"""Trace events of a shard: each batch's hops, the transfers between them, the write."""

from __future__ import annotations

from dlspec_ray.stages.trace import Where, batch_events

WHERE = Where("n" * 56, "a" * 32, "inline")


def test_each_hop_becomes_a_span_and_each_gap_a_transfer():
    spans = [
        [("read", 0, 1), ("pre", 1, 5), ("run", 9, 20), ("post", 20, 22)],
        [("read", 1, 2), ("pre", 5, 8), ("run", 20, 30), ("post", 31, 33)],
    ]
    events = batch_events(3, [6, 7], spans, WHERE, write=(40, 45))
    names = [(e["name"], e["args"].get("batch"), e["ts"], e["dur"]) for e in events]
    assert names == [
        ("read", 6, 0, 1), ("pre-process", 6, 1, 4), ("transfer", 6, 5, 4), ("run", 6, 9, 11),
        ("post-process", 6, 20, 2),
        ("read", 7, 1, 1), ("transfer", 7, 2, 3), ("pre-process", 7, 5, 3),
        ("transfer", 7, 8, 12), ("run", 7, 20, 10), ("transfer", 7, 30, 1),
        ("post-process", 7, 31, 2),
        ("write", None, 40, 5),
    ]  # fmt: skip
    first = events[0]
    assert (first["ph"], first["pid"], first["tid"]) == ("X", "n" * 12, "a" * 12)
    assert first["args"] == {
        "node": "n" * 56, "actor": "a" * 32, "environment": "inline", "shard": 3, "batch": 6,
    }  # fmt: skip


def test_a_failed_batch_has_the_hops_it_ran():
    events = batch_events(0, [0], [[("read", 0, 1), ("pre", 1, 2)]], WHERE)
    assert [e["name"] for e in events] == ["read", "pre-process"]
