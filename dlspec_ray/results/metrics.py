"""Accuracy, latency and throughput of a results table, or of shards fed one at a time.

Latency is a per-batch measure (a batch is one query, as in MLPerf): a stage's
time is recorded once per batch and repeated on its rows, so percentiles are
taken over distinct batches, never over rows, which would weight big batches
more. Failed batches have no meaningful times and are left out.

Accuracy is an estimate from a sample of the data, so it comes with a 95% Wilson
score interval (``wilson_interval``): unlike the normal approximation it stays inside
[0, 1] and keeps its coverage near 0 and 1, where classifiers' accuracies sit. Latency
may leave out the first batches (``warmup``), which pay for caches, allocators and
lazy initialisation rather than for the model.

``AccuracyTally`` and ``LatencyTally`` compute the same numbers as ``accuracy``
and ``latency_summary`` over shards fed one at a time: they keep counters and one
value per batch, never rows, so a run's summary costs memory in proportion to
its batches, not its samples.
"""

from __future__ import annotations

__all__ = [
    "ACCURACY_COLUMNS",
    "LATENCY_COLUMNS",
    "STAGES",
    "Z_95",
    "AccuracyTally",
    "LatencyTally",
    "accuracy",
    "accuracy_interval",
    "accuracy_intervals",
    "evaluated_samples",
    "labelled_samples",
    "latency_summary",
    "repeat_summary",
    "throughput",
    "wilson_interval",
]

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STAGES = ("pre", "run", "post")
_PERCENTILES = (50, 90, 99)
# The columns each tally reads.
ACCURACY_COLUMNS = ("label", "top_k", "error")
LATENCY_COLUMNS = ("error", "shard_id", "batch_id", "batch_size", *(f"{s}_ms" for s in STAGES))


def accuracy(table: pa.Table, ks: Iterable[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}`` over samples that have a label and no error.

    A ``topK`` is left out when some of those samples have fewer than K entries in
    ``top_k`` (the model reports fewer classes), and the result is empty when no
    sample has a label.
    """
    scored = table.filter(_scored_mask(table))
    if scored.num_rows == 0:
        return {}
    labels = scored.column("label").to_numpy()
    top_k = scored.column("top_k").combine_chunks()
    # Offsets index into the unsliced values, so use both as they are.
    offsets = top_k.offsets.to_numpy()
    values = top_k.values.to_numpy()
    shortest = int(np.diff(offsets).min())
    result: dict[str, float] = {}
    for k in sorted(set(ks)):
        if k < 1 or k > shortest:
            continue
        window = values[offsets[:-1, None] + np.arange(k)]
        hits = (window == labels[:, None]).any(axis=1)
        result[f"top{k}"] = float(hits.mean())
    return result


# The standard normal quantile of 0.975: a two-sided 95% interval.
Z_95 = 1.959963984540054


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / n``; (0.0, 1.0) when ``n`` is 0."""
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 and n the bound is exactly 0 or 1; the arithmetic would miss it by a rounding.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return (low, high)


def accuracy_interval(value: float, scored: int) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy ``value`` measured over ``scored`` samples.

    An accuracy is a count over ``scored`` (``hits / scored``), so the count is
    recovered exactly by rounding.
    """
    return wilson_interval(round(value * scored), scored)


def accuracy_intervals(measured: dict[str, float], scored: int) -> dict[str, dict[str, float]]:
    """``accuracy_interval`` of each accuracy of ``measured``, as summary.json has it."""
    intervals = {}
    for name, value in measured.items():
        low, high = accuracy_interval(value, scored)
        intervals[name] = {"low": low, "high": high}
    return intervals


def labelled_samples(table: pa.Table) -> int:
    """How many samples accuracy is computed over."""
    return int(pc.sum(_scored_mask(table).cast(pa.int64())).as_py() or 0)


def evaluated_samples(table: pa.Table) -> int:
    """Samples that went through all three stages without an error."""
    return table.column("error").null_count


def latency_summary(table: pa.Table, warmup: int = 0) -> dict[str, dict[str, float]]:
    """Per stage, ``p50``/``p90``/``p99``/``mean`` over batches and ``mean_per_sample``, in ms.

    ``mean_per_sample`` is the stage's total time divided by the samples it
    processed: the amortised cost of one sample. The first ``warmup`` successful
    batches, in the table's order, are left out. Empty when no batch is left.
    """
    ok = table.filter(pc.is_null(table.column("error")))
    if ok.num_rows == 0:
        return {}
    keys = np.stack(
        [ok.column("shard_id").to_numpy(), ok.column("batch_id").to_numpy()],
        axis=1,
    )
    _, first = np.unique(keys, axis=0, return_index=True)
    first.sort()
    sizes = ok.column("batch_size").to_numpy()[first].astype(np.float64)
    times = {stage: ok.column(f"{stage}_ms").to_numpy()[first] for stage in STAGES}
    return _latency_of(sizes, times, warmup)


def throughput(samples: int, wall_s: float) -> float:
    """Samples per second; 0.0 when no time elapsed (nothing to divide by)."""
    return float(samples) / wall_s if wall_s > 0 else 0.0


def _scored_mask(table: pa.Table) -> pa.ChunkedArray:
    return pc.and_(pc.is_valid(table.column("label")), pc.is_null(table.column("error")))


class AccuracyTally:
    """``accuracy`` over shards fed one at a time with ``add``; ``result()`` is equal to it.

    Keeps, per K, how many scored samples have their label in their first K
    entries, and the shortest ``top_k`` seen: a topK is left out, as in
    ``accuracy``, when some scored sample has fewer than K entries.
    """

    columns = ACCURACY_COLUMNS

    def __init__(self, ks: Iterable[int] = (1, 5)):
        self.ks = sorted(k for k in set(ks) if k >= 1)
        self.hits = dict.fromkeys(self.ks, 0)
        self.scored = 0
        self.shortest: int | None = None

    def add(self, table: pa.Table) -> None:
        scored = table.filter(_scored_mask(table))
        n = scored.num_rows
        if n == 0:
            return
        labels = scored.column("label").to_numpy()
        top_k = scored.column("top_k").combine_chunks()
        offsets = top_k.offsets.to_numpy()
        lengths = np.diff(offsets)
        shortest = int(lengths.min())
        self.shortest = shortest if self.shortest is None else min(self.shortest, shortest)
        self.scored += n
        if not self.ks:
            return
        # Where each sample's label first appears in its top_k (a big number if nowhere).
        values = top_k.values.to_numpy()[offsets[0] : offsets[-1]]
        rows = np.repeat(np.arange(n), lengths)
        positions = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
        match = values == labels[rows]
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, rows[match], positions[match])
        for k in self.ks:
            self.hits[k] += int(np.count_nonzero(first < k))

    def result(self) -> dict[str, float]:
        if self.scored == 0 or self.shortest is None:
            return {}
        return {f"top{k}": self.hits[k] / self.scored for k in self.ks if k <= self.shortest}


class LatencyTally:
    """``latency_summary`` over shards fed one at a time; ``result()`` is equal to it.

    Keeps one size and three stage times per successful batch, in the order the
    batches first appear, so percentiles and means are computed over exactly the
    arrays ``latency_summary`` builds from the whole table.
    """

    columns = LATENCY_COLUMNS

    def __init__(self, warmup: int = 0) -> None:
        self.warmup = warmup
        self._seen: set[tuple[int, int]] = set()
        self._sizes: list[np.ndarray] = []
        self._times: dict[str, list[np.ndarray]] = {stage: [] for stage in STAGES}

    def add(self, table: pa.Table) -> None:
        ok = table.filter(pc.is_null(table.column("error")))
        if ok.num_rows == 0:
            return
        shard_ids = ok.column("shard_id").to_numpy()
        batch_ids = ok.column("batch_id").to_numpy()
        _, first = np.unique(np.stack([shard_ids, batch_ids], axis=1), axis=0, return_index=True)
        first.sort()
        new = []
        for i in first.tolist():
            key = (int(shard_ids[i]), int(batch_ids[i]))
            if key not in self._seen:  # a batch split over two shard files counts once
                self._seen.add(key)
                new.append(i)
        if not new:
            return
        take = np.asarray(new, dtype=np.int64)
        self._sizes.append(ok.column("batch_size").to_numpy()[take].astype(np.float64))
        for stage in STAGES:
            self._times[stage].append(ok.column(f"{stage}_ms").to_numpy()[take])

    def result(self) -> dict[str, dict[str, float]]:
        if not self._sizes:
            return {}
        sizes = np.concatenate(self._sizes)
        times = {stage: np.concatenate(self._times[stage]) for stage in STAGES}
        return _latency_of(sizes, times, self.warmup)


def _latency_of(
    sizes: np.ndarray, times_of: dict[str, np.ndarray], warmup: int = 0
) -> dict[str, dict[str, float]]:
    """Percentiles and means of per-batch stage times (one entry per batch, in order),
    past the first ``warmup`` batches."""
    result: dict[str, dict[str, float]] = {}
    sizes = sizes[warmup:]
    for stage in STAGES:
        times = times_of[stage][warmup:]
        measured = ~np.isnan(times)
        if not measured.any():
            continue
        times = times[measured]
        p50, p90, p99 = np.percentile(times, _PERCENTILES)
        result[stage] = {
            "p50": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "mean": float(times.mean()),
            "mean_per_sample": float(times.sum() / sizes[measured].sum()),
        }
    return result


def repeat_summary(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min, max and relative spread ((max - min) / median) of each figure over
    timed passes, each ``{"throughput_sps", "wall_s", "latency_ms"}`` as in summary.json.

    One pass says how fast the machine was once; several say how much that varies, which
    is what a comparison between two runs must be judged against.
    """

    def spread(values: list[float]) -> dict[str, Any]:
        median = float(np.median(values))
        low, high = float(min(values)), float(max(values))
        relative = (high - low) / median if median else 0.0
        return {"median": median, "min": low, "max": high, "spread": relative, "values": values}

    latency: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        for quantity in ("p50", "p90", "p99", "mean"):
            values = [p["latency_ms"][stage][quantity] for p in passes if stage in p["latency_ms"]]
            if len(values) == len(passes):
                latency.setdefault(stage, {})[quantity] = spread(values)
    return {
        "passes": len(passes),
        "throughput_sps": spread([float(p["throughput_sps"]) for p in passes]),
        "wall_s": spread([float(p["wall_s"]) for p in passes]),
        "latency_ms": latency,
    }
