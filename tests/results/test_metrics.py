from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from dlspec_ray.results.metrics import (
    LatencyTally,
    accuracy,
    accuracy_intervals,
    evaluated_samples,
    labelled_samples,
    latency_summary,
    repeat_summary,
    throughput,
    wilson_interval,
)
from dlspec_ray.results.schema import SCHEMA, rows_from_batch


def batch(
    top_k,
    labels=None,
    *,
    batch_id=0,
    shard_id=0,
    times=(1.0, 2.0, 3.0),
    error=None,
    n=None,
):
    n = len(top_k) if top_k is not None else n
    return rows_from_batch(
        [f"{shard_id}/{batch_id}/{i}" for i in range(n)],
        labels,
        None if top_k is None else {"top_k": np.asarray(top_k, dtype=np.int64).reshape(n, -1)},
        batch_id=batch_id,
        shard_id=shard_id,
        node_id="n",
        pre_ms=times[0],
        run_ms=times[1],
        post_ms=times[2],
        error=error,
    )


def table(*batches):
    return pa.Table.from_batches(list(batches), schema=SCHEMA)


TOP5 = [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("batches", "expected"),
    [
        pytest.param([], {}, id="empty table"),
        pytest.param([batch(TOP5 * 2)], {}, id="no labels"),
        pytest.param([batch(TOP5 * 3, [0, 0, 0])], {"top1": 1.0, "top5": 1.0}, id="all right"),
        pytest.param(
            [batch(TOP5 * 4, [0, 4, 7, 2])],
            {"top1": 0.25, "top5": 0.75},
            id="label at positions 1, 5, absent, 3",
        ),
        pytest.param(
            [batch([[1, 1, 1, 1, 1], [2, 2, 3, 3, 3]], [1, 3])],
            {"top1": 0.5, "top5": 1.0},
            id="tied entries in top_k count once",
        ),
        pytest.param(
            [batch([[5, 6, 7]] * 2, [5, 7])],
            {"top1": 0.5},
            id="top5 needs five entries",
        ),
        pytest.param(
            [batch(TOP5 * 4, [0, None, 9, None])],
            {"top1": 0.5, "top5": 0.5},
            id="unlabelled samples left out",
        ),
        pytest.param(
            [
                batch(TOP5 * 2, [0, 0], batch_id=0),
                batch(None, [9, 9, 9], batch_id=1, error="x", n=3),
            ],
            {"top1": 1.0, "top5": 1.0},
            id="failed samples left out",
        ),
        pytest.param(
            [batch(None, [1, 2], error="boom", n=2)],
            {},
            id="every labelled sample failed",
        ),
        pytest.param(
            [batch([[3, 0, 0, 0, 0]], [3], batch_id=0), batch([[1, 2, 3]], [3], batch_id=1)],
            {"top1": 0.5},
            id="one batch with fewer entries drops top5",
        ),
    ],
)
def test_accuracy(batches, expected):
    assert accuracy(table(*batches)) == pytest.approx(expected)


def test_accuracy_of_other_ks():
    t = table(batch(TOP5 * 4, [0, 1, 2, 4]))
    assert accuracy(t, ks=(1, 2, 3, 6)) == pytest.approx({"top1": 0.25, "top2": 0.5, "top3": 0.75})


def test_accuracy_of_a_slice_uses_the_right_rows():
    t = table(batch([[0, 1], [1, 0], [2, 0], [3, 0]], [0, 0, 2, 3]))
    # Rows 1..3 only: predictions 1, 2, 3 against labels 0, 2, 3.
    assert accuracy(t.slice(1), ks=(1, 2)) == pytest.approx({"top1": 2 / 3, "top2": 1.0})


def test_sample_counts():
    t = table(
        batch(TOP5 * 3, [0, None, 1], batch_id=0),
        batch(None, [1, 2], batch_id=1, error="boom", n=2),
    )
    assert labelled_samples(t) == 2
    assert evaluated_samples(t) == 3


def test_latency_is_over_batches_not_rows():
    # Five batches of sizes 4, 1, 1, 1, 3: the run times 1, 2, 3, 4, 10 each count once.
    sizes = [4, 1, 1, 1, 3]
    run_times = [1.0, 2.0, 3.0, 4.0, 10.0]
    t = table(
        *(
            batch([[0]] * n, batch_id=i, times=(0.5, r, 2.0))
            for i, (n, r) in enumerate(zip(sizes, run_times, strict=True))
        )
    )
    lat = latency_summary(t)
    assert set(lat) == {"pre", "run", "post"}
    # numpy's linear method: p90 = 4 + 0.6 * (10 - 4), p99 = 4 + 0.96 * (10 - 4).
    assert lat["run"] == pytest.approx(
        {"p50": 3.0, "p90": 7.6, "p99": 9.76, "mean": 4.0, "mean_per_sample": 20.0 / 10}
    )
    assert lat["pre"] == pytest.approx(
        {"p50": 0.5, "p90": 0.5, "p99": 0.5, "mean": 0.5, "mean_per_sample": 2.5 / 10}
    )
    assert lat["post"]["mean_per_sample"] == pytest.approx(1.0)


def test_latency_with_tied_times():
    t = table(*(batch([[0], [0]], batch_id=i, times=(1.0, 5.0, 1.0)) for i in range(4)))
    run = latency_summary(t)["run"]
    assert run == pytest.approx(
        {"p50": 5.0, "p90": 5.0, "p99": 5.0, "mean": 5.0, "mean_per_sample": 2.5}
    )


def test_latency_leaves_out_failed_batches():
    t = table(
        batch([[0]], batch_id=0, times=(1.0, 2.0, 3.0)),
        batch(None, batch_id=1, times=(100.0, 100.0, 100.0), error="boom", n=5),
        batch([[0]], batch_id=2, times=(3.0, 4.0, 5.0)),
    )
    lat = latency_summary(t)
    assert lat["pre"]["mean"] == pytest.approx(2.0)
    assert lat["run"]["p50"] == pytest.approx(3.0)
    assert lat["post"]["p99"] == pytest.approx(3.0 + 0.99 * 2.0)


def test_same_batch_id_in_two_shards_is_two_batches():
    t = table(
        batch([[0]] * 2, batch_id=0, shard_id=0, times=(1.0, 1.0, 1.0)),
        batch([[0]] * 2, batch_id=0, shard_id=1, times=(3.0, 3.0, 3.0)),
    )
    assert latency_summary(t)["run"]["mean"] == pytest.approx(2.0)
    assert latency_summary(t)["run"]["mean_per_sample"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "batches",
    [
        pytest.param([], id="empty"),
        pytest.param([batch(None, error="boom", n=3)], id="all failed"),
    ],
)
def test_latency_without_a_completed_batch_is_empty(batches):
    assert latency_summary(table(*batches)) == {}


@pytest.mark.parametrize(
    ("samples", "wall_s", "expected"),
    [(100, 2.0, 50.0), (1, 0.25, 4.0), (0, 1.0, 0.0), (5, 0.0, 0.0), (5, -1.0, 0.0)],
)
def test_throughput(samples, wall_s, expected):
    assert throughput(samples, wall_s) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("hits", "n", "low", "high"),
    [
        # Published values of the Wilson score interval (z = 1.96).
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (9890, 10000, 0.98680, 0.99085),
        (0, 0, 0.0, 1.0),  # nothing scored: nothing known
    ],
)
def test_the_wilson_interval(hits, n, low, high):
    got = wilson_interval(hits, n)
    assert got == pytest.approx((low, high), abs=5e-5)
    assert 0.0 <= got[0] <= (hits / n if n else 0.0) <= got[1] <= 1.0


def test_accuracy_intervals_recover_the_counts():
    intervals = accuracy_intervals({"top1": 0.5, "top5": 1.0}, 10)
    assert intervals["top1"] == pytest.approx({"low": 0.2366, "high": 0.7634}, abs=5e-5)
    assert intervals["top5"]["high"] == 1.0


def test_warm_up_batches_are_left_out_of_latency_in_memory_and_streamed():
    # Two cold batches (100 ms), then three warm ones (1, 2, 3 ms), over two shards.
    times = [100.0, 100.0, 1.0, 2.0, 3.0]
    batches = [
        batch([[0]], batch_id=i, shard_id=i // 3, times=(1.0, r, 1.0)) for i, r in enumerate(times)
    ]
    whole = table(*batches)
    warm = latency_summary(whole, warmup=2)
    assert warm["run"] == pytest.approx(
        {"p50": 2.0, "p90": 2.8, "p99": 2.98, "mean": 2.0, "mean_per_sample": 2.0}
    )
    assert latency_summary(whole)["run"]["mean"] == pytest.approx(41.2)
    tally = LatencyTally(warmup=2)
    tally.add(table(*batches[:3]))
    tally.add(table(*batches[3:]))
    assert tally.result() == warm
    assert latency_summary(whole, warmup=5) == {}


def test_repeat_summary_gives_median_and_spread_of_each_figure():
    passes = [
        {"throughput_sps": tp, "wall_s": 1000 / tp, "latency_ms": {"run": {
            "p50": p50, "p90": 2 * p50, "p99": 3 * p50, "mean": p50}}}
        for tp, p50 in ((100.0, 1.0), (200.0, 3.0), (150.0, 2.0))
    ]  # fmt: skip
    summary = repeat_summary(passes)
    assert summary["passes"] == 3
    assert summary["throughput_sps"] == {
        "median": 150.0, "min": 100.0, "max": 200.0, "spread": 100.0 / 150.0,
        "values": [100.0, 200.0, 150.0],
    }  # fmt: skip
    assert summary["latency_ms"]["run"]["p90"]["median"] == 4.0
    assert set(summary["latency_ms"]) == {"run"}  # a stage missing from a pass is left out
